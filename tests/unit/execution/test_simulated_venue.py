"""Matching, fills, fees, slippage, latency and cancels of the simulated venue."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import stubs
from tests.support.stubs import btcusdt, ethusdt
from tradegraph.config.models import FillAt, SlippageConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    CancelOrder,
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    TimeInForce,
    VenueReason,
)
from tradegraph.contracts.state import StateVersionError
from tradegraph.engine.clock import SimClock
from tradegraph.execution import (
    IOC_REMAINDER,
    POST_ONLY_WOULD_TAKE,
    SimulatedVenue,
)
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
IID = "BTCUSDT.BINANCE"
BTC = btcusdt(
    lot_size=0.001, min_quantity=0.0, min_notional=0.0, maker_fee=0.0002, taker_fee=0.0007
)
ETH_OTHER_VENUE = ethusdt(venue="OKX", lot_size=0.001, min_quantity=0.0, min_notional=0.0)


class Harness:
    """A venue with a sim clock and a recording outbox, plus helpers to drive it."""

    def __init__(self, config: VenueConfig | None = None, start_ns: int = MINUTE_NS) -> None:
        self.clock = SimClock(start_ns)
        self.outbox = RecordingOutbox()
        self.venue = SimulatedVenue(
            config or VenueConfig(),
            {BTC.instrument_id: BTC, ETH_OTHER_VENUE.instrument_id: ETH_OTHER_VENUE},
            self.clock,
            self.outbox,
        )

    def deliver(self, msg: Message) -> None:
        """Move the clock to the message time, fire due timers, then hand the message over."""
        for fired in self.clock.advance_to(max(msg.ts_event_ns, self.clock.now_ns())):
            self.venue.handle(fired)
        self.venue.handle(msg)

    def advance(self, ts_ns: int) -> None:
        for fired in self.clock.advance_to(ts_ns):
            self.venue.handle(fired)

    def bar(
        self,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float = 1_000.0,
        instrument_id: str = IID,
    ) -> Bar:
        """Deliver the next one-minute bar and return it."""
        bar = stubs.bar(
            close,
            ts_ns=self.clock.now_ns() + MINUTE_NS,
            instrument_id=instrument_id,
            open_=open_,
            high=high,
            low=low,
            volume=volume,
        )
        self.deliver(bar)
        return bar

    def trade(self, price: float, size: float, trade_id: str) -> None:
        now = self.clock.now_ns() + 1_000
        self.deliver(stubs.trade(price, size=size, trade_id=trade_id, ts_ns=now))

    def quote(self, bid: float, ask: float, bid_size: float = 10.0, ask_size: float = 10.0) -> None:
        now = self.clock.now_ns() + 1_000
        self.deliver(stubs.quote(bid, ask, bid_size=bid_size, ask_size=ask_size, ts_ns=now))

    def submit(
        self,
        cid: str,
        side: OrderSide = OrderSide.BUY,
        quantity: float = 1.0,
        limit: float | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        instrument_id: str = IID,
        venue: str = "BINANCE",
    ) -> None:
        now = self.clock.now_ns()
        self.venue.handle(
            stubs.submit(
                side,
                quantity,
                client_order_id=cid,
                strategy_id="s1",
                instrument_id=instrument_id,
                venue=venue,
                limit_price=limit,
                time_in_force=tif,
                post_only=post_only,
                tag="t",
                ts_ns=now,
            )
        )

    def cancel(self, cid: str) -> None:
        now = self.clock.now_ns()
        self.venue.handle(
            CancelOrder(
                client_order_id=cid,
                strategy_id="s1",
                instrument_id=IID,
                venue="BINANCE",
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    @property
    def fills(self) -> list[OrderFilled]:
        return self.outbox.of_type(OrderFilled)


# ----------------------------------------------------------------------------- market orders


def test_market_order_fills_at_next_bar_open_by_default() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=2.0)
    assert h.outbox.of_type(OrderAccepted)
    assert h.fills == []

    h.bar(102.0, 103.0, 101.0, 102.5)

    [fill] = h.fills
    assert fill.last_px == 102.0
    assert fill.last_qty == 2.0
    assert fill.leaves_qty == 0.0
    assert fill.liquidity is LiquiditySide.TAKER
    assert fill.ts_event_ns == h.clock.now_ns()
    assert h.venue.open_orders == {}


def test_market_order_fills_at_signal_close_with_fill_at_close() -> None:
    h = Harness(VenueConfig(fill_at=FillAt.CLOSE))
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("o1", side=OrderSide.SELL, quantity=1.5)

    [accepted] = h.outbox.of_type(OrderAccepted)
    [fill] = h.fills
    assert h.outbox.messages.index(accepted) < h.outbox.messages.index(fill)
    assert fill.last_px == 100.5
    assert fill.side is OrderSide.SELL
    assert fill.last_qty == 1.5


def test_market_order_without_any_price_waits_for_first_bar_even_with_fill_at_close() -> None:
    h = Harness(VenueConfig(fill_at=FillAt.CLOSE))
    h.submit("o1")
    assert h.fills == []

    h.bar(100.0, 101.0, 99.0, 100.5)

    assert [f.last_px for f in h.fills] == [100.0]


def test_ids_are_deterministic_and_venue_prefixed() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1")
    h.submit("o2")

    h.bar(100.0, 101.0, 99.0, 100.5)

    assert [a.venue_order_id for a in h.outbox.of_type(OrderAccepted)] == [
        "BINANCE-00000001",
        "BINANCE-00000002",
    ]
    assert [f.fill_id for f in h.fills] == ["BINANCE-F00000001", "BINANCE-F00000002"]
    assert h.venue.component_id == "broker:BINANCE"


def test_market_order_on_trade_ticks_fills_at_next_trade_price() -> None:
    h = Harness()
    h.trade(100.0, 5.0, "t1")
    h.submit("o1", quantity=1.0)
    assert h.fills == []

    h.trade(100.7, 5.0, "t2")

    [fill] = h.fills
    assert fill.last_px == 100.7


def test_market_order_on_quotes_fills_at_the_touch_on_arrival() -> None:
    h = Harness()
    h.quote(99.9, 100.1)

    h.submit("buy", side=OrderSide.BUY)
    h.submit("sell", side=OrderSide.SELL)

    assert [(f.client_order_id, f.last_px) for f in h.fills] == [("buy", 100.1), ("sell", 99.9)]


def test_market_order_on_quotes_is_capped_by_touch_size() -> None:
    h = Harness(VenueConfig(max_volume_share=0.5))
    h.quote(99.9, 100.1, ask_size=1.0)
    h.submit("o1", quantity=1.0)

    h.quote(99.8, 100.2, ask_size=4.0)

    assert [(f.last_qty, f.last_px, f.leaves_qty) for f in h.fills] == [
        (0.5, 100.1, 0.5),
        (0.5, 100.2, 0.0),
    ]


# ----------------------------------------------------------------------------- fees


def test_taker_fill_pays_taker_fee() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.0)
    h.submit("o1", quantity=2.0)

    h.bar(100.0, 101.0, 99.0, 100.0)

    [fill] = h.fills
    assert fill.liquidity is LiquiditySide.TAKER
    assert fill.fee == pytest.approx(2.0 * 100.0 * 0.0007)


def test_maker_fill_pays_maker_fee() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.0)
    h.submit("o1", quantity=2.0, limit=98.0)

    h.bar(99.0, 99.5, 97.0, 98.5)

    [fill] = h.fills
    assert fill.liquidity is LiquiditySide.MAKER
    assert fill.fee == pytest.approx(2.0 * 98.0 * 0.0002)


def test_venue_fee_overrides_replace_instrument_fees() -> None:
    h = Harness(VenueConfig(maker_fee=-0.0001, taker_fee=0.002, fill_at=FillAt.CLOSE))
    h.bar(100.0, 101.0, 99.0, 100.0)
    h.submit("taker", quantity=1.0)
    h.submit("maker", quantity=1.0, limit=98.0)

    h.bar(99.0, 99.5, 97.0, 98.5)

    fees = {f.client_order_id: f.fee for f in h.fills}
    assert fees["taker"] == pytest.approx(100.0 * 0.002)
    assert fees["maker"] == pytest.approx(-98.0 * 0.0001)


# ----------------------------------------------------------------------------- slippage


@pytest.mark.parametrize(
    ("slippage", "side", "expected_px"),
    [
        (SlippageConfig(model="none", bps=50.0), OrderSide.BUY, 100.0),
        (SlippageConfig(model="fixed", bps=10.0), OrderSide.BUY, 100.10),
        (SlippageConfig(model="fixed", bps=10.0), OrderSide.SELL, 99.90),
        # qty 100 of volume 400: participation 0.25.
        (SlippageConfig(model="linear", bps=2.0, impact_bps=40.0), OrderSide.BUY, 100.12),
        (SlippageConfig(model="linear", bps=2.0, impact_bps=40.0), OrderSide.SELL, 99.88),
        # sqrt(0.25) = 0.5: 2 + 20 = 22 bps.
        (SlippageConfig(model="sqrt", bps=2.0, impact_bps=40.0), OrderSide.BUY, 100.22),
        (SlippageConfig(model="sqrt", bps=2.0, impact_bps=40.0), OrderSide.SELL, 99.78),
    ],
)
def test_taker_fill_price_follows_slippage_model(
    slippage: SlippageConfig, side: OrderSide, expected_px: float
) -> None:
    h = Harness(VenueConfig(slippage=slippage))
    h.bar(100.0, 101.0, 99.0, 100.0)
    h.submit("o1", side=side, quantity=100.0)

    h.bar(100.0, 101.0, 99.0, 100.0, volume=400.0)

    [fill] = h.fills
    assert fill.last_px == pytest.approx(expected_px)
    assert fill.fee == pytest.approx(100.0 * fill.last_px * 0.0007)


def test_maker_fill_pays_no_slippage() -> None:
    h = Harness(VenueConfig(slippage=SlippageConfig(model="fixed", bps=50.0)))
    h.bar(100.0, 101.0, 99.0, 100.0)
    h.submit("o1", limit=98.0)

    h.bar(99.0, 99.5, 97.0, 98.5)

    assert [f.last_px for f in h.fills] == [98.0]


def test_slippage_never_pushes_a_marketable_limit_past_its_limit() -> None:
    h = Harness(VenueConfig(slippage=SlippageConfig(model="fixed", bps=100.0)))
    h.bar(100.0, 101.0, 99.0, 100.0)

    h.submit("o1", limit=100.3)

    assert [f.last_px for f in h.fills] == [100.3]


# ----------------------------------------------------------------------------- limit orders


def test_marketable_limit_on_arrival_takes_at_reference_price() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("buy", side=OrderSide.BUY, limit=101.0)
    h.submit("sell", side=OrderSide.SELL, limit=99.0)

    assert [(f.client_order_id, f.last_px, f.liquidity) for f in h.fills] == [
        ("buy", 100.5, LiquiditySide.TAKER),
        ("sell", 100.5, LiquiditySide.TAKER),
    ]


def test_resting_buy_limit_fills_at_limit_when_bar_trades_through() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.5)
    h.bar(100.5, 101.0, 99.5, 100.0)  # touches the limit only: no fill
    assert h.fills == []

    h.bar(100.0, 100.2, 99.4, 99.8)

    [fill] = h.fills
    assert (fill.last_px, fill.liquidity) == (99.5, LiquiditySide.MAKER)


def test_resting_buy_limit_gapped_through_fills_at_limit_not_open() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.5)

    h.bar(98.0, 98.5, 97.0, 98.2)

    [fill] = h.fills
    assert (fill.last_px, fill.liquidity) == (99.5, LiquiditySide.MAKER)


def test_resting_sell_limit_fills_when_bar_high_exceeds_limit() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", side=OrderSide.SELL, limit=102.0)
    h.bar(100.5, 102.0, 100.0, 101.0)  # touches only
    assert h.fills == []

    h.bar(101.0, 102.5, 100.5, 102.2)

    [fill] = h.fills
    assert (fill.last_px, fill.side, fill.liquidity) == (102.0, OrderSide.SELL, LiquiditySide.MAKER)


def test_resting_limit_does_not_fill_on_the_bar_it_was_placed_after() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 95.0, 100.5)  # low far below the limit placed afterwards

    h.submit("o1", limit=99.0)

    assert h.fills == []
    assert list(h.venue.open_orders) == ["o1"]


def test_resting_buy_limit_on_trade_ticks_fills_when_trade_prints_below() -> None:
    h = Harness()
    h.trade(100.0, 5.0, "t1")
    h.submit("o1", limit=99.5)
    h.trade(99.5, 5.0, "t2")
    assert h.fills == []

    h.trade(99.4, 5.0, "t3")

    [fill] = h.fills
    assert (fill.last_px, fill.liquidity) == (99.5, LiquiditySide.MAKER)


def test_resting_buy_limit_on_quotes_fills_when_ask_drops_below() -> None:
    h = Harness()
    h.quote(99.9, 100.1)
    h.submit("o1", limit=99.5)
    h.quote(99.4, 99.5)
    assert h.fills == []

    h.quote(99.3, 99.4)

    [fill] = h.fills
    assert (fill.last_px, fill.liquidity) == (99.5, LiquiditySide.MAKER)


def test_post_only_that_would_take_is_rejected() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("o1", limit=100.5, post_only=True)

    [rejected] = h.outbox.of_type(OrderRejected)
    assert rejected.reason == POST_ONLY_WOULD_TAKE
    assert rejected.code is VenueReason.POST_ONLY_WOULD_TAKE
    assert h.outbox.of_type(OrderAccepted) == []
    assert h.venue.open_orders == {}


def test_post_only_below_market_rests_and_fills_as_maker() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=100.0, post_only=True)

    h.bar(100.5, 100.6, 99.9, 100.2)

    assert [(f.last_px, f.liquidity) for f in h.fills] == [(100.0, LiquiditySide.MAKER)]


def test_ioc_fills_capped_part_and_cancels_remainder() -> None:
    h = Harness(VenueConfig(max_volume_share=0.1))
    h.bar(100.0, 101.0, 99.0, 100.5, volume=30.0)

    h.submit("o1", quantity=5.0, limit=101.0, tif=TimeInForce.IOC)

    [fill] = h.fills
    [cancelled] = h.outbox.of_type(OrderCancelled)
    assert (fill.last_qty, fill.leaves_qty) == (3.0, 2.0)
    assert cancelled.reason == IOC_REMAINDER
    assert h.outbox.messages.index(fill) < h.outbox.messages.index(cancelled)
    assert h.venue.open_orders == {}


def test_non_marketable_ioc_is_cancelled_without_fill() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)

    h.submit("o1", limit=99.0, tif=TimeInForce.IOC)

    assert h.fills == []
    assert [c.reason for c in h.outbox.of_type(OrderCancelled)] == [IOC_REMAINDER]
    h.bar(100.0, 100.0, 98.0, 98.5)
    assert h.fills == []


def test_ioc_market_order_gets_one_chance_at_next_open() -> None:
    h = Harness(VenueConfig(max_volume_share=0.5))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=4.0, tif=TimeInForce.IOC)

    h.bar(101.0, 102.0, 100.0, 101.5, volume=2.0)
    h.bar(101.0, 102.0, 100.0, 101.5, volume=100.0)

    assert [(f.last_qty, f.last_px) for f in h.fills] == [(1.0, 101.0)]
    assert [c.reason for c in h.outbox.of_type(OrderCancelled)] == [IOC_REMAINDER]


# ----------------------------------------------------------------------------- partial fills


def test_partial_fills_across_bars_respect_volume_cap() -> None:
    h = Harness(VenueConfig(max_volume_share=0.25))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=10.0)

    h.bar(101.0, 102.0, 100.0, 101.5, volume=16.0)  # cap 4
    h.bar(102.0, 103.0, 101.0, 102.5, volume=0.002)  # cap 0.0005 floors to 0: nothing
    h.bar(103.0, 104.0, 102.0, 103.5, volume=20.0)  # cap 5
    h.bar(104.0, 105.0, 103.0, 104.5, volume=1_000.0)  # cap 250, only 1 left

    assert [(f.last_qty, f.last_px, f.leaves_qty) for f in h.fills] == [
        (4.0, 101.0, 6.0),
        (5.0, 103.0, 1.0),
        (1.0, 104.0, 0.0),
    ]
    assert sum(f.last_qty for f in h.fills) == pytest.approx(10.0)
    assert h.venue.open_orders == {}


def test_partial_fill_quantity_is_floored_to_lot() -> None:
    h = Harness(VenueConfig(max_volume_share=0.3))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=1.0)

    h.bar(101.0, 102.0, 100.0, 101.5, volume=1.0)

    [fill] = h.fills
    assert fill.last_qty == pytest.approx(0.3)
    assert fill.leaves_qty == pytest.approx(0.7)
    order = h.venue.open_orders["o1"]
    assert order.filled_qty + order.leaves_qty == pytest.approx(1.0)


def test_marketable_limit_remainder_rests_as_maker() -> None:
    h = Harness(VenueConfig(max_volume_share=0.5))
    h.bar(100.0, 101.0, 99.0, 100.0, volume=2.0)
    h.submit("o1", quantity=3.0, limit=100.0)

    h.bar(100.5, 101.0, 99.8, 100.2, volume=100.0)

    assert [(f.last_qty, f.last_px, f.liquidity) for f in h.fills] == [
        (1.0, 100.0, LiquiditySide.TAKER),
        (2.0, 100.0, LiquiditySide.MAKER),
    ]


# ----------------------------------------------------------------------------- validation


def test_duplicate_client_order_id_is_rejected() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=90.0)

    h.submit("o1", limit=91.0)

    [rejected] = h.outbox.of_type(OrderRejected)
    assert "duplicate" in rejected.reason
    assert rejected.code is VenueReason.DUPLICATE_ORDER
    assert len(h.outbox.of_type(OrderAccepted)) == 1
    assert h.venue.open_orders["o1"].limit_price == 90.0


def test_client_id_of_a_finished_order_cannot_be_reused() -> None:
    h = Harness(VenueConfig(fill_at=FillAt.CLOSE))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1")

    h.submit("o1")

    assert len(h.fills) == 1
    assert len(h.outbox.of_type(OrderRejected)) == 1


@pytest.mark.parametrize(
    ("instrument_id", "venue", "quantity", "fragment", "code"),
    [
        ("DOGEUSDT.BINANCE", "BINANCE", 1.0, "unknown instrument", VenueReason.UNKNOWN_INSTRUMENT),
        ("ETHUSDT.OKX", "BINANCE", 1.0, "unknown instrument", VenueReason.UNKNOWN_INSTRUMENT),
        ("ETHUSDT.OKX", "OKX", 1.0, "unknown instrument", VenueReason.UNKNOWN_INSTRUMENT),
        (IID, "BINANCE", 0.0, "quantity", VenueReason.INVALID_ORDER),
        (IID, "BINANCE", -2.0, "quantity", VenueReason.INVALID_ORDER),
    ],
)
def test_invalid_submit_is_rejected_with_reason(
    instrument_id: str, venue: str, quantity: float, fragment: str, code: VenueReason
) -> None:
    h = Harness()

    h.submit("o1", quantity=quantity, instrument_id=instrument_id, venue=venue)

    [rejected] = h.outbox.of_type(OrderRejected)
    assert fragment in rejected.reason
    assert rejected.code is code
    assert h.outbox.of_type(OrderAccepted) == []


# ----------------------------------------------------------------------------- latency


def test_latency_delays_acceptance_until_timer_fires() -> None:
    h = Harness(VenueConfig(latency_ms=5.0))
    h.bar(100.0, 101.0, 99.0, 100.5)
    sent_ns = h.clock.now_ns()

    h.submit("o1", limit=99.0)

    assert h.outbox.messages == []
    assert h.clock.pending_timers == {"accept:o1": sent_ns + 5_000_000}
    assert h.venue.in_flight_count == 1
    h.advance(sent_ns + 4_999_999)
    assert h.outbox.messages == []
    h.advance(sent_ns + 5_000_000)
    [accepted] = h.outbox.of_type(OrderAccepted)
    assert accepted.ts_event_ns == sent_ns + 5_000_000
    assert list(h.venue.open_orders) == ["o1"]


def test_latency_market_order_with_fill_at_close_fills_at_close_known_on_arrival() -> None:
    h = Harness(VenueConfig(latency_ms=10.0, fill_at=FillAt.CLOSE))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1")

    h.advance(h.clock.now_ns() + 10_000_000)

    assert [f.last_px for f in h.fills] == [100.5]


def test_latency_applies_to_cancels_too() -> None:
    h = Harness(VenueConfig(latency_ms=1.0))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.0)
    h.advance(h.clock.now_ns() + 1_000_000)

    h.cancel("o1")

    assert h.outbox.of_type(OrderCancelled) == []
    h.advance(h.clock.now_ns() + 1_000_000)
    assert len(h.outbox.of_type(OrderCancelled)) == 1
    assert h.venue.open_orders == {}


def test_cancel_of_order_still_in_flight_cancels_it_before_it_arrives() -> None:
    h = Harness(VenueConfig(latency_ms=5.0))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.0)
    h.advance(h.clock.now_ns() + 1)
    h.venue.handle(
        CancelOrder(
            client_order_id="o1",
            strategy_id="s1",
            instrument_id=IID,
            venue="BINANCE",
            ts_event_ns=0,
            ts_init_ns=0,
        )
    )
    h.venue.restore(h.venue.snapshot())  # keeps in-flight commands
    cancel_timer = "cancel:o1"
    # Deliver the cancel first, as if the network reordered them.
    [fired] = [
        t for t in h.clock.advance_to(h.clock.now_ns() + 5_000_000) if t.name == cancel_timer
    ]

    h.venue.handle(fired)

    assert [c.client_order_id for c in h.outbox.of_type(OrderCancelled)] == ["o1"]
    assert h.outbox.of_type(OrderAccepted) == []
    assert h.venue.in_flight_count == 0
    assert "accept:o1" not in h.clock.pending_timers


# ----------------------------------------------------------------------------- cancels


def test_cancel_open_order_emits_cancelled_and_removes_it() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.0)

    h.cancel("o1")

    [cancelled] = h.outbox.of_type(OrderCancelled)
    assert cancelled.client_order_id == "o1"
    assert cancelled.code is None  # asked for, not a refusal
    assert h.venue.open_orders == {}
    h.bar(99.0, 99.5, 95.0, 96.0)
    assert h.fills == []


def test_cancel_of_unknown_or_finished_order_is_counted_not_emitted() -> None:
    h = Harness(VenueConfig(fill_at=FillAt.CLOSE))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("filled")
    emitted_before = len(h.outbox.messages)

    h.cancel("filled")
    h.cancel("never-seen")

    assert len(h.outbox.messages) == emitted_before
    assert h.venue.ignored_cancels == 2


# ----------------------------------------------------------------------------- hot path


def test_bar_with_no_working_orders_emits_nothing_and_becomes_reference() -> None:
    h = Harness(VenueConfig(fill_at=FillAt.CLOSE))

    h.bar(100.0, 101.0, 99.0, 100.5)
    h.bar(100.5, 101.0, 99.0, 100.7)

    assert h.outbox.messages == []
    h.submit("o1")
    assert [f.last_px for f in h.fills] == [100.7]


def test_bars_of_other_instruments_leave_orders_alone() -> None:
    h = Harness()
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", limit=99.0)

    h.bar(10.0, 11.0, 1.0, 5.0, instrument_id="SOLUSDT.BINANCE")

    assert h.fills == []
    assert list(h.venue.open_orders) == ["o1"]


def test_events_built_without_validation_equal_their_validated_twins() -> None:
    h = Harness(VenueConfig(max_volume_share=0.1, slippage=SlippageConfig(model="fixed", bps=5.0)))
    h.bar(100.0, 101.0, 99.0, 100.5, volume=30.0)
    h.submit("ioc", quantity=5.0, limit=101.0, tif=TimeInForce.IOC)
    h.submit("resting", side=OrderSide.SELL, quantity=1.0, limit=102.0)
    h.submit("market", quantity=1.0)
    h.submit("market", quantity=1.0)
    h.submit("cancelled", limit=90.0)
    h.cancel("cancelled")
    h.bar(100.0, 103.0, 99.5, 102.5, volume=30.0)

    emitted = h.outbox.messages
    kinds = {type(m) for m in emitted}
    # repr shows every field in order with its type (1 vs 1.0, enum members), unlike ==.
    revalidated = [repr(type(m).model_validate(m.model_dump())) for m in emitted]

    assert kinds == {OrderAccepted, OrderFilled, OrderCancelled, OrderRejected}
    assert {m.liquidity for m in h.fills} == {LiquiditySide.MAKER, LiquiditySide.TAKER}
    assert [repr(m) for m in emitted] == revalidated


# ----------------------------------------------------------------------------- snapshot


def _run_script(h: Harness, steps: list[tuple[str, Any]]) -> None:
    for kind, arg in steps:
        if kind == "bar":
            h.bar(*arg)
        elif kind == "submit":
            h.submit(**arg)
        elif kind == "cancel":
            h.cancel(arg)
        elif kind == "advance":
            h.advance(h.clock.now_ns() + arg)


def test_snapshot_restore_round_trip_behaves_identically() -> None:
    config = VenueConfig(
        latency_ms=2.0,
        max_volume_share=0.2,
        slippage=SlippageConfig(model="sqrt", bps=1.0, impact_bps=10.0),
    )
    prefix: list[tuple[str, Any]] = [
        ("bar", (100.0, 101.0, 99.0, 100.5, 10.0)),
        ("submit", {"cid": "m1", "quantity": 5.0}),
        ("submit", {"cid": "l1", "quantity": 3.0, "limit": 99.5}),
        ("submit", {"cid": "s1", "side": OrderSide.SELL, "quantity": 1.0, "limit": 102.0}),
        ("advance", 2_000_000),
        ("bar", (100.0, 100.5, 99.0, 99.8, 10.0)),
        ("submit", {"cid": "late", "quantity": 1.0, "limit": 98.0}),  # still in flight
        ("cancel", "s1"),  # still in flight
        ("cancel", "nobody"),
    ]
    suffix: list[tuple[str, Any]] = [
        ("bar", (99.0, 100.0, 97.0, 98.0, 10.0)),
        ("submit", {"cid": "l1", "limit": 1.0}),
        ("advance", 2_000_000),
        ("bar", (98.0, 103.0, 97.5, 102.5, 10.0)),
        ("bar", (102.0, 103.0, 101.0, 102.5, 10.0)),
    ]
    original = Harness(config)
    _run_script(original, prefix)
    state = SimulatedVenue.State.model_validate_json(original.venue.snapshot().model_dump_json())
    restored = Harness(config, start_ns=original.clock.now_ns())
    restored.venue.restore(state)
    original.outbox.clear()

    _run_script(original, suffix)
    _run_script(restored, suffix)

    assert restored.outbox.messages == original.outbox.messages
    assert len(original.fills) >= 3
    assert restored.venue.snapshot() == original.venue.snapshot()


def test_stored_state_of_another_schema_version_is_refused() -> None:
    h = Harness()
    stored = h.venue.snapshot().model_dump(mode="json")

    with pytest.raises(StateVersionError, match="VenueState: stored state has schema_version 99"):
        SimulatedVenue.State.model_validate({**stored, "schema_version": 99})


def test_order_arriving_mid_bar_never_fills_at_a_price_from_before_it_arrived() -> None:
    # 250 ms of latency: the order reaches the venue after the next bar has opened, so that
    # bar's open (and its low) predate it; it fills at the open of the bar after.
    h = Harness(VenueConfig(latency_ms=250.0))
    h.bar(100.0, 101.0, 99.0, 100.5)
    h.submit("o1", quantity=1.0)
    h.submit("l1", quantity=1.0, limit=99.0)

    h.bar(102.0, 103.0, 90.0, 102.5)  # opened before both orders arrived
    assert h.fills == []

    h.bar(104.0, 105.0, 98.0, 104.5)
    assert sorted((f.client_order_id, f.last_px) for f in h.fills) == [("l1", 99.0), ("o1", 104.0)]
