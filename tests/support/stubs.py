"""The shared test kit: instruments, bars, ticks, intents, fills, snapshots and a recording outbox.

After NautilusTrader's ``test_kit/stubs``: one place that knows how to build a valid message, so a
test states only what its scenario is about. Instruments start from the project's real definitions
(Binance spot exchangeInfo, as in ``tradegraph/config/defaults/backtest.yaml`` and
``examples/multi_strategy.yaml``); a test that needs other increments or fees says so::

    btc = btcusdt(lot_size=0.001, min_notional=0.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from tradegraph.contracts import (
    Bar,
    CancelOrder,
    Instrument,
    LiquiditySide,
    OrderFilled,
    OrderIntent,
    OrderSide,
    OrderType,
    PortfolioSnapshot,
    PositionSnapshot,
    QuoteTick,
    SubmitOrder,
    TimeInForce,
    TradeTick,
)
from tradegraph.testing import RecordingOutbox

__all__ = [
    "BTC_ID",
    "ETH_ID",
    "MINUTE_NS",
    "RecordingOutbox",
    "bar",
    "bars",
    "btcusdt",
    "cancel",
    "ethusdt",
    "fill",
    "instruments",
    "intent",
    "portfolio_snapshot",
    "position_snapshot",
    "quote",
    "submit",
    "trade",
]

MINUTE_NS = 60 * 1_000_000_000
BTC_ID = "BTCUSDT.BINANCE"
ETH_ID = "ETHUSDT.BINANCE"

# Binance spot: tick 0.01, lot 0.00001 (BTC) / 0.0001 (ETH), minimum notional 10 USDT, 10 bps fees.
_BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "venue": "BINANCE",
    "base": "BTC",
    "quote": "USDT",
    "tick_size": 0.01,
    "lot_size": 0.00001,
    "min_quantity": 0.00001,
    "min_notional": 10.0,
    "maker_fee": 0.001,
    "taker_fee": 0.001,
}
_ETHUSDT: dict[str, Any] = {
    **_BTCUSDT,
    "symbol": "ETHUSDT",
    "base": "ETH",
    "lot_size": 0.0001,
    "min_quantity": 0.0001,
}


def btcusdt(**changes: Any) -> Instrument:
    """BTCUSDT on Binance spot, with ``changes`` (any Instrument field) applied and validated."""
    return Instrument.model_validate({**_BTCUSDT, **changes})


def ethusdt(**changes: Any) -> Instrument:
    """ETHUSDT on Binance spot, with ``changes`` (any Instrument field) applied and validated."""
    return Instrument.model_validate({**_ETHUSDT, **changes})


def instruments(*defined: Instrument) -> dict[str, Instrument]:
    """Instruments keyed by id, as components take them (BTCUSDT and ETHUSDT if none given)."""
    return {i.instrument_id: i for i in (defined or (btcusdt(), ethusdt()))}


def bar(
    close: float,
    *,
    ts_ns: int = MINUTE_NS,
    instrument_id: str = BTC_ID,
    open_: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1.0,
    interval_ns: int = MINUTE_NS,
) -> Bar:
    """A bar stamped ``ts_ns``; open, high and low default to ``close`` (a flat bar)."""
    return Bar(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        instrument_id=instrument_id,
        open=close if open_ is None else open_,
        high=close if high is None else high,
        low=close if low is None else low,
        close=close,
        volume=volume,
        interval_ns=interval_ns,
    )


def bars(
    closes: Iterable[float],
    *,
    instrument_id: str = BTC_ID,
    start_ns: int = MINUTE_NS,
    interval_ns: int = MINUTE_NS,
    volume: float = 1.0,
) -> list[Bar]:
    """Flat bars, one per close, ``interval_ns`` apart from ``start_ns``."""
    return [
        bar(
            close,
            ts_ns=start_ns + i * interval_ns,
            instrument_id=instrument_id,
            volume=volume,
            interval_ns=interval_ns,
        )
        for i, close in enumerate(closes)
    ]


def trade(
    price: float,
    *,
    size: float = 1.0,
    aggressor_side: Literal["buy", "sell"] = "buy",
    trade_id: str = "t1",
    instrument_id: str = BTC_ID,
    ts_ns: int = 0,
) -> TradeTick:
    """A public trade of ``size`` at ``price``, stamped ``ts_ns``."""
    return TradeTick(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        instrument_id=instrument_id,
        price=price,
        size=size,
        aggressor_side=aggressor_side,
        trade_id=trade_id,
    )


def quote(
    bid: float,
    ask: float,
    *,
    bid_size: float = 1.0,
    ask_size: float = 1.0,
    instrument_id: str = BTC_ID,
    ts_ns: int = 0,
) -> QuoteTick:
    """A top-of-book quote, stamped ``ts_ns``."""
    return QuoteTick(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        instrument_id=instrument_id,
        bid_price=bid,
        bid_size=bid_size,
        ask_price=ask,
        ask_size=ask_size,
    )


def intent(
    side: OrderSide = OrderSide.BUY,
    quantity: float = 0.1,
    *,
    intent_id: str = "alpha-000001",
    strategy_id: str = "alpha",
    instrument_id: str = BTC_ID,
    limit_price: float | None = None,
    time_in_force: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
    reduce_only: bool = False,
    ts_ns: int = 0,
) -> OrderIntent:
    """A strategy's order intent: a market order, or a limit order when ``limit_price`` is set."""
    return OrderIntent(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        intent_id=intent_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=limit_price,
        time_in_force=time_in_force,
        post_only=post_only,
        reduce_only=reduce_only,
    )


