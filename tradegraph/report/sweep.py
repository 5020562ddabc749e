"""The HTML report of a parameter sweep: the objective as a heatmap over two parameters, the
top trials, and the distribution of the objective.

Like the other reports it is one self-contained file (CSS embedded, charts as inline SVG), so
it opens without network access.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from tradegraph.report.html import write_page
from tradegraph.report.montecarlo import histogram_svg

TOP_TRIALS = 20
"""Trials the report's table lists, best first."""

_CELL_W, _CELL_H = 72, 30
_LEFT, _TOP, _BOTTOM = 110, 24, 56


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def rank_trials(
    rows: Sequence[Mapping[str, Any]], objective: str, minimise: bool
) -> list[Mapping[str, Any]]:
    """Successful trials with a finite objective, best first (ties: lower trial first)."""
    scored = [
        r
        for r in rows
        if r.get("status") == "ok"
        and isinstance(r.get(objective), int | float)
        and math.isfinite(float(r[objective]))
    ]
    sign = 1.0 if minimise else -1.0
    return sorted(scored, key=lambda r: (sign * float(r[objective]), int(r["trial"])))


def _color(fraction: float) -> str:
    """From pale (worst) to deep blue (best)."""
    f = min(max(fraction, 0.0), 1.0)
    low, high = (239, 246, 255), (30, 64, 175)
    r, g, b = (round(a + (c - a) * f) for a, c in zip(low, high, strict=True))
    return f"rgb({r},{g},{b})"


def heatmap_svg(
    rows: Sequence[Mapping[str, Any]],
    x_key: str,
    y_key: str,
    objective: str,
    minimise: bool,
) -> str:
    """The best objective of the trials at each pair of values of two parameters (the other
    parameters at whatever gave the best), one coloured cell per pair; pairs no successful
    trial reached stay grey."""
    x_col, y_col = f"param.{x_key}", f"param.{y_key}"
    xs = sorted({r[x_col] for r in rows}, key=_order)
    ys = sorted({r[y_col] for r in rows}, key=_order)
    best: dict[tuple[Any, Any], float] = {}
    for r in rank_trials(rows, objective, minimise):
        best.setdefault((r[x_col], r[y_col]), float(r[objective]))
    width = _LEFT + _CELL_W * len(xs) + 20
    height = _TOP + _CELL_H * len(ys) + _BOTTOM
    parts = [
        f'<svg class="chart chart-heatmap" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="heatmap of {escape(objective)}">'
    ]
    values = list(best.values())
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    for j, y in enumerate(ys):
        top = _TOP + _CELL_H * (len(ys) - 1 - j)
        parts.append(
            f'<text x="{_LEFT - 6}" y="{top + _CELL_H / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(y))}</text>"
        )
        for i, x in enumerate(xs):
            left = _LEFT + _CELL_W * i
            value = best.get((x, y))
            ink = "#1f2933"
            if value is None:
                fill, label = "#e4e7eb", "-"
            else:
                share = 0.5 if hi <= lo else (value - lo) / (hi - lo)
                strength = 1.0 - share if minimise else share
                fill, label = _color(strength), _fmt(value)
                if strength > 0.55:
                    ink = "#ffffff"
            parts.append(
                f'<rect class="cell" x="{left}" y="{top}" width="{_CELL_W - 2}" '
                f'height="{_CELL_H - 2}" fill="{fill}"><title>{escape(x_key)}={escape(_fmt(x))}, '
                f"{escape(y_key)}={escape(_fmt(y))}: {escape(objective)} {escape(label)}</title>"
                f'</rect><text x="{left + _CELL_W / 2 - 1:.1f}" y="{top + _CELL_H / 2 + 4:.1f}" '
                f'text-anchor="middle" style="fill:{ink}">{escape(label)}</text>'
            )
    bottom = _TOP + _CELL_H * len(ys)
    for i, x in enumerate(xs):
        parts.append(
            f'<text x="{_LEFT + _CELL_W * i + _CELL_W / 2:.1f}" y="{bottom + 16}" '
            f'text-anchor="middle">{escape(_fmt(x))}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + _CELL_W * len(xs) / 2:.1f}" y="{bottom + 40}" text-anchor="middle">'
        f"{escape(x_key)}</text>"
        f'<text x="4" y="{_TOP - 8}" text-anchor="start">{escape(y_key)}</text></svg>'
    )
    return "".join(parts)


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _top_table(ranked: Sequence[Mapping[str, Any]], keys: Sequence[str], objective: str) -> str:
    metrics = [objective] + [
        m
        for m in ("total_return", "sharpe", "sortino", "max_drawdown", "calmar", "fills")
        if m != objective
    ]
    head = "".join(f"<th>{escape(h)}</th>" for h in ["trial", *keys, *metrics])
    body = []
    for row in ranked[:TOP_TRIALS]:
        cells = [str(row["trial"])]
        cells += [_fmt(row[f"param.{k}"]) for k in keys]
        cells += [_fmt(row[m]) for m in metrics]
        body.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f'<div class="scroll"><table class="top-trials"><tr>{head}</tr>{"".join(body)}</table></div>'


