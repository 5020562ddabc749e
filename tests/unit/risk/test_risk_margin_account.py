"""Risk with a margin account: shorts pass, orders beyond free margin are refused."""

from __future__ import annotations

import pytest

from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    Bar,
    FundingPaid,
    Instrument,
    LiquiditySide,
    Message,
    OrderFilled,
    OrderIntent,
    OrderSide,
    OrderType,
    RiskReason,
    RiskRejected,
    SubmitOrder,
)
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import MarginAccount
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox

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
)
IID = PERP.instrument_id


class Harness:
    def __init__(self, usdt: float, leverage: float = 10.0) -> None:
        self.clock = SimClock(1_000_000_000)
        self.outbox = RecordingOutbox()
        self.account = MarginAccount(
            "BINANCE", {"USDT": usdt}, {IID: PERP}, leverage={IID: leverage}
        )
        self.engine = RiskEngine(
            RiskConfig(price_band_pct=None),
            {IID: PERP},
            self.clock,
            self.outbox,
            accounts={"BINANCE": self.account},
        )
        self._n = 0
        self.price(100.0)

    def price(self, close: float) -> None:
        self.engine.handle(
            Bar(
                instrument_id=IID,
                open=close,
                high=close,
                low=close,
                close=close,
                volume=100.0,
                interval_ns=60_000_000_000,
                ts_event_ns=1,
                ts_init_ns=1,
            )
        )

    def send(self, msg: Message) -> list[Message]:
        self.outbox.clear()
        self.engine.handle(msg)
        return list(self.outbox.messages)

    def intent(self, side: OrderSide, quantity: float) -> list[Message]:
        self._n += 1
        return self.send(
            OrderIntent(
                intent_id=f"i{self._n}",
                strategy_id="s",
                instrument_id=IID,
                side=side,
                quantity=quantity,
                order_type=OrderType.MARKET,
                ts_event_ns=2,
                ts_init_ns=2,
            )
        )

    def fill(self, order: SubmitOrder, price: float) -> None:
        self.send(
            OrderFilled(
                fill_id=f"f{order.client_order_id}",
                client_order_id=order.client_order_id,
                venue_order_id="v",
                strategy_id="s",
                instrument_id=IID,
                venue="BINANCE",
                side=order.side,
                last_qty=order.quantity,
                last_px=price,
                fee=0.0,
                liquidity=LiquiditySide.TAKER,
                leaves_qty=0.0,
                ts_event_ns=3,
                ts_init_ns=3,
            )
        )


def test_a_short_within_free_margin_is_sent() -> None:
    h = Harness(1_000.0)
    (out,) = h.intent(OrderSide.SELL, 5.0)
    assert isinstance(out, SubmitOrder)
    # Reserved: margin 5 * 105 / 10 plus fee 5 * 105 * 0.05 %.
    assert h.account.reserved("USDT") == pytest.approx(52.5 + 0.2625)


def test_an_order_beyond_free_margin_is_refused_as_insufficient_margin() -> None:
    h = Harness(100.0)
    (out,) = h.intent(OrderSide.BUY, 10.0)
    assert isinstance(out, RiskRejected)
    assert out.reason is RiskReason.INSUFFICIENT_MARGIN
    assert "margin" in out.detail


def test_losses_and_funding_shrink_free_margin() -> None:
    h = Harness(100.0)
    (order,) = h.intent(OrderSide.BUY, 5.0)
    assert isinstance(order, SubmitOrder)
    h.fill(order, 100.0)
    h.price(90.0)  # equity 100 - 50 = 50; initial margin 5 * 90 / 10 = 45
    assert h.account.free("USDT") == pytest.approx(5.0)
    h.send(
        FundingPaid(
            strategy_id="s",
            instrument_id=IID,
            venue="BINANCE",
            amount=2.0,
            rate=0.0044,
            mark_price=90.0,
            position=5.0,
            ts_event_ns=4,
            ts_init_ns=4,
        )
    )
    assert h.account.free("USDT") == pytest.approx(3.0)
    (out,) = h.intent(OrderSide.BUY, 1.0)  # needs 9.45 + fee
    assert isinstance(out, RiskRejected)
    assert out.reason is RiskReason.INSUFFICIENT_MARGIN
    # Closing needs no margin: only its fee.
    (out,) = h.intent(OrderSide.SELL, 5.0)
    assert isinstance(out, SubmitOrder)
