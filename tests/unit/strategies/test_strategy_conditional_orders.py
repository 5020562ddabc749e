"""The Strategy API for stops, take-profits, trailing stops, OCO pairs, brackets and GTD."""

from __future__ import annotations

import pytest

from tests.unit.strategies.test_strategy_base import BTC, build
from tradegraph.contracts import (
    OrderIntent,
    OrderSide,
    OrderType,
    TimeInForce,
    TrailingOffsetType,
)


def test_conditional_helpers_build_the_intents_they_name() -> None:
    strategy, outbox, _ = build()

    stop = strategy.stop_market(BTC, OrderSide.SELL, 1.0, 95.0, reduce_only=True)
    stop_limit = strategy.stop_limit(BTC, OrderSide.BUY, 1.0, 105.0, 106.0)
    target = strategy.take_profit(BTC, OrderSide.SELL, 1.0, 110.0)
    target_limit = strategy.take_profit(BTC, OrderSide.SELL, 1.0, 110.0, limit_price=109.5)
    trailing = strategy.trailing_stop(BTC, OrderSide.SELL, 1.0, 50.0, offset_type="bps")

    intents = outbox.of_type(OrderIntent)
    assert [i.intent_id for i in intents] == [stop, stop_limit, target, target_limit, trailing]
    assert [i.order_type for i in intents] == [
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP,
    ]
    assert intents[0].trigger_price == 95.0
    assert intents[0].reduce_only
    assert (intents[1].trigger_price, intents[1].limit_price) == (105.0, 106.0)
    assert intents[3].limit_price == 109.5
    assert intents[4].trailing_offset == 50.0
    assert intents[4].trailing_offset_type is TrailingOffsetType.BPS
    assert set(strategy.open_orders) == {stop, stop_limit, target, target_limit, trailing}


def test_bracket_sends_its_exits_before_the_entry_with_deterministic_ids() -> None:
    strategy, outbox, _ = build()
    strategy.buy(BTC, 0.1)  # s1-000001

    ids = strategy.bracket(BTC, OrderSide.BUY, 0.5, take_profit_price=110.0, stop_price=95.0)

    assert (ids.entry, ids.take_profit, ids.stop_loss) == ("s1-000002", "s1-000003", "s1-000004")
    tp, sl, entry = outbox.of_type(OrderIntent)[1:]
    assert [tp.intent_id, sl.intent_id, entry.intent_id] == [
        ids.take_profit,
        ids.stop_loss,
        ids.entry,
    ]
    assert entry.order_type is OrderType.MARKET
    assert entry.side is OrderSide.BUY
    for leg in (tp, sl):
        assert leg.side is OrderSide.SELL
        assert leg.reduce_only
        assert leg.parent_id == ids.entry
        assert leg.oco_group == ids.entry
    assert (tp.order_type, tp.trigger_price) == (OrderType.TAKE_PROFIT, 110.0)
    assert (sl.order_type, sl.trigger_price) == (OrderType.STOP_MARKET, 95.0)
    assert strategy.buy(BTC, 0.1) == "s1-000005"


def test_a_malformed_bracket_sends_nothing_and_leaves_no_gap_in_the_ids() -> None:
    strategy, outbox, _ = build()

    with pytest.raises(ValueError, match="take_profit_price 90 must be above stop_price 95"):
        strategy.bracket(BTC, OrderSide.BUY, 0.5, take_profit_price=90.0, stop_price=95.0)
    with pytest.raises(ValueError, match="trigger_price must be a finite number > 0"):
        strategy.bracket(BTC, OrderSide.SELL, 0.5, take_profit_price=-1.0, stop_price=95.0)

    assert outbox.messages == []
    assert strategy.buy(BTC, 0.1) == "s1-000001"


def test_oco_pairs_a_take_profit_and_a_stop_in_one_group() -> None:
    strategy, outbox, _ = build()

    ids = strategy.oco(
        BTC, OrderSide.SELL, 1.0, take_profit_price=110.0, stop_price=95.0, stop_limit_price=94.0
    )

    tp, sl = outbox.of_type(OrderIntent)
    assert (tp.intent_id, sl.intent_id) == (ids.take_profit, ids.stop_loss)
    assert tp.oco_group == sl.oco_group == ids.take_profit
    assert tp.parent_id == sl.parent_id == ""
    assert sl.order_type is OrderType.STOP_LIMIT
    assert sl.limit_price == 94.0


def test_good_till_date_needs_a_future_expiry_named_in_the_error() -> None:
    strategy, outbox, clock = build()
    now = clock.now_ns()

    with pytest.raises(ValueError, match="expire_at_ns is required with time_in_force gtd"):
        strategy.buy(BTC, 0.1, OrderType.LIMIT, 100.0, TimeInForce.GTD)
    with pytest.raises(ValueError, match=r"expire_at_ns .* must be after the order's time"):
        strategy.buy(BTC, 0.1, OrderType.LIMIT, 100.0, TimeInForce.GTD, expire_at_ns=now)
    order_id = strategy.sell(
        BTC, 0.1, OrderType.LIMIT, 100.0, TimeInForce.GTD, expire_at_ns=now + 10
    )

    (intent,) = outbox.of_type(OrderIntent)
    assert intent.intent_id == order_id
    assert intent.expire_at_ns == now + 10