def _overfitting_section(summary: Mapping[str, Any]) -> str:
    odds = summary.get("overfitting") or {}
    pbo = odds.get("pbo") or {}
    dsr = odds.get("deflated_sharpe") or {}
    pbo_text = (
        f"<b>{_fmt(pbo['value'])}</b> (CSCV over {pbo.get('days_used')} days in "
        f"{pbo.get('n_splits')} blocks, {pbo.get('trials')} trials)"
        if pbo.get("value") is not None
        else f"n/a ({escape(str(pbo.get('reason')))})"
    )
    dsr_text = (
        f"<b>{_fmt(dsr['value'])}</b> (trial {dsr.get('trial')}, {dsr.get('trials')} trials)"
        if dsr.get("value") is not None
        else f"n/a ({escape(str(dsr.get('reason')))})"
    )
    return (
        '<div class="overfitting"><h2>How likely is the winner a fluke</h2><ul>'
        f"<li>Probability of backtest overfitting: {pbo_text}. The share of splits of the "
        "days into halves where the trial best on one half ranks at or below the median on "
        "the other; near 0.5 means picking the best is no better than chance.</li>"
        f"<li>Deflated Sharpe ratio of the best trial: {dsr_text}. The probability that its "
        "true Sharpe ratio beats the best one expected from this many trials without skill; "
        "above 0.95 is the usual bar.</li></ul></div>"
    )


def write_sweep_report(
    path: Path,
    *,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    objective: str,
    minimise: bool,
    heatmap: Sequence[str],
    summary: Mapping[str, Any],
) -> Path:
    """Write the sweep's report: outcome, heatmap (when two parameters were swept), top
    trials, histogram of the objective, failed trials."""
    ranked = rank_trials(rows, objective, minimise)
    direction = "lower is better" if minimise else "higher is better"
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="subtitle">{summary["trials"]} trials ({summary["search"]} search), '
        f"{summary['trials_failed']} failed; objective {escape(objective)} ({direction}); "
        f"results digest <code>{escape(str(summary['results_digest']))}</code></p>",
    ]
    sections.append(_overfitting_section(summary))
    if len(heatmap) == 2:
        sections += [
            f"<h2>Best {escape(objective)} by {escape(heatmap[0])} and {escape(heatmap[1])}</h2>",
            heatmap_svg(rows, heatmap[0], heatmap[1], objective, minimise),
        ]
    sections += [
        f"<h2>Top trials by {escape(objective)}</h2>",
        _top_table(ranked, keys, objective),
        f"<h2>Distribution of {escape(objective)}</h2>",
        histogram_svg(
            [float(r[objective]) for r in ranked],
            label="objective",
            color="#2563eb",
            bins=min(30, max(5, len(ranked))),
            count_unit="trials",
        ),
    ]
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        items = "".join(
            f"<li>trial {r['trial']}: {escape(str(r.get('error')))}</li>" for r in failed[:50]
        )
        sections.append(f'<div class="failed"><h2>Failed trials</h2><ul>{items}</ul></div>')
    return write_page(path, title, sections)
