"""A venue bent by time windows: outage rejections, latency, slippage and fees only in-window."""

from __future__ import annotations

import pytest

from tests.support.stubs import btcusdt
from tradegraph.config.models import FillAt, SlippageConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    CancelOrder,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
    VenueReason,
)
from tradegraph.engine.clock import SimClock
from tradegraph.execution.venue_stress import StressedVenue, StressedVenueConfig, VenueWindow
from tradegraph.testing import RecordingOutbox

MIN = 60_000_000_000
IID = "BTCUSDT.BINANCE"
BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0, maker_fee=0.0002)


def market_buy(cid: str, ts_ns: int) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=cid,
        strategy_id="s",
        instrument_id=IID,
        venue="BINANCE",
        side=OrderSide.BUY,
        quantity=1.0,
        order_type=OrderType.MARKET,
        limit_price=None,
        time_in_force=TimeInForce.GTC,
        post_only=False,
        reduce_only=False,
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
    )


class StressHarness:
    """A stressed venue driven minute by minute (bars close on whole minutes)."""

    def __init__(self, *windows: VenueWindow, venue: VenueConfig | None = None) -> None:
        self.config = StressedVenueConfig.extend(venue or VenueConfig(), *windows)
        self.clock = SimClock(0)
        self.outbox = RecordingOutbox()
        self.venue = StressedVenue(self.config, {IID: BTC}, self.clock, self.outbox)
        self.submitted = 0

    def at(self, ts_ns: int) -> None:
        """Move time to ``ts_ns``, delivering each due timer at its own time."""
        while due := [t for t in self.clock.pending_timers.values() if t <= ts_ns]:
            for fired in self.clock.advance_to(min(due)):
                self.venue.handle(fired)
        self.clock.advance_to(ts_ns)

    def bar_closing_at(self, close_ns: int, price: float = 100.0, volume: float = 1e6) -> None:
        self.at(close_ns)
        self.venue.handle(
            Bar(
                instrument_id=IID,
                open=price,
                high=price,
                low=price,
                close=price,
                volume=volume,
                interval_ns=MIN,
                ts_event_ns=close_ns,
                ts_init_ns=close_ns,
            )
        )

    def submit_at(self, ts_ns: int) -> str:
        self.at(ts_ns)
        self.submitted += 1
        cid = f"o{self.submitted}"
        self.venue.handle(market_buy(cid, ts_ns))
        return cid

    def fill_of(self, cid: str) -> OrderFilled:
        [fill] = [f for f in self.outbox.of_type(OrderFilled) if f.client_order_id == cid]
        return fill

    def rejected(self) -> dict[str, str]:
        return {r.client_order_id: r.reason for r in self.outbox.of_type(OrderRejected)}

    def accepted_at(self) -> dict[str, int]:
        return {a.client_order_id: a.ts_event_ns for a in self.outbox.of_type(OrderAccepted)}


OUTAGE = VenueWindow(
    label="exchange_outage", start_ns=10 * MIN, end_ns=20 * MIN, reject_reason="venue down"
)


def test_order_reaching_the_venue_in_an_outage_is_rejected_with_the_reason() -> None:
    h = StressHarness(OUTAGE)

    before = h.submit_at(9 * MIN)
    inside = h.submit_at(10 * MIN)
    late_inside = h.submit_at(20 * MIN - 1)
    after = h.submit_at(20 * MIN)
    h.bar_closing_at(22 * MIN)

    assert h.rejected() == {
        inside: "venue down (exchange_outage)",
        late_inside: "venue down (exchange_outage)",
    }
    assert set(h.accepted_at()) == {before, after}
    assert h.fill_of(before).last_qty == 1.0
    assert h.fill_of(after).last_qty == 1.0
    assert h.venue.window_rejections == 2
    assert {r.code for r in h.outbox.of_type(OrderRejected)} == {VenueReason.VENUE_UNAVAILABLE}


def test_outage_judges_orders_when_they_arrive_not_when_they_were_sent() -> None:
    h = StressHarness(OUTAGE, venue=VenueConfig(latency_ms=120_000.0))

    lands_inside = h.submit_at(8 * MIN + 30_000_000_000)  # arrives at 10:30
    lands_after = h.submit_at(19 * MIN)  # sent inside, arrives at 21:00
    h.at(21 * MIN)

    assert set(h.rejected()) == {lands_inside}
    assert h.accepted_at() == {lands_after: 21 * MIN}


def test_cancels_still_work_in_an_outage() -> None:
    h = StressHarness(OUTAGE)
    cid = h.submit_at(5 * MIN)
    h.at(12 * MIN)

    h.venue.handle(
        CancelOrder(
            client_order_id=cid,
            strategy_id="s",
            instrument_id=IID,
            venue="BINANCE",
            ts_event_ns=12 * MIN,
            ts_init_ns=12 * MIN,
        )
    )

    assert [c.client_order_id for c in h.outbox.of_type(OrderCancelled)] == [cid]


