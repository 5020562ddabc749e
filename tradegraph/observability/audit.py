"""The audit trail: an append-only, hash-chained record of the order path and every control action.

A session's audit folder holds one chain file per writer, ``<writer>.audit.ndjson`` (``:`` in a
component id becomes ``-``: ``broker-BINANCE.audit.ndjson``). Each line is one JSON object,
UTF-8, ending in ``\\n``; keys in this order:

``n``
    The line's number in its file, from 1.
``prev``
    SHA-256 (hex) of the previous line's bytes, without its newline. The first line of a file
    chains from :data:`GENESIS` (64 zeros).
``ts_ns``
    Wall-clock time the record was made, nanoseconds since the Unix epoch.
``writer``
    Who wrote the file: a component id (``risk``, ``broker:BINANCE``, ``strategy:sma``...) or
    ``session`` (the driver).
``event``
    What happened: ``published`` (the writer sent ``msg`` on: an intent, Risk's decision, a
    venue event, a fill, a kill-switch change, any control message), ``operator`` (an
    operator's command reached the writer), ``halted`` (the writer halted trading), ``opened``
    (a writer process started on the file, with the session id and the configuration's
    SHA-256), ``recovered`` (a restarted actor restored its state), ``torn_line`` (see below),
    ``closed`` (the writer stopped cleanly), ``session_started`` / ``session_stopped`` (the
    driver's: the configuration and its SHA-256; the head of every chain at the stop).
    Market data, portfolio snapshots, balances and timers are not recorded
    (:data:`UNAUDITED_TYPES`); every other message is, whatever its type.
``type``, ``msg``, then the event's own fields
    For message events: the message's type and its fields. Risk's decisions are its messages:
    ``SubmitOrder`` (``decision: accepted``) and ``RiskRejected`` (``decision: refused``, the
    reason code and detail in ``msg``).
``sha``
    Always last: SHA-256 of the line up to this key (the line without ``,"sha":"..."}`` and
    with ``}`` in its place), so a changed byte is caught on its own line, the last one too.

Nothing is ever rewritten or compacted. A writer that starts on an existing file (a restarted
actor, a resumed session) reads its last line and chains on from it. A last line that is not a
whole record (the process or machine died in the middle of writing it) is never chained over
silently: the writer ends it with a newline, and its first record is ``torn_line``, naming the
torn line's number, length and SHA-256 and chaining from the last whole line, and it logs an
error. :func:`verify_chain` accepts a torn line only when it is acknowledged that way, reports
it as a note, and fails on a torn line nobody acknowledged. An actor killed while it handled a
batch handles that batch again once restarted (see ``actors/recovery.py``): a message it had
recorded just before it died may be recorded once more, after its ``opened`` and
``recovered`` records; a message it sent is never missing.

Durability (``durable``): records are buffered in memory and written with one ``write`` per
flush, which the actor host does once per batch of messages it handled, before what the batch
caused is sent on; so what reached a peer was written first, and a killed process loses
nothing it sent. ``durable=True`` (live sessions, which trade on an exchange) adds one
``fsync`` per flush, so a power loss loses nothing either; replays (paper) leave the writing
back to the operating system.

What a hash chain proves, and what it does not: a changed, deleted, inserted or reordered line
is caught, and so are lines cut from the end of a file that the driver sealed at a clean stop
(``session_stopped`` holds every chain's last line number and hash). Anyone able to rewrite a
whole file and every seal can forge a consistent one; keep the last hash of ``session`` (printed
by ``tradegraph audit verify``) elsewhere to rule that out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tradegraph.contracts import (
    AccountBalances,
    Bar,
    Message,
    OrderBookSnapshot,
    PortfolioSnapshot,
    QuoteTick,
    RiskRejected,
    SubmitOrder,
    TimerFired,
    TradeTick,
)
from tradegraph.errors import OrderPathError, TradegraphError

GENESIS = "0" * 64
"""``prev`` of the first line of every chain file."""
SUFFIX = ".audit.ndjson"
SESSION_WRITER = "session"
_SHA_KEY = ',"sha":"'
UNAUDITED_TYPES: frozenset[type[Message]] = frozenset(
    {Bar, TradeTick, QuoteTick, OrderBookSnapshot, PortfolioSnapshot, AccountBalances, TimerFired}
)
"""What a writer does not record of what it publishes: market data, portfolio snapshots, a
venue's balances and timers (the stream, not decisions). Every other message is recorded, so a
new control message is audited without further work."""
_SHA_TAIL_LEN = len(_SHA_KEY) + 64 + 2  # ,"sha":"<64 hex>"}


class AuditWriteError(OrderPathError):
    """The audit trail could not be written: trading halts."""


class AuditReadError(TradegraphError):
    """An audit folder or file cannot be read."""

    exit_code = 3


def chain_file_name(writer: str) -> str:
    """The file a writer's chain lives in, inside the audit folder."""
    return writer.replace(":", "-").replace("/", "-") + SUFFIX


