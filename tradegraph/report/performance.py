"""Performance metrics of a run: returns, risk-adjusted ratios, drawdowns and round trips.

Conventions:

- A year is 365 days (crypto trades around the clock), so 1-minute bars give 525,600 periods.
- Returns are per-period simple returns of the equity curve, ``equity[t] / equity[t-1] - 1``.
  Sharpe is ``mean / std * sqrt(periods_per_year)`` with the sample standard deviation
  (``ddof=1``) and a zero risk-free rate; Sortino uses the downside deviation
  ``sqrt(mean(min(r, 0)**2))`` over all periods. Both are 0 when their deviation is 0.
- Drawdowns are positive fractions of the running peak; the starting cash counts as the first
  peak. ``max_drawdown`` stays in [0, 1] unless equity goes below zero.
- A round trip is one strategy's position in one instrument from flat back to flat; a fill that
  flips the position ends one round trip and starts the next, its fee split pro rata between
  them. Round-trip PnL is net of fees.
- ``profit_factor`` is gross profit over gross loss of round trips; it is ``None`` when there is
  no losing round trip (the ratio would be infinite or undefined).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tradegraph.contracts import OrderFilled
from tradegraph.portfolio.portfolio import apply_fill_to_position

NS_PER_SECOND = 1_000_000_000
SECONDS_PER_YEAR = 365 * 86_400
NS_PER_YEAR = SECONDS_PER_YEAR * NS_PER_SECOND


class PerformanceMetrics(BaseModel):
    """Summary statistics of one run. See the module docstring for the conventions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_ts_ns: int | None
    end_ts_ns: int | None
    span_s: float
    periods: int
    periods_per_year: float
    starting_cash: float
    final_equity: float
    total_return: float
    cagr: float | None
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration_s: float
    calmar: float
    fills: int
    fees: float
    round_trips: int
    win_rate: float
    profit_factor: float | None
    avg_trade_pnl: float
    gross_profit: float
    gross_loss: float
    exposure_time: float | None


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed trade of one strategy in one instrument.

    Attributes:
        strategy_id: The strategy that traded.
        instrument_id: The instrument traded.
        direction: ``1`` for a long trade, ``-1`` for a short one.
        entry_ts_ns: Event time of the fill that opened it.
        exit_ts_ns: Event time of the fill that closed it.
        max_quantity: Largest absolute position held during the trade.
        realized_pnl: PnL realized by the closing fills, before fees.
        fees: Fees attributed to the trade.
    """

    strategy_id: str
    instrument_id: str
    direction: int
    entry_ts_ns: int
    exit_ts_ns: int
    max_quantity: float
    realized_pnl: float
    fees: float

    @property
    def pnl(self) -> float:
        """Realized PnL net of fees."""
        return self.realized_pnl - self.fees


def infer_periods_per_year(interval_ns: int) -> float:
    """Number of bar intervals in a 365-day year (1-minute bars: 525,600).

    Raises:
        ValueError: ``interval_ns`` is not positive.
    """
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be > 0, was {interval_ns}")
    return NS_PER_YEAR / interval_ns


def drawdown_series(
    equity: npt.ArrayLike, initial_peak: float | None = None
) -> npt.NDArray[np.float64]:
    """Drawdown at each point as a positive fraction of the running peak.

    Args:
        equity: Equity values in time order.
        initial_peak: A peak that precedes the series (e.g. the starting cash), if any.

    Returns:
        ``(peak - equity) / peak`` per point; 0 where the peak is not positive.
    """
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, dtype=np.float64)
    peak = np.maximum.accumulate(values)
    if initial_peak is not None:
        peak = np.maximum(peak, initial_peak)
    drawdown = np.zeros_like(values)
    positive = peak > 0.0
    drawdown[positive] = (peak[positive] - values[positive]) / peak[positive]
    return drawdown


def max_drawdown_duration_ns(
    ts_ns: npt.ArrayLike, equity: npt.ArrayLike, initial_peak: float | None = None
) -> int:
    """Longest time from a peak until equity is back at it (or until the end if it never is).

    Args:
        ts_ns: Timestamps in nanoseconds, increasing.
        equity: Equity at those timestamps.
        initial_peak: A peak that precedes the series, dated at the first timestamp.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if values.size < 2:
        return 0
    peak = np.maximum.accumulate(values)
    if initial_peak is not None:
        peak = np.maximum(peak, initial_peak)
    below = values < peak
    if not below.any():
        return 0
    index = np.arange(values.size)
    # Points below the peak before the first new high date their peak at the first timestamp.
    last_peak = np.maximum.accumulate(np.where(below, 0, index))
    during = ts[below] - ts[last_peak[below]]
    # Recovery points end the episode that was under way at the previous point.
    was_below = below[:-1]
    until_recovery = ts[1:][was_below] - ts[last_peak[:-1][was_below]]
    return int(max(during.max(initial=0), until_recovery.max(initial=0)))


