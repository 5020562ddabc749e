"""Columnar market data between actors: splitting by receiver, unrolling, the journal form."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

import numpy as np
import pytest

from tradegraph.actors.live_host import LiveHost, ReplaySource
from tradegraph.actors.state_store import JournalError, StateStore, decode_item, encode_item
from tradegraph.actors.wire import BlockRouter, Item, expand, message_count
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import Bar, TradeTick
from tradegraph.engine.assembly import build_router
from tradegraph.engine.backtest import load_bar_stream
from tradegraph.engine.streams import BarStream, TradeStream

PAPER = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(PAPER, ["data.bars.0.limit=50", "data.bars.1.limit=50"])


@pytest.fixture(scope="module")
def stream(config: GraphConfig) -> BarStream:
    return load_bar_stream(config)


def trades() -> TradeStream:
    return TradeStream(
        instrument_ids=("BTCUSDT.BINANCE", "ETHUSDT.BINANCE"),
        instrument_index=np.array([0, 1, 0], dtype=np.int32),
        ts_ns=np.array([10, 11, 12], dtype=np.int64),
        price=np.array([100.0, 20.0, 101.0]),
        size=np.array([0.5, 1.0, 0.25]),
        aggressor_buy=np.array([True, False, True]),
        trade_id=np.array([7, 8, 9], dtype=np.int64),
    )


def test_rows_of_a_stream_unroll_to_the_same_bars(stream: BarStream) -> None:
    block = stream.rows(slice(10, 30))
    assert list(block.messages()) == list(stream.bars())[10:30]
    picked = stream.rows(np.array([3, 5, 8]))
    assert [b.ts_event_ns for b in picked.bars()] == stream.ts_ns[[3, 5, 8]].tolist()


def test_a_block_survives_pickling_and_unrolls_in_order(stream: BarStream) -> None:
    block = stream.rows(slice(0, 40))
    items: list[Item] = [block, *list(trades().messages())[:1]]
    again = pickle.loads(pickle.dumps(items, protocol=5))
    assert list(expand(again)) == list(expand(items))
    assert message_count(again) == 41


def test_each_receiver_gets_exactly_the_rows_its_instruments_route_to(
    config: GraphConfig, stream: BarStream
) -> None:
    router = build_router(config)
    block = stream.rows(slice(0, 60))
    split = dict(BlockRouter(router).split(block))
    for dest, rows in split.items():
        expected = [b for b in block.bars() if dest in router.destinations(b)]
        assert list(rows.messages()) == expected
    # Everyone who listens to any bar of the block is given its share, and nobody else.
    listeners = {d for b in block.bars() for d in router.destinations(b)}
    assert set(split) == listeners
    assert split["risk"] is block  # risk takes every row: no copy
    btc_only = stream.rows(np.flatnonzero(stream.instrument_index == 0)[:5])
    assert "strategy:meanrev_eth" not in dict(BlockRouter(router).split(btc_only))


def test_blocks_round_trip_through_the_journal(stream: BarStream, tmp_path: Path) -> None:
    block = stream.rows(slice(5, 25))
    ticks = trades()
    assert list(decode_item(encode_item(block)).messages()) == list(block.messages())  # type: ignore[union-attr]
    assert list(decode_item(encode_item(ticks)).messages()) == list(ticks.messages())  # type: ignore[union-attr]
    store = StateStore(tmp_path)
    store.append("md", 1, 1, [block, ticks])
    store.mark_done()
    store.close()
    _, entries = store.load()
    [entry] = list(entries)
    assert list(expand(entry.messages)) == [*block.messages(), *ticks.messages()]


def test_a_block_that_does_not_hold_together_is_a_journal_error(stream: BarStream) -> None:
    kind, columns = encode_item(stream.rows(slice(0, 4)))
    columns["close"] = columns["close"][:2]
    with pytest.raises(JournalError, match="differ in length"):
        decode_item([kind, columns])
    with pytest.raises(JournalError, match="unknown block kind"):
        decode_item(["#book", columns])


def test_trade_blocks_unroll_to_checked_ticks() -> None:
    ticks = list(trades().messages())
    assert [type(t) for t in ticks] == [TradeTick] * 3
    assert [(t.instrument_id, t.aggressor_side, t.trade_id) for t in ticks] == [
        ("BTCUSDT.BINANCE", "buy", "7"),
        ("ETHUSDT.BINANCE", "sell", "8"),
        ("BTCUSDT.BINANCE", "buy", "9"),
    ]


def test_the_replay_gives_out_blocks_in_time_order_up_to_a_limit_and_a_time(
    config: GraphConfig,
) -> None:
    replay = ReplaySource(config)
    everything = list(load_bar_stream(config).bars())
    first = replay.take(None, 7)
    assert list(expand(first)) == everything[:7]
    until = everything[20].ts_event_ns
    upto = replay.take(until, 1000)
    assert list(expand(upto)) == [b for b in everything[7:] if b.ts_event_ns <= until]
    replay.skip_through(everything[40].ts_event_ns)
    rest = list(expand(replay.take(None, 1000)))
    assert rest == [b for b in everything if b.ts_event_ns > everything[40].ts_event_ns]
    assert replay.finished
    assert replay.next_ts_ns is None
    assert all(isinstance(b, Bar) for b in rest)


def test_a_first_batch_overtaken_by_the_second_is_still_handled(config: GraphConfig) -> None:
    """A sender's batch 2 may reach a receiver before batch 1; both must be handled, in order."""
    bars = list(load_bar_stream(config).bars())

    async def deliver() -> LiveHost:
        host = LiveHost(config, "risk", "unit")
        second = asyncio.ensure_future(host.push("md", 5, 2, [bars[1]]))
        await asyncio.sleep(0)
        assert host.status().held_batches == 1
        await host.push("md", 5, 1, [bars[0]])
        await second
        return host

    host = asyncio.run(deliver())
    status = host.status()
    assert status.held_batches == 0
    assert status.messages_in == 2
    assert status.clock_ns == bars[1].ts_event_ns