def line_hash(line: bytes) -> str:
    """SHA-256 (hex) of one line's bytes, without its newline: the next line's ``prev``."""
    return hashlib.sha256(line).hexdigest()


def config_digest(config: Any) -> tuple[str, dict[str, Any]]:
    """The resolved configuration as JSON data, and the SHA-256 of its canonical form (keys
    sorted, no spaces)."""
    data: dict[str, Any] = config.model_dump(mode="json")
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest(), data


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _seal(text: str) -> bytes:
    """The JSON object ``text`` as one line, with its own ``sha`` appended as the last key."""
    data = text.encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    return data[:-1] + b',"sha":"' + sha.encode() + b'"}'


def _record_text(head: dict[str, Any], msg: Message | None, fields: Mapping[str, Any]) -> str:
    """One record's JSON: ``head``, then the message (serialised by pydantic, the cheapest
    way), then ``fields``."""
    text = _ENCODER.encode(head)
    if msg is not None:
        text = text[:-1] + ',"msg":' + msg.model_dump_json() + "}"
    if fields:
        text = text[:-1] + "," + _ENCODER.encode(fields)[1:]
    return text


def _self_hash_ok(line: bytes) -> bool:
    """Whether a line's ``sha`` is the SHA-256 of the rest of it."""
    if len(line) < _SHA_TAIL_LEN or not line.endswith(b'"}'):
        return False
    tail = line[-_SHA_TAIL_LEN:]
    if not tail.startswith(_SHA_KEY.encode()):
        return False
    body = line[:-_SHA_TAIL_LEN] + b"}"
    return hashlib.sha256(body).hexdigest().encode() == tail[len(_SHA_KEY) : -2]


@dataclass(frozen=True)
class TornLine:
    """A last line found incomplete when a writer opened its file."""

    line: int
    size: int
    sha256: str


@dataclass
class _Tail:
    lines: int
    last_hash: str
    torn: TornLine | None
    ends_with_newline: bool


def _read_tail(path: Path, block: int = 1 << 16) -> _Tail:
    """Line count, hash of the last whole record and any torn last line of ``path``.

    Counts newlines over the whole file (a chain file is read once per writer start), and reads
    the last lines themselves from the end.
    """
    size = path.stat().st_size
    if size == 0:
        return _Tail(0, GENESIS, None, True)
    newlines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            newlines += chunk.count(b"\n")
        # The last two lines: read back from the end until two line starts are known.
        start = size
        data = b""
        while start > 0 and data.count(b"\n") < 3:
            start = max(0, start - block)
            fh.seek(start)
            data = fh.read(size - start)
    ends = data.endswith(b"\n")
    parts = data.split(b"\n")
    if ends:
        parts = parts[:-1]
    lines = newlines if ends else newlines + 1
    last = parts[-1]
    before = parts[-2] if len(parts) >= 2 else None
    if not ends or _parse(last) is None:
        # The last line is torn; the chain goes on from the one before it.
        torn = TornLine(lines, len(last), line_hash(last))
        if before is None or lines == 1:
            return _Tail(lines, GENESIS, torn, ends)
        return _Tail(lines, line_hash(before), torn, ends)
    return _Tail(lines, line_hash(last), None, True)


