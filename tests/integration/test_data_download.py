"""``tradegraph data download`` against the fake Binance over real HTTP, and backtests reading
what it wrote. No Ray."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import structlog

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import graph_config
from tradegraph.adapters.ccxt.download import (
    DownloadReport,
    build_exchange,
    download_ohlcv,
    exchange_config,
)
from tradegraph.cli.main import main
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, StrategyConfig
from tradegraph.data.catalog import parse_time_ns, read_bars
from tradegraph.engine.backtest import run_backtest
from tradegraph.observability import logging as observability

SINCE = "2025-07-01T22:00"
UNTIL = "2025-07-02T02:00"
MINUTE_MS = 60_000


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the download tests must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``main`` points structlog at this test's captured stderr, which closes after the test:
    later tests must find logging as it was."""
    saved = structlog.get_config()
    monkeypatch.setattr(observability, "_configured", observability._configured)
    yield
    structlog.configure(**saved)


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        yield exchange


def _download(
    fake: FakeExchange, out: Path, since: str = SINCE, until: str = UNTIL, **kwargs: Any
) -> DownloadReport:
    config = exchange_config(
        url_overrides=[f"api.public={fake.base_url}/api/v3"],
        options=['fetchMarkets.types=["spot"]'],
    )
    exchange = build_exchange("binance", {**config, "enableRateLimit": False})
    return download_ohlcv(
        exchange,
        symbol="BTC/USDT",
        timeframe="1m",
        since_ns=parse_time_ns(since, "since"),
        until_ns=parse_time_ns(until, "until"),
        out_dir=out,
        **{"page_limit": 100, "retries": 0, **kwargs},
    )


def _klines_starts(fake: FakeExchange) -> list[int]:
    return [int(r.params["startTime"]) for r in fake.requests("/api/v3/klines")]


def test_download_writes_one_file_per_day_equal_to_the_bundled_bars(
    fake: FakeExchange, tmp_path: Path
) -> None:
    report = _download(fake, tmp_path)

    assert (report.new_bars, report.requests, report.dropped_total) == (240, 3, 0)
    days = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert days == [
        "symbol=BTCUSDT/date=2025-07-01/part.parquet",
        "symbol=BTCUSDT/date=2025-07-02/part.parquet",
    ]
    schema = pq.read_schema(tmp_path / days[0])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("ts", "int64"),
        ("open", "double"),
        ("high", "double"),
        ("low", "double"),
        ("close", "double"),
        ("volume", "double"),
        ("symbol", "string"),
        ("venue", "string"),
    ]
    start_ns, end_ns = parse_time_ns(SINCE, "since"), parse_time_ns(UNTIL, "until")
    got = read_bars(tmp_path, symbol="BTCUSDT", start_ns=start_ns, end_ns=end_ns)[0]
    want = read_bars("sample:BTCUSDT_1m", start_ns=start_ns, end_ns=end_ns)[0]
    assert (got.symbol, got.venue) == ("BTCUSDT", "BINANCE")
    for column in ("ts_open_ns", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(got, column), getattr(want, column)), column


def test_a_rerun_fetches_only_what_is_missing(fake: FakeExchange, tmp_path: Path) -> None:
    _download(fake, tmp_path, since="2025-07-01T23:00", until="2025-07-02T00:30")
    fake.clear_requests()

    report = _download(fake, tmp_path)

    # Before the first stored bar, then after the last one; nothing in between again.
    assert _klines_starts(fake) == [
        parse_time_ns(SINCE, "s") // 1_000_000,
        parse_time_ns("2025-07-02T00:30", "s") // 1_000_000,
    ]
    assert (report.already_stored, report.new_bars) == (90, 150)
    fake.clear_requests()

    again = _download(fake, tmp_path)

    assert _klines_starts(fake) == []
    assert (again.new_bars, again.requests, again.already_stored) == (0, 0, 240)


