"""Unit tests of the kill switch's modes in RiskEngine: halt, reduce_only and flatten."""

from __future__ import annotations

import pytest

from tests.unit.risk.test_risk_engine import BTC_ID, ETH_ID, NO_LIMITS, Harness, priced
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    FLATTEN_TAG,
    CancelOrder,
    FeedStatus,
    KillSwitchChanged,
    KillSwitchMode,
    KillSwitchSource,
    OrderCancelled,
    OrderSide,
    OrderType,
    ResetKillSwitch,
    RiskReason,
    RiskRejected,
    StrategyError,
    SubmitOrder,
    TripKillSwitch,
)


def cancelled(h: Harness, cancel: CancelOrder) -> OrderCancelled:
    return OrderCancelled(
        client_order_id=cancel.client_order_id,
        strategy_id=cancel.strategy_id,
        instrument_id=cancel.instrument_id,
        venue=cancel.venue,
        reason=cancel.reason,
        **h.ts(),
    )


def trip(h: Harness, mode: KillSwitchMode | None, reason: str = "operator") -> list[object]:
    return list(h.send(TripKillSwitch(reason=reason, mode=mode, **h.ts())))


# ---------------------------------------------------------------- halt


def test_halt_is_the_default_and_is_reported_on_the_change() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)

    out = trip(h, None)

    [changed] = out
    assert isinstance(changed, KillSwitchChanged)
    assert changed.mode is KillSwitchMode.HALT
    assert h.engine.kill_switch_mode is KillSwitchMode.HALT
    closing = h.refusal(h.intent(OrderSide.SELL, 0.5))
    assert closing.reason is RiskReason.KILL_SWITCH
    assert h.engine.positions[BTC_ID] == 0.5


# ---------------------------------------------------------------- reduce_only


def test_reduce_only_passes_orders_that_shrink_a_position_and_refuses_the_rest() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    trip(h, KillSwitchMode.REDUCE_ONLY)

    adding = h.refusal(h.intent(OrderSide.BUY, 0.1))
    flipping = h.refusal(h.intent(OrderSide.SELL, 0.6))
    from_flat = h.refusal(h.intent(OrderSide.SELL, 0.1, instrument_id=ETH_ID))
    other_strategy = h.refusal(h.intent(OrderSide.SELL, 0.1, strategy_id="beta"))
    shrinking = h.submit(h.intent(OrderSide.SELL, 0.3))
    rest = h.submit(h.intent(OrderSide.SELL, 0.2, limit_price=100.0))
    beyond = h.refusal(h.intent(OrderSide.SELL, 0.01))

    for refused in (adding, flipping, from_flat, other_strategy, beyond):
        assert refused.reason is RiskReason.REDUCE_ONLY_MODE
    assert adding.detail == (
        "kill switch is tripped in reduce_only mode (operator): buy 0.1 BTCUSDT.BINANCE would "
        "not shrink strategy alpha's position 0.5 (open buy orders 0)"
    )
    assert shrinking.quantity == 0.3
    assert rest.quantity == 0.2
    assert h.engine.rejection_counts[RiskReason.REDUCE_ONLY_MODE] == 5


def test_reduce_only_mode_clips_a_reduce_only_intent_as_it_always_does() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    trip(h, KillSwitchMode.REDUCE_ONLY)

    clipped = h.submit(h.intent(OrderSide.SELL, 0.8, reduce_only=True))

    assert clipped.quantity == 0.5


def test_reduce_only_trip_cancels_the_open_orders_that_would_grow_positions() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    grow = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))
    shrink = h.submit(h.intent(OrderSide.SELL, 0.3, limit_price=101.0))
    beyond = h.submit(h.intent(OrderSide.SELL, 0.3, limit_price=102.0))
    from_flat = h.submit(h.intent(OrderSide.BUY, 1.0, limit_price=9.0, instrument_id=ETH_ID))

    out = trip(h, KillSwitchMode.REDUCE_ONLY, "drawdown")

    assert isinstance(out[0], KillSwitchChanged)
    assert out[0].mode is KillSwitchMode.REDUCE_ONLY
    cancels = [m for m in out if isinstance(m, CancelOrder)]
    assert [c.client_order_id for c in cancels] == [
        grow.client_order_id,
        beyond.client_order_id,
        from_flat.client_order_id,
    ]
    # Not a kill-switch cancel: a live broker answers those with one cancel-all.
    assert all(c.reason == "reduce-only mode: drawdown" for c in cancels)
    assert shrink.client_order_id in h.engine.open_orders
    assert h.engine.open_orders[beyond.client_order_id].cancel_pending


