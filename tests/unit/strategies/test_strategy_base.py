"""The Strategy base: bookkeeping, the order API, the safe wrapper, params, snapshot/restore."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from pydantic import ConfigDict, Field

from tests.support.stubs import btcusdt, ethusdt, quote, trade
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    KillSwitchChanged,
    LiquiditySide,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    QuoteTick,
    RiskReason,
    RiskRejected,
    StrategyError,
    TimeInForce,
    TimerFired,
    TradeTick,
)
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError, OrderPathError, StrategyLoadError
from tradegraph.strategies import Strategy, StrategyParams
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"
INSTRUMENTS = {
    BTC: btcusdt(min_quantity=0.0, min_notional=0.0),
    ETH: ethusdt(min_quantity=0.0, min_notional=0.0),
}


def make_bar(close: float, ts: int, instrument_id: str = BTC) -> Bar:
    return Bar(
        instrument_id=instrument_id,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
        interval_ns=60,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def make_fill(
    client_order_id: str,
    side: OrderSide,
    qty: float,
    leaves: float,
    strategy_id: str = "s1",
    instrument_id: str = BTC,
    fill_id: str = "f-1",
) -> OrderFilled:
    return OrderFilled(
        fill_id=fill_id,
        client_order_id=client_order_id,
        venue_order_id="v-1",
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        venue="BINANCE",
        side=side,
        last_qty=qty,
        last_px=100.0,
        fee=0.0,
        liquidity=LiquiditySide.TAKER,
        leaves_qty=leaves,
        ts_event_ns=5,
        ts_init_ns=5,
    )


class EchoParams(StrategyParams):
    quantity: float = Field(default=0.5, gt=0.0)
    period: int = Field(default=3, gt=0)


class RecordingStrategy(Strategy):
    """Records every hook call; buys on a bar when ``buy_on_bar`` is set."""

    Params = EchoParams
    params: EchoParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.buy_on_bar = False
        self.seen_bars = 0

    def on_start(self) -> None:
        self.calls.append("start")

    def on_bar(self, bar: Bar) -> None:
        self.calls.append("bar")
        self.seen_bars += 1
        if self.buy_on_bar:
            self.buy(bar.instrument_id, self.params.quantity)

    def on_trade(self, tick: TradeTick) -> None:
        self.calls.append("trade")

    def on_quote(self, quote: QuoteTick) -> None:
        self.calls.append("quote")

    def on_fill(self, fill: OrderFilled) -> None:
        self.calls.append(f"fill:{self.position(fill.instrument_id)}")

    def on_order_accepted(self, event: OrderAccepted) -> None:
        self.calls.append("accepted")

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.calls.append("rejected")

    def on_order_cancelled(self, event: OrderCancelled) -> None:
        self.calls.append("cancelled")

    def on_risk_rejected(self, event: RiskRejected) -> None:
        self.calls.append("risk_rejected")

    def on_timer(self, timer: TimerFired) -> None:
        self.calls.append(f"timer:{timer.name}")

    def on_kill_switch(self, event: KillSwitchChanged) -> None:
        self.calls.append(f"kill:{event.tripped}")

    def on_stop(self) -> None:
        self.calls.append("stop")

    def strategy_state(self) -> dict[str, Any]:
        return {"seen_bars": self.seen_bars}

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        self.seen_bars = int(state["seen_bars"])


class ExplodingStrategy(Strategy):
    def on_bar(self, bar: Bar) -> None:
        if bar.close > 150.0:
            raise ZeroDivisionError("boom on a big bar")
        self.buy(bar.instrument_id, 0.01)


def make_config(
    params: dict[str, Any] | None = None,
    strategy_id: str = "s1",
    instruments: tuple[str, ...] = (BTC, ETH),
) -> StrategyConfig:
    return StrategyConfig(
        id=strategy_id,
        class_path="tests:RecordingStrategy",
        instruments=instruments,
        params=params or {},
    )


def build(
    cls: type[Strategy] = RecordingStrategy,
    params: dict[str, Any] | None = None,
    clock: SimClock | None = None,
    strategy_id: str = "s1",
) -> tuple[Any, RecordingOutbox, SimClock]:
    clock = clock or SimClock(start_ns=1_000)
    outbox = RecordingOutbox()
    strategy = cls(make_config(params, strategy_id), INSTRUMENTS, clock, outbox)
    return strategy, outbox, clock


# ---------------------------------------------------------------- order API and ids


def test_submit_order_publishes_intent_with_deterministic_id_and_clock_time() -> None:
    strategy, outbox, _ = build()

    first = strategy.buy(BTC, 0.25)
    second = strategy.submit_order(
        ETH,
        OrderSide.SELL,
        1.5,
        order_type=OrderType.LIMIT,
        limit_price=2000.0,
        time_in_force=TimeInForce.IOC,
        reduce_only=True,
        tag="exit",
    )

    intents = outbox.of_type(OrderIntent)
    assert (first, second) == ("s1-000001", "s1-000002")
    assert [i.intent_id for i in intents] == [first, second]
    assert intents[0].side is OrderSide.BUY
    assert intents[0].quantity == 0.25
    assert intents[0].order_type is OrderType.MARKET
    assert intents[0].strategy_id == "s1"
    assert intents[0].ts_event_ns == intents[0].ts_init_ns == 1_000
    assert intents[1].limit_price == 2000.0
    assert intents[1].time_in_force is TimeInForce.IOC
    assert intents[1].reduce_only
    assert intents[1].tag == "exit"
    assert set(strategy.open_orders) == {first, second}


def test_two_identical_strategies_produce_identical_intents() -> None:
    a, out_a, _ = build()
    b, out_b, _ = build()

    for strategy in (a, b):
        strategy.buy(BTC, 1.0)
        strategy.sell(ETH, 2.0)

    assert out_a.messages == out_b.messages


def test_malformed_order_raises_and_consumes_no_id() -> None:
    strategy, outbox, _ = build()

    with pytest.raises(ValueError, match="limit_price"):
        strategy.buy(BTC, 1.0, order_type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="not among its instruments"):
        strategy.buy("XRPUSDT.BINANCE", 1.0)
    next_id = strategy.buy(BTC, 1.0)

    assert next_id == "s1-000001"
    assert len(outbox.messages) == 1


def test_cancel_order_publishes_cancel_intent_only_for_open_orders() -> None:
    strategy, outbox, _ = build()
    order_id = strategy.buy(BTC, 1.0)

    sent = strategy.cancel_order(order_id)
    unknown = strategy.cancel_order("s1-999999")

    cancels = outbox.of_type(CancelIntent)
    assert sent is True
    assert unknown is False
    assert [(c.strategy_id, c.client_order_id) for c in cancels] == [("s1", order_id)]
    assert order_id in strategy.open_orders


# ---------------------------------------------------------------- bookkeeping


def test_fills_update_position_and_complete_the_order() -> None:
    strategy, _, _ = build()
    order_id = strategy.buy(BTC, 1.0)

    strategy.handle(make_fill(order_id, OrderSide.BUY, 0.4, leaves=0.6, fill_id="f-1"))
    partially = strategy.open_orders[order_id]
    strategy.handle(make_fill(order_id, OrderSide.BUY, 0.6, leaves=0.0, fill_id="f-2"))

    assert partially.filled_quantity == pytest.approx(0.4)
    assert partially.leaves_quantity == pytest.approx(0.6)
    assert partially.accepted
    assert strategy.position(BTC) == pytest.approx(1.0)
    assert order_id not in strategy.open_orders
    assert not strategy.has_open_orders(BTC)
    assert strategy.calls == ["fill:0.4", "fill:1.0"]


def test_sell_fill_reduces_position_and_dust_counts_as_flat() -> None:
    strategy, _, _ = build()
    buy_id = strategy.buy(BTC, 0.01)
    strategy.handle(make_fill(buy_id, OrderSide.BUY, 0.003, leaves=0.007))
    strategy.handle(make_fill(buy_id, OrderSide.BUY, 0.007, leaves=0.0))
    sell_id = strategy.sell(BTC, 0.01)

    strategy.handle(make_fill(sell_id, OrderSide.SELL, 0.01, leaves=0.0))

    assert strategy.position(BTC) == 0.0
    assert strategy.positions == {BTC: 0.0}


def test_open_order_lifecycle_accept_cancel_reject_and_risk_reject() -> None:
    strategy, _, _ = build()
    cancelled_id = strategy.buy(BTC, 1.0)
    rejected_id = strategy.buy(BTC, 1.0)
    risk_rejected_id = strategy.sell(ETH, 1.0)
    common = {"strategy_id": "s1", "venue": "BINANCE", "ts_event_ns": 2, "ts_init_ns": 2}

    strategy.handle(
        OrderAccepted(
            client_order_id=cancelled_id, venue_order_id="v1", instrument_id=BTC, **common
        )
    )
    accepted = strategy.open_orders[cancelled_id].accepted
    strategy.handle(OrderCancelled(client_order_id=cancelled_id, instrument_id=BTC, **common))
    strategy.handle(
        OrderRejected(client_order_id=rejected_id, instrument_id=BTC, reason="no", **common)
    )
    assert strategy.has_open_orders(ETH)
    strategy.handle(
        RiskRejected(
            intent_id=risk_rejected_id,
            strategy_id="s1",
            instrument_id=ETH,
            reason=RiskReason.MAX_POSITION,
            detail="too big",
            ts_event_ns=2,
            ts_init_ns=2,
        )
    )

    assert accepted
    assert strategy.open_orders == {}
    assert not strategy.has_open_orders()
    assert strategy.calls == ["accepted", "cancelled", "rejected", "risk_rejected"]


def test_messages_for_another_strategy_are_ignored() -> None:
    strategy, _, _ = build()
    order_id = strategy.buy(BTC, 1.0)

    strategy.handle(make_fill(order_id, OrderSide.BUY, 1.0, leaves=0.0, strategy_id="other"))

    assert strategy.position(BTC) == 0.0
    assert order_id in strategy.open_orders
    assert strategy.calls == []


def test_market_data_sets_last_price_and_reaches_hooks() -> None:
    strategy, _, _ = build()

    strategy.handle(make_bar(101.0, 1))
    after_bar = strategy.last_price(BTC)
    strategy.handle(trade(102.0, ts_ns=2))
    after_trade = strategy.last_price(BTC)
    strategy.handle(quote(9.0, 11.0, instrument_id=ETH, ts_ns=3))

    assert (after_bar, after_trade) == (101.0, 102.0)
    assert strategy.last_price(ETH) == 10.0
    assert strategy.last_price("XRPUSDT.BINANCE") is None
    assert strategy.calls == ["bar", "trade", "quote"]


def test_timers_and_kill_switch_reach_hooks() -> None:
    strategy, _, clock = build()

    strategy.set_timer("rebalance", 5_000)
    strategy.set_timer("drop", 6_000)
    strategy.cancel_timer("drop")
    pending = clock.pending_timers
    for fired in clock.advance_to(5_000):
        strategy.handle(fired)
    strategy.handle(KillSwitchChanged(tripped=True, reason="loss", ts_event_ns=1, ts_init_ns=1))

    assert pending == {"rebalance": 5_000}
    assert strategy.now_ns() == 5_000
    assert strategy.kill_switch_tripped
    assert strategy.calls == ["timer:rebalance", "kill:True"]


def test_start_and_stop_run_hooks_and_stop_silences_the_strategy() -> None:
    strategy, outbox, _ = build()

    strategy.start()
    strategy.stop()
    strategy.handle(make_bar(100.0, 1))

    assert strategy.calls == ["start", "stop"]
    assert strategy.stopped
    assert strategy.error is None
    assert outbox.messages == []


# ---------------------------------------------------------------- safe wrapper


def test_exception_in_on_bar_emits_strategy_error_and_silences_strategy() -> None:
    clock = SimClock(start_ns=7_000)
    strategy, outbox, _ = build(ExplodingStrategy, clock=clock, strategy_id="boom")
    strategy.handle(make_bar(100.0, 1))

    strategy.handle(make_bar(200.0, 2))
    strategy.handle(make_bar(100.0, 3))
    strategy.handle(make_fill("boom-000001", OrderSide.BUY, 0.01, leaves=0.0, strategy_id="boom"))

    errors = outbox.of_type(StrategyError)
    assert len(errors) == 1
    assert errors[0].strategy_id == "boom"
    assert errors[0].error_type == "ZeroDivisionError"
    assert "boom on a big bar" in errors[0].error
    assert "on_bar" in errors[0].error
    assert errors[0].ts_event_ns == 7_000
    assert strategy.stopped
    assert strategy.error is not None
    assert strategy.error.startswith("ZeroDivisionError: boom on a big bar")
    assert len(outbox.of_type(OrderIntent)) == 1
    assert strategy.position(BTC) == 0.0


def test_stopped_strategy_refuses_to_submit_or_cancel() -> None:
    strategy, outbox, _ = build(ExplodingStrategy, strategy_id="boom")
    strategy.handle(make_bar(200.0, 1))

    with pytest.raises(OrderPathError, match="boom"):
        strategy.buy(BTC, 1.0)
    with pytest.raises(OrderPathError, match="stopped"):
        strategy.cancel_order("boom-000001")
    assert outbox.of_type(OrderIntent) == []


def test_exception_in_on_start_is_reported_and_stops() -> None:
    class FailsAtStart(Strategy):
        def on_start(self) -> None:
            raise RuntimeError("no warm-up data")

    strategy, outbox, _ = build(FailsAtStart)

    strategy.start()
    strategy.stop()

    errors = outbox.of_type(StrategyError)
    assert [(e.error_type, e.strategy_id) for e in errors] == [("RuntimeError", "s1")]
    assert strategy.stopped


def test_order_to_unknown_instrument_from_a_hook_becomes_strategy_error() -> None:
    class WrongInstrument(Strategy):
        def on_bar(self, bar: Bar) -> None:
            self.buy("DOGEUSDT.BINANCE", 1.0)

    strategy, outbox, _ = build(WrongInstrument)

    strategy.handle(make_bar(100.0, 1))

    errors = outbox.of_type(StrategyError)
    assert len(errors) == 1
    assert errors[0].error_type == "ValueError"
    assert "DOGEUSDT.BINANCE" in errors[0].error


# ---------------------------------------------------------------- params


def test_invalid_param_error_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        build(params={"period": 0})

    assert str(info.value).startswith("strategies.s1.params.period: ")
    assert "greater than 0" in str(info.value)


def test_unknown_and_mistyped_params_are_each_named() -> None:
    with pytest.raises(ConfigError) as info:
        build(params={"perod": 5, "quantity": "lots"})

    message = str(info.value)
    assert "strategies.s1.params.perod: Extra inputs are not permitted" in message
    assert "strategies.s1.params.quantity: " in message
    assert "'lots'" in message


def test_valid_params_are_typed_and_defaults_apply() -> None:
    strategy, _, _ = build(params={"period": 7})

    assert strategy.params == EchoParams(quantity=0.5, period=7)


def test_config_instrument_missing_from_instruments_is_a_config_error() -> None:
    config = make_config(instruments=(BTC, "SOLUSDT.BINANCE"))

    with pytest.raises(ConfigError, match=r"strategies\.s1\.instruments: .*SOLUSDT"):
        RecordingStrategy(config, INSTRUMENTS, SimClock(), RecordingOutbox())


def test_params_model_that_accepts_unknown_keys_is_refused_at_class_definition() -> None:
    with pytest.raises(StrategyLoadError, match="forbid unknown keys"):

        class Sloppy(Strategy):
            class Params(StrategyParams):
                model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- snapshot / restore


def test_snapshot_is_json_and_restore_gives_identical_behaviour() -> None:
    original, out_a, clock = build()
    original.buy_on_bar = True
    original.handle(make_bar(100.0, 1))
    first_id = next(iter(original.open_orders))
    original.handle(make_fill(first_id, OrderSide.BUY, 0.2, leaves=0.3))
    original.handle(KillSwitchChanged(tripped=True, reason="x", ts_event_ns=1, ts_init_ns=1))
    state = Strategy.State.model_validate(
        json.loads(json.dumps(original.snapshot().model_dump(mode="json"), allow_nan=False))
    )
    restored, out_b, _ = build(clock=clock)
    restored.buy_on_bar = True
    out_a.clear()

    restored.restore(state)
    for strategy in (original, restored):
        strategy.handle(make_bar(101.0, 2))
        strategy.handle(make_fill(first_id, OrderSide.BUY, 0.3, leaves=0.0, fill_id="f-2"))

    assert out_a.messages == out_b.messages
    assert restored.snapshot() == original.snapshot()
    assert restored.position(BTC) == pytest.approx(0.5)
    assert restored.seen_bars == 2
    assert restored.kill_switch_tripped
    assert list(restored.open_orders) == ["s1-000002"]


def test_restore_of_another_strategys_snapshot_is_refused() -> None:
    a, _, _ = build(strategy_id="a")
    b, _, _ = build(strategy_id="b")

    with pytest.raises(ValueError, match="'a' cannot be restored into strategy 'b'"):
        b.restore(a.snapshot())


def test_strategy_survives_pickling_with_its_state() -> None:
    strategy, _, _ = build()
    order_id = strategy.buy(BTC, 1.0)
    strategy.handle(make_fill(order_id, OrderSide.BUY, 0.5, leaves=0.5))

    copy = pickle.loads(pickle.dumps(strategy))

    assert copy.snapshot() == strategy.snapshot()
    assert copy.position(BTC) == 0.5