class _OpenTrade:
    """The round trip under way for one strategy and instrument."""

    __slots__ = ("avg_price", "entry_ts_ns", "fees", "max_quantity", "quantity", "realized")

    def __init__(self) -> None:
        self.quantity = 0.0
        self.avg_price = 0.0
        self.entry_ts_ns = 0
        self.max_quantity = 0.0
        self.realized = 0.0
        self.fees = 0.0


def round_trips_from_fills(fills: Sequence[OrderFilled]) -> list[RoundTrip]:
    """Closed trades, in the order they closed. Fills with a repeated ``fill_id`` are skipped."""

    trips: list[RoundTrip] = []
    state: dict[tuple[str, str], _OpenTrade] = {}
    seen: set[str] = set()
    for fill in fills:
        if fill.fill_id in seen:
            continue
        seen.add(fill.fill_id)
        key = (fill.strategy_id, fill.instrument_id)
        trade = state.setdefault(key, _OpenTrade())
        before = trade.quantity
        if before == 0.0:
            trade.entry_ts_ns = fill.ts_event_ns
            trade.realized = 0.0
            trade.fees = 0.0
            trade.max_quantity = 0.0
        signed_qty = fill.signed_qty
        after, trade.avg_price, realized, closed = apply_fill_to_position(
            before, trade.avg_price, signed_qty, fill.last_px
        )
        trade.quantity = after
        flipped = before != 0.0 and after != 0.0 and (before > 0.0) != (after > 0.0)
        closing_fee = fill.fee * closed / abs(signed_qty) if flipped else fill.fee
        trade.realized += realized
        trade.fees += closing_fee
        trade.max_quantity = max(
            trade.max_quantity, abs(before), abs(after) if not flipped else 0.0
        )
        if after == 0.0 or flipped:
            trips.append(
                RoundTrip(
                    strategy_id=fill.strategy_id,
                    instrument_id=fill.instrument_id,
                    direction=1 if before > 0.0 else -1,
                    entry_ts_ns=trade.entry_ts_ns,
                    exit_ts_ns=fill.ts_event_ns,
                    max_quantity=trade.max_quantity,
                    realized_pnl=trade.realized,
                    fees=trade.fees,
                )
            )
        if flipped:
            trade.entry_ts_ns = fill.ts_event_ns
            trade.realized = 0.0
            trade.fees = fill.fee - closing_fee
            trade.max_quantity = abs(after)
    return trips


def _exposure_time(fills: Sequence[OrderFilled], start_ns: int, end_ns: int) -> float | None:
    """Fraction of ``[start_ns, end_ns]`` during which any position was open."""
    span = end_ns - start_ns
    if span <= 0:
        return None
    quantities: dict[tuple[str, str], float] = {}
    avg_prices: dict[tuple[str, str], float] = {}
    open_count = 0
    opened_at = 0
    exposed = 0
    seen: set[str] = set()
    for fill in sorted(fills, key=lambda f: f.ts_event_ns):
        if fill.fill_id in seen:
            continue
        seen.add(fill.fill_id)
        key = (fill.strategy_id, fill.instrument_id)
        before = quantities.get(key, 0.0)
        after, avg_prices[key], _, _ = apply_fill_to_position(
            before, avg_prices.get(key, 0.0), fill.signed_qty, fill.last_px
        )
        quantities[key] = after
        ts = min(max(fill.ts_event_ns, start_ns), end_ns)
        if before == 0.0 and after != 0.0:
            if open_count == 0:
                opened_at = ts
            open_count += 1
        elif before != 0.0 and after == 0.0:
            open_count -= 1
            if open_count == 0:
                exposed += ts - opened_at
    if open_count > 0:
        exposed += end_ns - opened_at
    return exposed / span