def test_reset_after_reduce_only_allows_every_order_again() -> None:
    h = priced()
    trip(h, KillSwitchMode.REDUCE_ONLY)

    [changed] = h.send(ResetKillSwitch(reason="ok", **h.ts()))

    assert isinstance(changed, KillSwitchChanged)
    assert changed.mode is KillSwitchMode.REDUCE_ONLY
    assert h.submit(h.intent(OrderSide.BUY, 0.1)).quantity == 0.1


# ---------------------------------------------------------------- flatten


def test_flatten_with_no_open_orders_closes_every_position_at_market_at_once() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0, strategy_id="alpha")
    h.hold(OrderSide.BUY, 0.2, 100.0, strategy_id="beta")
    h.send(h.bar(10.0, ETH_ID))
    eth = h.submit(h.intent(OrderSide.BUY, 3.0, instrument_id=ETH_ID, strategy_id="beta"))
    h.send(h.fill(eth, 3.0, 10.0))
    part = h.submit(h.intent(OrderSide.SELL, 1.0, instrument_id=ETH_ID, strategy_id="beta"))
    h.send(h.fill(part, 1.0, 10.0))

    out = trip(h, KillSwitchMode.FLATTEN)

    assert isinstance(out[0], KillSwitchChanged)
    assert out[0].mode is KillSwitchMode.FLATTEN
    orders = [m for m in out if isinstance(m, SubmitOrder)]
    assert [(o.strategy_id, o.instrument_id, o.side, o.quantity) for o in orders] == [
        ("alpha", BTC_ID, OrderSide.SELL, 0.5),
        ("beta", BTC_ID, OrderSide.SELL, 0.2),
        ("beta", ETH_ID, OrderSide.SELL, 2.0),
    ]
    assert all(o.order_type is OrderType.MARKET for o in orders)
    assert all(o.reduce_only and o.tag == FLATTEN_TAG for o in orders)
    assert len({o.client_order_id for o in orders}) == 3
    assert all(o.client_order_id.startswith(f"{o.strategy_id}-flat") for o in orders)
    # Risk tracks them as its own orders, then behaves as halt.
    assert set(h.engine.open_orders) == {o.client_order_id for o in orders}
    for order in orders:
        h.send(h.fill(order, order.quantity, 99.0))
    assert all(q == 0.0 for q in h.engine.positions.values())
    assert h.refusal(h.intent(OrderSide.BUY, 0.1)).reason is RiskReason.KILL_SWITCH


def test_flatten_cancels_first_and_closes_once_the_venue_confirmed_every_cancel() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    resting = h.submit(h.intent(OrderSide.SELL, 0.2, limit_price=101.0))
    other = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0, strategy_id="beta"))

    out = trip(h, KillSwitchMode.FLATTEN)
    cancels = [m for m in out if isinstance(m, CancelOrder)]
    assert [type(m) for m in out] == [KillSwitchChanged, CancelOrder, CancelOrder]
    assert all(c.reason == "kill switch: operator" for c in cancels)

    assert h.send(cancelled(h, cancels[0])) == []
    # The other order filled in part before its cancel reached the venue.
    h.send(h.fill(other, 0.06, 99.0, leaves_qty=0.04))
    closers = h.send(cancelled(h, cancels[1]))

    assert [(o.strategy_id, o.side, o.quantity) for o in closers if isinstance(o, SubmitOrder)] == [
        ("alpha", OrderSide.SELL, 0.5),
        ("beta", OrderSide.SELL, 0.06),
    ]
    assert resting.client_order_id not in h.engine.open_orders
    # Flattening happens once: later order events send nothing more.
    for closer in closers:
        assert isinstance(closer, SubmitOrder)
        assert h.send(h.fill(closer, closer.quantity, 100.0)) == []


def test_flatten_closes_a_stopped_strategys_position_too() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    h.send(StrategyError(strategy_id="alpha", error_type="KeyError", error="'x'", **h.ts()))
    out = trip(h, KillSwitchMode.FLATTEN)

    [closer] = [m for m in out if isinstance(m, SubmitOrder)]
    assert (closer.strategy_id, closer.quantity) == ("alpha", 0.5)


