from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.portfolio.builders import fill as taker_fill
from tradegraph.contracts import OrderFilled, OrderSide
from tradegraph.report import (
    compute_metrics,
    drawdown_series,
    infer_periods_per_year,
    max_drawdown_duration_ns,
    round_trips_from_fills,
)

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS
BTC = "BTCUSDT.BINANCE"


def fill(
    fill_id: str,
    side: OrderSide,
    qty: float,
    price: float,
    fee: float,
    *,
    ts_ns: int = 0,
    strategy_id: str = "a",
    instrument_id: str = BTC,
) -> OrderFilled:
    return taker_fill(
        fill_id,
        side,
        qty,
        price,
        fee=fee,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        ts_ns=ts_ns,
    )


def test_infer_periods_per_year_for_common_intervals() -> None:
    assert infer_periods_per_year(60 * SECOND_NS) == pytest.approx(525_600.0)
    assert infer_periods_per_year(3_600 * SECOND_NS) == pytest.approx(8_760.0)
    assert infer_periods_per_year(DAY_NS) == pytest.approx(365.0)


def test_infer_periods_per_year_rejects_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval_ns must be > 0"):
        infer_periods_per_year(0)


def test_metrics_of_a_known_daily_equity_path() -> None:
    ts = np.array([0, DAY_NS, 2 * DAY_NS, 3 * DAY_NS], dtype=np.int64)
    equity = np.array([100.0, 110.0, 99.0, 108.9])

    metrics = compute_metrics(ts, equity, [], starting_cash=100.0, periods_per_year=365.0)

    # Returns are +10%, -10%, +10%: mean 1/30, sample std 0.2/sqrt(3), downside dev sqrt(0.01/3).
    assert metrics.total_return == pytest.approx(0.089)
    assert metrics.sharpe == pytest.approx(math.sqrt(1_095.0) / 6.0)
    assert metrics.sortino == pytest.approx(math.sqrt(365.0 / 3.0))
    assert metrics.volatility == pytest.approx(0.2 / math.sqrt(3.0) * math.sqrt(365.0))
    assert metrics.max_drawdown == pytest.approx(0.1)
    assert metrics.max_drawdown_duration_s == pytest.approx(2 * 86_400.0)
    expected_cagr = 1.089 ** (365.0 / 3.0) - 1.0
    assert metrics.cagr == pytest.approx(expected_cagr)
    assert metrics.calmar == pytest.approx(expected_cagr / 0.1)
    assert metrics.span_s == pytest.approx(3 * 86_400.0)
    assert metrics.periods == 4
    assert metrics.final_equity == 108.9


def test_drawdown_duration_runs_from_peak_to_recovery() -> None:
    ts = np.arange(6, dtype=np.int64) * 10 * SECOND_NS
    equity = np.array([100.0, 120.0, 90.0, 100.0, 125.0, 124.0])

    metrics = compute_metrics(ts, equity, [], starting_cash=100.0, periods_per_year=365.0)

    assert metrics.max_drawdown == pytest.approx(0.25)
    assert metrics.max_drawdown_duration_s == pytest.approx(30.0)


def test_flat_equity_has_zero_ratios_and_no_drawdown() -> None:
    ts = np.arange(5, dtype=np.int64) * SECOND_NS
    equity = np.full(5, 1_000.0)

    metrics = compute_metrics(ts, equity, [], starting_cash=1_000.0, periods_per_year=525_600.0)

    assert metrics.sharpe == 0.0
    assert metrics.sortino == 0.0
    assert metrics.max_drawdown == 0.0
    assert metrics.max_drawdown_duration_s == 0.0
    assert metrics.calmar == 0.0
    assert metrics.total_return == 0.0
    assert metrics.cagr == 0.0


def test_empty_curve_gives_no_cagr_and_zero_returns() -> None:
    metrics = compute_metrics(
        np.zeros(0, dtype=np.int64), np.zeros(0), [], starting_cash=500.0, periods_per_year=365.0
    )

    assert metrics.cagr is None
    assert metrics.final_equity == 500.0
    assert metrics.exposure_time is None
    assert metrics.start_ts_ns is None


def test_starting_cash_counts_as_the_first_peak() -> None:
    ts = np.array([0, SECOND_NS], dtype=np.int64)
    equity = np.array([90.0, 95.0])

    metrics = compute_metrics(ts, equity, [], starting_cash=100.0, periods_per_year=365.0)

    assert metrics.max_drawdown == pytest.approx(0.1)


def test_compute_metrics_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="one length"):
        compute_metrics(np.zeros(3, dtype=np.int64), np.ones(2), [], 1.0, 365.0)


def round_trip_fills() -> list[OrderFilled]:
    return [
        fill("1", OrderSide.BUY, 1.0, 100.0, 1.0, ts_ns=1),
        fill("2", OrderSide.SELL, 1.0, 110.0, 1.0, ts_ns=2),
        fill("3", OrderSide.SELL, 2.0, 110.0, 2.0, ts_ns=3),
        fill("4", OrderSide.BUY, 3.0, 120.0, 3.0, ts_ns=4),
        fill("5", OrderSide.SELL, 1.0, 115.0, 1.0, ts_ns=5),
        fill("6", OrderSide.BUY, 1.0, 50.0, 0.5, ts_ns=6, strategy_id="b"),
    ]


