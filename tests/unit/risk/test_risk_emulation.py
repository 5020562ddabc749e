"""Risk holds conditional and contingent orders, and released ones pass its checks."""

from __future__ import annotations

from typing import Any, TypeVar

from tests.support.stubs import btcusdt
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    CancelOrder,
    LiquiditySide,
    Message,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    RiskReason,
    RiskRejected,
    StrategyError,
    SubmitOrder,
    TimeInForce,
    TripKillSwitch,
)
from tradegraph.engine.clock import SimClock
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0)
BTC_ID = BTC.instrument_id
MINUTE = 60_000_000_000
M = TypeVar("M", bound=Message)
START = 100 * MINUTE


class Harness:
    """A RiskEngine on a sim clock; bars advance the clock a minute each."""

    def __init__(self) -> None:
        self.clock = SimClock(START)
        self.outbox = RecordingOutbox()
        self.engine = RiskEngine(
            RiskConfig(price_band_pct=None), {BTC_ID: BTC}, self.clock, self.outbox
        )
        self.fills = 0

    def send(self, msg: Message) -> list[Message]:
        self.outbox.clear()
        self.engine.handle(msg)
        return list(self.outbox.messages)

    def bar(self, o: float, h: float, lo: float, c: float) -> list[Message]:
        """The next bar; timers due by its close fire first, as the kernel runs them."""
        end = self.clock.now_ns() + MINUTE
        out: list[Message] = []
        for fired in self.clock.advance_to(end):
            out += self.send(fired)
        bar = Bar(
            instrument_id=BTC_ID,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=10.0,
            interval_ns=MINUTE,
            ts_event_ns=end,
            ts_init_ns=end,
        )
        return out + self.send(bar)

    def intent(self, intent_id: str, side: OrderSide, **fields: Any) -> OrderIntent:
        now = self.clock.now_ns()
        fields.setdefault("quantity", 1.0)
        return OrderIntent(
            intent_id=intent_id,
            strategy_id="alpha",
            instrument_id=BTC_ID,
            side=side,
            ts_event_ns=now,
            ts_init_ns=now,
            **fields,
        )

    def fill(self, order: SubmitOrder, price: float, quantity: float | None = None) -> OrderFilled:
        self.fills += 1
        now = self.clock.now_ns()
        qty = order.quantity if quantity is None else quantity
        return OrderFilled(
            fill_id=f"F{self.fills}",
            client_order_id=order.client_order_id,
            venue_order_id=f"V{self.fills}",
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            venue=order.venue,
            side=order.side,
            last_qty=qty,
            last_px=price,
            fee=0.0,
            liquidity=LiquiditySide.TAKER,
            leaves_qty=round(order.quantity - qty, 9),
            ts_event_ns=now,
            ts_init_ns=now,
        )


def _only(messages: list[Message], kind: type[M]) -> M:
    assert len(messages) == 1, messages
    assert isinstance(messages[0], kind), messages
    return messages[0]


def test_a_stop_is_held_until_a_bar_reaches_it_then_sent_as_a_market_order() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    stop = h.intent(
        "alpha-000001",
        OrderSide.BUY,
        order_type=OrderType.STOP_MARKET,
        trigger_price=105.0,
        quantity=0.0015,
    )

    assert h.send(stop) == []
    assert "alpha-000001" in h.engine.emulator.orders
    assert h.bar(100, 104, 99, 103) == []
    order = _only(h.bar(103, 106, 102, 105), SubmitOrder)

    assert order.client_order_id == "alpha-000001"
    assert order.order_type is OrderType.MARKET
    assert order.quantity == 0.001  # rounded to the lot at release, as any order
    assert "alpha-000001" in h.engine.open_orders
    assert h.engine.emulator.orders == {}


def test_a_released_order_that_fails_a_check_is_refused_under_its_own_id() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    stop = h.intent(
        "alpha-000001",
        OrderSide.SELL,
        order_type=OrderType.STOP_MARKET,
        trigger_price=95.0,
        reduce_only=True,
    )
    assert h.send(stop) == []

    refusal = _only(h.bar(100, 100, 94, 95), RiskRejected)

    assert refusal.intent_id == "alpha-000001"
    assert refusal.reason is RiskReason.INVALID_QUANTITY
    assert "reduce_only" in refusal.detail


