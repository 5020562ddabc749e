"""Risk refuses what the venue's cash account cannot pay, and tracks what orders reserve."""

from __future__ import annotations

import pytest

from tests.support.stubs import btcusdt
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    AccountBalances,
    Bar,
    LiquiditySide,
    Message,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    RiskReason,
    RiskRejected,
    SubmitOrder,
)
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import CashAccount
from tradegraph.risk import RiskEngine, RiskState
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(min_quantity=0.0)
IID = BTC.instrument_id
PRICE = 107_000.0
LIMITS_OFF = RiskConfig(price_band_pct=None)


class Harness:
    def __init__(
        self, usdt: float = 1_000.0, btc: float = 0.0, limits: RiskConfig = LIMITS_OFF
    ) -> None:
        self.clock = SimClock(1_000_000_000)
        self.outbox = RecordingOutbox()
        self.account = CashAccount("BINANCE", {"USDT": usdt, "BTC": btc}, {IID: BTC})
        self.engine = RiskEngine(
            limits,
            {IID: BTC},
            self.clock,
            self.outbox,
            accounts={"BINANCE": self.account},
        )
        self._n = 0
        self.send(
            Bar(
                instrument_id=IID,
                open=PRICE,
                high=PRICE,
                low=PRICE,
                close=PRICE,
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

    def intent(
        self, side: OrderSide, quantity: float, limit_price: float | None = None
    ) -> OrderIntent:
        self._n += 1
        return OrderIntent(
            intent_id=f"i{self._n}",
            strategy_id="s",
            instrument_id=IID,
            side=side,
            quantity=quantity,
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            limit_price=limit_price,
            ts_event_ns=2,
            ts_init_ns=2,
        )

    def one(self, intent: OrderIntent) -> Message:
        out = self.send(intent)
        assert len(out) == 1, out
        return out[0]

    def fill(self, order: SubmitOrder, qty: float, price: float, leaves: float) -> OrderFilled:
        self._n += 1
        return OrderFilled(
            fill_id=f"f{self._n}",
            client_order_id=order.client_order_id,
            venue_order_id="v",
            strategy_id="s",
            instrument_id=IID,
            venue="BINANCE",
            side=order.side,
            last_qty=qty,
            last_px=price,
            fee=qty * price * 0.001,
            liquidity=LiquiditySide.TAKER,
            leaves_qty=leaves,
            ts_event_ns=3,
            ts_init_ns=3,
        )


def test_1000_usdt_cannot_buy_14_95_btc_with_exposure_limits_off() -> None:
    h = Harness(usdt=1_000.0)

    refusal = h.one(h.intent(OrderSide.BUY, 14.95))

    assert isinstance(refusal, RiskRejected)
    assert refusal.reason is RiskReason.INSUFFICIENT_BALANCE
    assert "USDT" in refusal.detail
    assert "1000 USDT" in refusal.detail
    needed = 14.95 * PRICE * 1.05 * 1.001
    assert f"{needed:.10g} USDT" in refusal.detail
    assert h.account.reservations == {}


def test_a_flat_account_cannot_sell_btc_it_does_not_hold() -> None:
    h = Harness(usdt=1_000_000.0, btc=0.0)

    refusal = h.one(h.intent(OrderSide.SELL, 14.95))

    assert isinstance(refusal, RiskRejected)
    assert refusal.reason is RiskReason.INSUFFICIENT_BALANCE
    assert "needs 14.95 BTC" in refusal.detail
    assert "only 0 BTC" in refusal.detail


def test_an_affordable_buy_passes_and_reserves_its_cost() -> None:
    h = Harness(usdt=1_000.0)
    limit = 100_000.0

    order = h.one(h.intent(OrderSide.BUY, 0.009, limit_price=limit))

    assert isinstance(order, SubmitOrder)
    assert h.account.reserved("USDT") == pytest.approx(0.009 * limit * 1.001, abs=1e-9)


def test_open_orders_count_against_the_next_one() -> None:
    h = Harness(usdt=1_000.0)
    first = h.one(h.intent(OrderSide.BUY, 0.005, limit_price=100_000.0))
    assert isinstance(first, SubmitOrder)

    second = h.one(h.intent(OrderSide.BUY, 0.005, limit_price=100_000.0))

    assert isinstance(second, RiskRejected)
    assert second.reason is RiskReason.INSUFFICIENT_BALANCE


def test_cancel_and_rejection_release_the_reservation() -> None:
    h = Harness(usdt=1_000.0)
    first = h.one(h.intent(OrderSide.BUY, 0.009, limit_price=100_000.0))
    assert isinstance(first, SubmitOrder)
    h.send(
        OrderCancelled(
            client_order_id=first.client_order_id,
            strategy_id="s",
            instrument_id=IID,
            venue="BINANCE",
            ts_event_ns=3,
            ts_init_ns=3,
        )
    )
    assert h.account.free("USDT") == 1_000.0
    second = h.one(h.intent(OrderSide.BUY, 0.009, limit_price=100_000.0))
    assert isinstance(second, SubmitOrder)
    h.send(
        OrderRejected(
            client_order_id=second.client_order_id,
            strategy_id="s",
            instrument_id=IID,
            venue="BINANCE",
            reason="insufficient_balance: test",
            ts_event_ns=3,
            ts_init_ns=3,
        )
    )
    assert h.account.free("USDT") == 1_000.0


def test_fills_move_balances_so_bought_btc_can_be_sold() -> None:
    h = Harness(usdt=1_000.0)
    buy = h.one(h.intent(OrderSide.BUY, 0.009, limit_price=100_000.0))
    assert isinstance(buy, SubmitOrder)
    h.send(h.fill(buy, 0.004, 100_000.0, leaves=0.005))
    h.send(h.fill(buy, 0.005, 100_000.0, leaves=0.0))

    assert h.account.total("BTC") == pytest.approx(0.009, abs=1e-12)
    assert h.account.total("USDT") == pytest.approx(1_000.0 - 900.0 - 0.9, abs=1e-9)
    assert h.account.reservations == {}
    sell = h.one(h.intent(OrderSide.SELL, 0.009))
    assert isinstance(sell, SubmitOrder)
    oversell = h.one(h.intent(OrderSide.SELL, 0.001))
    assert isinstance(oversell, RiskRejected)
    assert oversell.reason is RiskReason.INSUFFICIENT_BALANCE


def test_balances_reported_by_a_live_broker_replace_the_configured_ones() -> None:
    h = Harness(usdt=1_000_000.0)
    h.send(
        AccountBalances(
            venue="BINANCE", balances={"USDT": 500.0, "BTC": 0.0}, ts_event_ns=2, ts_init_ns=2
        )
    )

    refusal = h.one(h.intent(OrderSide.BUY, 0.01, limit_price=100_000.0))

    assert isinstance(refusal, RiskRejected)
    assert refusal.reason is RiskReason.INSUFFICIENT_BALANCE
    assert "only 500 USDT" in refusal.detail


def test_snapshot_restore_keeps_the_account() -> None:
    h = Harness(usdt=1_000.0)
    h.one(h.intent(OrderSide.BUY, 0.009, limit_price=100_000.0))
    fresh = Harness(usdt=1_000.0)
    fresh.engine.restore(h.engine.snapshot())
    fresh._n = 100  # past the restored engine's intent ids
    refusal = fresh.one(fresh.intent(OrderSide.BUY, 0.009, limit_price=100_000.0))
    assert isinstance(refusal, RiskRejected)
    assert refusal.reason is RiskReason.INSUFFICIENT_BALANCE


def test_inventory_found_at_the_venue_counts_in_position_and_exposure_limits() -> None:
    limits = RiskConfig(price_band_pct=None, max_position_quantity={IID: 1.005})
    h = Harness(usdt=1_000_000.0, limits=limits)
    engine = h.engine

    h.send(
        AccountBalances(
            venue="BINANCE", balances={"USDT": 500_000.0, "BTC": 1.0}, ts_event_ns=2, ts_init_ns=2
        )
    )
    refusal = h.one(h.intent(OrderSide.BUY, 0.01, limit_price=PRICE))

    assert engine.positions == {IID: 1.0}
    assert engine.strategy_positions == {}
    assert engine.gross_exposure() == pytest.approx(PRICE)
    assert isinstance(refusal, RiskRejected)
    assert refusal.reason is RiskReason.MAX_POSITION
    assert "(position 1," in refusal.detail


def test_balances_after_the_first_or_after_a_restore_leave_positions_to_the_fills() -> None:
    h = Harness(usdt=1_000_000.0)
    h.send(
        AccountBalances(
            venue="BINANCE", balances={"USDT": 1_000_000.0, "BTC": 1.0}, ts_event_ns=2, ts_init_ns=2
        )
    )
    order = h.one(h.intent(OrderSide.BUY, 0.1, limit_price=PRICE))
    assert isinstance(order, SubmitOrder)
    h.send(h.fill(order, 0.1, PRICE, 0.0))
    resumed = Harness(usdt=1_000_000.0)
    resumed.engine.restore(h.engine.snapshot())
    legacy = Harness(usdt=1_000_000.0)
    stored = Harness(usdt=1_000_000.0).engine.snapshot().model_dump(mode="json")
    del stored["adopted_venues"]
    legacy.engine.restore(RiskState.model_validate(stored))

    for each in (h, resumed, legacy):
        each.send(
            AccountBalances(
                venue="BINANCE", balances={"USDT": 5.0, "BTC": 7.0}, ts_event_ns=3, ts_init_ns=3
            )
        )

    assert h.engine.positions == {IID: pytest.approx(1.1)}
    assert resumed.engine.positions == {IID: pytest.approx(1.1)}
    assert legacy.engine.positions == {}
    assert h.engine.strategy_positions == {"s": {IID: pytest.approx(0.1)}}