def test_round_trips_end_at_flat_or_flip_and_split_the_flip_fee() -> None:
    trips = round_trips_from_fills(round_trip_fills())

    assert [(t.direction, t.entry_ts_ns, t.exit_ts_ns) for t in trips] == [
        (1, 1, 2),
        (-1, 3, 4),
        (1, 4, 5),
    ]
    assert [t.realized_pnl for t in trips] == pytest.approx([10.0, -20.0, -5.0])
    assert [t.fees for t in trips] == pytest.approx([2.0, 4.0, 2.0])
    assert [t.pnl for t in trips] == pytest.approx([8.0, -24.0, -7.0])
    assert [t.max_quantity for t in trips] == pytest.approx([1.0, 2.0, 1.0])


def test_trade_statistics_from_round_trips() -> None:
    ts = np.array([0, 10], dtype=np.int64)
    equity = np.array([1_000.0, 1_000.0])

    metrics = compute_metrics(ts, equity, round_trip_fills(), 1_000.0, 365.0)

    assert metrics.fills == 6
    assert metrics.fees == pytest.approx(8.5)
    assert metrics.round_trips == 3
    assert metrics.win_rate == pytest.approx(1.0 / 3.0)
    assert metrics.gross_profit == pytest.approx(8.0)
    assert metrics.gross_loss == pytest.approx(31.0)
    assert metrics.profit_factor == pytest.approx(8.0 / 31.0)
    assert metrics.avg_trade_pnl == pytest.approx(-23.0 / 3.0)


def test_profit_factor_is_none_without_losing_trades() -> None:
    fills = [
        fill("1", OrderSide.BUY, 1.0, 100.0, 0.1),
        fill("2", OrderSide.SELL, 1.0, 110.0, 0.1),
    ]

    metrics = compute_metrics(np.array([0, 1]), np.array([1.0, 1.0]), fills, 1.0, 365.0)

    assert metrics.profit_factor is None
    assert metrics.win_rate == 1.0


def test_duplicate_fills_are_counted_once() -> None:
    fills = [
        fill("1", OrderSide.BUY, 1.0, 100.0, 0.1),
        fill("1", OrderSide.BUY, 1.0, 100.0, 0.1),
        fill("2", OrderSide.SELL, 1.0, 90.0, 0.1),
    ]

    metrics = compute_metrics(np.array([0, 1]), np.array([1.0, 1.0]), fills, 1.0, 365.0)

    assert metrics.fills == 2
    assert metrics.fees == pytest.approx(0.2)
    assert metrics.round_trips == 1
    assert metrics.avg_trade_pnl == pytest.approx(-10.2)


def test_exposure_time_is_the_share_of_the_span_with_an_open_position() -> None:
    fills = [
        fill("1", OrderSide.BUY, 1.0, 100.0, 0.0, ts_ns=10),
        fill("2", OrderSide.SELL, 1.0, 100.0, 0.0, ts_ns=30),
        fill("3", OrderSide.BUY, 1.0, 100.0, 0.0, ts_ns=60),
    ]

    metrics = compute_metrics(np.array([0, 100]), np.array([1.0, 1.0]), fills, 1.0, 365.0)

    assert metrics.exposure_time == pytest.approx(0.6)


def test_drawdown_series_with_an_initial_peak() -> None:
    series = drawdown_series([80.0, 100.0, 150.0, 120.0], initial_peak=100.0)

    assert series.tolist() == pytest.approx([0.2, 0.0, 0.0, 0.2])


def brute_force_max_drawdown(equity: list[float]) -> float:
    worst = 0.0
    for i in range(len(equity)):
        for j in range(i, len(equity)):
            worst = max(worst, (equity[i] - equity[j]) / equity[i])
    return worst


def brute_force_max_duration(ts: list[int], equity: list[float]) -> int:
    longest = 0
    for i in range(len(equity)):
        if any(equity[k] > equity[i] for k in range(i)):
            continue
        recovery = next((j for j in range(i + 1, len(equity)) if equity[j] >= equity[i]), None)
        if recovery is None:
            if i < len(equity) - 1:
                longest = max(longest, ts[-1] - ts[i])
        elif recovery > i + 1:
            longest = max(longest, ts[recovery] - ts[i])
    return longest


equity_paths = st.lists(
    st.floats(min_value=1.0, max_value=1e6, allow_nan=False), min_size=1, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(equity_paths)
def test_max_drawdown_is_a_fraction_equal_to_brute_force(equity: list[float]) -> None:
    ts = np.arange(len(equity), dtype=np.int64) * SECOND_NS

    metrics = compute_metrics(ts, np.array(equity), [], equity[0], 365.0)

    assert 0.0 <= metrics.max_drawdown <= 1.0
    assert metrics.max_drawdown == pytest.approx(brute_force_max_drawdown(equity), abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(equity_paths, st.data())
def test_max_drawdown_duration_equals_brute_force(equity: list[float], data: st.DataObject) -> None:
    steps = data.draw(st.lists(st.integers(1, 1_000), min_size=len(equity), max_size=len(equity)))
    ts = np.cumsum(np.array(steps, dtype=np.int64))

    duration = max_drawdown_duration_ns(ts, np.array(equity))

    assert duration == brute_force_max_duration(ts.tolist(), equity)