def test_cancelling_a_held_order_ends_it_without_a_venue() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    h.send(
        h.intent(
            "alpha-000001", OrderSide.SELL, order_type=OrderType.TAKE_PROFIT, trigger_price=110.0
        )
    )
    now = h.clock.now_ns()

    out = h.send(
        CancelIntent(
            strategy_id="alpha", client_order_id="alpha-000001", ts_event_ns=now, ts_init_ns=now
        )
    )

    cancelled = _only(out, OrderCancelled)
    assert cancelled.client_order_id == "alpha-000001"
    assert cancelled.venue == "BINANCE"
    assert cancelled.reason == "requested by strategy alpha"
    assert h.bar(100, 120, 100, 115) == []
    # A redelivery of the intent is recognised: the order is not held again.
    assert (
        h.send(
            h.intent(
                "alpha-000001",
                OrderSide.SELL,
                order_type=OrderType.TAKE_PROFIT,
                trigger_price=110.0,
            )
        )
        == []
    )
    assert h.engine.emulator.orders == {}


def test_the_kill_switch_cancels_held_orders_too() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    h.send(
        h.intent(
            "alpha-000001", OrderSide.BUY, order_type=OrderType.TRAILING_STOP, trailing_offset=2.0
        )
    )
    now = h.clock.now_ns()

    out = h.send(TripKillSwitch(reason="operator", ts_event_ns=now, ts_init_ns=now))

    cancelled = [m for m in out if isinstance(m, OrderCancelled)]
    assert [c.client_order_id for c in cancelled] == ["alpha-000001"]
    assert h.engine.emulator.orders == {}
    refusal = _only(
        h.send(
            h.intent(
                "alpha-000002", OrderSide.BUY, order_type=OrderType.STOP_MARKET, trigger_price=200.0
            )
        ),
        RiskRejected,
    )
    assert refusal.reason is RiskReason.KILL_SWITCH


def _bracket(h: Harness) -> SubmitOrder:
    """Children first, then the entry (the order the strategy API sends them in)."""
    common: dict[str, Any] = {
        "oco_group": "alpha-000001",
        "parent_id": "alpha-000001",
        "reduce_only": True,
    }
    assert (
        h.send(
            h.intent(
                "alpha-000002",
                OrderSide.SELL,
                order_type=OrderType.TAKE_PROFIT,
                trigger_price=110.0,
                **common,
            )
        )
        == []
    )
    assert (
        h.send(
            h.intent(
                "alpha-000003",
                OrderSide.SELL,
                order_type=OrderType.STOP_MARKET,
                trigger_price=90.0,
                **common,
            )
        )
        == []
    )
    return _only(h.send(h.intent("alpha-000001", OrderSide.BUY)), SubmitOrder)


def test_a_bracket_arms_when_the_entry_fills_and_takes_the_stop_when_a_bar_hits_both() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    entry = _bracket(h)
    # Before the entry fills, a bar through both levels does nothing.
    assert h.bar(100, 111, 89, 100) == []

    assert h.send(h.fill(entry, 100.0)) == []
    out = h.bar(100, 115, 85, 112)

    assert len(out) == 2, out
    stop, target = out
    assert isinstance(stop, SubmitOrder)
    assert (stop.client_order_id, stop.side, stop.reduce_only) == (
        "alpha-000003",
        OrderSide.SELL,
        True,
    )
    assert isinstance(target, OrderCancelled)
    assert target.client_order_id == "alpha-000002"
    assert target.reason == "oco: alpha-000003 triggered"


def test_bracket_children_of_a_partly_filled_entry_work_for_the_part() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    entry = _bracket(h)
    h.send(h.fill(entry, 100.0, quantity=0.4))
    now = h.clock.now_ns()
    h.send(
        OrderCancelled(
            client_order_id=entry.client_order_id,
            strategy_id="alpha",
            instrument_id=BTC_ID,
            venue="BINANCE",
            reason="ioc remainder",
            ts_event_ns=now,
            ts_init_ns=now,
        )
    )

    out = h.bar(100, 111, 99, 110)

    order = out[0]
    assert isinstance(order, SubmitOrder)
    assert order.client_order_id == "alpha-000002"
    assert order.quantity == 0.4


