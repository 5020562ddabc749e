"""The shared test kit builds what the project really trades, and messages that hang together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stubs import (
    BTC_ID,
    ETH_ID,
    MINUTE_NS,
    bars,
    btcusdt,
    cancel,
    ethusdt,
    instruments,
    portfolio_snapshot,
    position_snapshot,
    quote,
    submit,
    trade,
)
from tradegraph.config import load_config
from tradegraph.contracts import OrderSide, OrderType
from tradegraph.contracts.marks import mark_price

ROOT = Path(__file__).resolve().parents[3]


def test_kit_instruments_are_the_ones_the_shipped_configs_trade() -> None:
    default = load_config().instrument_map()
    multi = load_config(ROOT / "examples" / "multi_strategy.yaml").instrument_map()

    assert btcusdt() == default[BTC_ID]
    assert ethusdt() == multi[ETH_ID]
    assert instruments() == {BTC_ID: btcusdt(), ETH_ID: ethusdt()}


def test_kit_instrument_changes_are_validated() -> None:
    assert btcusdt(lot_size=0.001).lot_size == 0.001
    with pytest.raises(ValueError, match="lot_size must be > 0"):
        btcusdt(lot_size=0.0)


def test_kit_bars_are_spaced_by_their_interval() -> None:
    made = bars([100.0, 101.0, 99.5], start_ns=5 * MINUTE_NS)

    assert [b.ts_event_ns for b in made] == [5 * MINUTE_NS, 6 * MINUTE_NS, 7 * MINUTE_NS]
    assert [(b.open, b.high, b.low, b.close) for b in made][1] == (101.0, 101.0, 101.0, 101.0)


def test_kit_portfolio_snapshot_adds_up() -> None:
    long_btc = position_snapshot(0.5, 100.0, mark_price=110.0)
    short_eth = position_snapshot(-2.0, 10.0, mark_price=9.0, instrument_id=ETH_ID)

    snapshot = portfolio_snapshot(1_000.0, [long_btc, short_eth], peak_equity=1_100.0)

    assert snapshot.equity == pytest.approx(1_000.0 + 55.0 - 18.0)
    assert snapshot.gross_exposure == pytest.approx(73.0)
    assert snapshot.net_exposure == pytest.approx(37.0)
    assert snapshot.unrealized_pnl == pytest.approx(5.0 + 2.0)
    assert snapshot.drawdown == pytest.approx(1_100.0 - 1_037.0)


def test_kit_ticks_are_stamped_and_mark_where_the_rule_says() -> None:
    last = trade(101.0, ts_ns=7)
    top = quote(100.0, 102.0, instrument_id=ETH_ID, ts_ns=8)

    assert (last.ts_event_ns, last.ts_init_ns, last.instrument_id) == (7, 7, BTC_ID)
    assert (top.ts_event_ns, top.instrument_id) == (8, ETH_ID)
    assert (mark_price(last), mark_price(top)) == (101.0, 101.0)


def test_kit_order_is_a_limit_order_when_priced_and_its_cancel_follows_it() -> None:
    market = submit(OrderSide.SELL, 0.5, client_order_id="sma-000001", ts_ns=10)
    limit = submit(limit_price=99.0)

    cancelled = cancel(market, "kill switch")

    assert (market.order_type, limit.order_type) == (OrderType.MARKET, OrderType.LIMIT)
    assert (cancelled.client_order_id, cancelled.venue, cancelled.reason) == (
        "sma-000001",
        "BINANCE",
        "kill switch",
    )
    assert cancelled.ts_event_ns == 11
    assert cancel(market, ts_ns=20).ts_init_ns == 20
