"""Unit tests for the order emulator: triggers on bars, trades and quotes; OCO; parents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import BTC_ID, quote, trade
from tradegraph.contracts import (
    Bar,
    OrderIntent,
    OrderSide,
    OrderType,
    TimeInForce,
    TradeTick,
    TrailingOffsetType,
)
from tradegraph.execution.emulator import Cancellation, OrderEmulator, Release

MINUTE = 60_000_000_000
T0 = 10 * MINUTE


def _intent(
    side: OrderSide,
    order_type: OrderType,
    *,
    intent_id: str = "alpha-000001",
    quantity: float = 1.0,
    **fields: Any,
) -> OrderIntent:
    return OrderIntent(
        intent_id=intent_id,
        strategy_id="alpha",
        instrument_id=BTC_ID,
        side=side,
        quantity=quantity,
        order_type=order_type,
        ts_event_ns=T0,
        ts_init_ns=T0,
        **fields,
    )


def _bar(o: float, h: float, lo: float, c: float, *, n: int = 1) -> Bar:
    """Bar ``n`` after T0: it opens at ``T0 + (n - 1) minutes``, so the first one sees orders
    held at T0."""
    return Bar(
        instrument_id=BTC_ID,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=10.0,
        interval_ns=MINUTE,
        ts_event_ns=T0 + n * MINUTE,
        ts_init_ns=T0 + n * MINUTE,
    )


def _trade(price: float, n: int = 1) -> TradeTick:
    return trade(price, trade_id=f"t{n}", ts_ns=T0 + n)


def _held(*intents: OrderIntent, last: float = 100.0) -> OrderEmulator:
    emulator = OrderEmulator()
    for intent in intents:
        emulator.hold(intent, "BINANCE", T0, {BTC_ID: last})
    return emulator


def _released(actions: list[Any]) -> list[str]:
    return [a.order.client_order_id for a in actions if isinstance(a, Release)]


def _child(action: Release | Cancellation) -> OrderIntent:
    assert isinstance(action, Release)
    return action.intent


def _cancelled(actions: list[Any]) -> list[str]:
    return [a.order.client_order_id for a in actions if isinstance(a, Cancellation)]


def test_sell_stop_market_triggers_when_the_low_reaches_it_and_becomes_a_market_order() -> None:
    emulator = _held(_intent(OrderSide.SELL, OrderType.STOP_MARKET, trigger_price=95.0))

    assert emulator.on_bar(_bar(100, 101, 95.5, 100, n=1)) == []
    actions = emulator.on_bar(_bar(100, 101, 95.0, 99, n=2))

    assert _released(actions) == ["alpha-000001"]
    child = _child(actions[0])
    assert child.order_type is OrderType.MARKET
    assert child.limit_price is None
    assert child.trigger_price is None
    assert child.quantity == 1.0
    assert child.side is OrderSide.SELL
    assert emulator.orders == {}
    assert emulator.watched == {}


def test_buy_stop_limit_triggers_on_the_high_and_becomes_a_limit_order() -> None:
    emulator = _held(
        _intent(OrderSide.BUY, OrderType.STOP_LIMIT, trigger_price=105.0, limit_price=106.0)
    )

    actions = emulator.on_bar(_bar(100, 105.0, 99, 104))

    assert _released(actions) == ["alpha-000001"]
    assert _child(actions[0]).order_type is OrderType.LIMIT
    assert _child(actions[0]).limit_price == 106.0


def test_take_profit_triggers_on_a_favourable_move_only() -> None:
    sell_tp = _intent(OrderSide.SELL, OrderType.TAKE_PROFIT, trigger_price=110.0)
    buy_tp = _intent(
        OrderSide.BUY,
        OrderType.TAKE_PROFIT_LIMIT,
        intent_id="alpha-000002",
        trigger_price=90.0,
        limit_price=90.5,
    )
    emulator = _held(sell_tp, buy_tp)

    assert emulator.on_bar(_bar(100, 109.9, 90.1, 100, n=1)) == []
    actions = emulator.on_bar(_bar(100, 110.0, 90.0, 100, n=2))

    assert sorted(_released(actions)) == ["alpha-000001", "alpha-000002"]
    by_id = {a.order.client_order_id: _child(a) for a in actions}
    assert by_id["alpha-000001"].order_type is OrderType.MARKET
    assert by_id["alpha-000002"].order_type is OrderType.LIMIT
    assert by_id["alpha-000002"].limit_price == 90.5


def test_a_bar_that_gaps_through_the_trigger_triggers_at_the_open() -> None:
    emulator = _held(_intent(OrderSide.SELL, OrderType.STOP_MARKET, trigger_price=95.0))

    assert _released(emulator.on_bar(_bar(90, 92, 89, 91))) == ["alpha-000001"]


def test_oco_takes_the_stop_when_one_bar_touches_both_the_stop_and_the_target() -> None:
    stop = _intent(OrderSide.SELL, OrderType.STOP_MARKET, trigger_price=95.0, oco_group="g")
    target = _intent(
        OrderSide.SELL,
        OrderType.TAKE_PROFIT,
        intent_id="alpha-000002",
        trigger_price=105.0,
        oco_group="g",
    )
    # The target arrived first: arrival order must not decide which leg wins.
    emulator = _held(target, stop)

    actions = emulator.on_bar(_bar(100, 106, 94, 104))

    assert _released(actions) == ["alpha-000001"]
    assert _cancelled(actions) == ["alpha-000002"]
    assert isinstance(actions[1], Cancellation)
    assert actions[1].reason == "oco: alpha-000001 triggered"
    assert emulator.orders == {}


def test_oco_for_a_short_takes_the_buy_stop_first_too() -> None:
    stop = _intent(OrderSide.BUY, OrderType.STOP_MARKET, trigger_price=105.0, oco_group="g")
    target = _intent(
        OrderSide.BUY, OrderType.LIMIT, intent_id="alpha-000002", limit_price=95.0, oco_group="g"
    )
    emulator = _held(target, stop)

    actions = emulator.on_bar(_bar(100, 106, 94, 96))

    assert _released(actions) == ["alpha-000001"]
    assert _cancelled(actions) == ["alpha-000002"]


def test_oco_target_alone_cancels_the_stop() -> None:
    stop = _intent(OrderSide.SELL, OrderType.STOP_MARKET, trigger_price=95.0, oco_group="g")
    target = _intent(
        OrderSide.SELL, OrderType.LIMIT, intent_id="alpha-000002", limit_price=105.0, oco_group="g"
    )
    emulator = _held(stop, target)

    # Touching the limit is not enough (the venue's rule for a resting limit); through it is.
    assert emulator.on_bar(_bar(100, 105.0, 96, 104, n=1)) == []
    actions = emulator.on_bar(_bar(100, 105.5, 96, 104, n=2))

    assert _released(actions) == ["alpha-000002"]
    assert _child(actions[0]).order_type is OrderType.LIMIT
    assert _cancelled(actions) == ["alpha-000001"]


def test_trailing_stop_by_price_follows_the_high_and_never_moves_back() -> None:
    emulator = _held(
        _intent(OrderSide.SELL, OrderType.TRAILING_STOP, trailing_offset=5.0), last=100.0
    )
    order = emulator.orders["alpha-000001"]
    assert order.trigger == 95.0

    assert emulator.on_bar(_bar(100, 110, 99, 108, n=1)) == []
    assert order.trigger == 105.0
    assert order.best == 110.0
    assert emulator.on_bar(_bar(108, 109, 105.5, 106, n=2)) == []
    assert order.trigger == 105.0
    assert _released(emulator.on_bar(_bar(106, 107, 104, 104, n=3))) == ["alpha-000001"]


def test_trailing_stop_is_checked_against_the_close_after_the_high_moved_it() -> None:
    emulator = _held(
        _intent(OrderSide.SELL, OrderType.TRAILING_STOP, trailing_offset=5.0), last=100.0
    )

    # low 97 > stop 95; the high 112 moves the stop to 107; the close 106 is below it.
    assert _released(emulator.on_bar(_bar(100, 112, 97, 106))) == ["alpha-000001"]


def test_trailing_stop_in_bps_for_a_short() -> None:
    intent = _intent(
        OrderSide.BUY,
        OrderType.TRAILING_STOP,
        trailing_offset=100.0,
        trailing_offset_type=TrailingOffsetType.BPS,
    )
    emulator = _held(intent, last=200.0)
    order = emulator.orders["alpha-000001"]
    assert order.trigger == pytest.approx(202.0)

    assert emulator.on_trade(_trade(190.0, 1)) == []
    assert order.trigger == pytest.approx(191.9)
    assert emulator.on_trade(_trade(191.8, 2)) == []
    assert _released(emulator.on_trade(_trade(191.9, 3))) == ["alpha-000001"]


def test_quotes_trigger_buys_on_the_ask_and_sells_on_the_bid() -> None:
    buy_stop = _intent(OrderSide.BUY, OrderType.STOP_MARKET, trigger_price=101.0)
    sell_stop = _intent(
        OrderSide.SELL, OrderType.STOP_MARKET, intent_id="alpha-000002", trigger_price=99.0
    )
    emulator = _held(buy_stop, sell_stop)

    assert emulator.on_quote(quote(99.5, 100.5, ts_ns=T0 + 1)) == []
    assert _released(emulator.on_quote(quote(100.0, 101.0, ts_ns=T0 + 2))) == ["alpha-000001"]
    assert _released(emulator.on_quote(quote(99.0, 99.4, ts_ns=T0 + 3))) == ["alpha-000002"]


def test_a_bar_that_opened_before_the_order_was_held_is_skipped() -> None:
    emulator = OrderEmulator()
    emulator.hold(
        _intent(OrderSide.SELL, OrderType.STOP_MARKET, trigger_price=95.0),
        "BINANCE",
        T0 + 30_000_000_000,  # half way into bar 1
        {},
    )

    assert emulator.on_bar(_bar(100, 100, 90, 91, n=1)) == []
    assert _released(emulator.on_bar(_bar(91, 92, 90, 91, n=2))) == ["alpha-000001"]


def _bracket_children() -> tuple[OrderIntent, OrderIntent]:
    tp = _intent(
        OrderSide.SELL,
        OrderType.TAKE_PROFIT,
        intent_id="alpha-000002",
        trigger_price=110.0,
        oco_group="alpha-000001",
        parent_id="alpha-000001",
        reduce_only=True,
    )
    sl = _intent(
        OrderSide.SELL,
        OrderType.STOP_MARKET,
        intent_id="alpha-000003",
        trigger_price=90.0,
        oco_group="alpha-000001",
        parent_id="alpha-000001",
        reduce_only=True,
    )
    return tp, sl


def test_children_wait_for_their_parent_to_fill_and_work_for_what_it_filled() -> None:
    emulator = _held(*_bracket_children())
    assert emulator.is_parent("alpha-000001")

    # Unarmed: a bar through both levels does nothing.
    assert emulator.on_bar(_bar(100, 120, 80, 100, n=1)) == []
    emulator.parent_filled("alpha-000001", 0.4, False, T0 + MINUTE, {BTC_ID: 100.0})
    assert emulator.watched == {}
    emulator.parent_filled("alpha-000001", 0.6, True, T0 + MINUTE, {BTC_ID: 100.0})

    assert not emulator.is_parent("alpha-000001")
    assert {o.quantity for o in emulator.orders.values()} == {1.0}
    actions = emulator.on_bar(_bar(100, 111, 95, 108, n=2))
    assert _released(actions) == ["alpha-000002"]
    assert _cancelled(actions) == ["alpha-000003"]


def test_children_of_a_parent_cancelled_after_a_partial_fill_work_for_the_part() -> None:
    emulator = _held(*_bracket_children())
    emulator.parent_filled("alpha-000001", 0.25, False, T0, {})

    assert emulator.parent_ended("alpha-000001", "cancelled", T0, {}) == []

    assert [o.quantity for o in emulator.orders.values()] == [0.25, 0.25]
    assert all(o.armed for o in emulator.orders.values())


def test_children_of_a_parent_that_ended_unfilled_are_cancelled() -> None:
    emulator = _held(*_bracket_children())

    ended = emulator.parent_ended("alpha-000001", "rejected", T0, {})

    assert [c.order.client_order_id for c in ended] == ["alpha-000002", "alpha-000003"]
    assert ended[0].reason == "parent order alpha-000001 ended unfilled: rejected"
    assert emulator.orders == {}
    assert not emulator.is_parent("alpha-000001")


def test_snapshot_and_restore_give_an_emulator_that_behaves_the_same() -> None:
    trailing = _intent(OrderSide.SELL, OrderType.TRAILING_STOP, trailing_offset=5.0)
    gtd = _intent(
        OrderSide.BUY,
        OrderType.STOP_MARKET,
        intent_id="alpha-000004",
        trigger_price=130.0,
        time_in_force=TimeInForce.GTD,
        expire_at_ns=T0 + 100 * MINUTE,
    )
    original = _held(trailing, *_bracket_children(), gtd)
    original.track_expiry(gtd)
    original.on_bar(_bar(100, 110, 99, 108, n=1))

    copy = OrderEmulator()
    copy.restore(
        type(original.snapshot()).model_validate_json(original.snapshot().model_dump_json())
    )

    assert copy.snapshot() == original.snapshot()
    assert copy.expiries == {"alpha-000004": T0 + 100 * MINUTE}
    later = _bar(108, 109, 104, 104, n=2)
    assert _released(copy.on_bar(later)) == _released(original.on_bar(later)) == ["alpha-000001"]
    copy.parent_filled("alpha-000001", 1.0, True, T0 + 2 * MINUTE, {})
    assert copy.watched.keys() == {BTC_ID}


prices = st.floats(min_value=50.0, max_value=150.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(list(OrderSide)),
    order_type=st.sampled_from(
        [
            OrderType.STOP_MARKET,
            OrderType.STOP_LIMIT,
            OrderType.TAKE_PROFIT,
            OrderType.TAKE_PROFIT_LIMIT,
        ]
    ),
    trigger=prices,
    path=st.lists(st.tuples(prices, prices, prices, prices), min_size=1, max_size=30),
)
def test_no_emulated_order_fires_before_its_trigger_on_bars(
    side: OrderSide,
    order_type: OrderType,
    trigger: float,
    path: list[tuple[float, float, float, float]],
) -> None:
    limit = trigger if order_type.has_limit else None
    emulator = _held(_intent(side, order_type, trigger_price=trigger, limit_price=limit))
    is_stop = order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
    wants_up = (side is OrderSide.BUY) == is_stop  # buy stop / sell target: price must rise
    for n, (a, b, c, d) in enumerate(path, start=1):
        o, cl = a, d
        hi, lo = max(a, b, c, d), min(a, b, c, d)
        reached = hi >= trigger if wants_up else lo <= trigger
        fired = _released(emulator.on_bar(_bar(o, hi, lo, cl, n=n)))
        # It fires on the first bar that reaches the trigger, and never on one that does not.
        assert bool(fired) == reached
        if fired:
            break


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(list(OrderSide)),
    offset=st.floats(min_value=0.5, max_value=20.0),
    start=prices,
    trades=st.lists(prices, min_size=1, max_size=40),
)
def test_no_trailing_stop_fires_before_price_comes_back_by_its_offset(
    side: OrderSide, offset: float, start: float, trades: list[float]
) -> None:
    emulator = _held(_intent(side, OrderType.TRAILING_STOP, trailing_offset=offset), last=start)
    best = start
    for n, price in enumerate(trades, start=1):
        fired = _released(emulator.on_trade(_trade(price, n)))
        comeback = best - price if side is OrderSide.SELL else price - best
        assert bool(fired) == (comeback >= offset - 1e-9 * best)
        if fired:
            break
        best = max(best, price) if side is OrderSide.SELL else min(best, price)