def _parse(line: bytes) -> dict[str, Any] | None:
    """A line's record, or ``None`` if it is not a whole, self-consistent record."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("n"), int):
        return None
    return record


class AuditChain:
    """One writer's chain file: records are buffered, then written and hashed on :meth:`flush`.

    Not thread-safe: one writer (an actor host, or the driver) owns a file. Each process that
    writes to a file starts with an ``opened`` record (after a ``torn_line`` one when it found a
    torn last line).

    Args:
        path: The chain file (created with its folder if missing).
        writer: Who writes it (a component id or ``session``).
        durable: ``fsync`` after every flush.
        opened: Extra fields of the ``opened`` record (session id, incarnation, config hash).
        on_torn: Told, once, about a torn last line found on opening (to log it).
    """

    def __init__(
        self,
        path: Path,
        writer: str,
        *,
        durable: bool = False,
        opened: Mapping[str, Any] | None = None,
        on_torn: Any = None,
    ) -> None:
        self.path = path
        self.writer = writer
        self.durable = durable
        self._pending: list[tuple[int, str, dict[str, Any]]] = []
        self.closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            tail = _read_tail(path) if existed else _Tail(0, GENESIS, None, True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if durable and not existed:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise AuditWriteError(f"audit trail {path} cannot be opened: {exc}") from exc
        self.lines = tail.lines
        self.last_hash = tail.last_hash
        self.torn = tail.torn
        if not tail.ends_with_newline:
            # End the torn fragment (never rewrite it) so the next record is a line of its own.
            self._write(b"\n")
        if tail.torn is not None:
            self.record(
                "torn_line",
                torn_line=tail.torn.line,
                torn_bytes=tail.torn.size,
                torn_sha256=tail.torn.sha256,
            )
            if on_torn is not None:
                on_torn(tail.torn)
        self.record("opened", pid=os.getpid(), **dict(opened or {}))

    @property
    def head(self) -> tuple[int, str]:
        """``(number, hash)`` of the last line written (``(0, GENESIS)`` before any)."""
        return self.lines, self.last_hash

    def record(self, event: str, **fields: Any) -> None:
        """Buffer a record (written by the next :meth:`flush`)."""
        self._pending.append((time.time_ns(), event, fields))

    def record_message(self, event: str, msg: Message) -> None:
        """Buffer a message the writer published (or received, as ``event`` says)."""
        self._pending.append((time.time_ns(), event, {"msg": msg}))

    def flush(self) -> None:
        """Write what was buffered, as one write (and one ``fsync`` when durable).

        Raises:
            AuditWriteError: the file cannot be written (disk full, folder removed...).
        """
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        n, prev = self.lines, self.last_hash
        out: list[bytes] = []
        for ts_ns, event, fields in pending:
            n += 1
            head: dict[str, Any] = {
                "n": n,
                "prev": prev,
                "ts_ns": ts_ns,
                "writer": self.writer,
                "event": event,
            }
            msg = fields.pop("msg", None)
            if isinstance(msg, Message):
                head["type"] = type(msg).__name__
                if isinstance(msg, SubmitOrder):
                    fields["decision"] = "accepted"
                elif isinstance(msg, RiskRejected):
                    fields["decision"] = "refused"
            else:
                msg = None
            line = _seal(_record_text(head, msg, fields))
            prev = line_hash(line)
            out.append(line)
        self._write(b"\n".join(out) + b"\n")
        self.lines, self.last_hash = n, prev

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.durable:
                os.fsync(self._fd)
        except OSError as exc:
            raise AuditWriteError(f"audit trail {self.path} not written: {exc}") from exc

    def close(self, **fields: Any) -> tuple[int, str]:
        """Write a ``closed`` record and what is buffered; return the chain's head."""
        if self.closed:
            return self.head
        self.record("closed", **fields)
        try:
            self.flush()
        finally:
            self.closed = True
            os.close(self._fd)
        return self.head


