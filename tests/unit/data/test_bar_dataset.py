"""Hive-partitioned bar datasets: reading them as bar sources, and the downloader's paging,
validation, deduplication and retries against a scripted exchange (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.adapters.ccxt.download import download_ohlcv, exchange_config, resolve_market
from tradegraph.data.catalog import BarArrays, read_bars
from tradegraph.errors import ConfigError, DataError, TradegraphError

MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000
JULY_1_NS = 1_751_328_000_000_000_000


def _bars(symbol: str, start_ns: int, n: int, price: float = 100.0) -> BarArrays:
    close = price + np.arange(n, dtype=np.float64)
    return BarArrays(
        symbol=symbol,
        venue="BINANCE",
        interval_ns=MINUTE_NS,
        ts_open_ns=start_ns + np.arange(n, dtype=np.int64) * MINUTE_NS,
        open=close.copy(),
        high=close + 1,
        low=close - 1,
        close=close,
        volume=np.ones(n),
    )


def _write_day(root: Path, bars: BarArrays, day: str) -> None:
    path = root / f"symbol={bars.symbol}" / f"date={day}" / "part.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(bars.to_table(), path)


def test_a_dataset_folder_reads_only_the_asked_symbol(tmp_path: Path) -> None:
    _write_day(tmp_path, _bars("BTCUSDT", JULY_1_NS, 3), "2025-07-01")
    _write_day(tmp_path, _bars("BTCUSDT", JULY_1_NS + DAY_NS, 2), "2025-07-02")
    _write_day(tmp_path, _bars("ETHUSDT", JULY_1_NS, 4), "2025-07-01")

    btc = read_bars(tmp_path, symbol="BTCUSDT")
    both = read_bars(tmp_path)

    assert [(d.symbol, len(d)) for d in btc] == [("BTCUSDT", 5)]
    assert np.all(np.diff(btc[0].ts_open_ns) > 0)
    assert sorted((d.symbol, len(d)) for d in both) == [("BTCUSDT", 5), ("ETHUSDT", 4)]


def test_a_dataset_folder_skips_days_outside_the_window(tmp_path: Path) -> None:
    _write_day(tmp_path, _bars("BTCUSDT", JULY_1_NS, 3), "2025-07-01")
    day_two = tmp_path / "symbol=BTCUSDT" / "date=2025-07-02" / "part.parquet"
    day_two.parent.mkdir(parents=True)
    day_two.write_bytes(b"not parquet: must never be opened")

    bars = read_bars(tmp_path, symbol="BTCUSDT", end_ns=JULY_1_NS + DAY_NS)

    assert len(bars[0]) == 3


def test_day_files_without_a_symbol_column_take_it_from_the_folder(tmp_path: Path) -> None:
    table = _bars("BTCUSDT", JULY_1_NS, 2).to_table().drop_columns(["symbol", "venue"])
    path = tmp_path / "symbol=SOLUSDT" / "date=2025-07-01" / "part.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)

    bars = read_bars(tmp_path, symbol="SOLUSDT", venue="BINANCE")

    assert [(d.symbol, d.venue, len(d)) for d in bars] == [("SOLUSDT", "BINANCE", 2)]


def test_a_dataset_folder_without_the_symbol_names_what_it_has(tmp_path: Path) -> None:
    _write_day(tmp_path, _bars("ETHUSDT", JULY_1_NS, 1), "2025-07-01")

    with pytest.raises(DataError, match=r"no bars for symbol 'BTCUSDT'.*\['ETHUSDT'\]"):
        read_bars(tmp_path, symbol="BTCUSDT")


class ScriptedExchange:
    """Enough of a synchronous ccxt exchange for the downloader: bars from a list, faults from
    a script."""

    id = "scripted"
    timeframes = {"1m": "1m"}

    def __init__(self, rows: list[list[Any]], failures: list[BaseException] | None = None) -> None:
        self.rows = rows
        self.failures = failures or []
        self.markets: dict[str, dict[str, Any]] = {}
        self.calls: list[int] = []
        self.last_response_headers: dict[str, str] = {}

    def load_markets(self) -> dict[str, dict[str, Any]]:
        self.markets = {
            "BTC/USDT": {
                "id": "BTCUSDT",
                "symbol": "BTC/USDT",
                "base": "BTC",
                "quote": "USDT",
                "spot": True,
            }
        }
        return self.markets

    def parse_timeframe(self, timeframe: str) -> int:
        return 60

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list[Any]]:
        self.calls.append(since)
        if self.failures:
            failure = self.failures.pop(0)
            self.last_response_headers = {"Retry-After": "3"}
            raise failure
        return [r for r in self.rows if r[0] >= since][:limit]


def _row(minute: int, close: float = 100.0) -> list[Any]:
    ms = JULY_1_NS // 1_000_000 + minute * 60_000
    return [ms, close, close + 1, close - 1, close, 2.0]


def _run(exchange: ScriptedExchange, out: Path, minutes: int, **kwargs: Any) -> Any:
    return download_ohlcv(
        exchange,
        symbol="BTCUSDT",
        timeframe="1m",
        since_ns=JULY_1_NS,
        until_ns=JULY_1_NS + minutes * MINUTE_NS,
        out_dir=out,
        **{"page_limit": 4, "retries": 0, **kwargs},
    )


def test_download_pages_validates_and_counts_each_reason(tmp_path: Path) -> None:
    rows = [_row(m) for m in range(10)]
    rows[2][4] = None  # close missing
    rows[3][1] = 0.0  # open not positive
    rows[4][2] = 50.0  # high below open and close
    rows.insert(6, [rows[5][0] + 1, 1.0, 2.0, 0.5, 1.0, 1.0])  # between two minutes
    exchange = ScriptedExchange(rows)

    report = _run(exchange, tmp_path, 10)

    assert report.dropped == {"non-finite": 1, "non-positive": 1, "bad OHLC": 1, "misaligned": 1}
    assert report.new_bars == 7
    assert report.requests == 3
    assert exchange.calls[0] == JULY_1_NS // 1_000_000


def test_rerun_keeps_bars_on_disk_and_fetches_after_the_last(tmp_path: Path) -> None:
    _run(ScriptedExchange([_row(m, close=100.0) for m in range(5)]), tmp_path, 5)
    changed = ScriptedExchange([_row(m, close=200.0) for m in range(8)])

    report = _run(changed, tmp_path, 8)

    closes = read_bars(tmp_path, symbol="BTCUSDT")[0].close
    assert closes.tolist() == [100.0] * 5 + [200.0] * 3
    assert changed.calls == [JULY_1_NS // 1_000_000 + 5 * 60_000]
    assert (report.already_stored, report.new_bars) == (5, 3)


def test_network_errors_are_retried_after_retry_after(tmp_path: Path) -> None:
    exchange = ScriptedExchange([_row(m) for m in range(3)], [ccxt.DDoSProtection("429")])
    waits: list[float] = []

    report = _run(exchange, tmp_path, 3, retries=2, sleep=waits.append)

    assert waits == [3.0]
    assert report.new_bars == 3


def test_network_errors_past_the_retries_keep_stored_pages(tmp_path: Path) -> None:
    exchange = ScriptedExchange([_row(m) for m in range(8)])
    real_fetch = exchange.fetch_ohlcv

    def fail_second(symbol: str, timeframe: str, since: int, limit: int) -> list[list[Any]]:
        if exchange.calls:
            exchange.calls.append(since)
            raise ccxt.RequestTimeout("timed out")
        return real_fetch(symbol, timeframe, since, limit)

    exchange.fetch_ohlcv = fail_second  # type: ignore[method-assign]

    with pytest.raises(TradegraphError, match="4 new bars were stored"):
        _run(exchange, tmp_path, 8)

    assert len(read_bars(tmp_path, symbol="BTCUSDT")[0]) == 4


def test_unknown_symbol_names_some_markets() -> None:
    exchange = ScriptedExchange([])
    exchange.load_markets()

    with pytest.raises(ConfigError, match=r"unknown symbol 'ETHBTC' on scripted.*BTC/USDT"):
        resolve_market(exchange, "ETHBTC")
    assert resolve_market(exchange, "btc-usdt")["symbol"] == "BTC/USDT"


def test_exchange_config_nests_overrides_and_drops_keys(tmp_path: Path) -> None:
    config_file = tmp_path / "ccxt.yaml"
    config_file.write_text("apiKey: secret-key\ntimeout: 3000\noptions: {defaultType: spot}\n")

    config = exchange_config(
        config_file=str(config_file),
        url_overrides=["api.public=http://127.0.0.1:1/api/v3"],
        options=['fetchMarkets.types=["spot"]', "recvWindow=5000"],
    )

    assert config == {
        "timeout": 3000,
        "urls": {"api": {"public": "http://127.0.0.1:1/api/v3"}},
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "recvWindow": 5000},
    }


def test_a_day_file_is_replaced_atomically(tmp_path: Path) -> None:
    _run(ScriptedExchange([_row(m) for m in range(3)]), tmp_path, 3)

    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]

    assert leftovers == []
    table = pq.read_table(next(tmp_path.rglob("part.parquet")))
    assert table.schema.field("ts").type == pa.int64()
