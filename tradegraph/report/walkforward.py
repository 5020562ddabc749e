"""The HTML report of a walk-forward: the stitched out-of-sample equity with the fold
boundaries, the folds table, the stability of the chosen parameters and the overfitting odds.

One self-contained file (CSS embedded, the chart as inline SVG), like the other reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tradegraph.report.html import write_page

_WIDTH, _HEIGHT, _PAD = 900, 300, 40


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def equity_svg(oos_equity: pa.Table) -> str:
    """The stitched equity as a polyline, with a dashed vertical line where each fold starts."""
    ts = oos_equity.column("ts_ns").to_numpy().astype(np.float64)
    equity = oos_equity.column("equity").to_numpy().astype(np.float64)
    folds = oos_equity.column("fold").to_numpy()
    head = (
        f'<svg class="chart chart-oos-equity" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="stitched out-of-sample equity">'
    )
    if equity.size == 0:
        return f'{head}<text x="20" y="20">no out-of-sample equity</text></svg>'
    t0, t1 = float(ts.min()), float(ts.max())
    lo, hi = float(equity.min()), float(equity.max())
    span_t = (t1 - t0) or 1.0
    span_v = (hi - lo) or 1.0

    def x(t: float) -> float:
        return _PAD + (t - t0) / span_t * (_WIDTH - 2 * _PAD)

    def y(v: float) -> float:
        return _HEIGHT - _PAD - (v - lo) / span_v * (_HEIGHT - 2 * _PAD)

    step = max(1, equity.size // 2000)
    points = " ".join(
        f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts[::step], equity[::step], strict=True)
    )
    parts = [head, f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>']
    starts = np.flatnonzero(np.diff(folds, prepend=-1) != 0)
    for i in starts:
        xi = x(float(ts[i]))
        parts.append(
            f'<line class="fold-boundary" x1="{xi:.1f}" y1="{_PAD / 2}" x2="{xi:.1f}" '
            f'y2="{_HEIGHT - _PAD}" stroke="#999" stroke-dasharray="4 3"/>'
            f'<text x="{xi + 3:.1f}" y="{_PAD / 2 + 10}" font-size="11">fold {int(folds[i])}</text>'
        )
    parts.append(
        f'<text x="{_PAD}" y="{_HEIGHT - 10}" font-size="11">{_fmt(lo)} to {_fmt(hi)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


OVERFITTING_NOTE = (
    "PBO: the chance that a train sweep's winner is at or below the median of its trials on "
    "unseen halves of the train window (about 0.5 for pure noise); deflated Sharpe: the chance "
    "that the chosen trial's Sharpe beats the best expected from that many unskilled trials "
    "(below 0.95 it is not distinguishable from luck); OOS loss share: the share of folds "
    "whose chosen parameters lost money on their test window."
)


def _with_reason(value: Any, entry: Mapping[str, Any]) -> str:
    """A statistic, or ``-`` and why it is missing."""
    if value is None:
        return f"- ({entry.get('reason', 'undefined')})"
    return _fmt(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_walkforward_report(
    path: Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    oos_equity: pa.Table,
    keys: Sequence[str],
) -> Path:
    """Write the walk-forward's ``report.html`` and return its path."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    fold_rows = summary["fold_rows"]
    folds = _table(
        [
            "fold",
            "train",
            "test",
            *short,
            "IS return",
            "OOS return",
            "OOS sharpe",
            "WFE",
            "IS PBO",
            "IS deflated sharpe",
        ],
        [
            [
                r["fold"],
                f"{r['train_start']} to {r['train_end']}",
                f"{r['test_start']} to {r['test_end']}",
                *(r[f"param.{k}"] for k in keys),
                r["is_total_return"],
                r["oos_total_return"],
                r["oos_sharpe"],
                r["wfe"],
                r.get("is_pbo"),
                r.get("is_deflated_sharpe"),
            ]
            for r in fold_rows
        ],
        "folds-table",
    )
    stability = summary["parameter_stability"]
    stable = _table(
        ["parameter", "modal value", "modal share", "cv", "chosen per fold"],
        [
            [k, s["modal_value"], s["modal_share"], s["cv"], ", ".join(map(str, s["values"]))]
            for k, s in stability.items()
        ],
        "stability-table",
    )
    oos = summary["oos"]
    headline = _table(
        ["folds", "walk-forward efficiency", *oos.keys()],
        [[summary["folds"], summary["walk_forward_efficiency"], *oos.values()]],
        "summary-table",
    )
    odds = summary["overfitting"]
    overfitting = _table(
        ["mean PBO of the train sweeps", "mean deflated sharpe of the chosen", "OOS loss share"],
        [
            [
                _with_reason(odds["pbo"]["mean"], odds["pbo"]),
                _with_reason(odds["deflated_sharpe"]["mean"], odds["deflated_sharpe"]),
                _with_reason(odds["oos_loss_share"]["value"], odds["oos_loss_share"]),
            ]
        ],
        "overfitting-table",
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        headline,
        "<h2>Stitched out-of-sample equity</h2>",
        equity_svg(oos_equity),
        "<h2>Folds</h2>",
        folds,
        "<h2>Parameter stability</h2>",
        stable,
        "<h2>Overfitting odds</h2>",
        f'<p class="overfitting-note">{escape(OVERFITTING_NOTE)}</p>',
        overfitting,
        f"<p>results_digest {escape(str(summary['results_digest']))}</p>",
    ]
    return write_page(path, title, sections)
