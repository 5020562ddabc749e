"""The simulated venue refuses what its cash account cannot pay, as a spot exchange does."""

from __future__ import annotations

import pytest

from tests.support.stubs import btcusdt
from tradegraph.config.models import VenueConfig
from tradegraph.contracts import (
    Bar,
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
from tradegraph.execution import SimulatedVenue
from tradegraph.portfolio import CashAccount
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
BTC = btcusdt(min_quantity=0.0, min_notional=0.0)
IID = BTC.instrument_id
INSUFFICIENT = VenueReason.INSUFFICIENT_BALANCE.value + ": "


class Harness:
    def __init__(self, usdt: float, btc: float = 0.0, buffer_pct: float = 5.0) -> None:
        self.clock = SimClock(MINUTE_NS)
        self.outbox = RecordingOutbox()
        self.account = CashAccount(
            "BINANCE",
            {"USDT": usdt, "BTC": btc},
            {IID: BTC},
            market_buy_buffer_pct=buffer_pct,
        )
        self.venue = SimulatedVenue(
            VenueConfig(), {IID: BTC}, self.clock, self.outbox, account=self.account
        )
        self._n = 0

    def bar(self, open_: float, close: float | None = None, volume: float = 1_000.0) -> None:
        now = self.clock.now_ns() + MINUTE_NS
        self.clock.advance_to(now)
        close = open_ if close is None else close
        self.venue.handle(
            Bar(
                instrument_id=IID,
                open=open_,
                high=max(open_, close),
                low=min(open_, close),
                close=close,
                volume=volume,
                interval_ns=MINUTE_NS,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def submit(self, side: OrderSide, quantity: float, limit: float | None = None) -> str:
        self._n += 1
        cid = f"o{self._n}"
        now = self.clock.now_ns()
        self.venue.handle(
            SubmitOrder(
                client_order_id=cid,
                strategy_id="s",
                instrument_id=IID,
                venue="BINANCE",
                side=side,
                quantity=quantity,
                order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
                limit_price=limit,
                time_in_force=TimeInForce.GTC,
                post_only=False,
                reduce_only=False,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        return cid

    def of(self, cid: str) -> list[object]:
        return [m for m in self.outbox.messages if getattr(m, "client_order_id", None) == cid]


def test_venue_rejects_a_buy_the_cash_cannot_pay() -> None:
    h = Harness(usdt=1_000.0)
    h.bar(107_000.0)

    cid = h.submit(OrderSide.BUY, 14.95)

    [event] = h.of(cid)
    assert isinstance(event, OrderRejected)
    assert event.reason.startswith(INSUFFICIENT)
    assert event.code is VenueReason.INSUFFICIENT_BALANCE
    assert "USDT" in event.reason
    assert "only 1000 USDT" in event.reason
    assert h.account.reservations == {}


def test_venue_rejects_a_sell_of_base_it_does_not_hold() -> None:
    h = Harness(usdt=10_000_000.0)
    h.bar(107_000.0)

    cid = h.submit(OrderSide.SELL, 14.95)

    [event] = h.of(cid)
    assert isinstance(event, OrderRejected)
    assert event.reason.startswith(INSUFFICIENT)
    assert event.code is VenueReason.INSUFFICIENT_BALANCE
    assert "needs 14.95 BTC" in event.reason


def test_venue_rejects_a_market_order_before_any_price() -> None:
    h = Harness(usdt=1_000_000.0)
    cid = h.submit(OrderSide.BUY, 0.001)
    [event] = h.of(cid)
    assert isinstance(event, OrderRejected)
    assert event.reason.startswith(INSUFFICIENT)
    assert event.code is VenueReason.INSUFFICIENT_BALANCE


def test_affordable_buy_fills_and_moves_the_balances() -> None:
    h = Harness(usdt=1_000.0)
    h.bar(100_000.0)
    cid = h.submit(OrderSide.BUY, 0.009)
    h.bar(100_000.0)

    events = h.of(cid)
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
    assert h.account.total("BTC") == pytest.approx(0.009, abs=1e-12)
    assert h.account.total("USDT") == pytest.approx(1_000.0 - 900.0 - 0.9, abs=1e-9)
    assert h.account.reservations == {}


def test_market_buy_filling_above_its_valuation_is_cut_to_what_the_cash_pays() -> None:
    # Valued at 100 000 + 0% buffer, then the next bar opens 20% higher: only what 1 000 USDT
    # pays at 120 000 fills; the rest is cancelled and the balance never goes negative.
    h = Harness(usdt=1_000.0, buffer_pct=0.0)
    h.bar(100_000.0)
    cid = h.submit(OrderSide.BUY, 0.0099)
    h.bar(120_000.0)

    events = h.of(cid)
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled, OrderCancelled]
    fill = events[1]
    assert isinstance(fill, OrderFilled)
    assert fill.last_qty == pytest.approx(0.00832, abs=1e-12)  # floor(1000 / 120120, lot)
    cancelled = events[2]
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason.startswith(INSUFFICIENT)
    assert cancelled.code is VenueReason.INSUFFICIENT_BALANCE
    assert 0.0 <= h.account.total("USDT") < 120_000.0 * 1.001 * 0.00001
    assert h.account.reservations == {}


def test_limit_buys_share_the_free_cash() -> None:
    h = Harness(usdt=1_000.0)
    h.bar(100_000.0)
    first = h.submit(OrderSide.BUY, 0.006, limit=90_000.0)  # reserves 540.54 USDT
    second = h.submit(OrderSide.BUY, 0.006, limit=90_000.0)  # 540.54 more: 459.46 are free

    assert [type(e) for e in h.of(first)] == [OrderAccepted]
    [rejected] = h.of(second)
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason.startswith(INSUFFICIENT)


def test_venue_snapshot_restores_the_account() -> None:
    h = Harness(usdt=1_000.0)
    h.bar(100_000.0)
    h.submit(OrderSide.BUY, 0.005, limit=90_000.0)
    other = Harness(usdt=0.0)
    other.venue.restore(h.venue.snapshot())
    assert other.account.snapshot() == h.account.snapshot()
