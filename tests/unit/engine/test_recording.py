"""The market data recorder: what md published, written as catalog files that replay the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tradegraph.config.loader import load_config
from tradegraph.contracts import Bar, OrderBookSnapshot, QuoteTick, TradeTick
from tradegraph.data.catalog import read_bars, read_trades
from tradegraph.engine.backtest import load_bar_stream, load_trade_stream, run_backtest
from tradegraph.engine.recording import (
    MarketRecorder,
    recorded_data,
    recorded_trades,
    trade_id_number,
)
from tradegraph.errors import DataError
from tradegraph.research.twin import twin_config

MINUTE_NS = 60_000_000_000
T0 = 1_752_000_000 * 1_000_000_000  # 2025-07-08T18:40:00Z


def _bar(i: int, instrument_id: str = "BTCUSDT.BINANCE") -> Bar:
    return Bar(
        instrument_id=instrument_id,
        open=100.0 + i,
        high=101.0 + i,
        low=99.0 + i,
        close=100.5 + i,
        volume=2.0,
        interval_ns=MINUTE_NS,
        ts_event_ns=T0 + (i + 1) * MINUTE_NS,
        ts_init_ns=T0 + (i + 1) * MINUTE_NS,
    )


def test_published_bars_read_back_as_the_bars_they_were(tmp_path: Path) -> None:
    recorder = MarketRecorder(tmp_path / "rec", writer="w1")
    for i in range(5):
        recorder.record(_bar(i))
    recorder.flush()

    [bars] = read_bars(tmp_path / "rec" / "bars" / "60s", symbol="BTCUSDT")

    assert bars.instrument_id == "BTCUSDT.BINANCE"
    np.testing.assert_array_equal(bars.ts_open_ns, [T0 + i * MINUTE_NS for i in range(5)])
    np.testing.assert_array_equal(bars.close, [100.5 + i for i in range(5)])
    assert recorder.recorded == 5


def test_trades_quotes_and_books_are_recorded_and_other_messages_ignored(tmp_path: Path) -> None:
    recorder = MarketRecorder(tmp_path / "rec", writer="w1")
    for i, tid in enumerate(["17", "18", "abc-19"]):
        recorder.record(
            TradeTick(
                instrument_id="ETHUSDT.BINANCE",
                price=3000.0 + i,
                size=0.5,
                aggressor_side="sell" if i else "buy",
                trade_id=tid,
                ts_event_ns=T0 + i,
                ts_init_ns=T0 + i,
            )
        )
    recorder.record(
        QuoteTick(
            instrument_id="ETHUSDT.BINANCE",
            bid_price=2999.0,
            bid_size=1.0,
            ask_price=3001.0,
            ask_size=2.0,
            ts_event_ns=T0,
            ts_init_ns=T0,
        )
    )
    recorder.record(
        OrderBookSnapshot(
            instrument_id="ETHUSDT.BINANCE",
            bids=((2998.0, 3.0), (2997.0, 1.0)),
            asks=((3002.0, 4.0),),
            ts_event_ns=T0 + 5,
            ts_init_ns=T0 + 5,
        )
    )
    recorder.flush()

    found = recorded_data(tmp_path / "rec")
    joined = recorded_trades(found.trades["ETHUSDT"], tmp_path / "eth.parquet")
    trades = read_trades(joined, symbol="ETHUSDT")
    np.testing.assert_array_equal(trades.price, [3000.0, 3001.0, 3002.0])
    np.testing.assert_array_equal(trades.aggressor_buy, [True, False, False])
    assert trades.trade_id.tolist()[:2] == [17, 18]
    assert trades.trade_id[2] == trade_id_number("abc-19") != trade_id_number("abc-20")
    [quotes] = list((tmp_path / "rec" / "quotes" / "symbol=ETHUSDT").glob("*.parquet"))
    assert pq.read_table(quotes).column("bid_price").to_pylist() == [2999.0, 2998.0]
    assert found.venues == {"ETHUSDT": "BINANCE"}
    assert recorder.recorded == 5


def test_a_restarted_recorder_never_overwrites_and_repeats_are_dropped(tmp_path: Path) -> None:
    first = MarketRecorder(tmp_path / "rec", writer="1")
    second = MarketRecorder(tmp_path / "rec", writer="2")
    for recorder in (first, second):  # the second publishes the same trade again
        recorder.record(
            TradeTick(
                instrument_id="BTCUSDT.BINANCE",
                price=60_000.0,
                size=0.1,
                aggressor_side="buy",
                trade_id="5",
                ts_event_ns=T0,
                ts_init_ns=T0,
            )
        )
        recorder.flush()

    found = recorded_data(tmp_path / "rec")
    assert len(found.trades["BTCUSDT"]) == 2
    joined = recorded_trades(found.trades["BTCUSDT"], tmp_path / "btc.parquet")
    assert pq.read_table(joined).num_rows == 1


def test_rows_are_written_out_once_enough_are_held(tmp_path: Path) -> None:
    recorder = MarketRecorder(tmp_path / "rec", writer="w", flush_rows=3)
    for i in range(7):
        recorder.record(_bar(i))

    parts = sorted((tmp_path / "rec").rglob("*.parquet"))
    assert sum(pq.read_table(p).num_rows for p in parts) == 6  # two full parts, one row held
    assert recorder.maybe_flush() == []  # the interval has not passed
    assert len(recorder.maybe_flush(force=True)) == 1


def test_a_missing_recording_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no recorded market data"):
        recorded_data(tmp_path / "nowhere")


def test_a_recorded_replay_runs_to_the_same_fills_as_the_original(tmp_path: Path) -> None:
    """What md publishes in a paper session is the replay's blocks: recorded and replayed as a
    backtest they give the original backtest's fills, bar for bar and trade for trade."""
    config = load_config(
        None,
        [
            "data.bars.0.limit=2000",
            "data.trades=[{path: 'sample:BTCUSDT_trades', symbol: BTCUSDT, limit: 300}]",
        ],
    )
    original = run_backtest(config)
    assert original.fills, "the workload must trade for the comparison to mean anything"
    recorder = MarketRecorder(tmp_path / "rec", writer="w", flush_rows=700)
    bars = load_bar_stream(config)
    trades = load_trade_stream(config)
    assert trades is not None
    for start in range(0, len(bars.ts_ns), 500):  # as the replay sends it, in batches
        recorder.record_block(bars.rows(slice(start, start + 500)))
    recorder.record_block(trades)
    recorder.flush()
    session = config.model_copy(
        update={"session": config.session.model_copy(update={"record_dir": str(tmp_path / "rec")})}
    )

    replayed = run_backtest(twin_config(session, tmp_path, tmp_path / "work"))

    assert replayed.fills_digest == original.fills_digest
    assert len(replayed.fills) == len(original.fills)
