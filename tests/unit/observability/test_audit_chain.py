"""The audit chain: records chain by hash, survive restarts, and any change to a line is caught."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from tests.support.stubs import fill, intent, submit
from tradegraph.contracts import OrderSide, RiskReason, RiskRejected, TripKillSwitch
from tradegraph.observability.audit import (
    GENESIS,
    AuditChain,
    AuditWriteError,
    TornLine,
    blotter_rows,
    chain_file_name,
    order_life,
    read_records,
    verify_chain,
    verify_tree,
    write_blotter,
)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def written_chain(path: Path, writer: str = "risk") -> AuditChain:
    """A chain holding an intent, Risk's acceptance, a refusal and a fill, flushed twice."""
    chain = AuditChain(path, writer, opened={"session_id": "unit"})
    chain.record_message("published", intent(intent_id="a-1", ts_ns=10))
    chain.record_message("published", submit(client_order_id="a-1", ts_ns=11))
    chain.flush()
    refused = RiskRejected(
        intent_id="a-2",
        strategy_id="alpha",
        instrument_id="BTCUSDT.BINANCE",
        reason=RiskReason.MAX_ORDER_NOTIONAL,
        detail="too big",
        ts_event_ns=12,
        ts_init_ns=12,
    )
    chain.record_message("published", refused)
    chain.record_message("published", fill("1", OrderSide.BUY, 0.1, 100.0, ts_ns=13))
    chain.flush()
    return chain


def test_each_line_holds_the_sha256_of_the_line_before_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"

    written_chain(path).close()

    lines = lines_of(path)
    records = [json.loads(line) for line in lines]
    assert [r["n"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["prev"] == GENESIS == "0" * 64
    for before, record in zip(lines, records[1:], strict=False):
        assert record["prev"] == hashlib.sha256(before).hexdigest()
    assert [r["event"] for r in records] == [
        "opened",
        "published",
        "published",
        "published",
        "published",
        "closed",
    ]
    assert records[2]["type"] == "SubmitOrder"
    assert records[2]["decision"] == "accepted"
    assert records[3]["decision"] == "refused"
    assert records[3]["msg"]["reason"] == "max_order_notional"
    assert records[4]["msg"]["last_px"] == 100.0
    assert verify_chain(path).ok


def test_nothing_reaches_the_file_before_flush(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    chain = AuditChain(path, "risk")
    chain.flush()
    size = path.stat().st_size

    chain.record_message("published", intent())

    assert path.stat().st_size == size
    chain.flush()
    assert path.stat().st_size > size


def test_a_restarted_writer_chains_on_from_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).flush()  # died without closing

    again = AuditChain(path, "risk", opened={"incarnation": 2})
    again.record_message("operator", TripKillSwitch(reason="drill", ts_event_ns=1, ts_init_ns=1))
    again.close()

    records = [json.loads(line) for line in lines_of(path)]
    assert [r["event"] for r in records][5:] == ["opened", "operator", "closed"]
    assert records[5]["prev"] == hashlib.sha256(lines_of(path)[4]).hexdigest()
    report = verify_chain(path)
    assert report.ok, report.failure
    assert report.lines == 8


def test_a_changed_byte_is_caught_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).close()
    data = bytearray(path.read_bytes())
    at = data.index(b'"last_px":100.0') + len('"last_px":1')
    data[at] = ord("9")  # 100.0 -> 190.0: still valid JSON
    path.write_bytes(bytes(data))

    report = verify_chain(path)

    assert report.failure is not None
    assert report.failure[0] == 5
    assert "changed" in report.failure[1]


def test_a_byte_that_breaks_the_json_is_caught_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).close()
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"n":3', b'"n"!3')
    path.write_bytes(b"\n".join(lines) + b"\n")

    report = verify_chain(path)

    assert report.failure == (3, "not a JSON record")


def test_a_deleted_line_is_caught_where_it_was(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).close()
    lines = lines_of(path)
    del lines[2]
    path.write_bytes(b"\n".join(lines) + b"\n")

    report = verify_chain(path)

    assert report.failure is not None
    assert report.failure[0] == 3
    assert "deleted" in report.failure[1]


def test_a_deleted_first_line_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).close()
    path.write_bytes(b"\n".join(lines_of(path)[1:]) + b"\n")

    report = verify_chain(path)

    assert report.failure is not None
    assert report.failure[0] == 1


def test_swapped_lines_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).close()
    lines = lines_of(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"\n".join(lines) + b"\n")

    assert verify_chain(path).failure is not None


