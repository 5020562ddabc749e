from __future__ import annotations

from tradegraph.contracts import (
    CONTROL,
    MARKET_DATA,
    PORTFOLIO,
    RISK,
    Bar,
    KillSwitchChanged,
    LiquiditySide,
    OrderFilled,
    OrderSide,
    Router,
    TripKillSwitch,
    VenueBanned,
)


def test_market_data_goes_to_venue_first_then_risk_portfolio_and_subscribers() -> None:
    router = Router({"A.V": "V", "B.V": "V"}, {"s1": ["A.V"], "s2": ["A.V", "B.V"]})
    bar = Bar(
        instrument_id="B.V",
        open=1.0,
        high=1.0,
        low=1.0,
        close=1.0,
        volume=1.0,
        interval_ns=1,
        ts_event_ns=1,
        ts_init_ns=1,
    )
    assert router.destinations(bar) == ("broker:V", RISK, PORTFOLIO, "strategy:s2")
    assert router.market_destinations("A.V") == (
        "broker:V",
        RISK,
        PORTFOLIO,
        "strategy:s1",
        "strategy:s2",
    )


def test_fills_reach_risk_portfolio_and_owner_only() -> None:
    router = Router({"A.V": "V"}, {"s1": ["A.V"], "s2": ["A.V"]})
    fill = OrderFilled(
        fill_id="V-F1",
        client_order_id="s2-000001",
        venue_order_id="V-1",
        strategy_id="s2",
        instrument_id="A.V",
        venue="V",
        side=OrderSide.BUY,
        last_qty=1.0,
        last_px=1.0,
        fee=0.0,
        liquidity=LiquiditySide.TAKER,
        leaves_qty=0.0,
        ts_event_ns=1,
        ts_init_ns=1,
    )
    assert router.destinations(fill) == (RISK, PORTFOLIO, "strategy:s2")


def test_kill_switch_commands_go_to_risk_and_changes_to_everyone() -> None:
    router = Router({"A.V": "V"}, {"s1": ["A.V"]})
    assert router.destinations(TripKillSwitch(reason="x", ts_event_ns=1, ts_init_ns=1)) == (RISK,)
    changed = KillSwitchChanged(tripped=True, reason="x", ts_event_ns=1, ts_init_ns=1)
    assert router.destinations(changed) == ("strategy:s1", CONTROL)


def test_a_ban_goes_to_the_other_callers_of_its_venue_only() -> None:
    router = Router({"A.V": "V", "B.W": "W"}, {"s1": ["A.V"]})

    def ban(source: str) -> VenueBanned:
        return VenueBanned(venue="V", until_ns=9, source=source, ts_event_ns=1, ts_init_ns=1)

    assert router.destinations(ban("broker:V")) == (MARKET_DATA,)
    assert router.destinations(ban(MARKET_DATA)) == ("broker:V",)
