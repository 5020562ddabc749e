"""Durable state of a live actor: periodic snapshots plus a journal of what it processed since.

Layout under ``<state_dir>/<component>/``::

    snapshot.json        the component's snapshot, the host's link watermarks and clock, and
                         the generation of the journal that continues it (written atomically)
    journal.<gen>.ndjson one JSON line per delivered batch, written before the batch is handled;
                         in ``md``, one ``{"sent": ...}`` line per replay batch, written before
                         it is sent
    curve.ndjson,        the portfolio only: its equity curve and fills, appended at each
    fills.ndjson         snapshot, which keeps only their line counts (see PortfolioHistory)

Recovery restores the snapshot and re-delivers every journaled batch of that generation and
later ones, in order. Writing the journal line *before* handling the batch makes a crash at any
point recoverable: a batch is either in the journal (replayed on recovery, its sender's resend
then recognised as a duplicate) or not (resent by its sender and handled afresh).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tradegraph.actors.wire import Item, decode_block, encode_block, is_block
from tradegraph.contracts import Message
from tradegraph.errors import TradegraphError


class JournalError(TradegraphError):
    """A snapshot or journal cannot be read back: recovery would not be faithful."""


def _message_types() -> dict[str, type[Message]]:
    found: dict[str, type[Message]] = {}
    pending: list[type[Message]] = [Message]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found.setdefault(sub.__name__, sub)
            pending.append(sub)
    return found


_TYPES: dict[str, type[Message]] = {}


def encode_message(msg: Message) -> list[Any]:
    """``[type name, fields]``: a message as JSON-able plain data."""
    return [type(msg).__name__, msg.model_dump(mode="json")]


def decode_message(raw: Sequence[Any]) -> Message:
    """The message ``encode_message`` described (validated again on the way in).

    Raises:
        JournalError: the type is unknown or the fields do not fit it.
    """
    name, fields = raw[0], raw[1]
    kind = _TYPES.get(name)
    if kind is None:
        _TYPES.update(_message_types())
        kind = _TYPES.get(name)
    if kind is None:
        raise JournalError(f"journal names an unknown message type {name!r}")
    try:
        return kind.model_validate(fields)
    except ValueError as exc:
        raise JournalError(f"journal holds an invalid {name}: {exc}") from exc


def encode_item(item: Item) -> list[Any]:
    """A batch item (a message or a market-data block) as JSON-able plain data."""
    return encode_message(item) if isinstance(item, Message) else encode_block(item)


def decode_item(raw: Sequence[Any]) -> Item:
    """The item :func:`encode_item` described.

    Raises:
        JournalError: it does not describe a message or block.
    """
    if not is_block(raw):
        return decode_message(raw)
    try:
        return decode_block(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"journal holds an invalid market-data block: {exc}") from exc


@dataclass
class JournalEntry:
    """One delivered batch: who sent it, its place in that sender's stream, the messages, and
    whether what it caused was sent on (``done``)."""

    sender: str
    incarnation: int
    seq: int
    messages: list[Item]
    done: bool = False
    # A batch ``md`` sent (its ``{"sent": ...}`` line) rather than one it was delivered.
    sent: Any = None


class StateStore:
    """Snapshots and the journal of one component, in ``directory``.

    Not thread-safe: one host owns it. Journal lines are flushed to the operating system as
    they are written, so they survive the death of the process.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._generation = self._latest_generation()
        self._journal: IO[str] | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "snapshot.json"

    def _journal_path(self, generation: int) -> Path:
        return self.directory / f"journal.{generation}.ndjson"

    def _generations(self) -> list[int]:
        gens = []
        for path in self.directory.glob("journal.*.ndjson"):
            middle = path.name[len("journal.") : -len(".ndjson")]
            if middle.isdigit():
                gens.append(int(middle))
        return sorted(gens)

    def _latest_generation(self) -> int:
        gens = self._generations()
        return gens[-1] if gens else 0

    def append(self, sender: str, incarnation: int, seq: int, messages: Sequence[Item]) -> None:
        """Write one delivered batch to the journal (before it is handled)."""
        if self._journal is None:
            self._journal = self._journal_path(self._generation).open("a", encoding="utf-8")
        line = json.dumps(
            [sender, incarnation, seq, [encode_item(m) for m in messages]],
            separators=(",", ":"),
        )
        self._journal.write(line + "\n")
        self._journal.flush()

    def append_sent(self, record: Any) -> None:
        """Write what a source is about to send (JSON-able), before it is sent."""
        if self._journal is None:
            self._journal = self._journal_path(self._generation).open("a", encoding="utf-8")
        self._journal.write(json.dumps({"sent": record}, separators=(",", ":")) + "\n")
        self._journal.flush()

    def mark_done(self) -> None:
        """Record that what the batches journaled so far caused has been sent on.

        A batch journaled but not marked done was being handled, or its output sent, when the
        process died: recovery handles it again *and sends what it causes*.
        """
        if self._journal is not None:
            self._journal.write("[]\n")
            self._journal.flush()

    def write_snapshot(self, state: dict[str, Any]) -> None:
        """Persist ``state`` and start a new journal generation after it.

        Order matters for crash safety: the new generation's file exists before the snapshot
        naming it is renamed into place, and older journals are removed only after that.
        """
        new_generation = self._generation + 1
        self._journal_path(new_generation).touch()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        previous = self._generation
        self._generation = new_generation
        tmp = self.snapshot_path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps({"journal_generation": new_generation, "state": state}),
            encoding="utf-8",
        )
        os.replace(tmp, self.snapshot_path)
        for gen in self._generations():
            if gen <= previous:
                self._journal_path(gen).unlink(missing_ok=True)

    def load(self) -> tuple[dict[str, Any] | None, Iterator[JournalEntry]]:
        """The last snapshot (``None`` if there is none) and the batches journaled after it.

        Raises:
            JournalError: the snapshot cannot be parsed. A torn last journal line (the process
                died while writing it) is skipped: its batch was never handled.
        """
        state: dict[str, Any] | None = None
        first_generation = 0
        if self.snapshot_path.exists():
            try:
                raw = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise JournalError(f"{self.snapshot_path}: unreadable snapshot: {exc}") from exc
            state = raw["state"]
            first_generation = int(raw["journal_generation"])
        generations = [g for g in self._generations() if g >= first_generation]
        return state, self._entries(generations)

    def _entries(self, generations: list[int]) -> Iterator[JournalEntry]:
        pending: list[JournalEntry] = []
        for gen in generations:
            lines = self._journal_path(gen).read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines):
                try:
                    raw = json.loads(line)
                except ValueError:
                    if number == len(lines) - 1:
                        break
                    raise JournalError(
                        f"{self._journal_path(gen)}:{number + 1}: corrupt journal line"
                    ) from None
                if isinstance(raw, dict):
                    pending.append(JournalEntry("", 0, 0, [], sent=raw["sent"]))
                    continue
                if not raw:
                    for entry in pending:
                        entry.done = True
                        yield entry
                    pending = []
                    continue
                sender, incarnation, seq, raw_messages = raw
                pending.append(
                    JournalEntry(
                        sender,
                        int(incarnation),
                        int(seq),
                        [decode_item(m) for m in raw_messages],
                    )
                )
        yield from pending

    @property
    def ledger_path(self) -> Path:
        return self.directory / "orders.ndjson"

    def append_ledger(self, messages: Sequence[Message]) -> None:
        """Keep order-path messages the component published (the session's order table)."""
        if not messages:
            return
        with self.ledger_path.open("a", encoding="utf-8") as fh:
            for msg in messages:
                fh.write(json.dumps(encode_message(msg), separators=(",", ":")) + "\n")

    def load_ledger(self) -> list[Message]:
        """What :meth:`append_ledger` kept, each message once (a torn last line is skipped)."""
        if not self.ledger_path.exists():
            return []
        seen: set[str] = set()
        out: list[Message] = []
        for line in self.ledger_path.read_text(encoding="utf-8").splitlines():
            if line in seen:
                continue
            try:
                msg = decode_message(json.loads(line))
            except (ValueError, KeyError, TypeError, JournalError):
                continue
            seen.add(line)
            out.append(msg)
        return out

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


