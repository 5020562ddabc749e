from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.data import instruments_from_exchange_info, read_bars, read_trades, resolve_path
from tradegraph.data.catalog import parse_time_ns
from tradegraph.errors import DataError


def test_bundled_bars_are_real_consecutive_minutes() -> None:
    (btc,) = read_bars("sample:BTCUSDT_1m")
    assert btc.instrument_id == "BTCUSDT.BINANCE"
    assert len(btc) == 44_640
    assert np.all(np.diff(btc.ts_open_ns) == 60_000_000_000)
    assert btc.ts_open_ns[0] == parse_time_ns("2025-07-01", "start")


def test_date_filter_and_limit() -> None:
    (btc,) = read_bars("sample:BTCUSDT_1m", start_ns=parse_time_ns("2025-07-10", "s"), limit=100)
    assert len(btc) == 100
    assert btc.ts_open_ns[0] == parse_time_ns("2025-07-10T00:00:00", "s")


def test_exchange_info_gives_binance_filters() -> None:
    btc, eth = instruments_from_exchange_info("sample:exchangeinfo")
    assert (btc.symbol, btc.tick_size, btc.lot_size, btc.min_notional) == (
        "BTCUSDT",
        0.01,
        1e-5,
        10.0,
    )
    assert (eth.symbol, eth.lot_size) == ("ETHUSDT", 1e-4)


def test_bundled_trades_have_consecutive_ids() -> None:
    trades = read_trades("sample:BTCUSDT_trades", symbol="BTCUSDT")
    assert len(trades) == 19_904
    assert np.all(np.diff(trades.trade_id) == 1)


def test_missing_columns_and_unknown_sample_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pq.write_table(pa.table({"ts": [1, 2], "close": [1.0, 2.0]}), path)
    with pytest.raises(DataError, match=r"missing bar columns \['open', 'high', 'low', 'volume'\]"):
        read_bars(path, symbol="X")
    with pytest.raises(DataError, match="unknown sample"):
        resolve_path("sample:nope")
    with pytest.raises(DataError, match="not found"):
        read_bars(tmp_path / "absent.parquet")


def test_file_without_symbol_column_takes_configured_symbol(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pq.write_table(
        pa.table(
            {
                "ts": pa.array([0, 60_000_000_000], pa.int64()),
                "open": [1.0, 2.0],
                "high": [1.0, 2.0],
                "low": [1.0, 2.0],
                "close": [1.0, 2.0],
                "volume": [1.0, 1.0],
            }
        ),
        path,
    )
    (bars,) = read_bars(path, symbol="ABC", venue="V")
    assert bars.instrument_id == "ABC.V"
    with pytest.raises(DataError, match="no 'symbol' column"):
        read_bars(path)
