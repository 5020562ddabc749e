"""OrderIntent validation for the conditional types, time in force and contingencies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tradegraph.contracts import OrderIntent, OrderSide, OrderType, TimeInForce


def _intent(**fields: Any) -> OrderIntent:
    base: dict[str, Any] = {
        "intent_id": "alpha-000001",
        "strategy_id": "alpha",
        "instrument_id": "BTCUSDT.BINANCE",
        "side": OrderSide.SELL,
        "quantity": 1.0,
        "ts_event_ns": 100,
        "ts_init_ns": 100,
    }
    return OrderIntent(**(base | fields))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"order_type": "stop_market"}, "a stop-market order needs trigger_price"),
        (
            {"order_type": "stop_market", "trigger_price": 1.0, "limit_price": 1.0},
            "a stop-market order takes no limit_price",
        ),
        (
            {"order_type": "stop_limit", "trigger_price": 1.0},
            "a stop-limit order needs limit_price",
        ),
        ({"order_type": "take_profit", "trigger_price": -2.0}, "trigger_price must be a finite"),
        (
            {"order_type": "limit", "limit_price": 1.0, "trigger_price": 2.0},
            "a limit order takes no trigger_price",
        ),
        ({"order_type": "trailing_stop"}, "a trailing-stop order needs trailing_offset"),
        (
            {
                "order_type": "trailing_stop",
                "trailing_offset": 10_000.0,
                "trailing_offset_type": "bps",
            },
            "trailing_offset in bps must be below 10000",
        ),
        ({"trailing_offset": 1.0}, "a market order takes no trailing_offset"),
        ({"time_in_force": "gtd"}, "expire_at_ns is required with time_in_force gtd"),
        ({"time_in_force": "gtd", "expire_at_ns": 100}, "expire_at_ns (100) must be after"),
        ({"expire_at_ns": 200}, "expire_at_ns applies to time_in_force gtd only, not gtc"),
        (
            {"order_type": "limit", "limit_price": 1.0, "post_only": True, "time_in_force": "fok"},
            "post_only and FOK contradict each other",
        ),
        ({"oco_group": "g"}, "oco_group: a market order cannot wait in an OCO group"),
        ({"parent_id": "alpha-000001"}, "parent_id: order alpha-000001 cannot be its own parent"),
    ],
)
def test_a_malformed_order_is_refused_with_the_field_named(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        _intent(**fields)
    assert message in str(error.value)


def test_existing_market_and_limit_messages_are_unchanged() -> None:
    with pytest.raises(ValidationError, match="a limit order needs limit_price"):
        _intent(order_type="limit")
    with pytest.raises(ValidationError, match="a market order takes no limit_price"):
        _intent(limit_price=1.0)
    with pytest.raises(ValidationError, match="post_only applies to limit orders only"):
        _intent(post_only=True)


def test_what_is_emulated() -> None:
    assert not _intent().is_emulated
    assert not _intent(
        order_type="limit", limit_price=1.0, time_in_force=TimeInForce.GTD, expire_at_ns=200
    ).is_emulated
    assert _intent(order_type=OrderType.TAKE_PROFIT, trigger_price=1.0).is_emulated
    assert _intent(order_type="limit", limit_price=1.0, oco_group="g").is_emulated
    assert _intent(parent_id="alpha-000000").is_emulated