def compute_metrics(
    ts_ns: npt.ArrayLike,
    equity: npt.ArrayLike,
    fills: Sequence[OrderFilled],
    starting_cash: float,
    periods_per_year: float,
) -> PerformanceMetrics:
    """Compute the performance summary of a run.

    Args:
        ts_ns: Equity-curve timestamps (int64 nanoseconds, increasing).
        equity: Equity at those timestamps.
        fills: Every fill of the run, in arrival order.
        starting_cash: Equity before the first point; the base of total return and CAGR.
        periods_per_year: Curve points per year, to annualise Sharpe, Sortino and volatility
            (see :func:`infer_periods_per_year`).

    Raises:
        ValueError: The arrays differ in length, ``starting_cash`` or ``periods_per_year`` is not
            positive.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if ts.shape != values.shape or ts.ndim != 1:
        raise ValueError(
            f"ts_ns and equity must be 1-d arrays of one length, got {ts.shape} and {values.shape}"
        )
    if not starting_cash > 0.0:
        raise ValueError(f"starting_cash must be > 0, was {starting_cash}")
    if not periods_per_year > 0.0:
        raise ValueError(f"periods_per_year must be > 0, was {periods_per_year}")

    final_equity = float(values[-1]) if values.size else float(starting_cash)
    total_return = final_equity / starting_cash - 1.0
    span_ns = int(ts[-1] - ts[0]) if ts.size else 0
    span_s = span_ns / NS_PER_SECOND

    cagr: float | None = None
    if span_ns > 0:
        growth = final_equity / starting_cash
        if growth <= 0.0:
            cagr = -1.0
        else:
            exponent = math.log(growth) * NS_PER_YEAR / span_ns
            cagr = math.exp(exponent) - 1.0 if exponent < 700.0 else math.inf

    returns = _simple_returns(values)
    root_periods = math.sqrt(periods_per_year)
    volatility = sharpe = sortino = 0.0
    if returns.size >= 2:
        mean = float(returns.mean())
        std = float(returns.std(ddof=1))
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        volatility = std * root_periods
        sharpe = mean / std * root_periods if std > 0.0 else 0.0
        sortino = mean / downside * root_periods if downside > 0.0 else 0.0

    drawdowns = drawdown_series(values, initial_peak=starting_cash)
    max_drawdown = float(drawdowns.max()) if drawdowns.size else 0.0
    duration_ns = max_drawdown_duration_ns(ts, values, initial_peak=starting_cash)
    calmar = cagr / max_drawdown if cagr is not None and max_drawdown > 0.0 else 0.0

    trips = round_trips_from_fills(fills)
    pnls = [trip.pnl for trip in trips]
    gross_profit = math.fsum(p for p in pnls if p > 0.0)
    gross_loss = -math.fsum(p for p in pnls if p < 0.0)
    unique_fills = {fill.fill_id: fill for fill in fills}

    return PerformanceMetrics(
        start_ts_ns=int(ts[0]) if ts.size else None,
        end_ts_ns=int(ts[-1]) if ts.size else None,
        span_s=span_s,
        periods=int(values.size),
        periods_per_year=periods_per_year,
        starting_cash=starting_cash,
        final_equity=final_equity,
        total_return=total_return,
        cagr=cagr,
        volatility=volatility,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_drawdown,
        max_drawdown_duration_s=duration_ns / NS_PER_SECOND,
        calmar=calmar,
        fills=len(unique_fills),
        fees=math.fsum(fill.fee for fill in unique_fills.values()),
        round_trips=len(trips),
        win_rate=sum(1 for p in pnls if p > 0.0) / len(pnls) if pnls else 0.0,
        profit_factor=gross_profit / gross_loss if gross_loss > 0.0 else None,
        avg_trade_pnl=math.fsum(pnls) / len(pnls) if pnls else 0.0,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        exposure_time=(
            _exposure_time(list(unique_fills.values()), int(ts[0]), int(ts[-1]))
            if ts.size
            else None
        ),
    )


def _simple_returns(equity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per-period simple returns; a period that starts at or below zero equity returns 0."""
    if equity.size < 2:
        return np.zeros(0, dtype=np.float64)
    previous = equity[:-1]
    returns = np.zeros(equity.size - 1, dtype=np.float64)
    alive = previous > 0.0
    returns[alive] = equity[1:][alive] / previous[alive] - 1.0
    return returns


def metric_rows(metrics: PerformanceMetrics) -> list[tuple[str, str]]:
    """The metrics as ``(label, formatted value)`` rows, in display order."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    def num(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f}"

    return [
        ("Starting cash", num(metrics.starting_cash)),
        ("Final equity", num(metrics.final_equity)),
        ("Total return", pct(metrics.total_return)),
        ("CAGR", pct(metrics.cagr)),
        ("Volatility (ann.)", pct(metrics.volatility)),
        ("Sharpe", num(metrics.sharpe, 3)),
        ("Sortino", num(metrics.sortino, 3)),
        ("Max drawdown", pct(metrics.max_drawdown)),
        ("Max drawdown duration", format_duration(metrics.max_drawdown_duration_s)),
        ("Calmar", num(metrics.calmar, 3)),
        ("Fills", str(metrics.fills)),
        ("Fees", num(metrics.fees)),
        ("Round trips", str(metrics.round_trips)),
        ("Win rate", pct(metrics.win_rate)),
        ("Profit factor", num(metrics.profit_factor, 3)),
        ("Avg trade PnL", num(metrics.avg_trade_pnl)),
        ("Exposure time", pct(metrics.exposure_time)),
        ("Span", format_duration(metrics.span_s)),
        ("Periods", str(metrics.periods)),
    ]


def format_duration(seconds: float) -> str:
    """``93784`` -> ``"1d 02:03:04"``; under a day, ``"02:03:04"``."""
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock
