"""Statistics and the HTML report of a Monte Carlo or stress batch.

Conventions:

- ``return`` of a scenario is ``final_equity / starting_cash - 1``.
- Historical VaR at level ``a`` is the loss at the ``1 - a`` empirical quantile of returns,
  taken as an observed value (numpy's ``lower`` method), reported as a positive number:
  ``VaR = -q``. CVaR (expected shortfall) is minus the mean of every return at or below ``q``.
  With 100 scenarios, VaR 95 % is minus the 5th smallest return and CVaR 95 % minus the mean of
  the 5 smallest.
- Probability of loss counts returns below zero; probability of ruin counts maximum drawdowns
  at or beyond the ruin threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradegraph.report.html import _config_table, _format_axis_value, _nice_ticks, write_page

NS_PER_DAY = 86_400 * 1_000_000_000
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

_WIDTH = 960
_HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 84, 20, 16, 40


def worst_day_return(ts_ns: npt.ArrayLike, equity: npt.ArrayLike, starting_cash: float) -> float:
    """The lowest close-to-close return over UTC days (the first day starts at ``starting_cash``).

    Returns 0 for an empty curve.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return 0.0
    day = ts // NS_PER_DAY
    day_ends = np.append(np.flatnonzero(np.diff(day) != 0), values.size - 1)
    closes = values[day_ends]
    previous = np.concatenate(([starting_cash], closes[:-1]))
    returns = np.where(previous > 0.0, closes / np.where(previous > 0.0, previous, 1.0) - 1.0, 0.0)
    return float(returns.min())


def sample_curve(values: npt.ArrayLike, points: int, empty_value: float) -> list[float]:
    """``points`` values of a curve, evenly spaced by position, first and last included."""
    series = np.asarray(values, dtype=np.float64)
    if series.size == 0:
        return [empty_value] * points
    index = np.round(np.linspace(0, series.size - 1, points)).astype(np.int64)
    picked: list[float] = series[index].tolist()
    return picked


def sample_steps(
    ts_ns: Sequence[int], values: Sequence[float], start_ns: int, end_ns: int, points: int
) -> list[float]:
    """A step series (each value holds until the next) read at ``points`` evenly spaced times
    from ``start_ns`` to ``end_ns``; before its first change it reads its first value."""
    if not values:
        return [math.nan] * points
    times = np.linspace(start_ns, end_ns, points)
    at = np.searchsorted(np.asarray(ts_ns, dtype=np.float64), times, side="right") - 1
    picked: list[float] = np.asarray(values, dtype=np.float64)[np.maximum(at, 0)].tolist()
    return picked


def value_at_risk(returns: npt.ArrayLike, level: float) -> float:
    """Historical VaR at ``level`` (e.g. 0.95) as a positive loss; see the module docstring.

    Raises:
        ValueError: no returns, or ``level`` outside (0, 1).
    """
    r = _returns(returns, level)
    return -float(np.quantile(r, 1.0 - level, method="lower"))


def conditional_value_at_risk(returns: npt.ArrayLike, level: float) -> float:
    """Expected shortfall at ``level``: minus the mean of returns at or below the VaR quantile."""
    r = _returns(returns, level)
    q = float(np.quantile(r, 1.0 - level, method="lower"))
    return -float(r[r <= q].mean())


def _returns(returns: npt.ArrayLike, level: float) -> npt.NDArray[np.float64]:
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no returns: every scenario failed or none ran")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), was {level}")
    return r


def summarize(
    returns: npt.ArrayLike,
    max_drawdowns: npt.ArrayLike,
    kill_switch_trips: npt.ArrayLike,
    ruin_drawdown: float,
    liquidations: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Risk summary of a batch's successful scenarios.

    Args:
        returns: Total return of each scenario.
        max_drawdowns: Maximum drawdown of each scenario (positive fraction).
        kill_switch_trips: Kill-switch trips of each scenario.
        ruin_drawdown: A drawdown at or beyond this fraction counts as ruin.
        liquidations: Positions liquidated in each scenario (none by default);
            ``prob_liquidation`` is the share of scenarios with at least one.
    """
    r = np.asarray(returns, dtype=np.float64)
    liq = (
        np.zeros(r.size, dtype=np.int64)
        if liquidations is None
        else np.asarray(liquidations, dtype=np.int64)
    )
    dd = np.asarray(max_drawdowns, dtype=np.float64)
    trips = np.asarray(kill_switch_trips, dtype=np.int64)
    if r.size == 0:
        return {"scenarios_ok": 0}
    return {
        "scenarios_ok": int(r.size),
        "mean_return": float(r.mean()),
        "median_return": float(np.median(r)),
        "std_return": float(r.std(ddof=1)) if r.size > 1 else 0.0,
        "best_return": float(r.max()),
        "worst_return": float(r.min()),
        "var_95": value_at_risk(r, 0.95),
        "cvar_95": conditional_value_at_risk(r, 0.95),
        "var_99": value_at_risk(r, 0.99),
        "cvar_99": conditional_value_at_risk(r, 0.99),
        "prob_loss": float((r < 0.0).mean()),
        "prob_ruin": float((dd >= ruin_drawdown).mean()),
        "ruin_drawdown": ruin_drawdown,
        "drawdown": {
            "mean": float(dd.mean()),
            "p50": float(np.quantile(dd, 0.5)),
            "p75": float(np.quantile(dd, 0.75)),
            "p95": float(np.quantile(dd, 0.95)),
            "p99": float(np.quantile(dd, 0.99)),
            "max": float(dd.max()),
        },
        "kill_switch_trips": int(trips.sum()),
        "scenarios_with_kill_switch": int((trips > 0).sum()),
        "prob_liquidation": float((liq > 0).mean()),
        "liquidations": int(liq.sum()),
        "scenarios_with_liquidation": int((liq > 0).sum()),
    }


def strategy_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per strategy, across scenarios: the distribution of its net pnl (mean, quantiles,
    worst, best, probability of a loss), mean fees, fills and orders, and quantiles of its
    final allocated capital when it had some.

    Args:
        rows: One mapping per (scenario, strategy) with ``strategy_id``, ``net_pnl``, ``fees``,
            ``fills``, ``orders`` and ``final_capital`` (``None`` without allocation).
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["strategy_id"]), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for sid, group in grouped.items():
        pnl = np.asarray([r["net_pnl"] for r in group], dtype=np.float64)
        q = np.quantile(pnl, QUANTILES)
        stats: dict[str, Any] = {
            "scenarios": int(pnl.size),
            "mean_pnl": float(pnl.mean()),
            **{f"pnl_{_qname(level)}": float(v) for level, v in zip(QUANTILES, q, strict=True)},
            "worst_pnl": float(pnl.min()),
            "best_pnl": float(pnl.max()),
            "prob_loss": float((pnl < 0.0).mean()),
            "mean_fees": float(np.mean([r["fees"] for r in group])),
            "mean_fills": float(np.mean([r["fills"] for r in group])),
            "mean_orders": float(np.mean([r["orders"] for r in group])),
        }
        capital = [r["final_capital"] for r in group if r.get("final_capital") is not None]
        if capital:
            levels = np.quantile(np.asarray(capital, dtype=np.float64), QUANTILES)
            stats.update(
                {
                    f"final_capital_{_qname(level)}": float(v)
                    for level, v in zip(QUANTILES, levels, strict=True)
                }
            )
        out[sid] = stats
    return out


def equity_quantiles(
    samples: Sequence[Sequence[float]], quantiles: Sequence[float] = QUANTILES
) -> dict[str, list[float]]:
    """Quantiles across paths at each sample point: ``{"q05": [...], "q50": [...], ...}``."""
    if not samples:
        return {_qname(q): [] for q in quantiles}
    matrix = np.asarray(samples, dtype=np.float64)
    values = np.quantile(matrix, list(quantiles), axis=0)
    return {_qname(q): row.tolist() for q, row in zip(quantiles, values, strict=True)}


def _qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


def write_montecarlo_report(
    path: Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    quantiles: Mapping[str, Sequence[float]],
    returns: Sequence[float],
    max_drawdowns: Sequence[float],
    failed: Sequence[Mapping[str, Any]] = (),
    config_summary: Mapping[str, object] | None = None,
    per_strategy: Mapping[str, Mapping[str, Any]] | None = None,
    allocation_quantiles: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    scenarios: Sequence[Mapping[str, Any]] | None = None,
    history: Mapping[str, Any] | None = None,
    currency: str = "",
) -> Path:
    """One self-contained HTML page: risk summary, fan chart of equity, histograms; with
    ``per_strategy`` (see :func:`strategy_summary`) a table of each strategy's pnl across
    scenarios, and with ``allocation_quantiles`` a fan chart of each strategy's allocated
    capital over the run.

    With ``scenarios`` (a stress batch: one row per named scenario, the first the unstressed
    baseline, each with ``overlays``, ``applied``, ``return``, ``max_drawdown``, ``fills``,
    ``risk_rejections``, ``venue_rejections`` and ``kill_switch_trips``) the page is a table of
    the scenarios next to the baseline instead of bands and histograms across them. ``history``
    (``return`` and ``max_drawdown`` of the strategy on the real history) is marked on the
    histograms; ``summary["calibration"]`` is shown as the calibrated model's parameters.
    """
    if scenarios is not None:
        return write_page(
            path,
            title,
            [
                f"<h1>{escape(title)}</h1>",
                '<div class="subtitle">each named scenario on the real history, next to the '
                "unstressed baseline</div>",
                "<h2>Scenarios</h2>",
                _scenario_table(scenarios),
                *(
                    ["<h2>Configuration</h2>", _config_table(config_summary)]
                    if config_summary
                    else []
                ),
            ],
        )
    rows = [
        (
            "Scenarios (ok / total)",
            f"{summary.get('scenarios_ok', 0)} / {summary.get('scenarios', 0)}",
        ),
    ]
    for key, label in (
        ("mean_return", "Mean return"),
        ("median_return", "Median return"),
        ("worst_return", "Worst return"),
        ("var_95", "VaR 95 %"),
        ("cvar_95", "CVaR 95 %"),
        ("var_99", "VaR 99 %"),
        ("cvar_99", "CVaR 99 %"),
        ("prob_loss", "Probability of loss"),
        ("prob_ruin", "Probability of ruin"),
        ("prob_liquidation", "Probability of liquidation"),
    ):
        if key in summary:
            rows.append((label, f"{summary[key] * 100:.2f}%"))
    drawdown = summary.get("drawdown")
    if isinstance(drawdown, Mapping):
        for key in ("p50", "p95", "max"):
            rows.append((f"Max drawdown {key}", f"{drawdown[key] * 100:.2f}%"))
    if "kill_switch_trips" in summary:
        rows.append(("Kill-switch trips", str(summary["kill_switch_trips"])))
    if "liquidations" in summary:
        rows.append(("Liquidations", str(summary["liquidations"])))
    if "scenarios_run_failed" in summary:
        rows.append(("Runs failed (scenarios)", str(summary["scenarios_run_failed"])))
        rows.append(
            ("Strategy stopped (scenarios)", str(summary["scenarios_with_stopped_strategy"]))
        )
    body = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in rows)
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="subtitle">results digest {escape(str(summary.get("results_digest", "")))}</div>',
        "<h2>Risk</h2>",
        f'<table class="summary-table"><tbody>{body}</tbody></table>',
    ]
    calibration = summary.get("calibration") or []
    if calibration:
        sections += ["<h2>Calibrated model</h2>", _calibration_table(calibration)]
    if history:
        sections.append(
            '<p class="note" id="history-result">The strategy on the real history: return '
            f"{history['return'] * 100:.2f} %, maximum drawdown "
            f"{history['max_drawdown'] * 100:.2f} % over {int(history['bars']):,} bars "
            "(marked in the histograms).</p>"
        )
    sections += [
        "<h2>Equity across scenarios (5-95 % and 25-75 % bands, median)</h2>",
        fan_chart_svg(quantiles, unit=currency),
        "<h2>Returns (%)</h2>",
        histogram_svg(
            [100.0 * r for r in returns],
            label="returns",
            color="#2563eb",
            unit="%",
            mark=None if not history else 100.0 * history["return"],
        ),
        "<h2>Maximum drawdown (%)</h2>",
        histogram_svg(
            [100.0 * d for d in max_drawdowns],
            label="drawdowns",
            color="#dc2626",
            unit="%",
            mark=None if not history else 100.0 * history["max_drawdown"],
        ),
    ]
    if per_strategy:
        sections += [
            "<h2>Strategies: net pnl across scenarios</h2>",
            _strategy_table(per_strategy),
        ]
    if allocation_quantiles:
        sections.append(
            "<h2>Allocated capital over the run (5-95 % and 25-75 % bands, median)</h2>"
        )
        for strategy_id, bands in allocation_quantiles.items():
            sections += [
                f"<h3>{escape(strategy_id)}</h3>",
                fan_chart_svg(bands, label=f"allocation-{strategy_id}"),
            ]
    if failed:
        cells = "".join(
            f"<tr><td>{escape(str(f.get('index')))}</td><td>{escape(str(f.get('error')))}</td></tr>"
            for f in failed
        )
        sections += [
            "<h2>Failed scenarios</h2>",
            f'<table class="failed-table"><thead><tr><th>index</th><th>error</th></tr></thead>'
            f"<tbody>{cells}</tbody></table>",
        ]
    if config_summary:
        sections += ["<h2>Configuration</h2>", _config_table(config_summary)]
    return write_page(path, title, sections)


def _scenario_table(scenarios: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Scenario",
            "Return",
            "vs baseline",
            "Max drawdown",
            "Fills",
            "Risk rejections",
            "Venue rejections",
            "Kill-switch trips",
            "Liquidations",
            "Overlays applied",
        )
    )
    baseline = next((r for r in scenarios if r.get("overlays") == "none"), None)
    body = []
    for row in scenarios:
        name = escape(str(row.get("overlays")))
        if row.get("status", "ok") != "ok":
            body.append(
                f'<tr class="failed-scenario"><td>{name}</td>'
                f'<td class="wrap" colspan="9">failed: {escape(str(row.get("error")))}</td></tr>'
            )
            continue
        ret = float(row["return"])
        delta = (
            ""
            if baseline is None or row is baseline or baseline.get("status", "ok") != "ok"
            else f"{(ret - float(baseline['return'])) * 100:+.2f} pp"
        )
        label = f"{name} (baseline)" if row is baseline else name
        body.append(
            "<tr>"
            f"<td>{label}</td><td>{ret * 100:.2f}%</td><td>{delta}</td>"
            f"<td>{float(row['max_drawdown']) * 100:.2f}%</td>"
            f"<td>{int(row['fills']):,}</td><td>{int(row['risk_rejections']):,}</td>"
            f"<td>{int(row['venue_rejections']):,}</td><td>{int(row['kill_switch_trips']):,}</td>"
            f"<td>{int(row.get('liquidations') or 0):,}</td>"
            f'<td class="wrap">{escape(str(row.get("applied") or "none"))}</td>'
            "</tr>"
        )
    return (
        f'<div class="scroll"><table class="scenario-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _calibration_table(calibration: Sequence[Mapping[str, Any]]) -> str:
    names: list[str] = []
    for params in calibration:
        names.extend(k for k in params if k not in names)
    head = "".join(f"<th>{escape(n)}</th>" for n in ["dataset", *names])
    body = []
    for i, params in enumerate(calibration):
        cells = "".join(
            f"<td>{escape(_format_param(params[n]) if n in params else '')}</td>" for n in names
        )
        body.append(f"<tr><td>{i}</td>{cells}</tr>")
    return (
        '<p class="note">per bar (mu, sigma: of log returns; intensity: jumps per bar)</p>'
        f'<div class="scroll"><table class="calibration-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _format_param(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


_STRATEGY_COLUMNS = (
    ("mean_pnl", "mean"),
    ("pnl_q05", "5 %"),
    ("pnl_q50", "median"),
    ("pnl_q95", "95 %"),
    ("worst_pnl", "worst"),
    ("prob_loss", "P(loss)"),
    ("mean_fees", "mean fees"),
    ("mean_fills", "mean fills"),
    ("final_capital_q50", "median final capital"),
)


def _strategy_table(per_strategy: Mapping[str, Mapping[str, Any]]) -> str:
    columns = [
        (key, label)
        for key, label in _STRATEGY_COLUMNS
        if any(key in stats for stats in per_strategy.values())
    ]
    head = "".join(f"<th>{escape(label)}</th>" for _, label in [("", "strategy"), *columns])
    body = []
    for strategy_id, stats in per_strategy.items():
        cells = []
        for key, _ in columns:
            value = stats.get(key)
            if value is None:
                text = ""
            elif key == "prob_loss":
                text = f"{value * 100:.1f}%"
            else:
                text = f"{value:,.2f}"
            cells.append(f"<td>{escape(text)}</td>")
        body.append(f"<tr><td>{escape(strategy_id)}</td>{''.join(cells)}</tr>")
    return (
        f'<table class="strategy-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _frame(
    label: str, low: float, high: float, unit: str = "", integer: bool = False
) -> tuple[list[str], float, float]:
    """Open an SVG with a plot rectangle and horizontal value ticks (labelled ``unit``; only
    whole numbers when ``integer``); returns parts and the value range after padding."""
    pad = max(abs(high) * 0.01, 1e-9) if high - low <= 0.0 else (high - low) * 0.05
    low, high = low - pad, high + pad
    parts = [
        f'<svg class="chart chart-{label}" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{label} chart">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_WIDTH - _LEFT - _RIGHT}" '
        f'height="{_HEIGHT - _TOP - _BOTTOM}" fill="#fbfcfd" stroke="#e4e7eb"/>',
    ]
    if unit:
        parts.append(f'<text class="unit" x="4" y="11" text-anchor="start">{escape(unit)}</text>')
    for tick in _nice_ticks(low, high):
        if integer and not float(tick).is_integer():
            continue
        y = _y(tick, low, high)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" stroke="#e4e7eb"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_format_axis_value(tick))}</text>"
        )
    return parts, low, high


def _x(fraction: float) -> float:
    return _LEFT + fraction * (_WIDTH - _LEFT - _RIGHT)


def _y(value: float, low: float, high: float) -> float:
    return (_HEIGHT - _BOTTOM) - (value - low) / (high - low) * (_HEIGHT - _TOP - _BOTTOM)


def _no_data(label: str) -> str:
    return (
        f'<svg class="chart chart-{label}" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
        f'aria-label="{label} chart"><text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" '
        f'text-anchor="middle">no data</text></svg>'
    )


def fan_chart_svg(
    quantiles: Mapping[str, Sequence[float]], *, label: str = "fan", unit: str = ""
) -> str:
    """Quantile bands over the path (x: share of the path, 0 to 100 %); equity by default."""
    needed = ("q05", "q25", "q50", "q75", "q95")
    if any(not quantiles.get(k) for k in needed):
        return _no_data(label)
    q = {k: np.asarray(quantiles[k], dtype=np.float64) for k in needed}
    n = q["q50"].size
    parts, low, high = _frame(label, float(q["q05"].min()), float(q["q95"].max()), unit)
    xs = [_x(i / max(n - 1, 1)) for i in range(n)]

    def band(lower: str, upper: str, opacity: float) -> str:
        top = " ".join(f"{x:.1f},{_y(v, low, high):.1f}" for x, v in zip(xs, q[upper], strict=True))
        bottom = " ".join(
            f"{x:.1f},{_y(v, low, high):.1f}"
            for x, v in zip(reversed(xs), q[lower][::-1], strict=True)
        )
        return (
            f'<polygon class="band-{lower}-{upper}" points="{top} {bottom}" fill="#2563eb" '
            f'fill-opacity="{opacity}" stroke="none"/>'
        )

    parts.append(band("q05", "q95", 0.15))
    parts.append(band("q25", "q75", 0.3))
    median = " ".join(f"{x:.1f},{_y(v, low, high):.1f}" for x, v in zip(xs, q["q50"], strict=True))
    parts.append(f'<polyline points="{median}" fill="none" stroke="#1e3a8a" stroke-width="1.5"/>')
    for i in range(5):
        x = _x(i / 4)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{_HEIGHT - _BOTTOM + 18}" text-anchor="{anchor}">'
            f"{i * 25}% of path</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    values: Sequence[float],
    *,
    label: str,
    color: str,
    bins: int = 30,
    unit: str = "",
    mark: float | None = None,
    count_unit: str = "scenarios",
) -> str:
    """A histogram of ``values`` as bars, the value axis in ``count_unit``, the x axis at round
    values in ``unit``; ``mark`` draws a labelled line at one value (the real history's)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return _no_data(label)
    lo, hi = float(data.min()), float(data.max())
    if mark is not None and math.isfinite(mark):
        lo, hi = min(lo, mark), max(hi, mark)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(data, bins=bins, range=(lo, hi))
    parts, low, high = _frame(label, 0.0, float(counts.max()), count_unit, integer=True)
    base = _y(0.0, low, high)
    width = (_WIDTH - _LEFT - _RIGHT) / bins

    def x_of(value: float) -> float:
        return _LEFT + (value - lo) / (hi - lo) * (_WIDTH - _LEFT - _RIGHT)

    for i, count in enumerate(counts.tolist()):
        if count == 0:
            continue
        top = _y(count, low, high)
        parts.append(
            f'<rect class="bin" x="{_LEFT + i * width + 1:.1f}" y="{top:.1f}" '
            f'width="{max(width - 2, 1):.1f}" height="{base - top:.1f}" '
            f'fill="{color}" fill-opacity="0.7"><title>{count}</title></rect>'
        )
    del edges
    suffix = f" {unit}" if unit else ""
    for tick in _nice_ticks(lo, hi):
        x = x_of(tick)
        if x < _LEFT - 0.5 or x > _WIDTH - _RIGHT + 0.5:
            continue
        parts.append(
            f'<line x1="{x:.1f}" y1="{_HEIGHT - _BOTTOM}" x2="{x:.1f}" '
            f'y2="{_HEIGHT - _BOTTOM + 4}" stroke="#9aa5b1"/>'
            f'<text x="{x:.1f}" y="{_HEIGHT - _BOTTOM + 18}" text-anchor="middle">'
            f"{escape(_format_axis_value(tick) + suffix)}</text>"
        )
    if mark is not None and math.isfinite(mark):
        x = x_of(mark)
        anchor = "end" if x > _WIDTH / 2 else "start"
        nudge = -4 if anchor == "end" else 4
        parts.append(
            f'<line class="history-mark" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" '
            f'y2="{_HEIGHT - _BOTTOM}" stroke="#111827" stroke-width="2" stroke-dasharray="5,3"/>'
            f'<text x="{x + nudge:.1f}" y="{_TOP + 12}" text-anchor="{anchor}" '
            f'style="fill:#111827">real history {mark:.2f}{suffix}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
