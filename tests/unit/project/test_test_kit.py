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
    ethusdt,
    instruments,
    portfolio_snapshot,
    position_snapshot,
)
from tradegraph.config import load_config

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
