"""Builders shared by the portfolio tests: instruments, a portfolio, bars and fills."""

from __future__ import annotations

from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import Bar, Instrument, LiquiditySide, OrderFilled, OrderSide
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"
MINUTE_NS = 60 * 1_000_000_000


def instruments() -> dict[str, Instrument]:
    btc = Instrument(
        symbol="BTCUSDT", venue="BINANCE", base="BTC", quote="USDT", tick_size=0.01, lot_size=1e-5
    )
    eth = Instrument(
        symbol="ETHUSDT", venue="BINANCE", base="ETH", quote="USDT", tick_size=0.01, lot_size=1e-4
    )
    return {btc.instrument_id: btc, eth.instrument_id: eth}


def make_portfolio(
    *, starting_cash: float = 10_000.0, snapshot_interval_s: float = 0.0
) -> tuple[Portfolio, SimClock, RecordingOutbox]:
    clock = SimClock()
    outbox = RecordingOutbox()
    config = PortfolioConfig(starting_cash=starting_cash, snapshot_interval_s=snapshot_interval_s)
    return Portfolio(config, instruments(), clock, outbox), clock, outbox


def bar(instrument_id: str, close: float, ts_ns: int) -> Bar:
    return Bar(
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
        instrument_id=instrument_id,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
        interval_ns=MINUTE_NS,
    )


def fill(
    fill_id: str,
    side: OrderSide,
    qty: float,
    price: float,
    *,
    fee: float = 0.0,
    strategy_id: str = "s1",
    instrument_id: str = BTC,
    ts_ns: int = 0,
) -> OrderFilled:
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
        liquidity=LiquiditySide.TAKER,
        leaves_qty=0.0,
    )
