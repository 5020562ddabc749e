"""The order journal: typed-state snapshots and an append-only file that survives a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tradegraph.adapters.ccxt.order_journal import (
    JournalFill,
    JournalOrder,
    JournalState,
    JournalStatus,
    OrderJournal,
    highest_order_numbers,
)
from tradegraph.contracts import OrderSide, OrderType, TimeInForce
from tradegraph.contracts.state import ComponentState, StateVersionError


def order(cid: str = "sma-000001", status: JournalStatus = JournalStatus.PENDING) -> JournalOrder:
    return JournalOrder(
        client_order_id=cid,
        venue_client_id=f"tgabc123{cid}",
        strategy_id="sma",
        instrument_id="BTCUSDT.BINANCE",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        quantity=0.5,
        limit_price=99.0,
        time_in_force=TimeInForce.GTC,
        post_only=False,
        tag="",
        status=status,
    )


def fill(
    fill_id: str = "BINANCE-BTCUSDT-1", *, client_order_id: str = "sma-000001", ts_ns: int = 5
) -> JournalFill:
    return JournalFill(
        fill_id=fill_id,
        client_order_id=client_order_id,
        instrument_id="BTCUSDT.BINANCE",
        side=OrderSide.BUY,
        quantity=0.2,
        price=99.0,
        fee=0.0198,
        fee_cost=0.0198,
        fee_currency="USDT",
        ts_ns=ts_ns,
    )


def test_file_replay_gives_the_last_state_of_every_record(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = OrderJournal.load(path)
    o = order()
    journal.record_order(o)
    o.status = JournalStatus.OPEN
    o.venue_order_id = "1001"
    journal.record_order(o)
    journal.record_fill(fill())
    journal.set_baseline({"BTC": 1.0, "USDT": 1000.0}, 3)
    journal.close()

    loaded = OrderJournal.load(path)

    assert loaded.snapshot() == journal.snapshot()
    assert loaded.orders["sma-000001"].venue_order_id == "1001"


def test_a_fill_is_recorded_once() -> None:
    journal = OrderJournal()

    first = journal.record_fill(fill())
    again = journal.record_fill(fill())

    assert (first, again) == (True, False)
    assert len(journal.fills) == 1


def test_torn_last_line_is_skipped_and_later_writes_start_on_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = OrderJournal.load(path)
    journal.record_order(order("a"))
    journal.close()
    with path.open("a") as fh:
        fh.write('{"kind":"order","order":{"client_ord')  # the crash

    reopened = OrderJournal.load(path)
    reopened.record_order(order("b"))
    reopened.close()
    final = OrderJournal.load(path)

    assert sorted(final.orders) == ["a", "b"]
    assert len(reopened.skipped_lines) == 1


def test_snapshot_restore_round_trip_and_version_check() -> None:
    journal = OrderJournal()
    journal.record_order(order(status=JournalStatus.OPEN))
    journal.record_fill(fill())
    restored = OrderJournal()

    restored.restore(journal.snapshot())

    assert restored.snapshot() == journal.snapshot()
    assert isinstance(journal.snapshot(), ComponentState)
    assert JournalState.model_validate_json(journal.snapshot().model_dump_json()) == (
        journal.snapshot()
    )
    stored = journal.snapshot().model_dump(mode="json")
    with pytest.raises(StateVersionError, match=r"JournalState: .*schema_version 99"):
        JournalState.model_validate({**stored, "schema_version": 99})


def test_restore_into_a_file_journal_rewrites_the_file(tmp_path: Path) -> None:
    source = OrderJournal()
    source.record_order(order("x", JournalStatus.OPEN))
    target = OrderJournal.load(tmp_path / "j.jsonl")
    target.record_order(order("old"))

    target.restore(source.snapshot())
    target.close()

    assert sorted(OrderJournal.load(tmp_path / "j.jsonl").orders) == ["x"]


def test_active_orders_are_those_not_terminal() -> None:
    journal = OrderJournal()
    for cid, status in [("p", JournalStatus.PENDING), ("o", JournalStatus.OPEN)] + [
        (s.value, s)
        for s in (JournalStatus.FILLED, JournalStatus.CANCELLED, JournalStatus.REJECTED)
    ]:
        journal.record_order(order(cid, status))

    assert sorted(o.client_order_id for o in journal.active_orders()) == ["o", "p"]


def finished_order(cid: str, created_ns: int) -> JournalOrder:
    o = order(cid, JournalStatus.FILLED)
    o.created_ns = created_ns
    o.last_sent_ns = created_ns
    return o


def test_finished_orders_fold_into_the_baseline_and_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = OrderJournal.load(path)
    journal.set_baseline({"BTC": 1.0, "USDT": 1000.0}, 10)
    journal.record_order(finished_order("old", 20))
    journal.record_fill(fill("F1", client_order_id="old", ts_ns=30))
    journal.record_order(finished_order("recent", 20))
    journal.record_fill(fill("F2", client_order_id="recent", ts_ns=500))
    journal.record_order(order("open"))

    old = journal.finished_before(100)
    folded = journal.fold([o.client_order_id for o in old], {"BTC": 0.2, "USDT": -19.8198}, 100)
    journal.close()

    assert [o.client_order_id for o in old] == ["old"]
    assert [f.fill_id for f in folded] == ["F1"]
    loaded = OrderJournal.load(path)
    assert sorted(loaded.orders) == ["open", "recent"]
    assert list(loaded.fills) == ["F2"]
    assert loaded.baseline_balances == pytest.approx({"BTC": 1.2, "USDT": 980.1802})
    assert loaded.baseline_ns == 100
    assert len(path.read_text().splitlines()) == 4  # baseline, two orders, one fill


def test_fold_refuses_an_unfinished_order_or_one_filled_after_the_new_baseline() -> None:
    journal = OrderJournal()
    journal.set_baseline({"BTC": 1.0}, 10)
    journal.record_order(order("open", JournalStatus.OPEN))
    journal.record_order(finished_order("late", 20))
    journal.record_fill(fill("F9", client_order_id="late", ts_ns=200))

    with pytest.raises(ValueError, match="open is not a finished order"):
        journal.fold(["open"], {}, 100)
    with pytest.raises(ValueError, match="not older than the new baseline"):
        journal.fold(["late"], {}, 100)
    assert sorted(journal.orders) == ["late", "open"]
    assert journal.baseline_balances == {"BTC": 1.0}


def test_the_file_is_rewritten_once_most_of_its_lines_are_superseded(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = OrderJournal.load(path)
    o = order()
    for step in range(5_000):
        o.detail = f"update {step}"
        journal.record_order(o)
    journal.close()

    lines = path.read_text().splitlines()
    assert 1 <= len(lines) <= 1_000
    loaded = OrderJournal.load(path)
    assert loaded.orders["sma-000001"].detail == "update 4999"
    assert loaded.skipped_lines == []


def test_highest_order_numbers_are_found_per_strategy_across_venue_journals(
    tmp_path: Path,
) -> None:
    binance = OrderJournal.load(tmp_path / "BINANCE.jsonl")
    for cid in ("sma-000003", "sma-000012", "sma-000007"):
        binance.record_order(order(cid, JournalStatus.FILLED))
    binance.close()
    okx = OrderJournal.load(tmp_path / "OKX.jsonl")
    okx.record_order(order("sma-000020", JournalStatus.OPEN))
    okx.close()

    assert highest_order_numbers(tmp_path) == {"sma": 20}
    assert highest_order_numbers(tmp_path / "missing") == {}


V1_JOURNAL = Path(__file__).with_name("journal_v1.jsonl")
"""A journal file as the broker wrote it before its records became typed state."""


def test_a_journal_file_of_an_earlier_version_loads_and_writes_the_same_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(V1_JOURNAL.read_bytes())
    old_lines = [json.loads(line) for line in V1_JOURNAL.read_text().splitlines()]

    journal = OrderJournal.load(path)

    assert journal.skipped_lines == []
    [order] = journal.orders.values()
    assert (order.client_order_id, order.status, order.venue_order_id) == (
        "sma-1",
        JournalStatus.OPEN,
        "42",
    )
    assert order.filled_qty == pytest.approx(0.2)
    [loaded_fill] = journal.fills.values()
    assert (loaded_fill.fill_id, loaded_fill.fee_currency) == ("BINANCE-BTCUSDT-7", "BTC")
    assert journal.baseline_balances == {"BTC": 1.0, "USDT": 1000.0}
    assert journal.baseline_ns == 1_699_999_999_000_000_000
    # Records written today are the lines an earlier version wrote for the same state.
    assert order.to_state().model_dump(mode="json") == old_lines[3]["order"]
    assert loaded_fill.to_state().model_dump(mode="json") == old_lines[2]["fill"]


def test_records_round_trip_through_frozen_state() -> None:
    record = order(status=JournalStatus.OPEN)
    made = fill()

    state = record.to_state()

    assert JournalOrder.from_state(state) == record
    assert JournalFill.from_state(made.to_state()) == made
    with pytest.raises(ValidationError):
        state.status = JournalStatus.FILLED  # type: ignore[misc]
    assert OrderJournal().snapshot().schema_version == 1