def test_a_torn_last_line_fails_verification_until_a_writer_acknowledges_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).flush()
    intact = lines_of(path)
    fragment = b'{"n":6,"prev":"ab'
    path.write_bytes(path.read_bytes() + fragment)

    torn_report = verify_chain(path)
    assert torn_report.failure is not None
    assert torn_report.failure[0] == 6
    assert "torn" in torn_report.failure[1]

    found: list[TornLine] = []
    chain = AuditChain(path, "risk", on_torn=found.append)
    chain.close()

    assert [t.line for t in found] == [6]
    lines = lines_of(path)
    assert lines[:6] == [*intact, fragment]  # nothing rewritten
    acknowledged = json.loads(lines[6])
    assert acknowledged["event"] == "torn_line"
    assert acknowledged["n"] == 7
    assert acknowledged["torn_line"] == 6
    assert acknowledged["torn_sha256"] == hashlib.sha256(fragment).hexdigest()
    assert acknowledged["prev"] == hashlib.sha256(intact[-1]).hexdigest()
    report = verify_chain(path)
    assert report.ok, report.failure
    assert any("line 6: torn" in note for note in report.notes)


def test_an_unclosed_file_is_noted_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "risk.audit.ndjson"
    written_chain(path).flush()

    report = verify_chain(path)

    assert report.ok
    assert any("not closed" in note for note in report.notes)


def test_lines_cut_from_the_end_of_a_sealed_file_are_caught(tmp_path: Path) -> None:
    risk = tmp_path / chain_file_name("risk")
    head = written_chain(risk).close()
    session = AuditChain(tmp_path / chain_file_name("session"), "session")
    session.record("session_stopped", heads={risk.name: list(head)})
    session.close()
    assert all(r.ok for r in verify_tree(tmp_path))

    risk.write_bytes(b"\n".join(lines_of(risk)[:-1]) + b"\n")

    failed = [r for r in verify_tree(tmp_path) if not r.ok]
    assert [r.path.name for r in failed] == [risk.name]
    assert failed[0].failure is not None
    assert "cut" in failed[0].failure[1]


def test_a_write_that_fails_raises_an_order_path_error(tmp_path: Path) -> None:
    chain = AuditChain(tmp_path / "risk.audit.ndjson", "risk")
    chain.flush()

    os.close(chain._fd)
    chain._fd = os.open(tmp_path / "risk.audit.ndjson", os.O_RDONLY)
    chain.record_message("published", intent())

    with pytest.raises(AuditWriteError, match="not written"):
        chain.flush()


def test_an_orders_life_and_the_blotter_come_from_every_file_in_time_order(
    tmp_path: Path,
) -> None:
    strategy = AuditChain(tmp_path / chain_file_name("strategy:alpha"), "strategy:alpha")
    risk = AuditChain(tmp_path / chain_file_name("risk"), "risk")
    broker = AuditChain(tmp_path / chain_file_name("broker:BINANCE"), "broker:BINANCE")
    broker_fill = fill("f1", OrderSide.BUY, 0.1, 100.0, ts_ns=30).model_copy(
        update={"client_order_id": "a-1"}
    )
    broker.record_message("published", broker_fill)
    risk.record_message("published", submit(client_order_id="a-1", ts_ns=20))
    strategy.record_message("published", intent(intent_id="a-1", ts_ns=10))
    strategy.record_message("published", intent(intent_id="a-2", ts_ns=11))
    for chain in (strategy, risk, broker):
        chain.close()

    life = order_life(tmp_path, "a-1")

    assert [r["type"] for _, r in life] == ["OrderIntent", "SubmitOrder", "OrderFilled"]
    rows = blotter_rows(read_records(tmp_path))
    assert [(r["type"], r["client_order_id"]) for r in rows] == [
        ("OrderIntent", "a-1"),
        ("OrderIntent", "a-2"),
        ("SubmitOrder", "a-1"),
        ("OrderFilled", "a-1"),
    ]
    out = io.StringIO()
    write_blotter(rows, out)
    text = out.getvalue().splitlines()
    assert text[0].startswith("ts_event_ns,ts_recorded_ns,writer,event,type,client_order_id")
    assert len(text) == 5
    assert ",OrderFilled,a-1," in text[4]
    assert ",100.0," in text[4]


def test_a_sealed_file_emptied_is_caught(tmp_path: Path) -> None:
    risk = tmp_path / chain_file_name("risk")
    head = written_chain(risk).close()
    session = AuditChain(tmp_path / chain_file_name("session"), "session")
    session.record("session_stopped", heads={risk.name: list(head)})
    session.close()

    risk.write_bytes(b"")

    failed = [r for r in verify_tree(tmp_path) if not r.ok]
    assert [r.path.name for r in failed] == [risk.name]


def test_an_orders_life_at_one_event_time_is_in_causal_order_whatever_the_writers_clocks(
    tmp_path: Path,
) -> None:
    risk = AuditChain(tmp_path / chain_file_name("risk"), "risk")
    strategy = AuditChain(tmp_path / chain_file_name("strategy:alpha"), "strategy:alpha")
    risk.record_message("published", submit(client_order_id="a-1", ts_ns=10))
    strategy.record_message("published", intent(intent_id="a-1", ts_ns=10))
    for chain in (risk, strategy):
        chain.close()

    life = order_life(tmp_path, "a-1")

    assert [r["type"] for _, r in life] == ["OrderIntent", "SubmitOrder"]
    assert life[0][1]["ts_ns"] > life[1][1]["ts_ns"]
