"""The ``compare.html`` page of ``tradegraph compare``: runs' metrics side by side, their equity
normalised to 1 on one chart, and the confidence intervals of their Sharpe differences.

Self-contained like the run report: inline CSS and SVG, nothing fetched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tradegraph.report.html import (
    _CHART_HEIGHT,
    _CHART_WIDTH,
    _MARGIN_BOTTOM,
    _MARGIN_LEFT,
    _MARGIN_RIGHT,
    _MARGIN_TOP,
    _nice_ticks,
    _time_format,
    _utc,
    downsample_min_max,
    write_page,
)

# One colour per run, in order; more runs than colours reuse them.
RUN_COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d")


def normalised_curves_chart(
    curves: Sequence[tuple[str, npt.ArrayLike, npt.ArrayLike]],
) -> str:
    """One SVG line chart of several curves ``(label, ts_ns, values)``, with a legend."""
    width, height = _CHART_WIDTH, _CHART_HEIGHT + 20 * len(curves)
    plot_left, plot_right = _MARGIN_LEFT, width - _MARGIN_RIGHT
    plot_top, plot_bottom = _MARGIN_TOP, _CHART_HEIGHT - _MARGIN_BOTTOM
    open_tag = (
        f'<svg class="chart chart-compare" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="normalised equity chart">'
    )
    series = [
        (label, *downsample_min_max(ts, values))
        for label, ts, values in curves
        if np.asarray(values).size
    ]
    if not series:
        return (
            f'{open_tag}<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "no data</text></svg>"
        )
    low = min(float(v.min()) for _, _, v in series)
    high = max(float(v.max()) for _, _, v in series)
    pad = 0.01 if high - low <= 0.0 else (high - low) * 0.05
    low, high = low - pad, high + pad
    t0 = min(int(t[0]) for _, t, _ in series)
    t1 = max(int(t[-1]) for _, t, _ in series)
    t_span = max(t1 - t0, 1)

    def y_of(v: float) -> float:
        return plot_bottom - (v - low) / (high - low) * (plot_bottom - plot_top)

    parts = [
        open_tag,
        f'<rect x="{plot_left}" y="{plot_top}" width="{plot_right - plot_left}" '
        f'height="{plot_bottom - plot_top}" fill="#fbfcfd" stroke="#e4e7eb"/>',
    ]
    ticks = _nice_ticks(low, high)
    # Ratios near 1 need as many decimals as the tick step has, or 0.9995 and 1.0005 both read 1.
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{plot_left}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" '
            f'stroke="#e4e7eb"/><text x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick:.{decimals}f}</text>"
        )
    time_format = _time_format(t_span)
    for i in range(6):
        t = t0 + (t1 - t0) * i / 5
        x = plot_left + (t - t0) / t_span * (plot_right - plot_left)
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{plot_bottom + 18}" text-anchor="{anchor}">'
            f"{escape(_utc(int(t)).strftime(time_format))}</text>"
        )
    for number, (label, ts, values) in enumerate(series):
        color = RUN_COLORS[number % len(RUN_COLORS)]
        xs = plot_left + (ts - t0).astype(np.float64) / t_span * (plot_right - plot_left)
        ys = plot_bottom - (values - low) / (high - low) * (plot_bottom - plot_top)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(
            f'<polyline class="run-{number}" points="{points}" fill="none" '
            f'stroke="{color}" stroke-width="1.2"/>'
        )
        legend_y = _CHART_HEIGHT + 20 * number + 4
        parts.append(
            f'<rect x="{plot_left}" y="{legend_y - 9}" width="14" height="3" fill="{color}"/>'
            f'<text x="{plot_left + 20}" y="{legend_y - 4}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_compare_report(
    path: Path,
    *,
    title: str,
    labels: Sequence[str],
    metrics: Sequence[tuple[str, Sequence[str]]],
    curves: Sequence[tuple[str, npt.ArrayLike, npt.ArrayLike]],
    intervals: Sequence[Mapping[str, object]],
    method: str,
) -> Path:
    """Write ``compare.html`` and return its path.

    Args:
        path: Where to write; parent folders are created.
        title: Heading of the page.
        labels: The runs' names, in order (the first is the baseline).
        metrics: Rows of ``(metric, one formatted value per run)``.
        curves: ``(label, ts_ns, equity / starting equity)`` per run.
        intervals: One row per run after the first: ``run``, ``difference``, ``low``,
            ``high``, ``excludes_zero``.
        method: How the intervals were computed, shown under their table.
    """
    head = "".join(f"<th>{escape(label)}</th>" for label in ["metric", *labels])
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in [name, *values]) + "</tr>"
        for name, values in metrics
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        "<h2>Metrics</h2>",
        f'<div class="scroll"><table class="metrics-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>",
        "<h2>Equity, normalised to 1 at the start</h2>",
        normalised_curves_chart(curves),
    ]
    if intervals:
        interval_rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{escape(cell)}</td>"
                for cell in (
                    str(row["run"]),
                    f"{float(str(row['difference'])):.3f}",
                    f"[{float(str(row['low'])):.3f}, {float(str(row['high'])):.3f}]",
                    "yes" if row["excludes_zero"] else "no",
                )
            )
            + "</tr>"
            for row in intervals
        )
        sections += [
            f"<h2>Sharpe difference against {escape(labels[0])}</h2>",
            '<table class="intervals"><thead><tr><th>run</th><th>Sharpe difference</th>'
            "<th>confidence interval</th><th>excludes 0</th></tr></thead>"
            f"<tbody>{interval_rows}</tbody></table>",
            f'<p class="note">{escape(method)}</p>',
        ]
    return write_page(path, title, sections)
