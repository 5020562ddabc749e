"""Snapshots and journals of live actors: what recovery reads back, and what it sends again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradegraph.actors.state_store import JournalError, StateStore, decode_message, encode_message
from tradegraph.contracts import Bar, OrderIntent, OrderSide, OrderType, TimeInForce


def bar(ts_ns: int, close: float = 100.0) -> Bar:
    return Bar(
        instrument_id="BTCUSDT.BINANCE",
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
        interval_ns=60_000_000_000,
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
    )


def test_messages_round_trip_through_the_journal_encoding() -> None:
    intent = OrderIntent(
        intent_id="s-1",
        strategy_id="s",
        instrument_id="BTCUSDT.BINANCE",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        quantity=0.5,
        limit_price=99.5,
        time_in_force=TimeInForce.GTC,
        ts_event_ns=5,
        ts_init_ns=5,
    )

    decoded = [decode_message(encode_message(m)) for m in (bar(1), intent)]

    assert decoded == [bar(1), intent]


def test_unknown_message_type_in_a_journal_is_an_error() -> None:
    with pytest.raises(JournalError, match="unknown message type 'Nope'"):
        decode_message(["Nope", {}])


def test_recovery_reads_the_snapshot_and_only_the_batches_after_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.append("md", 1, 1, [bar(1)])
    store.mark_done()
    store.write_snapshot({"seen": 1})
    store.append("md", 1, 2, [bar(2)])
    store.mark_done()
    store.append("md", 1, 3, [bar(3)])
    store.close()

    state, entries = StateStore(tmp_path).load()
    found = list(entries)

    assert state == {"seen": 1}
    assert [(e.seq, e.done) for e in found] == [(2, True), (3, False)]
    assert found[0].messages == [bar(2)]


def test_a_torn_last_line_is_skipped_but_a_torn_middle_line_is_an_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.append("md", 1, 1, [bar(1)])
    store.mark_done()
    store.close()
    journal = next(tmp_path.glob("journal.*.ndjson"))
    journal.write_text(journal.read_text() + '["md", 1, 2, [["Bar", {"ts')

    _, entries = StateStore(tmp_path).load()
    assert [e.seq for e in entries] == [1]

    journal.write_text('["md", 1, 2, [["Bar"\n' + journal.read_text())
    _, entries = StateStore(tmp_path).load()
    with pytest.raises(JournalError, match="corrupt journal line"):
        list(entries)


def test_snapshots_remove_journals_they_cover(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.append("md", 1, 1, [bar(1)])
    store.mark_done()

    store.write_snapshot({"n": 1})
    store.write_snapshot({"n": 2})

    assert sorted(p.name for p in tmp_path.glob("journal.*")) == ["journal.2.ndjson"]
    state, entries = StateStore(tmp_path).load()
    assert state == {"n": 2}
    assert list(entries) == []


def test_sent_records_come_back_after_the_snapshot_that_precedes_them(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.append_sent([0, 2, {"risk": [7, 1]}, ["risk"]])
    store.write_snapshot({"position": 2})
    store.append_sent([2, 4, {"risk": [7, 2]}, ["risk"]])
    store.append("risk", 1, 1, [bar(5)])
    store.close()

    state, entries = StateStore(tmp_path).load()
    found = list(entries)

    assert state == {"position": 2}
    assert [e.sent for e in found] == [[2, 4, {"risk": [7, 2]}, ["risk"]], None]
    assert found[1].sender == "risk"