def test_a_closing_order_the_checks_refuse_is_reported_to_its_strategy() -> None:
    h = priced(RiskConfig(price_band_pct=None))
    h.hold(OrderSide.BUY, 0.5, 100.0)
    h.send(FeedStatus(instrument_id=BTC_ID, stale=True, detail="no data", **h.ts()))
    out = trip(h, KillSwitchMode.FLATTEN)

    [refused] = [m for m in out if isinstance(m, RiskRejected)]
    assert refused.reason is RiskReason.FEED_STALE
    assert refused.strategy_id == "alpha"


# ---------------------------------------------------------------- modes from config and escalation


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (RiskConfig(price_band_pct=None, max_drawdown_pct=10.0), KillSwitchMode.HALT),
        (
            RiskConfig(
                price_band_pct=None, max_drawdown_pct=10.0, kill_switch_mode=KillSwitchMode.FLATTEN
            ),
            KillSwitchMode.FLATTEN,
        ),
        (
            RiskConfig(
                price_band_pct=None,
                max_drawdown_pct=10.0,
                kill_switch_mode=KillSwitchMode.FLATTEN,
                kill_switch_modes={KillSwitchSource.DRAWDOWN: KillSwitchMode.REDUCE_ONLY},
            ),
            KillSwitchMode.REDUCE_ONLY,
        ),
    ],
)
def test_a_breach_trips_in_the_mode_configured_for_its_source(
    config: RiskConfig, expected: KillSwitchMode
) -> None:
    h = priced(config)

    out = h.send(h.portfolio(equity=8_500.0, day_start_equity=8_500.0, peak_equity=10_000.0))

    [changed] = [m for m in out if isinstance(m, KillSwitchChanged)]
    assert changed.mode is expected


def test_an_operator_trip_without_a_mode_takes_the_operator_sources_mode() -> None:
    config = RiskConfig(
        price_band_pct=None,
        kill_switch_modes={
            KillSwitchSource.OPERATOR: KillSwitchMode.REDUCE_ONLY,
            KillSwitchSource.DAILY_LOSS: KillSwitchMode.FLATTEN,
        },
    )
    h = priced(config)

    [changed] = trip(h, None)

    assert isinstance(changed, KillSwitchChanged)
    assert changed.mode is KillSwitchMode.REDUCE_ONLY


def test_a_later_trip_only_moves_to_a_mode_that_goes_further() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    trip(h, KillSwitchMode.REDUCE_ONLY, "first")

    to_halt = trip(h, KillSwitchMode.HALT, "second")
    back = trip(h, KillSwitchMode.REDUCE_ONLY, "third")
    to_flatten = trip(h, KillSwitchMode.FLATTEN, "fourth")
    [closer] = [o for o in to_flatten if isinstance(o, SubmitOrder)]
    h.send(h.fill(closer, closer.quantity, 100.0))
    after_flatten = trip(h, KillSwitchMode.HALT, "session stopping")

    assert isinstance(to_halt[0], KillSwitchChanged)
    assert (to_halt[0].mode, to_halt[0].reason) == (KillSwitchMode.HALT, "second")
    assert back == []
    assert isinstance(to_flatten[0], KillSwitchChanged)
    assert to_flatten[0].mode is KillSwitchMode.FLATTEN
    assert closer.quantity == 0.5
    assert after_flatten == []
    assert h.engine.kill_switch_mode is KillSwitchMode.FLATTEN


def test_flatten_pending_survives_snapshot_and_restore() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    resting = h.submit(h.intent(OrderSide.SELL, 0.2, limit_price=101.0))
    out = trip(h, KillSwitchMode.FLATTEN)
    [cancel] = [m for m in out if isinstance(m, CancelOrder)]
    state = h.engine.snapshot()

    restored = Harness(NO_LIMITS)
    restored.engine.restore(type(state).model_validate_json(state.model_dump_json()))
    closers = restored.send(cancelled(restored, cancel))

    assert resting.client_order_id == cancel.client_order_id
    assert restored.engine.kill_switch_mode is KillSwitchMode.FLATTEN
    assert [(o.side, o.quantity) for o in closers if isinstance(o, SubmitOrder)] == [
        (OrderSide.SELL, 0.5)
    ]
