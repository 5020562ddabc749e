"""Every component core's state: a typed model that survives JSON and refuses other versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stubs import bar, btcusdt, fill, submit
from tradegraph.actors.live_clock import ClockState, DataClock
from tradegraph.config.models import PortfolioConfig, RiskConfig, StrategyConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    Message,
    OrderSide,
)
from tradegraph.contracts.state import ComponentState, StateVersionError
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.execution import SimulatedVenue
from tradegraph.portfolio import Portfolio
from tradegraph.risk import RiskEngine
from tradegraph.strategies import Strategy
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(min_quantity=0.0, min_notional=0.0)
IID = BTC.instrument_id
INSTRUMENTS = {IID: BTC}
MIN = 60_000_000_000


class _Counting(Strategy):
    """Keeps a count of bars in its own (dict) state."""

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1

    def strategy_state(self) -> dict[str, Any]:
        return {"bars": self.bars}

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        self.bars = int(state["bars"])


def _risk(clock: SimClock) -> RiskEngine:
    return RiskEngine(RiskConfig(price_band_pct=None), INSTRUMENTS, clock, RecordingOutbox())


def _portfolio(clock: SimClock) -> Portfolio:
    return Portfolio(PortfolioConfig(starting_cash=1_000.0), INSTRUMENTS, clock, RecordingOutbox())


def _venue(clock: SimClock) -> SimulatedVenue:
    return SimulatedVenue(VenueConfig(), INSTRUMENTS, clock, RecordingOutbox())


def _feed(clock: SimClock) -> MarketDataFeed:
    return MarketDataFeed(INSTRUMENTS, clock, RecordingOutbox())


def _strategy(clock: SimClock) -> _Counting:
    config = StrategyConfig(id="s1", class_path="x:Counting", instruments=(IID,))
    strategy = _Counting(config, INSTRUMENTS, clock, RecordingOutbox())
    strategy.start()
    return strategy


def _feed_messages(component: Any) -> None:
    if isinstance(component, MarketDataFeed):
        component.offer_bar(IID, MIN, (100.0, 101.0, 99.0, 100.0, 5.0), MIN)
        return
    first = bar(100.0, ts_ns=MIN, high=101.0, low=99.0, volume=5.0)
    messages: list[Message] = [
        first,
        fill("f1", OrderSide.BUY, 0.5, 100.0, fee=0.05, ts_ns=2 * MIN),
        bar(104.0, ts_ns=2 * MIN, high=105.0, low=103.0, volume=5.0),
    ]
    if isinstance(component, SimulatedVenue):
        limit = submit(
            quantity=0.5, client_order_id="o2", strategy_id="s1", limit_price=90.0, ts_ns=2 * MIN
        )
        messages = [first, limit]
    for msg in messages:
        component.handle(msg)


BUILDERS: list[Callable[[SimClock], Any]] = [_risk, _portfolio, _venue, _feed, _strategy]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__.strip("_"))
def test_state_survives_json_and_restores_an_identical_component(
    build: Callable[[SimClock], Any],
) -> None:
    original = build(SimClock(3 * MIN))
    _feed_messages(original)
    stored = original.snapshot().model_dump_json()

    restored = build(SimClock(3 * MIN))
    restored.restore(type(original).State.model_validate_json(stored))

    assert isinstance(original.snapshot(), ComponentState)
    assert restored.snapshot() == original.snapshot()
    assert restored.snapshot().model_dump_json() == stored


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__.strip("_"))
def test_state_of_another_schema_version_is_refused_with_its_name(
    build: Callable[[SimClock], Any],
) -> None:
    component = build(SimClock(3 * MIN))
    stored = component.snapshot().model_dump(mode="json")
    state_type = type(component).State

    with pytest.raises(StateVersionError, match=rf"{state_type.__name__}: .*schema_version 7"):
        state_type.model_validate({**stored, "schema_version": 7})


def test_the_strategy_hook_state_rides_inside_the_typed_state() -> None:
    strategy = _strategy(SimClock(3 * MIN))
    _feed_messages(strategy)

    state = strategy.snapshot()

    assert state.strategy == {"bars": 2}
    assert state.schema_version == Strategy.State.current_version()


def test_data_clock_state_round_trips_time_and_timers() -> None:
    clock = DataClock(5 * MIN)
    clock.set_timer("t", 9 * MIN)
    stored = clock.snapshot().model_dump_json()

    restored = DataClock(0)
    restored.restore(ClockState.model_validate_json(stored))

    assert restored.now_ns() == 5 * MIN
    assert restored.pending_timers == {"t": 9 * MIN}
