"""Two strategies and a TWAP parent order on the bundled real data, checked by hand.

The SMA strategy must trade exactly as the plain reference loop of the single-strategy
acceptance test (the TWAP strategy's sub-ledger does not touch it); the TWAP children are
computed here from the schedule and the raw bars alone.
"""

from __future__ import annotations

import math

import pytest

from tests.support.graphs import graph_config
from tradegraph.config import StrategyConfig
from tradegraph.config.models import AllocationConfig, FillAt, GraphConfig, StrategyAllocationConfig
from tradegraph.data import read_bars
from tradegraph.engine.backtest import BacktestResult, run_backtest

BTC = "BTCUSDT.BINANCE"
FEE = 0.001
LOT = 1e-5
START_CASH = 1_000_000.0
SUBMIT_BAR = 100  # the 100th bar (index 99) closes, then the parent is sent
PARENT_QTY = 0.5
SLICES = 12
SLICE_S = 300
MINUTE_NS = 60_000_000_000

GOLDEN_EQUITY = 1_002_236.4908010187
GOLDEN_DIGEST = "2b982ac4856870d733d7ea87331b61e07aa326a39b7b42120fc89a94db7b2b50"
GOLDEN_ALLOC_EQUITY = 980_801.6228191887
GOLDEN_ALLOC_DIGEST = "df2a8b8068c2086292104c4065e2f5c5462597e03127158c9eca453b6fcc6924"


def _strategies(sma_params: dict[str, object]) -> tuple[StrategyConfig, ...]:
    return (
        StrategyConfig(id="sma", class_path="sma_cross", instruments=(BTC,), params=sma_params),
        StrategyConfig(
            id="twap",
            class_path="test_algo",
            instruments=(BTC,),
            params={
                "submit_on_bar": SUBMIT_BAR,
                "quantity": PARENT_QTY,
                "algo": "twap",
                "algo_params": {"duration_s": SLICES * SLICE_S, "slices": SLICES},
            },
        ),
    )


def _plain_config() -> GraphConfig:
    return graph_config(_strategies({"fast_period": 10, "slow_period": 30, "quantity": 0.01}))


@pytest.fixture(scope="module")
def bars() -> tuple[list[int], list[float], list[float]]:
    (data,) = read_bars("sample:BTCUSDT_1m")
    return data.ts_open_ns.tolist(), data.open.tolist(), data.close.tolist()


@pytest.fixture(scope="module")
def plain() -> BacktestResult:
    return run_backtest(_plain_config())


def expected_twap_children(
    ts_open: list[int], opens: list[float]
) -> list[tuple[int, float, float]]:
    """(fill time, quantity, price) of each child, from the schedule and the raw bars.

    The parent is sent when bar index 99 closes (at ``ts_open[99] + 1 min``). Child k goes
    k * 5 minutes later, which is the open time of bar 100 + 5k; a market order fills on the
    first bar that opens at or after it reaches the venue, so child k fills at the open of bar
    100 + 5k, stamped with that bar's close. Quantities are whole lots:
    floor(50,000 * (k+1) / 12) in total.
    """
    total_lots = round(PARENT_QTY / LOT)
    submit_ns = ts_open[SUBMIT_BAR - 1] + MINUTE_NS
    children = []
    sent = 0
    for k in range(SLICES):
        lots = total_lots * (k + 1) // SLICES - sent
        sent += lots
        bar = SUBMIT_BAR + 5 * k
        assert ts_open[bar] == submit_ns + k * SLICE_S * 1_000_000_000
        fill_ns = ts_open[bar] + MINUTE_NS
        children.append((fill_ns, round(lots * LOT, 5), opens[bar]))
    return children


def test_twap_children_match_the_schedule_computed_by_hand(
    plain: BacktestResult, bars: tuple[list[int], list[float], list[float]]
) -> None:
    ts_open, opens, _ = bars
    expected = expected_twap_children(ts_open, opens)

    twap_fills = [f for f in plain.fills if f.strategy_id == "twap"]

    assert [(f.ts_event_ns, f.last_qty, f.last_px) for f in twap_fills] == expected
    assert [f.last_qty for f in twap_fills][:4] == [0.04166, 0.04167, 0.04167, 0.04166]
    assert math.fsum(f.last_qty for f in twap_fills) == pytest.approx(PARENT_QTY, abs=1e-12)
    assert {f.tag for f in twap_fills} == {"twap-P000001"}
    (report,) = plain.execution_reports
    notional = math.fsum(q * p for _, q, p in expected)
    assert report.status == "completed"
    assert report.filled_quantity == PARENT_QTY
    assert report.avg_price == pytest.approx(notional / PARENT_QTY, rel=1e-12)
    assert report.arrival_price == bars[2][SUBMIT_BAR - 1]
    assert report.child_orders == SLICES