def submit(
    side: OrderSide = OrderSide.BUY,
    quantity: float = 0.1,
    *,
    client_order_id: str = "alpha-000001",
    strategy_id: str = "alpha",
    instrument_id: str = BTC_ID,
    venue: str = "BINANCE",
    limit_price: float | None = None,
    time_in_force: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
    reduce_only: bool = False,
    tag: str = "",
    ts_ns: int = 0,
) -> SubmitOrder:
    """Risk's order to a venue: a market order, or a limit order when ``limit_price`` is set."""
    return SubmitOrder(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        client_order_id=client_order_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        venue=venue,
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=limit_price,
        time_in_force=time_in_force,
        post_only=post_only,
        reduce_only=reduce_only,
        tag=tag,
    )


def cancel(order: SubmitOrder, reason: str = "", *, ts_ns: int | None = None) -> CancelOrder:
    """The cancel of ``order``, stamped ``ts_ns`` (one nanosecond after the order if not given)."""
    ts = order.ts_event_ns + 1 if ts_ns is None else ts_ns
    return CancelOrder(
        ts_event_ns=ts,
        ts_init_ns=ts,
        client_order_id=order.client_order_id,
        strategy_id=order.strategy_id,
        instrument_id=order.instrument_id,
        venue=order.venue,
        reason=reason,
    )


def fill(
    fill_id: str,
    side: OrderSide,
    qty: float,
    price: float,
    *,
    fee: float = 0.0,
    strategy_id: str = "s1",
    instrument_id: str = BTC_ID,
    ts_ns: int = 0,
    liquidity: LiquiditySide = LiquiditySide.TAKER,
    leaves_qty: float = 0.0,
) -> OrderFilled:
    """A venue fill of order ``o-{fill_id}`` on Binance."""
    return OrderFilled(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        fill_id=fill_id,
        client_order_id=f"o-{fill_id}",
        venue_order_id=f"v-{fill_id}",
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        venue="BINANCE",
        side=side,
        last_qty=qty,
        last_px=price,
        fee=fee,
        liquidity=liquidity,
        leaves_qty=leaves_qty,
    )


def position_snapshot(
    quantity: float,
    avg_price: float,
    *,
    mark_price: float | None = None,
    instrument_id: str = BTC_ID,
    realized_pnl: float = 0.0,
    ts_ns: int = 0,
) -> PositionSnapshot:
    """One position, marked at ``mark_price`` (its average price if not given)."""
    mark = avg_price if mark_price is None else mark_price
    return PositionSnapshot(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        instrument_id=instrument_id,
        quantity=quantity,
        avg_price=avg_price,
        mark_price=mark,
        realized_pnl=realized_pnl,
        unrealized_pnl=quantity * (mark - avg_price),
    )


def portfolio_snapshot(
    cash: float,
    positions: Sequence[PositionSnapshot] = (),
    *,
    fees: float = 0.0,
    peak_equity: float | None = None,
    day_start_equity: float | None = None,
    ts_ns: int = 0,
) -> PortfolioSnapshot:
    """A portfolio snapshot whose equity, exposures and P&L follow from cash and positions."""
    values = [p.quantity * p.mark_price for p in positions]
    equity = cash + sum(values)
    peak = equity if peak_equity is None else peak_equity
    return PortfolioSnapshot(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        cash=cash,
        equity=equity,
        gross_exposure=sum(abs(v) for v in values),
        net_exposure=sum(values),
        realized_pnl=sum(p.realized_pnl for p in positions),
        unrealized_pnl=sum(p.unrealized_pnl for p in positions),
        fees=fees,
        peak_equity=peak,
        drawdown=max(0.0, peak - equity),  # absolute, in the quote currency, as Portfolio sends
        day_start_equity=equity if day_start_equity is None else day_start_equity,
        positions=tuple(positions),
    )