def test_invalid_rows_are_dropped_and_counted(fake: FakeExchange, tmp_path: Path) -> None:
    first = parse_time_ns(SINCE, "s") // 1_000_000
    fake.corrupt_kline("BTCUSDT", first + 5 * MINUTE_MS, close=float("nan"))
    fake.corrupt_kline("BTCUSDT", first + 6 * MINUTE_MS, open=-1.0)
    fake.corrupt_kline("BTCUSDT", first + 7 * MINUTE_MS, high=1.0)

    report = _download(fake, tmp_path)

    assert report.dropped == {
        "non-finite": 1,
        "non-positive": 1,
        "bad OHLC": 1,
        "misaligned": 0,
    }
    assert report.new_bars == 237
    stored = read_bars(tmp_path, symbol="BTCUSDT")[0]
    assert first + 6 * MINUTE_MS not in set((stored.ts_open_ns // 1_000_000).tolist())
    assert "dropped 3 invalid rows (non-finite 1, non-positive 1, bad OHLC 1)" in report.summary()


def _cli_args(fake: FakeExchange, out: Path, config_file: Path) -> list[str]:
    return [
        "data",
        "download",
        "--exchange",
        "binance",
        "--symbol",
        "BTCUSDT",
        "--timeframe",
        "1m",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--out",
        str(out),
        "--page-limit",
        "100",
        "--retries",
        "0",
        "--url-override",
        f"api.public={fake.base_url}/api/v3",
        "--ccxt-option",
        'fetchMarkets.types=["spot"]',
        "--ccxt-config",
        str(config_file),
    ]


@pytest.fixture
def no_rate_limit(tmp_path: Path) -> Path:
    path = tmp_path / "ccxt.json"
    path.write_text(json.dumps({"enableRateLimit": False}))
    return path


def _sma_config(path: str) -> GraphConfig:
    strategy = StrategyConfig(
        id="sma",
        class_path="sma_cross",
        instruments=("BTCUSDT.BINANCE",),
        params={"fast_period": 5, "slow_period": 20, "quantity": 0.05},
    )
    config = graph_config((strategy,))
    source = BarSourceConfig(path=path, symbol="BTCUSDT", start=SINCE, end=UNTIL)
    return config.model_copy(update={"data": DataConfig(bars=(source,))})


def test_cli_download_then_a_backtest_on_it_fills_as_on_the_bundled_file(
    fake: FakeExchange, tmp_path: Path, no_rate_limit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bars"

    code = main(_cli_args(fake, out, no_rate_limit))

    assert code == 0, capsys.readouterr().err
    assert "240 new bars" in capsys.readouterr().out
    downloaded = run_backtest(_sma_config(str(out)))
    bundled = run_backtest(_sma_config("sample:BTCUSDT_1m"))
    assert len(bundled.fills) > 0
    assert downloaded.summary()["bars"] == bundled.summary()["bars"] == 240
    assert downloaded.fills_digest == bundled.fills_digest


def test_cli_unknown_exchange_or_symbol_exits_2_with_one_line(
    fake: FakeExchange, tmp_path: Path, no_rate_limit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _cli_args(fake, tmp_path / "bars", no_rate_limit)

    bad_exchange = main([*args, "--exchange", "nosuchexchange"])
    exchange_err = capsys.readouterr().err
    bad_symbol = main([*args, "--symbol", "DOGEBTC"])
    symbol_err = capsys.readouterr().err

    assert (bad_exchange, bad_symbol) == (2, 2)
    assert (
        exchange_err
        == "error: unknown exchange 'nosuchexchange': not a ccxt exchange id (e.g. binance, kraken, okx)\n"
    )
    assert symbol_err.startswith("error: unknown symbol 'DOGEBTC' on binance")
    assert symbol_err.count("\n") == 1
    assert not (tmp_path / "bars").exists()


def test_cli_network_failure_exits_non_zero_and_keeps_what_was_stored(
    fake: FakeExchange, tmp_path: Path, no_rate_limit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bars"
    fake.disconnect_next(path="/api/v3/klines", after=1)

    code = main(_cli_args(fake, out, no_rate_limit))

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: network failure talking to binance")
    assert "rerun the same command to resume" in err
    assert err.count("\n") == 1
    stored = read_bars(out, symbol="BTCUSDT")[0]
    assert len(stored) == 100
    assert [r.status for r in fake.requests("/api/v3/klines")] == [200, 0]


def test_montecarlo_calibrates_from_the_dataset_as_from_the_same_bars_in_one_file(
    fake: FakeExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "bars"
    _download(fake, dataset)
    single = tmp_path / "bars.parquet"
    start_ns, end_ns = parse_time_ns(SINCE, "since"), parse_time_ns(UNTIL, "until")
    bundled = read_bars("sample:BTCUSDT_1m", start_ns=start_ns, end_ns=end_ns)[0]
    pq.write_table(bundled.to_table(), single)
    capsys.readouterr()

    digests = []
    for data in (dataset, single):
        args = [
            "montecarlo",
            "--calibrate-from",
            str(data),
            "--paths",
            "2",
            "--bars-per-path",
            "60",
        ]
        args += ["--model", "bootstrap", "--in-process", "--no-html", "--json"]
        args += ["--out", str(tmp_path / f"mc-{data.name}")]
        assert main(args) == 0, capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["scenarios_failed"] == 0
        digests.append(summary["results_digest"])

    assert digests[0] == digests[1]


def test_a_rate_limited_page_waits_out_the_retry_after_then_resumes(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.fail_next(count=1, path="/api/v3/klines", status=429, retry_after_s=7)
    slept: list[float] = []

    report = _download(fake, tmp_path, retries=2, sleep=slept.append, rand=lambda: 0.0)

    assert slept == [7.0]
    assert (report.new_bars, report.requests) == (240, 3)