def test_latency_spike_delays_only_commands_sent_in_its_window() -> None:
    spike = VenueWindow(
        label="latency_spike", start_ns=10 * MIN, end_ns=20 * MIN, extra_latency_ms=90_000.0
    )
    h = StressHarness(spike, venue=VenueConfig(latency_ms=1_000.0))

    before = h.submit_at(9 * MIN)
    inside = h.submit_at(15 * MIN)
    after = h.submit_at(20 * MIN)
    h.at(30 * MIN)

    assert h.accepted_at() == {
        before: 9 * MIN + 1_000_000_000,
        inside: 15 * MIN + 91_000_000_000,
        after: 20 * MIN + 1_000_000_000,
    }


def test_fee_shock_charges_more_only_for_fills_in_its_window() -> None:
    shock = VenueWindow(label="fee_shock", start_ns=10 * MIN, end_ns=20 * MIN, fee_factor=3.0)
    h = StressHarness(shock)

    early = h.submit_at(8 * MIN)
    h.bar_closing_at(9 * MIN)
    inside = h.submit_at(9 * MIN + 1)
    h.bar_closing_at(11 * MIN)  # fills at 11:00, inside the window
    after = h.submit_at(19 * MIN)
    h.bar_closing_at(21 * MIN)  # fills at 21:00, after it

    assert h.fill_of(early).fee == pytest.approx(100.0 * 0.001)
    assert h.fill_of(inside).fee == pytest.approx(100.0 * 0.003)
    assert h.fill_of(after).fee == pytest.approx(100.0 * 0.001)


def test_liquidity_crunch_widens_slippage_only_in_its_window() -> None:
    crunch = VenueWindow(
        label="liquidity_crunch",
        start_ns=10 * MIN,
        end_ns=20 * MIN,
        slippage_factor=5.0,
        min_slippage_bps=1.0,
    )
    h = StressHarness(crunch, venue=VenueConfig(slippage=SlippageConfig(model="fixed", bps=2.0)))

    outside = h.submit_at(8 * MIN)
    h.bar_closing_at(9 * MIN)
    inside = h.submit_at(9 * MIN + 1)
    h.bar_closing_at(11 * MIN)

    assert h.fill_of(outside).last_px == pytest.approx(100.02)  # 2 bps
    assert h.fill_of(inside).last_px == pytest.approx(100.10)  # 2 bps x 5


def test_overlapping_windows_compose() -> None:
    windows = (
        VenueWindow(label="a", start_ns=10 * MIN, end_ns=30 * MIN, fee_factor=2.0),
        VenueWindow(label="b", start_ns=20 * MIN, end_ns=40 * MIN, fee_factor=3.0),
        VenueWindow(label="c", start_ns=20 * MIN, end_ns=25 * MIN, extra_latency_ms=500.0),
        VenueWindow(label="d", start_ns=None, end_ns=None, extra_latency_ms=250.0),
    )
    h = StressHarness(*windows)

    assert h.venue.conditions_at(5 * MIN).fee_factor == 1.0
    assert h.venue.conditions_at(15 * MIN).fee_factor == 2.0
    assert h.venue.conditions_at(22 * MIN).fee_factor == 6.0
    assert h.venue.conditions_at(35 * MIN).fee_factor == 3.0
    assert h.venue.conditions_at(22 * MIN).latency_ns == 750_000_000
    assert h.venue.conditions_at(26 * MIN).latency_ns == 250_000_000
    assert h.venue.conditions_at(22 * MIN).valid_from_ns == 20 * MIN
    assert h.venue.conditions_at(22 * MIN).valid_until_ns == 25 * MIN


def test_window_with_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="end_ns"):
        VenueWindow(label="x", start_ns=10, end_ns=10)


def test_extend_keeps_earlier_windows_and_the_venue_settings() -> None:
    venue = VenueConfig(name="X", fill_at=FillAt.CLOSE, latency_ms=5.0)

    once = StressedVenueConfig.extend(venue, OUTAGE)
    twice = StressedVenueConfig.extend(once, OUTAGE.model_copy(update={"label": "second"}))

    assert [w.label for w in twice.windows] == ["exchange_outage", "second"]
    assert (twice.name, twice.fill_at, twice.latency_ms) == ("X", FillAt.CLOSE, 5.0)
    assert "windows" not in VenueConfig.model_validate(venue.model_dump()).model_dump()


def test_restored_venue_behaves_like_the_original_in_a_window() -> None:
    h = StressHarness(OUTAGE)
    h.submit_at(11 * MIN)
    twin_outbox = RecordingOutbox()
    twin = StressedVenue(h.config, {IID: BTC}, h.clock, twin_outbox)
    twin.restore(StressedVenue.State.model_validate_json(h.venue.snapshot().model_dump_json()))

    h.submit_at(12 * MIN)
    twin.handle(market_buy("o2", 12 * MIN))

    assert twin.window_rejections == h.venue.window_rejections == 2
    assert twin_outbox.messages == h.outbox.messages[-1:]