class AuditFolder:
    """The chains of every writer of one run, written by one process (the in-process backtest,
    where all components share a process: one chain per component all the same, so its trail
    reads like a session's).

    Args:
        folder: The audit folder.
        config: The run's configuration, recorded with its SHA-256 in ``session.audit.ndjson``.
        run_id: Names the run in the records.
        flush_every: Buffered records per writer that trigger a write.
    """

    def __init__(self, folder: Path, config: Any, run_id: str, flush_every: int = 1024) -> None:
        self.folder = folder
        self.run_id = run_id
        self._flush_every = flush_every
        self._chains: dict[str, AuditChain] = {}
        self._buffered = 0
        sha, resolved = config_digest(config)
        self.config_sha256 = sha
        session = self._chain(SESSION_WRITER)
        session.record(
            "session_started",
            session_id=run_id,
            engine="local",
            config_sha256=sha,
            config=resolved,
        )
        session.flush()

    def _chain(self, writer: str) -> AuditChain:
        chain = self._chains.get(writer)
        if chain is None:
            chain = AuditChain(
                self.folder / chain_file_name(writer),
                writer,
                opened={"session_id": self.run_id, "config_sha256": self.config_sha256}
                if writer != SESSION_WRITER
                else {"session_id": self.run_id},
            )
            self._chains[writer] = chain
        return chain

    def publish(self, writer: str, msg: Message) -> None:
        """Record ``msg`` as published by ``writer`` (unless it is of an unaudited type)."""
        if type(msg) in UNAUDITED_TYPES:
            return
        self._chain(writer).record_message("published", msg)
        self._buffered += 1
        if self._buffered >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        for chain in self._chains.values():
            chain.flush()
        self._buffered = 0

    def close(self, **fields: Any) -> None:
        """Close every chain, then seal their heads in the session chain."""
        heads = {
            chain.path.name: list(chain.close())
            for writer, chain in self._chains.items()
            if writer != SESSION_WRITER
        }
        session = self._chains[SESSION_WRITER]
        session.record("session_stopped", heads=heads, **fields)
        session.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- reading and verifying ---------------------------------------------------------------


