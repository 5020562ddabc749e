"""Capital allocation: bounded weights, capital split, the allocator component and its routing."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.graphs import graph_config
from tests.support.stubs import btcusdt
from tradegraph.config import StrategyConfig
from tradegraph.config.models import AllocationConfig, GraphConfig, StrategyAllocationConfig
from tradegraph.contracts import (
    ALLOCATOR,
    RISK,
    CapitalAllocated,
    LiquiditySide,
    OrderFilled,
    OrderSide,
    PortfolioSnapshot,
    PositionSnapshot,
    Router,
)
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import CapitalAllocator, bounded_weights, capital_split, trailing_stats
from tradegraph.strategies.base import Strategy
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
INSTRUMENTS = {BTC: btcusdt(min_quantity=0.0, min_notional=0.0)}
HOUR = 3_600_000_000_000


# ---------------------------------------------------------------------------- pure functions


@st.composite
def bounded_problems(draw: Any) -> tuple[list[float], list[float], list[float]]:
    n = draw(st.integers(1, 8))
    raw = draw(st.lists(st.floats(0.0, 100.0), min_size=n, max_size=n))
    lower = draw(st.lists(st.floats(0.0, 1.0 / n), min_size=n, max_size=n))
    span = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    upper = [min(1.0, lo + s) for lo, s in zip(lower, span, strict=True)]
    assume(sum(upper) >= 1.0)
    return raw, lower, upper


@settings(max_examples=300, deadline=None)
@given(bounded_problems())
def test_bounded_weights_sum_to_one_within_bounds(
    problem: tuple[list[float], list[float], list[float]],
) -> None:
    raw, lower, upper = problem

    weights = bounded_weights(raw, lower, upper)

    assert math.fsum(weights) == pytest.approx(1.0, abs=1e-9)
    for w, lo, hi in zip(weights, lower, upper, strict=True):
        assert lo - 1e-9 <= w <= hi + 1e-9


def test_bounded_weights_are_proportional_when_no_bound_binds_and_pin_those_that_do() -> None:
    assert bounded_weights([1.0, 3.0], [0.0, 0.0], [1.0, 1.0]) == pytest.approx([0.25, 0.75])
    assert bounded_weights([1.0, 1.0, 8.0], [0.0] * 3, [1.0, 1.0, 0.5]) == pytest.approx(
        [0.25, 0.25, 0.5]
    )
    assert bounded_weights([0.0, 1.0], [0.2, 0.0], [1.0, 1.0]) == pytest.approx([0.2, 0.8])


def test_bounded_weights_refuse_bounds_that_cannot_sum_to_one() -> None:
    with pytest.raises(ValueError, match="cannot sum to 1"):
        bounded_weights([1.0, 1.0], [0.6, 0.6], [1.0, 1.0])


@settings(max_examples=200, deadline=None)
@given(
    equity=st.floats(1.0, 1e9),
    weights=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=6),
    caps=st.lists(st.one_of(st.none(), st.floats(1.0, 1e9)), min_size=6, max_size=6),
    mins=st.lists(st.floats(0.0, 1e8), min_size=6, max_size=6),
)
def test_capital_split_respects_capital_bounds_and_allocates_everything_it_can(
    equity: float, weights: list[float], caps: list[float | None], mins: list[float]
) -> None:
    n = len(weights)
    max_capital = caps[:n]
    min_capital = [
        m if c is None else min(m, c) for m, c in zip(mins[:n], max_capital, strict=True)
    ]

    capitals = capital_split(equity, weights, [0.0] * n, [1.0] * n, min_capital, max_capital)

    for capital, cap in zip(capitals, max_capital, strict=True):
        assert capital >= 0.0
        assert cap is None or capital <= cap * (1 + 1e-9)
    room = math.fsum(math.inf if c is None else c for c in max_capital)
    assert math.fsum(capitals) == pytest.approx(min(equity, room), rel=1e-9)
    if math.fsum(min_capital) <= equity:
        for capital, floor in zip(capitals, min_capital, strict=True):
            assert capital >= floor * (1 - 1e-9) - 1e-6


def test_trailing_stats_measure_sharpe_and_drawdown() -> None:
    sharpe, drawdown = trailing_stats([100.0, 110.0, 99.0, 120.0], periods_per_year=1.0)

    returns = [0.1, 99 / 110 - 1, 120 / 99 - 1]
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert sharpe == pytest.approx(mean / std)
    assert drawdown == pytest.approx(0.1)
    assert trailing_stats([5.0, 5.0, 5.0], 1.0) == (0.0, 0.0)


# ---------------------------------------------------------------------------- the component


def make_allocator(**overrides: Any) -> tuple[CapitalAllocator, RecordingOutbox, SimClock]:
    fields: dict[str, Any] = {
        "targets": (
            StrategyAllocationConfig(strategy="a", weight=3.0),
            StrategyAllocationConfig(strategy="b", weight=2.0, risk_multiplier=2.0),
        ),
        "check_interval_s": 3600.0,
        "rebalance_interval_s": None,
        "drift_threshold": 0.05,
    }
    fields.update(overrides)
    clock = SimClock(start_ns=0)
    outbox = RecordingOutbox()
    allocator = CapitalAllocator(
        AllocationConfig(**fields), INSTRUMENTS, clock, outbox, starting_equity=100_000.0
    )
    allocator.start()
    return allocator, outbox, clock


def fill(strategy_id: str, side: OrderSide, qty: float, px: float, n: int) -> OrderFilled:
    return OrderFilled(
        fill_id=f"F{n}",
        client_order_id=f"{strategy_id}-{n}",
        venue_order_id=f"V{n}",
        strategy_id=strategy_id,
        instrument_id=BTC,
        venue="BINANCE",
        side=side,
        last_qty=qty,
        last_px=px,
        fee=0.0,
        liquidity=LiquiditySide.TAKER,
        leaves_qty=0.0,
        ts_event_ns=n,
        ts_init_ns=n,
    )


def mark(price: float) -> PortfolioSnapshot:
    position = PositionSnapshot(
        instrument_id=BTC,
        quantity=1.0,
        avg_price=price,
        mark_price=price,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        ts_event_ns=0,
        ts_init_ns=0,
    )
    return PortfolioSnapshot(
        cash=0.0,
        equity=0.0,
        gross_exposure=0.0,
        net_exposure=0.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees=0.0,
        peak_equity=0.0,
        drawdown=0.0,
        day_start_equity=0.0,
        positions=(position,),
        ts_event_ns=0,
        ts_init_ns=0,
    )


def fire_check(allocator: CapitalAllocator, clock: SimClock, at_ns: int) -> None:
    for timer in clock.advance_to(at_ns):
        allocator.handle(timer)


def test_start_allocates_the_starting_equity_by_target_weight() -> None:
    _, outbox, clock = make_allocator()

    events = outbox.of_type(CapitalAllocated)

    assert [(e.strategy_id, e.capital, e.reason) for e in events] == [
        ("a", 60_000.0, "initial"),
        ("b", 40_000.0, "initial"),
    ]
    assert events[1].sizing_capital == 80_000.0
    assert clock.pending_timers == {"allocation-check": HOUR}


def test_drift_past_the_threshold_rebalances_to_the_targets() -> None:
    allocator, outbox, clock = make_allocator()
    outbox.clear()
    allocator.handle(fill("a", OrderSide.BUY, 1.0, 20_000.0, 1))
    allocator.handle(mark(40_000.0))  # a made 20,000: 80,000 of 120,000 = 66.7 % vs 60 %

    fire_check(allocator, clock, HOUR)

    events = outbox.of_type(CapitalAllocated)
    assert [(e.strategy_id, e.reason) for e in events] == [("a", "drift"), ("b", "drift")]
    assert [e.capital for e in events] == pytest.approx([72_000.0, 48_000.0])
    assert allocator.drift() == pytest.approx({"a": 0.0, "b": 0.0}, abs=1e-12)
    assert clock.pending_timers == {"allocation-check": 2 * HOUR}


def test_small_drift_does_not_rebalance_but_the_schedule_does() -> None:
    allocator, outbox, clock = make_allocator(rebalance_interval_s=2 * 3600.0)
    outbox.clear()
    allocator.handle(fill("a", OrderSide.BUY, 1.0, 20_000.0, 1))
    allocator.handle(mark(21_000.0))

    fire_check(allocator, clock, HOUR)
    after_first_check = len(outbox.messages)
    fire_check(allocator, clock, 2 * HOUR)

    assert after_first_check == 0
    assert {e.reason for e in outbox.of_type(CapitalAllocated)} == {"schedule"}
    assert math.fsum(e.capital for e in outbox.of_type(CapitalAllocated)) == pytest.approx(
        101_000.0
    )


def test_risk_adjusted_rebalance_tilts_to_the_better_strategy_within_bounds() -> None:
    allocator, outbox, clock = make_allocator(
        targets=(
            StrategyAllocationConfig(strategy="a", weight=1.0, max_weight=0.7),
            StrategyAllocationConfig(strategy="b", weight=1.0, min_weight=0.3),
        ),
        risk_adjusted=True,
        rebalance_interval_s=4 * 3600.0,
        drift_threshold=None,
        sharpe_sensitivity=5.0,
    )
    allocator.handle(fill("a", OrderSide.BUY, 1.0, 10_000.0, 1))
    allocator.handle(fill("b", OrderSide.SELL, 1.0, 10_000.0, 2))
    outbox.clear()
    prices = [10_000.0, 10_400.0, 10_500.0, 11_000.0]  # a is long, b short: a gains
    for hour, price in enumerate(prices, start=1):
        allocator.handle(mark(price))
        fire_check(allocator, clock, hour * HOUR)

    events = outbox.of_type(CapitalAllocated)
    weights = {e.strategy_id: e.weight for e in events}
    assert {e.reason for e in events} == {"schedule"}
    assert math.fsum(weights.values()) == pytest.approx(1.0)
    assert weights["b"] >= 0.3 - 1e-12
    assert weights["a"] == pytest.approx(0.7)  # tilted to a as far as its max_weight allows


def test_restore_gives_an_allocator_that_behaves_identically() -> None:
    allocator, _, _clock = make_allocator()
    allocator.handle(fill("a", OrderSide.BUY, 1.0, 20_000.0, 1))
    allocator.handle(mark(30_000.0))
    twin, _twin_outbox, _ = make_allocator()

    twin.restore(allocator.snapshot())

    assert twin.snapshot() == allocator.snapshot()
    assert twin.current_weights() == allocator.current_weights()


# ---------------------------------------------------------------------------- config, routing


def _two_strategies() -> tuple[StrategyConfig, ...]:
    return tuple(
        StrategyConfig(id=s, class_path="sma_cross", instruments=(BTC,)) for s in ("a", "b")
    )


def test_allocation_targets_must_name_configured_strategies() -> None:
    base = graph_config(_two_strategies())
    data = base.model_dump()
    data["allocation"] = {"targets": [{"strategy": "zz", "weight": 1.0}]}

    with pytest.raises(ValidationError, match="unknown strategy 'zz'"):
        GraphConfig.model_validate(data)
    with pytest.raises(ValidationError, match="min_weight"):
        AllocationConfig(
            targets=(
                StrategyAllocationConfig(strategy="a", weight=1, min_weight=0.6),
                StrategyAllocationConfig(strategy="b", weight=1, min_weight=0.6),
            )
        )


def test_router_sends_snapshots_and_fills_to_the_allocator_only_when_there_is_one() -> None:
    plain = Router({BTC: "BINANCE"}, {"a": [BTC]})
    allocating = Router({BTC: "BINANCE"}, {"a": [BTC]}, allocator=True)
    snapshot = mark(1.0)
    filled = fill("a", OrderSide.BUY, 1.0, 1.0, 1)
    event = CapitalAllocated(
        strategy_id="a",
        capital=1.0,
        weight=1.0,
        target_weight=1.0,
        risk_multiplier=1.0,
        equity=1.0,
        reason="initial",
        ts_event_ns=0,
        ts_init_ns=0,
    )

    assert plain.destinations(snapshot) == (RISK,)
    assert allocating.destinations(snapshot) == (RISK, ALLOCATOR)
    assert plain.destinations(filled) == (RISK, "portfolio", "strategy:a")
    assert allocating.destinations(filled) == (RISK, "portfolio", ALLOCATOR, "strategy:a")
    assert plain.destinations(event) == ("strategy:a", "control")


def test_strategy_keeps_its_allocation_and_sizes_from_capital_times_multiplier() -> None:
    config = StrategyConfig(id="b", class_path="x:y", instruments=(BTC,))
    strategy = Strategy(config, INSTRUMENTS, SimClock(), RecordingOutbox())
    _, outbox, _ = make_allocator()

    for event in outbox.of_type(CapitalAllocated):
        strategy.handle(event)

    assert (strategy.allocated_capital, strategy.sizing_capital) == (40_000.0, 80_000.0)
    restored = Strategy(config, INSTRUMENTS, SimClock(), RecordingOutbox())
    restored.restore(strategy.snapshot())
    assert restored.sizing_capital == 80_000.0
