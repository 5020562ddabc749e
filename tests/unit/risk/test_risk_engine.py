"""Unit tests for RiskEngine: each check, rounding, order tracking, kill switch, state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stubs import btcusdt, ethusdt, quote, trade
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    RISK,
    Bar,
    CancelIntent,
    CancelOrder,
    FeedStatus,
    KillSwitchChanged,
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    PortfolioSnapshot,
    ResetKillSwitch,
    RiskReason,
    RiskRejected,
    StrategyError,
    SubmitOrder,
    TripKillSwitch,
)
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.risk import OpenOrderStatus, RiskEngine
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(lot_size=0.001, min_quantity=0.002, min_notional=5.0)
ETH = ethusdt(lot_size=0.01, min_quantity=0.0, min_notional=0.0)
BTC_ID = BTC.instrument_id
ETH_ID = ETH.instrument_id
INSTRUMENTS = {BTC_ID: BTC, ETH_ID: ETH}
NO_LIMITS = RiskConfig(price_band_pct=None)


class Harness:
    """A RiskEngine with a sim clock, a recording outbox and message builders."""

    def __init__(self, config: RiskConfig = NO_LIMITS, start_ns: int = 1_000_000_000) -> None:
        self.config = config
        self.clock = SimClock(start_ns)
        self.outbox = RecordingOutbox()
        self.engine = RiskEngine(config, INSTRUMENTS, self.clock, self.outbox)
        self._intents = 0
        self._fills = 0

    def send(self, msg: Message) -> list[Message]:
        """Deliver ``msg`` and return what the engine published in response."""
        self.outbox.clear()
        self.engine.handle(msg)
        return list(self.outbox.messages)

    def ts(self) -> dict[str, int]:
        now = self.clock.now_ns()
        return {"ts_event_ns": now, "ts_init_ns": now}

    def bar(self, price: float, instrument_id: str = BTC_ID) -> Bar:
        return Bar(
            instrument_id=instrument_id,
            open=price,
            high=price,
            low=price,
            close=price,
            volume=1.0,
            interval_ns=60_000_000_000,
            **self.ts(),
        )

    def intent(
        self,
        side: OrderSide = OrderSide.BUY,
        quantity: float = 0.1,
        *,
        limit_price: float | None = None,
        instrument_id: str = BTC_ID,
        strategy_id: str = "alpha",
        reduce_only: bool = False,
    ) -> OrderIntent:
        self._intents += 1
        return OrderIntent(
            intent_id=f"{strategy_id}-{self._intents:06d}",
            strategy_id=strategy_id,
            instrument_id=instrument_id,
            side=side,
            quantity=quantity,
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            limit_price=limit_price,
            reduce_only=reduce_only,
            **self.ts(),
        )

    def submit(self, intent: OrderIntent) -> SubmitOrder:
        """Send ``intent`` and return the order; fail the test if Risk refused it."""
        out = self.send(intent)
        assert len(out) == 1, out
        order = out[0]
        assert isinstance(order, SubmitOrder), order
        return order

    def refusal(self, intent: OrderIntent) -> RiskRejected:
        """Send ``intent`` and return the refusal; fail the test if Risk passed it."""
        out = self.send(intent)
        assert len(out) == 1, out
        rejected = out[0]
        assert isinstance(rejected, RiskRejected), rejected
        assert rejected.intent_id == intent.intent_id
        return rejected

    def fill(
        self,
        order: SubmitOrder,
        quantity: float,
        price: float,
        leaves_qty: float = 0.0,
        fill_id: str | None = None,
    ) -> OrderFilled:
        self._fills += 1
        return OrderFilled(
            fill_id=fill_id or f"fill-{self._fills:06d}",
            client_order_id=order.client_order_id,
            venue_order_id=f"v-{order.client_order_id}",
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            venue=order.venue,
            side=order.side,
            last_qty=quantity,
            last_px=price,
            fee=0.0,
            liquidity=LiquiditySide.TAKER,
            leaves_qty=leaves_qty,
            **self.ts(),
        )

    def hold(
        self, side: OrderSide, quantity: float, price: float, strategy_id: str = "alpha"
    ) -> None:
        """Build a position by submitting and fully filling an order."""
        order = self.submit(self.intent(side, quantity, strategy_id=strategy_id))
        self.send(self.fill(order, quantity, price))

    def accepted(self, order: SubmitOrder) -> OrderAccepted:
        return OrderAccepted(
            client_order_id=order.client_order_id,
            venue_order_id=f"v-{order.client_order_id}",
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            venue=order.venue,
            **self.ts(),
        )

    def portfolio(self, equity: float, day_start_equity: float, peak_equity: float) -> Any:
        return PortfolioSnapshot(
            cash=equity,
            equity=equity,
            gross_exposure=0.0,
            net_exposure=0.0,
            realized_pnl=0.0,
            unrealized_pnl=0.0,
            fees=0.0,
            peak_equity=peak_equity,
            drawdown=peak_equity - equity,
            day_start_equity=day_start_equity,
            positions=(),
            **self.ts(),
        )


def priced(config: RiskConfig = NO_LIMITS, btc: float = 100.0, eth: float = 10.0) -> Harness:
    """A harness whose instruments already have a last price."""
    h = Harness(config)
    h.send(h.bar(btc, BTC_ID))
    h.send(h.bar(eth, ETH_ID))
    return h


# ---------------------------------------------------------------- market data


def test_component_id_is_risk() -> None:
    assert Harness().engine.component_id == RISK == "risk"


def test_bar_trade_and_quote_set_the_last_price() -> None:
    h = Harness()

    h.send(h.bar(101.5))
    after_bar = h.engine.last_prices[BTC_ID]
    h.send(trade(102.0, ts_ns=h.clock.now_ns()))
    after_trade = h.engine.last_prices[BTC_ID]
    h.send(quote(103.0, 104.0, ts_ns=h.clock.now_ns()))

    assert after_bar == 101.5
    assert after_trade == 102.0
    assert h.engine.last_prices[BTC_ID] == 103.5


def test_market_data_publishes_nothing() -> None:
    h = Harness()

    out = h.send(h.bar(100.0))

    assert out == []


# ---------------------------------------------------------------- passing orders and rounding


def test_passing_intent_becomes_submit_order_with_intent_id_and_venue() -> None:
    h = priced()
    intent = h.intent(OrderSide.BUY, 0.5)

    order = h.submit(intent)

    assert order.client_order_id == intent.intent_id
    assert order.venue == "BINANCE"
    assert order.strategy_id == "alpha"
    assert order.instrument_id == BTC_ID
    assert order.side is OrderSide.BUY
    assert order.quantity == 0.5
    assert order.order_type is OrderType.MARKET
    assert order.limit_price is None
    assert order.ts_init_ns == h.clock.now_ns()
    assert h.engine.open_orders[intent.intent_id].status is OpenOrderStatus.SUBMITTED


def test_submit_orders_built_without_validation_equal_their_validated_twins() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.5, 100.0)
    intents = [
        h.intent(OrderSide.BUY, 0.12345),
        h.intent(OrderSide.SELL, 0.1, limit_price=100.001),
        h.intent(OrderSide.SELL, 0.2, reduce_only=True),
    ]

    orders = [h.submit(intent) for intent in intents]
    # repr shows every field in order with its type (1 vs 1.0, enum members), unlike ==.
    revalidated = [repr(SubmitOrder.model_validate(o.model_dump())) for o in orders]

    assert [repr(o) for o in orders] == revalidated
    assert [o.reduce_only for o in orders] == [False, False, True]


def test_quantity_is_rounded_down_to_the_lot() -> None:
    h = priced()

    order = h.submit(h.intent(OrderSide.BUY, 0.12345))

    assert order.quantity == 0.123


def test_buy_limit_price_is_rounded_down_to_the_tick() -> None:
    h = priced()

    order = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.999))

    assert order.limit_price == 99.99


def test_sell_limit_price_is_rounded_up_to_the_tick() -> None:
    h = priced()

    order = h.submit(h.intent(OrderSide.SELL, 0.1, limit_price=100.001))

    assert order.limit_price == 100.01


def test_limit_price_already_on_the_tick_is_kept() -> None:
    h = priced()

    order = h.submit(h.intent(OrderSide.SELL, 0.1, limit_price=100.07))

    assert order.limit_price == 100.07


def test_redelivered_intent_creates_no_second_order() -> None:
    h = priced()
    intent = h.intent(OrderSide.BUY, 0.1)
    h.submit(intent)

    out = h.send(intent)

    assert out == []
    assert list(h.engine.open_orders) == [intent.intent_id]


# ---------------------------------------------------------------- each refusal


def test_strategy_stopped_after_error_is_refused() -> None:
    h = priced()
    h.send(StrategyError(strategy_id="alpha", error_type="ValueError", error="boom", **h.ts()))

    rejected = h.refusal(h.intent())

    assert rejected.reason is RiskReason.STRATEGY_STOPPED
    assert rejected.detail == (
        "strategy alpha was stopped after ValueError: boom; it places no more orders"
    )


def test_strategy_error_does_not_stop_other_strategies() -> None:
    h = priced()
    h.send(StrategyError(strategy_id="alpha", error_type="ValueError", error="boom", **h.ts()))

    order = h.submit(h.intent(strategy_id="beta"))

    assert order.strategy_id == "beta"


def test_kill_switch_refuses_new_orders() -> None:
    h = priced()
    h.send(TripKillSwitch(reason="operator halt", **h.ts()))

    rejected = h.refusal(h.intent())

    assert rejected.reason is RiskReason.KILL_SWITCH
    assert rejected.detail == (
        "kill switch is tripped (operator halt); no new orders until it is reset"
    )


def test_stale_feed_refuses_orders_until_fresh() -> None:
    h = priced()
    h.send(FeedStatus(instrument_id=BTC_ID, stale=True, detail="no bar for 5m", **h.ts()))

    rejected = h.refusal(h.intent())
    h.send(FeedStatus(instrument_id=BTC_ID, stale=False, **h.ts()))
    order = h.submit(h.intent())

    assert rejected.reason is RiskReason.FEED_STALE
    assert rejected.detail == (
        f"market data for {BTC_ID} is stale (no bar for 5m); orders wait until it is fresh again"
    )
    assert order.instrument_id == BTC_ID


def test_stale_feed_of_one_instrument_does_not_block_another() -> None:
    h = priced()
    h.send(FeedStatus(instrument_id=BTC_ID, stale=True, **h.ts()))

    order = h.submit(h.intent(instrument_id=ETH_ID, quantity=1.0))

    assert order.instrument_id == ETH_ID


def test_unknown_instrument_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(instrument_id="DOGEUSDT.BINANCE"))

    assert rejected.reason is RiskReason.UNKNOWN_INSTRUMENT
    assert rejected.detail == (
        "unknown instrument DOGEUSDT.BINANCE; known: ['BTCUSDT.BINANCE', 'ETHUSDT.BINANCE']"
    )


def test_no_price_yet_is_refused() -> None:
    h = Harness()

    rejected = h.refusal(h.intent())

    assert rejected.reason is RiskReason.NO_PRICE
    assert rejected.detail == (
        f"no market price for {BTC_ID} yet; orders wait for its first bar, trade or quote"
    )


def test_order_rate_refuses_beyond_burst_and_refills_with_time() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_orders_per_s=2.0, order_burst=3))
    for _ in range(3):
        h.submit(h.intent())

    rejected = h.refusal(h.intent())
    h.clock.advance_to(h.clock.now_ns() + 499_000_000)
    still_rejected = h.refusal(h.intent())
    h.clock.advance_to(h.clock.now_ns() + 1_000_000)
    order = h.submit(h.intent())

    assert rejected.reason is RiskReason.ORDER_RATE
    assert rejected.detail == "order rate above risk.max_orders_per_s 2 (burst risk.order_burst 3)"
    assert still_rejected.reason is RiskReason.ORDER_RATE
    assert order.quantity == 0.1


def test_refused_intents_do_not_use_up_the_order_rate() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_orders_per_s=1.0, order_burst=1))
    h.refusal(h.intent(quantity=0.0001))

    order = h.submit(h.intent())

    assert order.quantity == 0.1


def test_quantity_that_rounds_to_zero_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(quantity=0.0004))

    assert rejected.reason is RiskReason.QUANTITY_BELOW_LOT
    assert rejected.detail == f"quantity 0.0004 rounds down to 0 at lot size 0.001 of {BTC_ID}"


def test_quantity_below_min_quantity_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(quantity=0.0019))

    assert rejected.reason is RiskReason.INVALID_QUANTITY
    assert rejected.detail == f"quantity 0.001 is below min_quantity 0.002 of {BTC_ID}"


def test_limit_price_outside_band_is_refused() -> None:
    h = priced(RiskConfig(price_band_pct=5.0))

    rejected = h.refusal(h.intent(OrderSide.SELL, 0.1, limit_price=105.5))

    assert rejected.reason is RiskReason.PRICE_BAND
    assert rejected.detail == (
        "limit price 105.50 is 5.50% from last price 100.00, beyond risk.price_band_pct 5.00%"
    )


def test_limit_price_at_band_edge_passes() -> None:
    h = priced(RiskConfig(price_band_pct=5.0))

    order = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=95.0))

    assert order.limit_price == 95.0


def test_market_order_is_not_price_banded() -> None:
    h = priced(RiskConfig(price_band_pct=0.01))

    order = h.submit(h.intent(OrderSide.BUY, 0.1))

    assert order.order_type is OrderType.MARKET


def test_limit_price_below_one_tick_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.1, limit_price=0.004))

    assert rejected.reason is RiskReason.PRICE_BAND
    assert rejected.detail == f"limit price 0.004 rounds to 0 at tick size 0.01 of {BTC_ID}"


def test_notional_below_instrument_minimum_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.049, limit_price=100.0))

    assert rejected.reason is RiskReason.BELOW_MIN_NOTIONAL
    assert rejected.detail == (
        f"order notional 4.90 USDT is below min_notional 5.00 USDT of {BTC_ID}"
    )


def test_order_notional_above_cap_is_refused() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_order_notional=10_000.0), btc=100_000.0)

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.12))

    assert rejected.reason is RiskReason.MAX_ORDER_NOTIONAL
    assert rejected.detail == (
        "order notional 12000.00 USDT exceeds risk.max_order_notional 10000.00"
    )


def test_order_notional_uses_limit_price_when_given() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_order_notional=10_000.0), btc=100_000.0)

    order = h.submit(h.intent(OrderSide.BUY, 0.12, limit_price=80_000.0))

    assert order.limit_price == 80_000.0


def test_order_notional_exactly_at_cap_passes() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_order_notional=30.0), btc=100.0)

    order = h.submit(h.intent(OrderSide.BUY, 0.3))

    assert order.quantity == 0.3


def test_projected_position_above_quantity_limit_is_refused() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_quantity={BTC_ID: 1.0}))
    h.hold(OrderSide.BUY, 0.5, 100.0)
    h.submit(h.intent(OrderSide.BUY, 0.3))

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.3))

    assert rejected.reason is RiskReason.MAX_POSITION
    assert rejected.detail == (
        f"projected position 1.1 {BTC_ID} (position 0.5, open buy 0.3, this order 0.3) "
        f"exceeds risk.max_position_quantity[{BTC_ID}] 1"
    )


def test_position_quantity_limit_counts_all_strategies() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_quantity={BTC_ID: 1.0}))
    h.hold(OrderSide.BUY, 0.8, 100.0, strategy_id="alpha")

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.3, strategy_id="beta"))

    assert rejected.reason is RiskReason.MAX_POSITION


def test_position_quantity_limit_applies_to_its_instrument_only() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_quantity={BTC_ID: 1.0}))

    order = h.submit(h.intent(OrderSide.BUY, 5.0, instrument_id=ETH_ID))

    assert order.quantity == 5.0


def test_projected_short_position_above_notional_limit_is_refused() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_notional=50.0))
    h.hold(OrderSide.SELL, 0.3, 100.0)

    rejected = h.refusal(h.intent(OrderSide.SELL, 0.3))

    assert rejected.reason is RiskReason.MAX_POSITION
    assert rejected.detail == (
        f"projected position notional 60.00 USDT (-0.6 {BTC_ID} at 100) exceeds "
        "risk.max_position_notional 50.00"
    )


def test_projected_gross_exposure_above_limit_is_refused() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_gross_exposure=100.0))
    h.hold(OrderSide.BUY, 0.5, 100.0)
    h.submit(h.intent(OrderSide.SELL, 3.0, instrument_id=ETH_ID, limit_price=10.0))

    rejected = h.refusal(h.intent(OrderSide.BUY, 2.5, instrument_id=ETH_ID))

    assert rejected.reason is RiskReason.MAX_GROSS_EXPOSURE
    assert rejected.detail == (
        "projected gross exposure 105.00 (current 80.00 + order 25.00) "
        "exceeds risk.max_gross_exposure 100.00"
    )


def test_daily_loss_at_limit_refuses_new_risk() -> None:
    h = priced(RiskConfig(price_band_pct=None, daily_loss_limit=500.0, trip_on_limit_breach=False))
    h.send(h.portfolio(equity=9_500.0, day_start_equity=10_000.0, peak_equity=10_000.0))

    rejected = h.refusal(h.intent())

    assert rejected.reason is RiskReason.DAILY_LOSS_LIMIT
    assert rejected.detail == "daily pnl -500.00 is at or below -risk.daily_loss_limit (-500.00)"
    assert not h.engine.kill_switch_tripped


def test_daily_loss_within_limit_passes() -> None:
    h = priced(RiskConfig(price_band_pct=None, daily_loss_limit=500.0))
    h.send(h.portfolio(equity=9_501.0, day_start_equity=10_000.0, peak_equity=10_000.0))

    order = h.submit(h.intent())

    assert order.quantity == 0.1


def test_drawdown_beyond_limit_refuses_new_risk() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_drawdown_pct=20.0, trip_on_limit_breach=False))
    h.send(h.portfolio(equity=7_900.0, day_start_equity=7_900.0, peak_equity=10_000.0))

    rejected = h.refusal(h.intent())

    assert rejected.reason is RiskReason.MAX_DRAWDOWN
    assert rejected.detail == (
        "drawdown 2100.00 is 21.00% of peak equity 10000.00, at or above "
        "risk.max_drawdown_pct 20.00%"
    )


def test_first_failing_check_wins() -> None:
    h = Harness(RiskConfig(max_order_notional=1.0))
    h.send(TripKillSwitch(reason="halt", **h.ts()))
    h.send(FeedStatus(instrument_id=BTC_ID, stale=True, **h.ts()))

    kill_first = h.refusal(h.intent())
    h.send(StrategyError(strategy_id="alpha", error_type="E", error="x", **h.ts()))
    stopped_first = h.refusal(h.intent())

    assert kill_first.reason is RiskReason.KILL_SWITCH
    assert stopped_first.reason is RiskReason.STRATEGY_STOPPED


def test_rejections_are_counted_by_reason() -> None:
    h = Harness()
    h.refusal(h.intent())
    h.refusal(h.intent())
    h.refusal(h.intent(instrument_id="X.BINANCE"))

    counts = dict(h.engine.rejection_counts)

    assert counts == {RiskReason.NO_PRICE: 2, RiskReason.UNKNOWN_INSTRUMENT: 1}


# ---------------------------------------------------------------- exposure-reducing orders


def test_order_reducing_the_position_passes_exposure_limits() -> None:
    config = RiskConfig(
        price_band_pct=None,
        max_position_notional=100.0,
        max_gross_exposure=100.0,
        daily_loss_limit=10.0,
        trip_on_limit_breach=False,
    )
    h = priced(config, btc=100.0)
    h.hold(OrderSide.BUY, 0.9, 100.0)
    h.send(h.bar(200.0))  # the position is now worth 180, above both limits
    h.send(h.portfolio(equity=900.0, day_start_equity=1_000.0, peak_equity=1_000.0))
    adding = h.refusal(h.intent(OrderSide.BUY, 0.05))

    order = h.submit(h.intent(OrderSide.SELL, 0.9))

    assert adding.reason is RiskReason.MAX_POSITION
    assert order.side is OrderSide.SELL
    assert order.quantity == 0.9


def test_order_flipping_the_position_is_subject_to_exposure_limits() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_quantity={BTC_ID: 0.5}))
    h.hold(OrderSide.BUY, 0.5, 100.0)

    rejected = h.refusal(h.intent(OrderSide.SELL, 1.2))

    assert rejected.reason is RiskReason.MAX_POSITION


def test_reducing_orders_together_may_not_flip_past_the_limit() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_quantity={BTC_ID: 0.5}))
    h.hold(OrderSide.BUY, 0.5, 100.0)
    h.submit(h.intent(OrderSide.SELL, 0.5))
    h.submit(h.intent(OrderSide.SELL, 0.5))  # projected -0.5: within the limit

    rejected = h.refusal(h.intent(OrderSide.SELL, 0.5))

    assert rejected.reason is RiskReason.MAX_POSITION


def test_reduce_only_is_clipped_to_the_strategy_position() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.3, 100.0)

    order = h.submit(h.intent(OrderSide.SELL, 1.0, reduce_only=True))

    assert order.quantity == 0.3
    assert order.reduce_only


def test_reduce_only_that_would_increase_the_position_is_refused() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.3, 100.0)

    rejected = h.refusal(h.intent(OrderSide.BUY, 0.1, reduce_only=True))

    assert rejected.reason is RiskReason.INVALID_QUANTITY
    assert rejected.detail == (
        f"reduce_only buy 0.1 {BTC_ID} would increase the position: strategy alpha holds 0.3"
    )


def test_reduce_only_when_flat_is_refused() -> None:
    h = priced()

    rejected = h.refusal(h.intent(OrderSide.SELL, 0.1, reduce_only=True))

    assert rejected.reason is RiskReason.INVALID_QUANTITY
    assert rejected.detail == (
        f"reduce_only sell 0.1 {BTC_ID} would increase the position: strategy alpha is flat"
    )


def test_reduce_only_counts_open_orders_already_reducing() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.3, 100.0)
    h.submit(h.intent(OrderSide.SELL, 0.2, reduce_only=True))
    clipped = h.submit(h.intent(OrderSide.SELL, 0.2, reduce_only=True))

    rejected = h.refusal(h.intent(OrderSide.SELL, 0.1, reduce_only=True))

    assert clipped.quantity == 0.1
    assert rejected.reason is RiskReason.INVALID_QUANTITY
    assert "nothing left to reduce" in rejected.detail


def test_reduce_only_passes_exposure_limits() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_position_notional=50.0), btc=100.0)
    h.hold(OrderSide.SELL, 0.5, 100.0)
    h.send(h.bar(150.0))

    order = h.submit(h.intent(OrderSide.BUY, 2.0, reduce_only=True))

    assert order.quantity == 0.5


# ---------------------------------------------------------------- cancels and order tracking


def test_cancel_intent_for_own_open_order_becomes_cancel_order() -> None:
    h = priced()
    order = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))

    out = h.send(CancelIntent(strategy_id="alpha", client_order_id=order.client_order_id, **h.ts()))

    assert len(out) == 1
    cancel = out[0]
    assert isinstance(cancel, CancelOrder)
    assert cancel.client_order_id == order.client_order_id
    assert cancel.venue == "BINANCE"
    assert cancel.instrument_id == BTC_ID
    assert h.engine.open_orders[order.client_order_id].cancel_pending


def test_cancel_intent_for_another_strategys_order_is_refused() -> None:
    h = priced()
    order = h.submit(h.intent(strategy_id="alpha"))

    out = h.send(CancelIntent(strategy_id="beta", client_order_id=order.client_order_id, **h.ts()))

    assert len(out) == 1
    rejected = out[0]
    assert isinstance(rejected, RiskRejected)
    assert rejected.reason is RiskReason.UNKNOWN_ORDER
    assert rejected.intent_id == order.client_order_id
    assert rejected.detail == f"strategy beta has no open order {order.client_order_id}"


def test_cancel_intent_for_unknown_order_is_refused() -> None:
    h = priced()

    out = h.send(CancelIntent(strategy_id="alpha", client_order_id="nope", **h.ts()))

    assert [type(m) for m in out] == [RiskRejected]
    assert isinstance(out[0], RiskRejected)
    assert out[0].reason is RiskReason.UNKNOWN_ORDER


def test_order_accepted_then_cancelled_leaves_no_open_order() -> None:
    h = priced()
    order = h.submit(h.intent())
    h.send(h.accepted(order))
    status = h.engine.open_orders[order.client_order_id].status

    h.send(
        OrderCancelled(
            client_order_id=order.client_order_id,
            strategy_id="alpha",
            instrument_id=BTC_ID,
            venue="BINANCE",
            **h.ts(),
        )
    )

    assert status is OpenOrderStatus.ACCEPTED
    assert order.client_order_id not in h.engine.open_orders


def test_rejected_order_is_no_longer_open() -> None:
    h = priced()
    order = h.submit(h.intent())

    h.send(
        OrderRejected(
            client_order_id=order.client_order_id,
            strategy_id="alpha",
            instrument_id=BTC_ID,
            venue="BINANCE",
            reason="insufficient balance",
            **h.ts(),
        )
    )

    assert h.engine.open_orders == {}


def test_partial_fill_keeps_order_open_with_leaves_and_full_fill_closes_it() -> None:
    h = priced()
    order = h.submit(h.intent(OrderSide.BUY, 1.0))

    h.send(h.fill(order, 0.4, 100.0, leaves_qty=0.6))
    leaves_after_partial = h.engine.open_orders[order.client_order_id].leaves_qty
    h.send(h.fill(order, 0.6, 101.0, leaves_qty=0.0))

    assert leaves_after_partial == 0.6
    assert order.client_order_id not in h.engine.open_orders
    assert h.engine.positions[BTC_ID] == pytest.approx(1.0, rel=1e-12)


def test_fills_net_positions_per_instrument_and_per_strategy() -> None:
    h = priced()

    h.hold(OrderSide.BUY, 0.5, 100.0, strategy_id="alpha")
    h.hold(OrderSide.SELL, 0.2, 100.0, strategy_id="beta")

    assert h.engine.positions[BTC_ID] == pytest.approx(0.3, rel=1e-12)
    assert h.engine.strategy_positions["alpha"][BTC_ID] == 0.5
    assert h.engine.strategy_positions["beta"][BTC_ID] == -0.2


def test_round_trip_fills_leave_an_exactly_flat_position() -> None:
    h = priced()
    h.hold(OrderSide.BUY, 0.1, 100.0)
    h.hold(OrderSide.BUY, 0.2, 100.0)

    h.hold(OrderSide.SELL, 0.3, 100.0)

    assert h.engine.positions[BTC_ID] == 0.0


def test_duplicate_fill_is_ignored() -> None:
    h = priced()
    order = h.submit(h.intent(OrderSide.BUY, 1.0))
    fill = h.fill(order, 0.4, 100.0, leaves_qty=0.6)
    h.send(fill)

    out = h.send(fill)

    assert out == []
    assert h.engine.positions[BTC_ID] == 0.4
    assert h.engine.open_orders[order.client_order_id].leaves_qty == 0.6


# ---------------------------------------------------------------- kill switch


def test_kill_switch_cancels_every_open_order_including_unaccepted() -> None:
    h = priced()
    accepted = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))
    h.send(h.accepted(accepted))
    unaccepted = h.submit(h.intent(OrderSide.SELL, 0.2, strategy_id="beta", limit_price=101.0))

    out = h.send(TripKillSwitch(reason="operator halt", **h.ts()))

    changed = [m for m in out if isinstance(m, KillSwitchChanged)]
    cancels = [m for m in out if isinstance(m, CancelOrder)]
    assert len(changed) == 1
    assert changed[0].tripped
    assert changed[0].reason == "operator halt"
    assert {c.client_order_id for c in cancels} == {
        accepted.client_order_id,
        unaccepted.client_order_id,
    }
    assert all(c.reason == "kill switch: operator halt" for c in cancels)
    assert h.engine.kill_switch_tripped


def test_tripping_twice_sends_no_duplicate_cancels() -> None:
    h = priced()
    h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))
    h.send(TripKillSwitch(reason="first", **h.ts()))

    out = h.send(TripKillSwitch(reason="second", **h.ts()))

    assert out == []
    assert h.engine.kill_switch_reason == "first"


def test_reset_kill_switch_allows_orders_again() -> None:
    h = priced()
    h.send(TripKillSwitch(reason="halt", **h.ts()))

    out = h.send(ResetKillSwitch(reason="all clear", **h.ts()))
    order = h.submit(h.intent())

    assert len(out) == 1
    changed = out[0]
    assert isinstance(changed, KillSwitchChanged)
    assert not changed.tripped
    assert changed.reason == "all clear"
    assert not h.engine.kill_switch_tripped
    assert order.quantity == 0.1


def test_reset_when_not_tripped_publishes_nothing() -> None:
    h = priced()

    out = h.send(ResetKillSwitch(**h.ts()))

    assert out == []


def test_cancels_are_allowed_while_kill_switch_is_tripped() -> None:
    h = priced()
    order = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))
    h.send(TripKillSwitch(reason="halt", **h.ts()))

    out = h.send(CancelIntent(strategy_id="alpha", client_order_id=order.client_order_id, **h.ts()))

    assert [type(m) for m in out] == [CancelOrder]


def test_daily_loss_breach_trips_kill_switch_and_cancels_orders() -> None:
    h = priced(RiskConfig(price_band_pct=None, daily_loss_limit=500.0))
    order = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0))

    out = h.send(h.portfolio(equity=9_400.0, day_start_equity=10_000.0, peak_equity=10_000.0))

    changed = [m for m in out if isinstance(m, KillSwitchChanged)]
    assert len(changed) == 1
    assert changed[0].reason == (
        "daily_loss_limit breached: daily pnl -600.00 is at or below "
        "-risk.daily_loss_limit (-500.00)"
    )
    assert [m.client_order_id for m in out if isinstance(m, CancelOrder)] == [order.client_order_id]
    assert h.engine.kill_switch_tripped


def test_drawdown_breach_trips_kill_switch_with_numbers() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_drawdown_pct=10.0))

    out = h.send(h.portfolio(equity=8_500.0, day_start_equity=8_500.0, peak_equity=10_000.0))

    assert len(out) == 1
    changed = out[0]
    assert isinstance(changed, KillSwitchChanged)
    assert changed.reason == (
        "max_drawdown breached: drawdown 1500.00 is 15.00% of peak equity 10000.00, "
        "at or above risk.max_drawdown_pct 10.00%"
    )


def test_breach_trips_once_and_reset_during_breach_lets_positions_be_reduced() -> None:
    h = priced(RiskConfig(price_band_pct=None, daily_loss_limit=500.0))
    h.hold(OrderSide.BUY, 0.5, 100.0)
    breach = h.portfolio(equity=9_000.0, day_start_equity=10_000.0, peak_equity=10_000.0)
    h.send(breach)
    h.send(ResetKillSwitch(reason="flatten", **h.ts()))

    again = h.send(breach)
    adding = h.refusal(h.intent(OrderSide.BUY, 0.1))
    closing = h.submit(h.intent(OrderSide.SELL, 0.5))

    assert again == []
    assert adding.reason is RiskReason.DAILY_LOSS_LIMIT
    assert closing.quantity == 0.5


def test_strategy_error_cancels_only_that_strategys_orders() -> None:
    h = priced()
    mine = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0, strategy_id="alpha"))
    h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=99.0, strategy_id="beta"))

    out = h.send(StrategyError(strategy_id="alpha", error_type="KeyError", error="'x'", **h.ts()))

    assert len(out) == 1
    cancel = out[0]
    assert isinstance(cancel, CancelOrder)
    assert cancel.client_order_id == mine.client_order_id
    assert cancel.reason == "strategy alpha stopped"


# ---------------------------------------------------------------- configuration and state


def test_position_limit_for_unknown_instrument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_position_quantity: unknown instrument"):
        RiskEngine(
            RiskConfig(max_position_quantity={"BTCUSDT": 1.0}),
            INSTRUMENTS,
            SimClock(),
            RecordingOutbox(),
        )


def test_non_positive_position_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"must be a number > 0, was -1.0"):
        RiskEngine(
            RiskConfig(max_position_quantity={BTC_ID: -1.0}),
            INSTRUMENTS,
            SimClock(),
            RecordingOutbox(),
        )


def _busy_harness() -> Harness:
    """A harness with state in every part of the engine."""
    config = RiskConfig(
        price_band_pct=20.0,
        max_orders_per_s=1.0,
        order_burst=6,
        daily_loss_limit=1_000.0,
        max_position_quantity={BTC_ID: 2.0},
    )
    h = priced(config)
    h.hold(OrderSide.BUY, 0.5, 100.0)
    order = h.submit(h.intent(OrderSide.BUY, 0.2, limit_price=99.0))
    h.send(h.accepted(order))
    h.send(h.fill(order, 0.1, 99.0, leaves_qty=0.1))
    h.submit(h.intent(OrderSide.SELL, 0.3, strategy_id="beta", limit_price=101.0))
    h.refusal(h.intent(instrument_id="X.BINANCE"))
    h.send(FeedStatus(instrument_id=ETH_ID, stale=True, detail="gap", **h.ts()))
    h.send(StrategyError(strategy_id="gamma", error_type="E", error="x", **h.ts()))
    h.send(h.portfolio(equity=9_900.0, day_start_equity=10_000.0, peak_equity=10_100.0))
    return h


def test_snapshot_is_json_and_restores_to_an_identical_snapshot() -> None:
    h = _busy_harness()
    state = h.engine.snapshot()
    fresh = RiskEngine(h.config, INSTRUMENTS, h.clock, RecordingOutbox())

    fresh.restore(
        RiskEngine.State.model_validate(json.loads(json.dumps(state.model_dump(mode="json"))))
    )

    assert fresh.snapshot() == state
    assert dict(fresh.positions) == dict(h.engine.positions)
    assert dict(fresh.open_orders) == dict(h.engine.open_orders)
    assert dict(fresh.rejection_counts) == dict(h.engine.rejection_counts)


def test_restored_engine_behaves_identically() -> None:
    original = _busy_harness()
    stored = json.dumps(original.engine.snapshot().model_dump(mode="json"))
    state = RiskEngine.State.model_validate_json(stored)
    copy = Harness(original.config)
    copy.clock.set_time(original.clock.now_ns())
    copy.engine.restore(state)
    copy._intents = original._intents
    copy._fills = original._fills
    first_order_id = next(iter(original.engine.open_orders))
    replayed_fill_id = "fill-000001"

    def script(h: Harness) -> list[Message]:
        order = h.engine.open_orders[first_order_id]
        submit = SubmitOrder(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            venue=order.venue,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            time_in_force=OrderIntent.model_fields["time_in_force"].default,
            post_only=False,
            reduce_only=False,
            **h.ts(),
        )
        emitted: list[Message] = []
        emitted += h.send(h.fill(submit, 0.1, 99.0, fill_id=replayed_fill_id))
        # Two pass, one breaks the position limit, one passes and uses the last token.
        for quantity in (0.6, 0.6, 0.6, 0.06, 0.06):
            emitted += h.send(h.intent(OrderSide.BUY, quantity))
        emitted += h.send(h.intent(OrderSide.BUY, 0.1, instrument_id=ETH_ID))
        emitted += h.send(h.intent(OrderSide.BUY, 0.1, strategy_id="gamma"))
        emitted += h.send(TripKillSwitch(reason="done", **h.ts()))
        return emitted

    original_out = script(original)
    copy_out = script(copy)

    assert original_out == copy_out
    assert original.engine.snapshot() == copy.engine.snapshot()
    reasons = {m.reason for m in original_out if isinstance(m, RiskRejected)}
    assert {
        RiskReason.ORDER_RATE,
        RiskReason.MAX_POSITION,
        RiskReason.FEED_STALE,
        RiskReason.STRATEGY_STOPPED,
    } <= reasons