def test_bracket_children_are_cancelled_when_the_entry_is_refused_or_rejected() -> None:
    h = Harness()
    # No price yet: Risk refuses the entry, and its children go with it.
    common: dict[str, Any] = {"oco_group": "alpha-000001", "parent_id": "alpha-000001"}
    h.send(
        h.intent(
            "alpha-000002",
            OrderSide.SELL,
            order_type=OrderType.TAKE_PROFIT,
            trigger_price=110.0,
            **common,
        )
    )
    out = h.send(h.intent("alpha-000001", OrderSide.BUY))
    assert isinstance(out[0], RiskRejected)
    assert isinstance(out[1], OrderCancelled)
    assert out[1].reason.startswith("parent order alpha-000001 ended unfilled: refused by risk")

    h.bar(100, 100, 100, 100)
    h.send(
        h.intent(
            "alpha-000004",
            OrderSide.SELL,
            order_type=OrderType.STOP_MARKET,
            trigger_price=90.0,
            oco_group="b",
            parent_id="alpha-000003",
        )
    )
    entry = _only(h.send(h.intent("alpha-000003", OrderSide.BUY)), SubmitOrder)
    now = h.clock.now_ns()
    out = h.send(
        OrderRejected(
            client_order_id=entry.client_order_id,
            strategy_id="alpha",
            instrument_id=BTC_ID,
            venue="BINANCE",
            reason="no",
            ts_event_ns=now,
            ts_init_ns=now,
        )
    )
    assert _only(out, OrderCancelled).client_order_id == "alpha-000004"
    assert h.engine.emulator.orders == {}


def test_good_till_date_orders_end_at_their_expiry_on_the_graph_clock() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    expiry = h.clock.now_ns() + 2 * MINUTE
    resting = _only(
        h.send(
            h.intent(
                "alpha-000001",
                OrderSide.BUY,
                order_type=OrderType.LIMIT,
                limit_price=90.0,
                time_in_force=TimeInForce.GTD,
                expire_at_ns=expiry,
            )
        ),
        SubmitOrder,
    )
    assert resting.time_in_force is TimeInForce.GTD
    h.send(
        h.intent(
            "alpha-000002",
            OrderSide.SELL,
            order_type=OrderType.STOP_MARKET,
            trigger_price=80.0,
            time_in_force=TimeInForce.GTD,
            expire_at_ns=expiry,
        )
    )

    assert h.bar(100, 101, 99, 100) == []
    out = h.bar(100, 101, 99, 100)

    assert len(out) == 2, out
    cancel, expired = out
    assert isinstance(cancel, CancelOrder)
    assert cancel.client_order_id == "alpha-000001"
    assert cancel.reason == "expired: good till date"
    assert isinstance(expired, OrderCancelled)
    assert expired.client_order_id == "alpha-000002"
    assert expired.reason == "expired: good till date"


def test_held_orders_and_their_expiry_survive_snapshot_and_restore() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    expiry = h.clock.now_ns() + 5 * MINUTE
    h.send(
        h.intent(
            "alpha-000001",
            OrderSide.SELL,
            order_type=OrderType.TRAILING_STOP,
            trailing_offset=3.0,
            time_in_force=TimeInForce.GTD,
            expire_at_ns=expiry,
        )
    )
    h.bar(100, 108, 99, 107)  # trails to 105
    stored = h.engine.snapshot().model_dump_json()

    restored = Harness()
    restored.clock.set_time(h.clock.now_ns())
    restored.engine.restore(type(h.engine.snapshot()).model_validate_json(stored))

    assert restored.engine.snapshot() == h.engine.snapshot()
    assert restored.clock.pending_timers == {"gtd:alpha-000001": expiry}
    assert _only(restored.bar(107, 107, 104, 104), SubmitOrder).client_order_id == "alpha-000001"


def test_a_stopped_strategy_loses_its_held_orders_and_only_its_own() -> None:
    h = Harness()
    h.bar(100, 100, 100, 100)
    h.send(
        h.intent(
            "alpha-000001", OrderSide.SELL, order_type=OrderType.TAKE_PROFIT, trigger_price=110.0
        )
    )
    beta = h.intent(
        "alpha-000001", OrderSide.SELL, order_type=OrderType.TAKE_PROFIT, trigger_price=110.0
    )
    h.send(beta.model_copy(update={"intent_id": "beta-000001", "strategy_id": "beta"}))
    now = h.clock.now_ns()

    out = h.send(
        StrategyError(
            strategy_id="alpha",
            error_type="ValueError",
            error="boom",
            ts_event_ns=now,
            ts_init_ns=now,
        )
    )

    assert [m.client_order_id for m in out if isinstance(m, OrderCancelled)] == ["alpha-000001"]
    assert set(h.engine.emulator.orders) == {"beta-000001"}
