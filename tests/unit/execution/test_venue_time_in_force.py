"""The simulated venue's FOK and GTD orders, and its refusal of conditional types."""

from __future__ import annotations

from tests.support import stubs
from tests.unit.execution.test_simulated_venue import Harness
from tradegraph.config.models import VenueConfig
from tradegraph.contracts import (
    OrderCancelled,
    OrderRejected,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
    VenueReason,
)
from tradegraph.execution.venue import FOK_UNFILLED


def test_fok_that_the_volume_cap_would_cut_is_cancelled_without_any_fill() -> None:
    h = Harness(VenueConfig(max_volume_share=0.1))
    h.bar(100.0, 101.0, 99.0, 100.5, volume=30.0)

    h.submit("o1", quantity=5.0, limit=101.0, tif=TimeInForce.FOK)

    assert h.fills == []
    assert [c.reason for c in h.outbox.of_type(OrderCancelled)] == [FOK_UNFILLED]
    assert h.venue.open_orders == {}


def test_fok_that_can_fill_in_full_fills_in_full() -> None:
    h = Harness(VenueConfig(max_volume_share=0.1))
    h.bar(100.0, 101.0, 99.0, 100.5, volume=60.0)

    h.submit("o1", quantity=5.0, limit=101.0, tif=TimeInForce.FOK)

    assert [(f.last_qty, f.leaves_qty) for f in h.fills] == [(5.0, 0.0)]
    assert h.outbox.of_type(OrderCancelled) == []


def test_fok_market_order_gets_one_chance_all_or_nothing() -> None:
    h = Harness(VenueConfig(max_volume_share=0.5))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=4.0, tif=TimeInForce.FOK)

    h.bar(101.0, 102.0, 100.0, 101.5, volume=2.0)
    h.bar(101.0, 102.0, 100.0, 101.5, volume=100.0)

    assert h.fills == []
    assert [c.reason for c in h.outbox.of_type(OrderCancelled)] == [FOK_UNFILLED]


def test_non_marketable_fok_is_cancelled_on_arrival() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("o1", limit=99.0, tif=TimeInForce.FOK)

    assert h.fills == []
    assert [c.reason for c in h.outbox.of_type(OrderCancelled)] == [FOK_UNFILLED]


def test_gtd_limit_rests_like_gtc_until_cancelled() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("o1", limit=99.0, tif=TimeInForce.GTD)
    h.bar(100.0, 100.5, 99.5, 100.0)

    assert "o1" in h.venue.open_orders
    h.bar(100.0, 100.0, 98.0, 98.5)
    assert [(f.last_px, f.leaves_qty) for f in h.fills] == [(99.0, 0.0)]


def test_a_conditional_order_type_reaching_the_venue_is_rejected() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    order = stubs.submit(OrderSide.SELL, 1.0, client_order_id="o1", strategy_id="s1")
    stop = SubmitOrder(**(order.model_dump() | {"order_type": OrderType.STOP_MARKET}))

    h.venue.handle(stop)

    [rejected] = h.outbox.of_type(OrderRejected)
    assert rejected.code is VenueReason.INVALID_ORDER
    assert "not stop_market" in rejected.reason