def test_two_strategies_sum_to_the_reference_fills_and_equity(
    plain: BacktestResult, bars: tuple[list[int], list[float], list[float]]
) -> None:
    from tests.acceptance.test_backtest_reference import reference_sma_cross

    ts_open, opens, closes = bars
    ref_fills, ref_sma_equity = reference_sma_cross(opens, closes, 10, 30, FillAt.NEXT_OPEN)
    children = expected_twap_children(ts_open, opens)
    twap_cost = math.fsum(q * p * (1.0 + FEE) for _, q, p in children)
    expected_equity = ref_sma_equity - twap_cost + PARENT_QTY * closes[-1]

    sma_fills = [f for f in plain.fills if f.strategy_id == "sma"]

    assert [(f.side.value, f.last_px) for f in sma_fills] == [(r.side, r.price) for r in ref_fills]
    assert (plain.bars, plain.orders, len(plain.fills)) == (44_640, 1_682, 1_682)
    assert plain.final_equity == pytest.approx(expected_equity, rel=1e-12)
    assert plain.final_equity == pytest.approx(GOLDEN_EQUITY, rel=1e-12)
    assert plain.fills_digest == GOLDEN_DIGEST
    assert set(plain.per_strategy) == {"sma", "twap"}
    assert math.fsum(s["net_pnl"] for s in plain.per_strategy.values()) == pytest.approx(
        plain.pnl, rel=1e-9
    )


def test_rerun_is_identical(plain: BacktestResult) -> None:
    again = run_backtest(_plain_config())

    assert again.fills_digest == plain.fills_digest
    assert again.final_equity == plain.final_equity
    assert again.execution_reports == plain.execution_reports


def test_allocated_capital_sizes_the_strategy_and_rebalances_sum_to_equity(
    bars: tuple[list[int], list[float], list[float]],
) -> None:
    config = graph_config(
        _strategies({"fast_period": 10, "slow_period": 30, "capital_fraction": 0.01})
    ).model_copy(
        update={
            "allocation": AllocationConfig(
                targets=(
                    StrategyAllocationConfig(strategy="sma", weight=0.7, risk_multiplier=2.0),
                    StrategyAllocationConfig(strategy="twap", weight=0.3),
                ),
                check_interval_s=3600,
                rebalance_interval_s=7 * 86_400,
                drift_threshold=0.001,
            )
        }
    )
    _, opens, closes = bars
    fill_bars = reference_fill_bars(opens, closes)

    result = run_backtest(GraphConfig.model_validate(config.model_dump()))

    first_sma = next(f for f in result.fills if f.strategy_id == "sma")
    signal_close = closes[fill_bars[0] - 1]
    assert first_sma.last_qty == round(
        math.floor(0.01 * 700_000 * 2.0 / signal_close / LOT) * LOT, 5
    )
    initial = [a for a in result.allocations if a.reason == "initial"]
    assert [(a.strategy_id, a.capital) for a in initial] == [
        ("sma", 700_000.0),
        ("twap", 300_000.0),
    ]
    by_time: dict[int, list[float]] = {}
    for event in result.allocations:
        by_time.setdefault(event.ts_event_ns, []).append(event.capital)
        assert event.weight == pytest.approx(event.capital / event.equity)
    for event in result.allocations:
        assert math.fsum(by_time[event.ts_event_ns]) == pytest.approx(event.equity, rel=1e-12)
    assert len(result.allocations) == 28
    assert result.per_strategy["sma"]["allocated_capital"] == result.allocations[-2].capital
    assert (result.orders, len(result.fills)) == (1_682, 1_683)
    assert result.final_equity == pytest.approx(GOLDEN_ALLOC_EQUITY, rel=1e-12)
    assert result.fills_digest == GOLDEN_ALLOC_DIGEST


def reference_fill_bars(opens: list[float], closes: list[float]) -> list[int]:
    """Bar indices at which the reference SMA loop fills (its signal is the bar before)."""
    from tests.acceptance.test_backtest_reference import reference_sma_cross

    fills, _ = reference_sma_cross(opens, closes, 10, 30, FillAt.NEXT_OPEN)
    return [f.bar_index for f in fills]