@dataclass
class ChainReport:
    """What :func:`verify_chain` found in one file.

    Attributes:
        path: The file.
        lines: Lines read (up to and including the first failing one).
        head: Hash of the last line, the value to keep elsewhere to pin the file.
        failure: ``(line number, why)`` of the first line that fails, or ``None``.
        notes: Things that are not failures: acknowledged torn lines, a file not closed.
        seals: In the driver's file: ``(line, chain file, its line number, its hash)`` of
            every chain head a ``session_stopped`` record sealed.
    """

    path: Path
    lines: int = 0
    head: str = GENESIS
    failure: tuple[int, str] | None = None
    notes: list[str] = field(default_factory=list)
    seals: list[tuple[int, str, int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


def verify_chain(
    path: Path, expected: Mapping[int, list[tuple[str, str]]] | None = None
) -> ChainReport:
    """Check every line of one chain file; stop at the first that fails.

    Args:
        path: The chain file.
        expected: Line hashes the file must have, by line number, each with who sealed it
            (``session_stopped`` records of the driver's file).
    """
    report = ChainReport(path)
    try:
        with path.open("rb") as fh:
            _verify_lines(report, _lines_with_ends(fh), expected or {})
    except OSError as exc:
        report.failure = (report.lines, f"cannot be read: {exc}")
    return report


def _lines_with_ends(fh: IO[bytes]) -> Iterator[tuple[bytes, bool, bool]]:
    """``(line without its newline, whether it had one, whether it is the last)``, streamed."""
    previous: bytes | None = None
    for raw in fh:
        if previous is not None:
            yield previous.rstrip(b"\n"), previous.endswith(b"\n"), False
        previous = raw
    if previous is not None:
        yield previous.rstrip(b"\n"), previous.endswith(b"\n"), True


def _verify_lines(
    report: ChainReport,
    lines: Iterator[tuple[bytes, bool, bool]],
    expected: Mapping[int, list[tuple[str, str]]],
) -> None:
    prev = GENESIS
    torn: tuple[int, str] | None = None
    last_event = ""
    empty = True
    for i, (raw, complete, is_last) in enumerate(lines, start=1):
        empty = False
        report.lines = i
        record = _parse(raw)
        if record is None:
            if torn is not None:
                report.failure = (torn[0], "not a JSON record")
                return
            if is_last:
                why = (
                    "torn last line: an incomplete record (the writer died while writing it)"
                    if not complete
                    else "not a JSON record"
                )
                report.failure = (i, why)
                return
            torn = (i, line_hash(raw))
            continue
        if torn is not None:
            if (
                record.get("event") != "torn_line"
                or record.get("torn_line") != torn[0]
                or record.get("torn_sha256") != torn[1]
            ):
                report.failure = (torn[0], "not a JSON record")
                return
            report.notes.append(
                f"line {torn[0]}: torn by a crash, acknowledged by the writer at line {i}"
            )
            torn = None
        if record["n"] != i:
            report.failure = (
                i,
                f"numbered {record['n']}, expected {i}: a line before it was deleted or inserted",
            )
            return
        if record.get("prev") != prev:
            report.failure = (
                i,
                f"prev does not match the SHA-256 of line {i - 1}: line {i - 1} was changed, "
                "or a line was deleted, inserted or moved",
            )
            return
        if not _self_hash_ok(raw):
            report.failure = (i, "its sha does not match its content: the line was changed")
            return
        prev = line_hash(raw)
        for sealer, want in expected.get(i, []):
            if want != prev:
                report.failure = (i, f"does not match the hash {sealer} sealed it with")
                return
        if record.get("event") == "session_stopped":
            for name, head in (record.get("heads") or {}).items():
                report.seals.append((i, name, int(head[0]), str(head[1])))
        last_event = str(record.get("event", ""))
    report.head = prev
    for n, sealed in expected.items():
        if n > report.lines:
            who = ", ".join(s for s, _ in sealed)
            report.failure = (
                report.lines + 1,
                f"missing: {who} sealed the file at line {n}, but it ends at line "
                f"{report.lines} (lines were cut from its end)",
            )
            return
    if empty:
        report.notes.append("empty")
    elif last_event != "closed":
        report.notes.append(
            "not closed: its writer is still running or died (or its last lines were cut)"
        )


def chain_files(root: Path) -> list[Path]:
    """Every chain file under ``root`` (a file is taken as it is), driver's files first.

    Raises:
        AuditReadError: ``root`` does not exist or holds no chain file.
    """
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise AuditReadError(f"{root}: no such audit folder")
    files = sorted(root.rglob("*" + SUFFIX))
    if not files:
        raise AuditReadError(f"{root}: no audit trail (*{SUFFIX}) found")
    return sorted(files, key=lambda p: (str(p.parent), p.name != chain_file_name(SESSION_WRITER)))


def verify_tree(root: Path) -> list[ChainReport]:
    """Verify every chain under ``root``, each folder's driver file first, whose seals (the
    chain heads it recorded at each clean stop) the other files of its folder must hold."""
    reports: list[ChainReport] = []
    seals: dict[Path, dict[int, list[tuple[str, str]]]] = {}
    for path in chain_files(root):
        report = verify_chain(path, seals.get(path))
        for line, name, n, sha in report.seals:
            sealed = seals.setdefault(path.parent / name, {})
            sealed.setdefault(n, []).append((f"{path.name} line {line}", sha))
        reports.append(report)
    return reports


def read_records(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every record of every chain under ``root`` (unverified; torn lines skipped)."""
    for path in chain_files(root):
        with path.open("rb") as fh:
            for raw in fh:
                record = _parse(raw.rstrip(b"\n"))
                if record is not None:
                    yield path, record


def order_key(record: Mapping[str, Any]) -> str | None:
    """The client order id a record is about (an intent's id is its order's id)."""
    msg = record.get("msg")
    if not isinstance(msg, dict):
        return None
    key = msg.get("client_order_id") or msg.get("intent_id")
    return str(key) if key else None


# Within one event time, an order's messages in causal order (writers' clocks may differ).
_CAUSAL_RANK = {
    "OrderIntent": 0,
    "CancelIntent": 0,
    "SubmitOrder": 1,
    "RiskRejected": 1,
    "CancelOrder": 1,
    "OrderAccepted": 2,
    "OrderRejected": 2,
    "OrderFilled": 3,
    "OrderCancelled": 4,
}


def _time_order(record: Mapping[str, Any]) -> tuple[int, int, int]:
    """The message's event time, its place in an order's life, then when it was recorded."""
    msg = record.get("msg") or {}
    return (
        int(msg.get("ts_event_ns") or 0),
        _CAUSAL_RANK.get(str(record.get("type")), 5),
        int(record.get("ts_ns") or 0),
    )


def order_life(root: Path, client_order_id: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every record about one order across the chains under ``root``, in time order."""
    found = [(p, r) for p, r in read_records(root) if order_key(r) == client_order_id]
    found.sort(key=lambda pr: _time_order(pr[1]))
    return found


BLOTTER_COLUMNS = (
    "ts_event_ns",
    "ts_recorded_ns",
    "writer",
    "event",
    "type",
    "client_order_id",
    "strategy_id",
    "instrument_id",
    "venue",
    "side",
    "order_type",
    "quantity",
    "limit_price",
    "fill_id",
    "last_qty",
    "last_px",
    "fee",
    "liquidity",
    "leaves_qty",
    "decision",
    "reason",
    "file",
    "line",
)

_ORDER_TYPES = frozenset(_CAUSAL_RANK)


def blotter_rows(records: Iterable[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per order event and fill, in time order."""
    rows: list[dict[str, Any]] = []
    ordered = sorted(
        ((p, r) for p, r in records if r.get("type") in _ORDER_TYPES),
        key=lambda pr: _time_order(pr[1]),
    )
    for path, record in ordered:
        kind = record.get("type")
        msg = record["msg"]
        reason = msg.get("reason", "")
        if msg.get("detail"):
            reason = f"{reason}: {msg['detail']}" if reason else msg["detail"]
        rows.append(
            {
                "ts_event_ns": msg.get("ts_event_ns"),
                "ts_recorded_ns": record.get("ts_ns"),
                "writer": record.get("writer"),
                "event": record.get("event"),
                "type": kind,
                "client_order_id": order_key(record),
                "strategy_id": msg.get("strategy_id"),
                "instrument_id": msg.get("instrument_id"),
                "venue": msg.get("venue"),
                "side": msg.get("side"),
                "order_type": msg.get("order_type"),
                "quantity": msg.get("quantity"),
                "limit_price": msg.get("limit_price"),
                "fill_id": msg.get("fill_id"),
                "last_qty": msg.get("last_qty"),
                "last_px": msg.get("last_px"),
                "fee": msg.get("fee"),
                "liquidity": msg.get("liquidity"),
                "leaves_qty": msg.get("leaves_qty"),
                "decision": record.get("decision"),
                "reason": reason,
                "file": path.name,
                "line": record.get("n"),
            }
        )
    return rows


def write_blotter(rows: list[dict[str, Any]], out: IO[str]) -> None:
    """Write blotter rows as CSV with a header."""
    writer = csv.DictWriter(out, fieldnames=BLOTTER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
