"""A self-contained HTML report: metrics, equity and drawdown charts, per-strategy table.

The file embeds its CSS and draws its charts as inline SVG, so it opens on a machine without
network access and can be mailed or archived as one file. Long series are reduced to at most
:data:`MAX_CHART_POINTS` points, keeping each bucket's minimum and maximum so spikes and the
deepest drawdown stay visible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tradegraph.report.metrics import PerformanceMetrics, drawdown_series, metric_rows

MAX_CHART_POINTS = 2_000

_CHART_WIDTH = 960
_CHART_HEIGHT = 280
_MARGIN_LEFT = 84
_MARGIN_RIGHT = 20
_MARGIN_TOP = 16
_MARGIN_BOTTOM = 40

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #1f2933; background: #ffffff; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.subtitle { color: #616e7c; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 4px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f7fa; }
.metrics { display: flex; gap: 32px; flex-wrap: wrap; }
svg { display: block; }
svg text { font-size: 11px; fill: #52606d; }
"""


def format_metrics_table(metrics: PerformanceMetrics) -> str:
    """The metrics as an aligned two-column plain-text table for a terminal."""
    rows = metric_rows(metrics)
    label_width = max(len(label) for label, _ in rows)
    value_width = max(len(value) for _, value in rows)
    rule = "-" * (label_width + value_width + 3)
    lines = [rule]
    lines.extend(f"{label:<{label_width}}   {value:>{value_width}}" for label, value in rows)
    lines.append(rule)
    return "\n".join(lines)


