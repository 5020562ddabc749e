"""The ``report.html`` page of ``tradegraph twin``: how far a session drifted from its twin.

Self-contained like the run report: inline CSS, nothing fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from tradegraph.report.html import _config_table, _rows_table, write_page

MAX_ROWS = 500
"""Most orders listed; the worst drifts come first."""


def _flat(summary: Mapping[str, Any]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key} {sub}"] = "-" if v is None else v
        else:
            out[key] = "-" if value is None else value
    return out


def _badness(row: Mapping[str, Any]) -> tuple[int, float]:
    drift = row.get("price_drift_bps")
    return (0 if row.get("present") != "both" else 1, -abs(drift) if drift is not None else 0.0)


def write_twin_report(
    path: Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    drift_rows: Sequence[Mapping[str, Any]],
) -> Path:
    """Write the twin's summary and its order-by-order drift table."""
    rows = sorted(drift_rows, key=_badness)[:MAX_ROWS]
    verdict = (
        "The session did exactly what its twin did."
        if summary.get("zero_drift")
        else "The session and its twin differ: orders only one side placed come first, then the "
        "largest price drifts."
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(verdict)}</p>",
        "<h2>Summary</h2>",
        _config_table(_flat(summary)),
        f"<h2>Orders ({len(drift_rows):,}"
        + (f", first {MAX_ROWS} shown" if len(drift_rows) > MAX_ROWS else "")
        + ")</h2>",
        _rows_table([{k: ("-" if v is None else v) for k, v in r.items()} for r in rows])
        if rows
        else "<p>Neither run placed an order.</p>",
    ]
    return write_page(path, title, sections)
