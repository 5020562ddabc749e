"""The simulated venue with a margin account: shorts, margin refusals, funding, liquidation."""

from __future__ import annotations

import math

import pytest

from tradegraph.config.models import VenueConfig
from tradegraph.contracts import (
    Bar,
    FundingPaid,
    Instrument,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    PositionLiquidated,
    SubmitOrder,
    TimeInForce,
    VenueReason,
)
from tradegraph.engine.clock import SimClock
from tradegraph.execution import SimulatedVenue
from tradegraph.execution.funding import FundingSeries
from tradegraph.execution.venue import LIQUIDATION_TAG
from tradegraph.portfolio import MarginAccount
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
PERP = Instrument(
    symbol="BTCUSDT-PERP",
    venue="BINANCE",
    base="BTC",
    quote="USDT",
    tick_size=0.1,
    lot_size=0.001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    kind="perpetual",
    max_leverage=20.0,
    liquidation_fee=0.01,
)
IID = PERP.instrument_id
NAN = math.nan


class Harness:
    def __init__(
        self, usdt: float, leverage: float = 10.0, funding: FundingSeries | None = None
    ) -> None:
        self.clock = SimClock(0)
        self.outbox = RecordingOutbox()
        self.account = MarginAccount(
            "BINANCE", {"USDT": usdt}, {IID: PERP}, leverage={IID: leverage}
        )
        self.venue = SimulatedVenue(
            VenueConfig(),
            {IID: PERP},
            self.clock,
            self.outbox,
            account=self.account,
            funding=None if funding is None else {IID: funding},
        )
        self._n = 0

    def bar(
        self,
        open_: float,
        close: float | None = None,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> int:
        now = self.clock.now_ns() + MINUTE_NS
        self.clock.advance_to(now)
        close = open_ if close is None else close
        self.venue.handle(
            Bar(
                instrument_id=IID,
                open=open_,
                high=max(open_, close) if high is None else high,
                low=min(open_, close) if low is None else low,
                close=close,
                volume=1_000.0,
                interval_ns=MINUTE_NS,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        return now

    def submit(
        self, side: OrderSide, quantity: float, limit: float | None = None, strategy: str = "s"
    ) -> str:
        self._n += 1
        cid = f"o{self._n}"
        now = self.clock.now_ns()
        self.venue.handle(
            SubmitOrder(
                client_order_id=cid,
                strategy_id=strategy,
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


def test_a_sell_without_a_position_opens_a_short() -> None:
    h = Harness(1_000.0)
    h.bar(100.0)
    h.submit(OrderSide.SELL, 1.0)
    h.bar(100.0)
    fills = h.outbox.of_type(OrderFilled)
    assert [(f.side, f.last_qty, f.last_px) for f in fills] == [(OrderSide.SELL, 1.0, 100.0)]
    assert h.account.position(IID) == -1.0
    assert h.account.total("USDT") == pytest.approx(1_000.0 - 100.0 * 0.0005)
    assert h.venue.strategy_positions == {IID: {"s": -1.0}}


def test_an_order_beyond_free_margin_is_rejected_with_its_own_code() -> None:
    h = Harness(100.0)
    h.bar(100.0)
    h.submit(OrderSide.BUY, 10.0)  # margin 10 * 105 / 10 = 105 > 100
    rejected = h.outbox.of_type(OrderRejected)
    assert len(rejected) == 1
    assert rejected[0].code is VenueReason.INSUFFICIENT_MARGIN
    assert rejected[0].reason.startswith("insufficient_margin: ")
    assert "margin account" in rejected[0].reason


def test_funding_is_paid_at_the_data_mark_or_the_last_close() -> None:
    # Bars close at 1, 2, 3, 4 minutes. Funding at minute 3 (with a mark of its own), at
    # minute 4 (no mark: this bar's close), and at 4.5 minutes (no mark: paid at the next
    # bar, at the close known at 4.5 minutes, the minute-4 close).
    series = FundingSeries(
        ts_ns=(3 * MINUTE_NS, 4 * MINUTE_NS, 9 * MINUTE_NS // 2),
        rate=(0.0001, -0.0002, 0.0003),
        mark_price=(101.0, NAN, NAN),
    )
    h = Harness(1_000.0, funding=series)
    h.bar(100.0)
    h.submit(OrderSide.BUY, 2.0, strategy="a")
    h.bar(100.0)  # fills 2 @ 100
    h.bar(100.0, 101.5)  # minute 3
    h.bar(101.5, 102.0)  # minute 4
    paid = h.outbox.of_type(FundingPaid)
    assert [(p.rate, p.mark_price, p.position) for p in paid] == [
        (0.0001, 101.0, 2.0),
        (-0.0002, 102.0, 2.0),
    ]
    assert paid[0].amount == pytest.approx(2 * 101.0 * 0.0001)
    assert paid[1].amount == pytest.approx(2 * 102.0 * -0.0002)
    h.bar(102.0, 110.0)  # minute 5: the 4.5-minute event, at the minute-4 close
    paid = h.outbox.of_type(FundingPaid)
    assert len(paid) == 3
    assert paid[2].mark_price == 102.0
    assert paid[2].amount == pytest.approx(2 * 102.0 * 0.0003)
    fee = 2 * 100.0 * 0.0005
    assert h.account.total("USDT") == pytest.approx(
        1_000.0 - fee - 0.0202 + 0.0408 - 2 * 102.0 * 0.0003
    )


def test_a_short_receives_positive_funding() -> None:
    series = FundingSeries(ts_ns=(3 * MINUTE_NS,), rate=(0.001,), mark_price=(NAN,))
    h = Harness(1_000.0, funding=series)
    h.bar(100.0)
    h.submit(OrderSide.SELL, 1.0)
    h.bar(100.0)
    h.bar(100.0, 95.0)
    (paid,) = h.outbox.of_type(FundingPaid)
    assert paid.amount == pytest.approx(-1.0 * 95.0 * 0.001)


def test_liquidation_happens_at_the_adverse_extreme_below_maintenance() -> None:
    h = Harness(100.0)
    h.bar(100.0)
    h.submit(OrderSide.BUY, 9.0)
    h.bar(100.0)  # long 9 @ 100, wallet 99.55
    h.submit(OrderSide.SELL, 1.0, limit=120.0)  # resting; cancelled by the liquidation
    # Equity 99.55 + 9 (p - 100) falls below maintenance 9 p 0.5 % under p = 89.386.
    h.bar(95.0, 95.0, low=89.5)
    assert h.outbox.of_type(PositionLiquidated) == []
    h.bar(95.0, 94.0, low=89.0)
    (liquidated,) = h.outbox.of_type(PositionLiquidated)
    assert (liquidated.quantity, liquidated.price) == (9.0, 89.0)
    # The fee (1 % of 9 * 89 = 8.01) is capped at the equity left: 99.55 - 99 = 0.55.
    assert liquidated.fee == pytest.approx(0.55)
    closing = h.outbox.of_type(OrderFilled)[-1]
    assert closing.tag == LIQUIDATION_TAG
    assert (closing.side, closing.last_qty, closing.last_px) == (OrderSide.SELL, 9.0, 89.0)
    assert closing.fee == pytest.approx(liquidated.fee)
    cancelled = h.outbox.of_type(OrderCancelled)
    assert [c.client_order_id for c in cancelled] == ["o2"]
    assert h.account.position(IID) == 0.0
    assert h.account.total("USDT") == pytest.approx(0.0, abs=1e-9)
    assert h.venue.liquidation_count == 1
    assert h.venue.strategy_positions == {}


def test_a_short_is_liquidated_at_the_bar_high() -> None:
    h = Harness(100.0)
    h.bar(100.0)
    h.submit(OrderSide.SELL, 9.0)
    h.bar(100.0)  # short 9 @ 100, wallet 99.55
    # At 110.5: equity 99.55 - 94.5 = 5.05, above maintenance 9 * 110.5 * 0.5 % = 4.9725.
    h.bar(100.0, 101.0, high=110.5)
    assert h.outbox.of_type(PositionLiquidated) == []
    # At 110.6: equity 4.15, below maintenance 4.977.
    h.bar(100.0, 101.0, high=110.6)
    (liquidated,) = h.outbox.of_type(PositionLiquidated)
    assert (liquidated.quantity, liquidated.price) == (-9.0, 110.6)
    # The fee (1 % of 9 * 110.6 = 9.954) is capped at the equity left, 4.15.
    assert liquidated.fee == pytest.approx(99.55 - 9 * 10.6)
    assert h.outbox.of_type(OrderFilled)[-1].side is OrderSide.BUY


def test_restored_margin_venue_continues_like_the_original() -> None:
    series = FundingSeries(ts_ns=(4 * MINUTE_NS,), rate=(0.0005,), mark_price=(NAN,))
    a = Harness(1_000.0, funding=series)
    a.bar(100.0)
    a.submit(OrderSide.SELL, 3.0)
    a.bar(100.0)
    b = Harness(1_000.0, funding=series)
    b.clock.advance_to(a.clock.now_ns())
    b.venue.restore(a.venue.snapshot())
    for h in (a, b):
        h.outbox.clear()
        h.bar(100.0, 104.0)
        h.bar(104.0, 130.0, high=131.0)
    assert a.outbox.messages == b.outbox.messages
    assert a.venue.snapshot() == b.venue.snapshot()
    assert len(a.outbox.of_type(FundingPaid)) == 1