class PortfolioHistory:
    """The portfolio's equity curve and fills, in append-only files beside its snapshot.

    The portfolio's own snapshot holds its whole curve and every fill; written every few
    seconds for a long session, that grows without bound. :meth:`split` moves what is new of
    both into ``curve.ndjson`` and ``fills.ndjson`` (one line each) and leaves in the snapshot
    only the curve's last point (it may still change) and how many lines the files hold;
    :meth:`join` puts them back together for ``restore``. Lines past those counts (written
    just before a crash, with no snapshot naming them) are dropped.
    """

    def __init__(self, directory: Path) -> None:
        self._curve_path = directory / "curve.ndjson"
        self._fills_path = directory / "fills.ndjson"
        self._curve_written = 0
        self._fills_written = 0
        self._continuing = False

    def split(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` (a portfolio snapshot) without what the history files hold."""
        curve_ts, curve_equity, fills = state["curve_ts_ns"], state["curve_equity"], state["fills"]
        keep_from = max(self._curve_written, len(curve_ts) - 1)
        mode = "a" if self._continuing else "w"
        self._continuing = True
        with self._curve_path.open(mode, encoding="utf-8") as out:
            for k in range(self._curve_written, keep_from):
                out.write(f"[{curve_ts[k]},{json.dumps(curve_equity[k])}]\n")
        with self._fills_path.open(mode, encoding="utf-8") as out:
            for fill in fills[self._fills_written :]:
                out.write(json.dumps(fill, separators=(",", ":")) + "\n")
        self._curve_written = keep_from
        self._fills_written = len(fills)
        return {
            **state,
            "curve_ts_ns": curve_ts[keep_from:],
            "curve_equity": curve_equity[keep_from:],
            "fills": [],
            "history": {"curve_points": keep_from, "fills": len(fills)},
        }

    def join(self, state: dict[str, Any]) -> dict[str, Any]:
        """The whole portfolio snapshot that :meth:`split` made ``state`` from.

        Raises:
            JournalError: the files hold fewer lines than the snapshot names.
        """
        history = state.get("history")
        if history is None:
            return state
        points = self._read(self._curve_path, int(history["curve_points"]))
        fills = self._read(self._fills_path, int(history["fills"]))
        self._curve_written, self._fills_written = len(points), len(fills)
        self._continuing = True
        joined = {k: v for k, v in state.items() if k != "history"}
        joined["curve_ts_ns"] = [p[0] for p in points] + list(state["curve_ts_ns"])
        joined["curve_equity"] = [p[1] for p in points] + list(state["curve_equity"])
        joined["fills"] = fills
        return joined

    def _read(self, path: Path, count: int) -> list[Any]:
        lines = path.read_text(encoding="utf-8").splitlines()[:count] if path.exists() else []
        if len(lines) < count:
            raise JournalError(f"{path}: {len(lines)} lines, the snapshot names {count}")
        # Rewritten without lines past the count, so appends go on after the last one kept.
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        try:
            return [json.loads(line) for line in lines]
        except ValueError as exc:
            raise JournalError(f"{path}: unreadable line: {exc}") from exc