def downsample_min_max(
    ts_ns: npt.ArrayLike, values: npt.ArrayLike, max_points: int = MAX_CHART_POINTS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Reduce a series to at most ``max_points`` points for plotting.

    The series is cut into equal buckets; each contributes its minimum and its maximum, in time
    order, and the first and last points are always kept. The global minimum and maximum
    therefore survive.

    Raises:
        ValueError: The arrays differ in length, or ``max_points`` is below 4.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    series = np.asarray(values, dtype=np.float64)
    if ts.shape != series.shape:
        raise ValueError(f"ts_ns and values differ in shape: {ts.shape} vs {series.shape}")
    if max_points < 4:
        raise ValueError(f"max_points must be >= 4, was {max_points}")
    n = series.size
    if n <= max_points:
        return ts.copy(), series.copy()
    buckets = (max_points - 2) // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    for start, stop in itertools.pairwise(edges.tolist()):
        if stop <= start:
            continue
        chunk = series[start:stop]
        keep.append(int(start + np.argmin(chunk)))
        keep.append(int(start + np.argmax(chunk)))
    index = np.unique(np.asarray(keep, dtype=np.int64))
    return ts[index], series[index]


def write_html_report(
    path: Path,
    *,
    title: str,
    metrics: PerformanceMetrics,
    ts_ns: npt.ArrayLike,
    equity: npt.ArrayLike,
    per_strategy: Mapping[str, Mapping[str, float]] | None = None,
    config_summary: Mapping[str, object] | None = None,
    allocation: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    execution_reports: Sequence[Mapping[str, object]] | None = None,
) -> Path:
    """Write one self-contained HTML report and return its path.

    Args:
        path: Where to write; parent directories are created.
        title: Heading of the report.
        metrics: Summary from :func:`tradegraph.report.metrics.compute_metrics`.
        ts_ns: Equity-curve timestamps (int64 nanoseconds, UTC).
        equity: Equity at those timestamps.
        per_strategy: Optional table: strategy id -> column name -> value.
        config_summary: Optional key/value pairs describing the run's configuration.
        allocation: Optional capital over time per strategy: strategy id ->
            ``(ts_ns, capital)`` of each allocation (drawn as steps to the end of the run).
        execution_reports: Optional rows (column -> value) of the parent orders' reports.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if ts.shape != values.shape:
        raise ValueError(f"ts_ns and equity differ in shape: {ts.shape} vs {values.shape}")
    drawdown_pct = -100.0 * drawdown_series(values, initial_peak=metrics.starting_cash)

    equity_ts, equity_points = downsample_min_max(ts, values)
    drawdown_ts, drawdown_points = downsample_min_max(ts, drawdown_pct)

    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="subtitle">{escape(_span_text(ts))}</div>',
        "<h2>Performance</h2>",
        _metrics_tables(metrics),
        "<h2>Equity</h2>",
        _svg_line_chart(equity_ts, equity_points, label="equity", color="#2563eb", area=False),
        "<h2>Drawdown (%)</h2>",
        _svg_line_chart(drawdown_ts, drawdown_points, label="drawdown", color="#dc2626", area=True),
    ]
    if per_strategy:
        sections += ["<h2>Strategies</h2>", _strategy_table(per_strategy)]
    if allocation:
        end_ns = int(ts[-1]) if ts.size else 0
        sections.append("<h2>Allocated capital over time</h2>")
        for strategy_id, (alloc_ts, capital) in allocation.items():
            step_ts, step_values = _steps(alloc_ts, capital, end_ns)
            sections += [
                f"<h3>{escape(strategy_id)}</h3>",
                _svg_line_chart(
                    step_ts,
                    step_values,
                    label=f"allocation-{strategy_id}",
                    color="#059669",
                    area=False,
                ),
            ]
    if execution_reports:
        sections += ["<h2>Execution algorithms</h2>", _rows_table(execution_reports)]
    if config_summary:
        sections += ["<h2>Configuration</h2>", _config_table(config_summary)]

    document = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *sections,
            "</body>",
            "</html>",
            "",
        ]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


def _span_text(ts: npt.NDArray[np.int64]) -> str:
    if ts.size == 0:
        return "no equity data"
    first = _utc(int(ts[0])).strftime("%Y-%m-%d %H:%M")
    last = _utc(int(ts[-1])).strftime("%Y-%m-%d %H:%M")
    return f"{first} to {last} UTC, {ts.size:,} points"


def _metrics_tables(metrics: PerformanceMetrics) -> str:
    rows = metric_rows(metrics)
    half = (len(rows) + 1) // 2
    tables = []
    for chunk in (rows[:half], rows[half:]):
        body = "".join(
            f"<tr><td>{escape(label)}</td><td>{escape(value)}</td></tr>" for label, value in chunk
        )
        tables.append(f'<table class="metric-table"><tbody>{body}</tbody></table>')
    return f'<div class="metrics">{"".join(tables)}</div>'


def _strategy_table(per_strategy: Mapping[str, Mapping[str, float]]) -> str:
    columns: list[str] = []
    for row in per_strategy.values():
        columns.extend(name for name in row if name not in columns)
    head = "".join(f"<th>{escape(name)}</th>" for name in ["strategy", *columns])
    body = []
    for strategy_id, row in per_strategy.items():
        cells = "".join(
            f"<td>{escape(_format_cell(row[name]) if name in row else '')}</td>" for name in columns
        )
        body.append(f"<tr><td>{escape(strategy_id)}</td>{cells}</tr>")
    return (
        f'<table class="strategy-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _steps(
    ts_ns: Sequence[int], values: Sequence[float], end_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A piecewise-constant series as points: each value holds until the next one."""
    out_ts: list[int] = []
    out_values: list[float] = []
    for i, (t, v) in enumerate(zip(ts_ns, values, strict=True)):
        if i > 0:
            out_ts.append(int(t))
            out_values.append(out_values[-1])
        out_ts.append(int(t))
        out_values.append(float(v))
    if out_ts and end_ns > out_ts[-1]:
        out_ts.append(end_ns)
        out_values.append(out_values[-1])
    return np.asarray(out_ts, dtype=np.int64), np.asarray(out_values, dtype=np.float64)


def _rows_table(rows: Sequence[Mapping[str, object]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(name for name in row if name not in columns)
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    body = []
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name, "")
            text = _format_cell(value) if isinstance(value, int | float) else str(value)
            cells.append(f"<td>{escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="rows-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _config_table(config_summary: Mapping[str, object]) -> str:
    body = "".join(
        f"<tr><td>{escape(str(key))}</td><td>{escape(str(value))}</td></tr>"
        for key, value in config_summary.items()
    )
    return f'<table class="config-table"><tbody>{body}</tbody></table>'


def _format_cell(value: float) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def _svg_line_chart(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    *,
    label: str,
    color: str,
    area: bool,
) -> str:
    width, height = _CHART_WIDTH, _CHART_HEIGHT
    open_tag = (
        f'<svg class="chart chart-{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label} chart">'
    )
    if values.size == 0:
        return (
            f'{open_tag}<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            f"no data</text></svg>"
        )
    plot_left, plot_right = _MARGIN_LEFT, width - _MARGIN_RIGHT
    plot_top, plot_bottom = _MARGIN_TOP, height - _MARGIN_BOTTOM

    low, high = float(values.min()), float(values.max())
    if area:
        low, high = min(low, 0.0), max(high, 0.0)
    # A flat series still needs a visible band around its level.
    pad = max(abs(high) * 0.01, 1.0) if high - low <= 0.0 else (high - low) * 0.05
    low, high = low - pad, high + pad
    if area and high > 0.0 >= float(values.max()):
        high = 0.0
    t0, t1 = int(ts[0]), int(ts[-1])
    t_span = max(t1 - t0, 1)

    def x_of(t: float) -> float:
        return plot_left + (t - t0) / t_span * (plot_right - plot_left)

    def y_of(v: float) -> float:
        return plot_bottom - (v - low) / (high - low) * (plot_bottom - plot_top)

    xs = plot_left + (ts - t0).astype(np.float64) / t_span * (plot_right - plot_left)
    ys = plot_bottom - (values - low) / (high - low) * (plot_bottom - plot_top)
    if values.size == 1:
        xs = np.array([plot_left, plot_right], dtype=np.float64)
        ys = np.array([ys[0], ys[0]], dtype=np.float64)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))

    parts = [open_tag]
    parts.append(
        f'<rect x="{plot_left}" y="{plot_top}" width="{plot_right - plot_left}" '
        f'height="{plot_bottom - plot_top}" fill="#fbfcfd" stroke="#e4e7eb"/>'
    )
    for tick in _nice_ticks(low, high):
        y = y_of(tick)
        parts.append(
            f'<line x1="{plot_left}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" '
            f'stroke="#e4e7eb"/>'
            f'<text x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_format_axis_value(tick))}</text>"
        )
    time_format = _time_format(t_span)
    tick_count = 6 if t1 > t0 else 1
    for i in range(tick_count):
        t = t0 + (t1 - t0) * i / max(tick_count - 1, 1)
        x = x_of(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{plot_bottom}" x2="{x:.1f}" y2="{plot_bottom + 4}" '
            f'stroke="#9aa5b1"/>'
            f'<text x="{x:.1f}" y="{plot_bottom + 18}" text-anchor="middle">'
            f"{escape(_utc(int(t)).strftime(time_format))}</text>"
        )
    if area:
        zero_y = y_of(0.0)
        parts.append(
            f'<polygon points="{xs[0]:.1f},{zero_y:.1f} {points} {xs[-1]:.1f},{zero_y:.1f}" '
            f'fill="{color}" fill-opacity="0.25" stroke="none"/>'
        )
    parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round-numbered ticks covering ``[low, high]``."""
    raw_step = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = magnitude * 10.0
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if multiple * magnitude >= raw_step:
            step = multiple * magnitude
            break
    first = math.ceil(low / step) * step
    ticks = []
    tick = first
    while tick <= high + step * 1e-9:
        ticks.append(0.0 if abs(tick) < step * 1e-9 else tick)
        tick += step
    return ticks


def _format_axis_value(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.2f}B"
    if magnitude >= 1e6:
        return f"{value / 1e6:.3f}M"
    if magnitude >= 1e3:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _time_format(span_ns: int) -> str:
    if span_ns >= 2 * 86_400 * 1_000_000_000:
        return "%Y-%m-%d"
    if span_ns >= 3_600 * 1_000_000_000:
        return "%m-%d %H:%M"
    return "%H:%M:%S"


def _utc(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
