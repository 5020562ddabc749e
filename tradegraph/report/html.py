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

from tradegraph.contracts import OrderFilled, OrderSide
from tradegraph.report.performance import (
    PerformanceMetrics,
    RoundTrip,
    drawdown_series,
    metric_rows,
    round_trips_from_fills,
)

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
.failed { border: 2px solid #dc2626; background: #fef2f2; padding: 8px 16px; margin: 16px 0;
          max-width: 900px; }
.failed h2 { color: #b91c1c; margin-top: 4px; }
.failed li { font-size: 13px; overflow-wrap: anywhere; }
.scroll { max-width: 100%; overflow-x: auto; }
td.wrap { text-align: left; overflow-wrap: anywhere; max-width: 520px; }
.note { color: #616e7c; font-size: 12px; }
.pos { color: #047857; }
.neg { color: #b91c1c; }
"""

MAX_TRADE_ROWS = 200
"""The trade list shows at most this many round trips (the latest ones)."""

MAX_MARKERS = 600
"""A price chart marks at most this many fills (the latest ones)."""

_HEADERS = {
    "realized_pnl": "Realized PnL",
    "unrealized_pnl": "Unrealized PnL",
    "net_pnl": "Net PnL",
    "fees": "Fees",
    "funding": "Funding",
    "liquidations": "Liquidations",
    "fills": "Fills",
    "intents": "Orders asked",
    "allocated_capital": "Allocated capital",
    "shortfall_bps": "Shortfall (bps)",
    "vs_vwap_bps": "vs VWAP (bps)",
}

_COUNT_COLUMNS = frozenset(
    {"fills", "intents", "orders", "child_orders", "rejections", "count", "liquidations"}
)


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


def format_run_outcome(summary: Mapping[str, object], top: int = 5) -> str:
    """The rejection reasons (at most ``top``, with counts) and, for a failed run, a loud
    ``RUN FAILED`` block with every reason; empty for a clean run without rejections."""
    lines: list[str] = []
    reasons = summary.get("rejection_reasons") or []
    assert isinstance(reasons, list)
    if reasons:
        total = sum(int(r["count"]) for r in reasons)
        lines.append(f"rejections by reason ({total:,} in all):")
        width = max(len(f"{int(r['count']):,}") for r in reasons[:top])
        for r in reasons[:top]:
            lines.append(f"  {int(r['count']):>{width},}  {r['source']:5s}  {r['reason']}")
        if len(reasons) > top:
            rest = sum(int(r["count"]) for r in reasons[top:])
            lines.append(f"  {rest:>{width},}  other reasons ({len(reasons) - top})")
    closed = summary.get("kill_switch_closed") or []
    assert isinstance(closed, list)
    if closed:
        lines.append("closed by the kill switch (flatten):")
        lines.extend(
            f"  {r['strategy_id']}  {r['side']} {r['quantity']:g} {r['instrument_id']} "
            f"at {r['avg_price']:,.2f}"
            for r in closed
        )
    failures = summary.get("failure_reasons") or []
    assert isinstance(failures, list)
    if failures:
        bar = "!" * 72
        lines.extend([bar, "RUN FAILED: these results do not show the strategy as configured"])
        lines.extend(f"  - {reason}" for reason in failures)
        lines.append(bar)
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
    description: Sequence[tuple[str, str]] = (),
    prices: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
    fills: Sequence[OrderFilled] = (),
    outcome: Mapping[str, object] | None = None,
    currency: str = "",
) -> Path:
    """Write one self-contained HTML report and return its path.

    Args:
        path: Where to write; parent directories are created.
        title: Heading of the report.
        metrics: Summary from :func:`tradegraph.report.performance.compute_metrics`.
        ts_ns: Equity-curve timestamps (int64 nanoseconds, UTC).
        equity: Equity at those timestamps.
        per_strategy: Optional table: strategy id -> column name -> value.
        config_summary: Optional key/value pairs describing the run's configuration.
        allocation: Optional capital over time per strategy: strategy id ->
            ``(ts_ns, capital)`` of each allocation (drawn as steps to the end of the run).
        execution_reports: Optional rows (column -> value) of the parent orders' reports.
        description: Label and text pairs shown under the title (how a session ran and ended).
        prices: Bar closes per instrument, ``(ts_ns, close)``, drawn with the fills on them.
        fills: The run's fills: entries and exits on the price charts, and the trade list.
        outcome: The run's summary: its ``status``, ``failure_reasons`` and
            ``rejection_reasons`` are shown at the top.
        currency: Unit of equity and PnL (the portfolio's currency).
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
    ]
    if description:
        sections.append(_config_table(dict(description), css_class="session-table"))
    if outcome:
        sections.append(_outcome_section(outcome))
    sections += [
        "<h2>Performance</h2>",
        _metrics_tables(metrics),
    ]
    trips = round_trips_from_fills(fills)
    for instrument_id, (price_ts, close) in (prices or {}).items():
        sections += [
            f"<h2>Price: {escape(instrument_id)}</h2>",
            _price_chart(instrument_id, price_ts, close, fills, currency),
        ]
    sections += [
        f"<h2>Equity ({escape(currency)})</h2>" if currency else "<h2>Equity</h2>",
        _svg_line_chart(
            equity_ts, equity_points, label="equity", color="#2563eb", area=False, unit=currency
        ),
        "<h2>Drawdown (%)</h2>",
        _svg_line_chart(
            drawdown_ts, drawdown_points, label="drawdown", color="#dc2626", area=True, unit="%"
        ),
        "<h2>Monthly returns</h2>",
        _monthly_returns_table(ts, values, metrics.starting_cash),
    ]
    if trips:
        sections.append(_strategy_pnl_charts(trips, currency, int(ts[-1]) if ts.size else 0))
    if per_strategy:
        sections += ["<h2>Strategies</h2>", _strategy_table(per_strategy)]
    if trips:
        sections += [_trades_section(trips)]
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

    return write_page(path, title, sections)


def write_page(path: str | Path, title: str, sections: Sequence[str]) -> Path:
    """Write ``sections`` (HTML fragments) as one self-contained page with the report CSS."""
    document = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style></head>",
            "<body>",
            *sections,
            "</body></html>",
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


def _header(name: str) -> str:
    """A readable column header for a field name (``realized_pnl`` -> ``Realized PnL``)."""
    if name in _HEADERS:
        return _HEADERS[name]
    words = name.replace("_", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:].replace("pnl", "PnL")


def _format_column(name: str, value: object) -> str:
    """A cell: counts as integers, other numbers with two decimals, text as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if name in _COUNT_COLUMNS and float(value).is_integer():
        return f"{int(value):,}"
    return _format_cell(value)


def _outcome_section(outcome: Mapping[str, object]) -> str:
    """A loud box for a failed run, and the rejection reasons with their counts."""
    parts = []
    failures = outcome.get("failure_reasons") or []
    assert isinstance(failures, list)
    if outcome.get("status") == "failed":
        items = "".join(f"<li>{escape(str(reason))}</li>" for reason in failures)
        parts.append(
            '<div class="failed" id="run-failed"><h2>Run failed</h2>'
            "<p>These results do not show the strategy as configured:</p>"
            f"<ul>{items}</ul></div>"
        )
    closed = outcome.get("kill_switch_closed") or []
    assert isinstance(closed, list)
    if closed:
        parts += [
            "<h2>Closed by the kill switch (flatten)</h2>",
            _rows_table(closed, css_class="kill-switch-closed"),
        ]
    reasons = outcome.get("rejection_reasons") or []
    assert isinstance(reasons, list)
    if reasons:
        parts += ["<h2>Rejections by reason</h2>", _rows_table(reasons, css_class="rejections")]
    funding = outcome.get("funding") or 0.0
    liquidations = outcome.get("liquidations") or 0
    assert isinstance(funding, int | float)
    assert isinstance(liquidations, int)
    if funding or liquidations:
        margin = {
            "Funding (net received)": f"{funding:,.2f}",
            "Liquidations": f"{liquidations:,d}",
        }
        parts += ['<h2 id="margin">Margin</h2>', _config_table(margin, css_class="margin-table")]
    return "\n".join(parts)


def _price_chart(
    instrument_id: str,
    ts_ns: npt.ArrayLike,
    close: npt.ArrayLike,
    fills: Sequence[OrderFilled],
    currency: str,
) -> str:
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(close, dtype=np.float64)
    points_ts, points = downsample_min_max(ts, values)
    mine = [f for f in fills if f.instrument_id == instrument_id][-MAX_MARKERS:]
    markers = [(f.ts_event_ns, f.last_px, f.side is OrderSide.BUY) for f in mine]
    symbol = instrument_id.split(".")[0]
    in_currency = bool(currency) and symbol.endswith(currency)
    chart = _svg_line_chart(
        points_ts,
        points,
        label=f"price-{instrument_id}",
        color="#334155",
        area=False,
        unit=f"price ({currency})" if in_currency else "price",
        markers=markers,
    )
    legend = (
        '<div class="note"><span class="pos">&#9650; buy</span> &nbsp; '
        f'<span class="neg">&#9660; sell</span> &nbsp; fills of {escape(symbol)}'
        + (f" (the latest {MAX_MARKERS})" if len(mine) == MAX_MARKERS else "")
        + "</div>"
    )
    return chart + legend


def _monthly_returns_table(
    ts: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], starting_cash: float
) -> str:
    """Return of each calendar month (UTC) from the equity at its start to its end."""
    if ts.size == 0:
        return '<p class="note">no equity data</p>'
    rows = []
    previous = starting_cash
    months = [(_utc(int(t)).year, _utc(int(t)).month) for t in ts]
    ends = [i for i in range(len(months)) if i == len(months) - 1 or months[i + 1] != months[i]]
    for i in ends:
        year, month = months[i]
        ret = float(equity[i]) / previous - 1.0 if previous else 0.0
        css = "pos" if ret > 0 else "neg" if ret < 0 else ""
        rows.append(
            f'<tr><td>{year}-{month:02d}</td><td class="{css}">{ret:+.2%}</td>'
            f"<td>{float(equity[i]):,.2f}</td></tr>"
        )
        previous = float(equity[i])
    return (
        '<table class="monthly-returns"><thead><tr><th>Month (UTC)</th><th>Return</th>'
        f"<th>Equity at month end</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _strategy_pnl_charts(trips: Sequence[RoundTrip], currency: str, end_ns: int) -> str:
    """Per strategy: cumulative net PnL of its closed trades over time."""
    by_strategy: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        by_strategy.setdefault(trip.strategy_id, []).append(trip)
    parts = [
        f"<h2>Per-strategy equity: cumulative net PnL of closed trades"
        f"{f' ({escape(currency)})' if currency else ''}</h2>"
    ]
    for strategy_id, mine in by_strategy.items():
        step_ts = [mine[0].entry_ts_ns]
        step_values = [0.0]
        total = 0.0
        for trip in mine:
            total += trip.realized_pnl - trip.fees
            step_ts.append(trip.exit_ts_ns)
            step_values.append(total)
        xs, ys = _steps(step_ts, step_values, end_ns)
        parts += [
            f"<h3>{escape(strategy_id)}</h3>",
            _svg_line_chart(
                xs,
                ys,
                label=f"strategy-pnl-{strategy_id}",
                color="#7c3aed",
                area=False,
                unit=currency,
            ),
        ]
    return "\n".join(parts)


def _trades_section(trips: Sequence[RoundTrip]) -> str:
    shown = trips[-MAX_TRADE_ROWS:]
    note = (
        f'<p class="note">the latest {len(shown):,} of {len(trips):,} round trips</p>'
        if len(shown) < len(trips)
        else f'<p class="note">{len(trips):,} round trips</p>'
    )
    body = []
    for trip in shown:
        net = trip.realized_pnl - trip.fees
        css = "pos" if net > 0 else "neg" if net < 0 else ""
        body.append(
            "<tr>"
            f"<td>{escape(trip.strategy_id)}</td><td>{escape(trip.instrument_id)}</td>"
            f"<td>{'long' if trip.direction > 0 else 'short'}</td>"
            f"<td>{_utc(trip.entry_ts_ns).strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{_utc(trip.exit_ts_ns).strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{trip.max_quantity:,.8g}</td>"
            f"<td>{trip.realized_pnl:,.2f}</td><td>{trip.fees:,.2f}</td>"
            f'<td class="{css}">{net:,.2f}</td>'
            "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Strategy",
            "Instrument",
            "Side",
            "Entry (UTC)",
            "Exit (UTC)",
            "Quantity",
            "Realized PnL",
            "Fees",
            "Net PnL",
        )
    )
    return (
        f"<h2>Trades</h2>{note}"
        f'<div class="scroll"><table class="trades"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _strategy_table(per_strategy: Mapping[str, Mapping[str, float]]) -> str:
    columns: list[str] = []
    for row in per_strategy.values():
        columns.extend(name for name in row if name not in columns)
    head = "".join(f"<th>{escape(_header(name))}</th>" for name in ["strategy", *columns])
    body = []
    for strategy_id, row in per_strategy.items():
        cells = "".join(
            f"<td>{escape(_format_column(name, row[name]) if name in row else '')}</td>"
            for name in columns
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


def _rows_table(rows: Sequence[Mapping[str, object]], css_class: str = "rows-table") -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(name for name in row if name not in columns)
    head = "".join(f"<th>{escape(_header(name))}</th>" for name in columns)
    body = []
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name, "")
            text = _format_column(name, value)
            wrap = ' class="wrap"' if isinstance(value, str) and len(value) > 40 else ""
            cells.append(f"<td{wrap}>{escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table class="{css_class}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _config_table(config_summary: Mapping[str, object], css_class: str = "config-table") -> str:
    rows = []
    for key, value in config_summary.items():
        text = str(value)
        wrap = ' class="wrap"' if len(text) > 40 else ""
        rows.append(f"<tr><td>{escape(str(key))}</td><td{wrap}>{escape(text)}</td></tr>")
    return f'<table class="{css_class}"><tbody>{"".join(rows)}</tbody></table>'


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
    unit: str = "",
    markers: Sequence[tuple[int, float, bool]] = (),
) -> str:
    """A line chart; ``unit`` labels the value axis, ``markers`` are ``(ts_ns, value, is_buy)``
    drawn as up (buy) and down (sell) triangles."""
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
    if markers:
        low = min(low, min(m[1] for m in markers))
        high = max(high, max(m[1] for m in markers))
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
    if unit:
        parts.append(f'<text class="unit" x="4" y="11" text-anchor="start">{escape(unit)}</text>')
    time_format = _time_format(t_span)
    tick_count = 6 if t1 > t0 else 1
    for i in range(tick_count):
        t = t0 + (t1 - t0) * i / max(tick_count - 1, 1)
        x = x_of(t)
        # The outer labels hang inwards so that none is cut at the chart's edge.
        anchor = (
            "start" if i == 0 and tick_count > 1 else "end" if i == tick_count - 1 else "middle"
        )
        if tick_count == 1:
            anchor = "middle"
        parts.append(
            f'<line x1="{x:.1f}" y1="{plot_bottom}" x2="{x:.1f}" y2="{plot_bottom + 4}" '
            f'stroke="#9aa5b1"/>'
            f'<text x="{x:.1f}" y="{plot_bottom + 18}" text-anchor="{anchor}">'
            f"{escape(_utc(int(t)).strftime(time_format))}</text>"
        )
    parts.append(
        f'<text class="axis-unit" x="{plot_right}" y="{height - 4}" text-anchor="end">'
        "time (UTC)</text>"
    )
    if area:
        zero_y = y_of(0.0)
        parts.append(
            f'<polygon points="{xs[0]:.1f},{zero_y:.1f} {points} {xs[-1]:.1f},{zero_y:.1f}" '
            f'fill="{color}" fill-opacity="0.25" stroke="none"/>'
        )
    parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.2"/>')
    for m_ts, m_value, is_buy in markers:
        x, y = x_of(m_ts), y_of(m_value)
        if is_buy:
            shape = f"{x:.1f},{y + 1:.1f} {x - 4:.1f},{y + 8:.1f} {x + 4:.1f},{y + 8:.1f}"
            parts.append(f'<polygon class="marker-buy" points="{shape}" fill="#059669"/>')
        else:
            shape = f"{x:.1f},{y - 1:.1f} {x - 4:.1f},{y - 8:.1f} {x + 4:.1f},{y - 8:.1f}"
            parts.append(f'<polygon class="marker-sell" points="{shape}" fill="#dc2626"/>')
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
    # Six ticks over less than about a week would repeat dates: show the hour too.
    if span_ns >= 6 * 86_400 * 1_000_000_000:
        return "%Y-%m-%d"
    if span_ns >= 3_600 * 1_000_000_000:
        return "%m-%d %H:%M"
    return "%H:%M:%S"


def _utc(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
