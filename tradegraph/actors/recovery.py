"""A host's recovery state: snapshots, the journal of what it took, and md's replay journal.

A host journals every batch before its component handles it and marks it done once what it
caused has been sent on; now and then it writes a snapshot (the component's state, the inbox's
watermarks, the clock) and starts a new journal after it. A host that Ray built again after a
death restores the snapshot and handles the journal's batches again: with its output
suppressed for the batches marked done, and sent for the others (what they caused may never
have left). This module is the one place where a host calls its component's ``snapshot()`` and
``restore()``.

``md`` journals each replay batch before it sends it (its range of events and the sequence
number it takes on each link), so a restarted ``md`` can send again every batch not known to be
taken, under the same incarnation, and go on from where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tradegraph.actors.inbox import Fence, Inbox
from tradegraph.actors.live_clock import ClockState, DataClock, WallClock
from tradegraph.actors.state_store import PortfolioHistory, StateStore
from tradegraph.actors.wire import Item
from tradegraph.contracts import PORTFOLIO, Message
from tradegraph.contracts.state import ComponentState


class Restorable(Protocol):
    """What recovery needs of a component."""

    def snapshot(self) -> ComponentState: ...

    def restore(self, state: Any) -> None: ...


@dataclass
class ReplayBatch:
    """A replay batch ``md`` sent: events ``[start, stop)`` of the replay, its causal fence
    (which names the sequence number each of ``destinations`` got it under)."""

    start: int
    stop: int
    fence: Fence
    destinations: tuple[str, ...]

    def to_state(self) -> list[Any]:
        return [
            self.start,
            self.stop,
            {d: list(m) for d, m in self.fence.items()},
            [*self.destinations],
        ]

    @classmethod
    def from_state(cls, raw: Sequence[Any]) -> ReplayBatch:
        fence = {str(d): (int(m[0]), int(m[1])) for d, m in raw[2].items()}
        return cls(int(raw[0]), int(raw[1]), fence, tuple(str(d) for d in raw[3]))


class ReplayJournal:
    """md's replay batches sent and not yet taken by every receiver (by first event), where the
    replay stood, each link's last sequence number and md's incarnation, as recovered."""

    def __init__(self) -> None:
        self.batches: dict[int, ReplayBatch] = {}
        self.position = 0
        self.seqs: dict[str, int] = {}
        self.incarnation: int | None = None

    def note(self, batch: ReplayBatch) -> None:
        """Take a journaled replay batch into what a restarted md resumes from."""
        self.batches[batch.start] = batch
        self.position = max(self.position, batch.stop)
        for dest in batch.destinations:
            incarnation, seq = batch.fence[dest]
            self.incarnation = incarnation
            self.seqs[dest] = max(self.seqs.get(dest, 0), seq)

    def load(self, state: dict[str, Any]) -> None:
        self.incarnation = int(state["incarnation"])
        self.position = int(state["position"])
        self.seqs = {str(d): int(s) for d, s in state["seqs"].items()}
        for raw in state["batches"]:
            self.note(ReplayBatch.from_state(raw))

    def state(self, incarnation: int, position: int, link_seqs: dict[str, int]) -> dict[str, Any]:
        return {
            "incarnation": incarnation,
            "position": position,
            "seqs": self.seqs | link_seqs,
            "batches": [b.to_state() for b in self.batches.values()],
        }


class Recovery:
    """The recovery state of the host of ``component_id`` under ``state_dir`` (``None``: none).

    Args:
        state_dir: The session's state directory.
        component_id: Names the component's folder in it.
        snapshot_interval_s: How often :meth:`maybe_snapshot` writes a snapshot.
    """

    def __init__(
        self, state_dir: str | None, component_id: str, snapshot_interval_s: float
    ) -> None:
        self.store = (
            StateStore(Path(state_dir) / component_id.replace(":", "_"))
            if state_dir is not None
            else None
        )
        # The portfolio's curve and fills go to append-only files, not into every snapshot.
        self.history = (
            PortfolioHistory(self.store.directory)
            if self.store is not None and component_id == PORTFOLIO
            else None
        )
        self.replay = ReplayJournal()
        # A wall clock's timers, restored once the host runs again.
        self.pending_wall_timers: ClockState | None = None
        self.snapshot_interval_s = snapshot_interval_s
        self._last_snapshot = time.monotonic()

    def ledger(self) -> list[Message]:
        """The order-path messages the host published before (kept on disk across restarts)."""
        return self.store.load_ledger() if self.store is not None else []

    def restore(
        self,
        component: Restorable,
        inbox: Inbox,
        clock: DataClock | WallClock,
        deliver: Callable[[list[Item], bool], None],
    ) -> tuple[bool, dict[str, Any]]:
        """Restore the last snapshot, then handle the journal again through ``deliver(messages,
        publish)``. Returns whether there was anything to recover, and facts for the log."""
        if self.store is None:
            return False, {}
        state, entries = self.store.load()
        if state is None and not any(self.store.directory.glob("journal.*.ndjson")):
            return False, {}
        if state is not None:
            component_state = state["component"]
            if self.history is not None:
                component_state = self.history.join(component_state)
            # Every component declares its state model.
            state_type = getattr(component, "State", None)
            if state_type is not None:
                component_state = state_type.model_validate(component_state)
            component.restore(component_state)
            for sender, mark in state["watermarks"].items():
                inbox.mark(sender, int(mark[0]), int(mark[1]))
            if "replay" in state:
                self.replay.load(state["replay"])
            clock_state = ClockState.model_validate(state["clock"])
            if isinstance(clock, DataClock):
                clock.restore(clock_state)
            else:
                self.pending_wall_timers = clock_state
        replayed = 0
        for entry in entries:
            if entry.sent is not None:
                self.replay.note(ReplayBatch.from_state(entry.sent))
                continue
            # What a batch not marked done caused may never have left: send it this time
            # (it goes out once the host runs again).
            inbox.mark(entry.sender, entry.incarnation, entry.seq)
            deliver(entry.messages, not entry.done)
            replayed += 1
        return True, {"snapshot": state is not None, "journal_batches": replayed}

    def capture(
        self,
        component: Restorable,
        inbox: Inbox,
        clock: DataClock | WallClock,
        replay: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The host's state for a snapshot."""
        component_state = component.snapshot().model_dump(mode="json")
        if self.history is not None:
            component_state = self.history.split(component_state)
        state = {
            "component": component_state,
            "watermarks": {k: list(v) for k, v in inbox.watermarks.items()},
            "clock": clock.snapshot().model_dump(mode="json"),
        }
        if replay is not None:
            state["replay"] = replay
        return state

    def maybe_snapshot(self, capture: Callable[[], dict[str, Any]], force: bool = False) -> None:
        """Write a snapshot if the interval has passed (or ``force``)."""
        if self.store is None:
            return
        now = time.monotonic()
        if force or now - self._last_snapshot >= self.snapshot_interval_s:
            self.store.write_snapshot(capture())
            self._last_snapshot = now


def continue_order_ids(component: object, journals: Path) -> None:
    """A strategy of a new session numbers its orders above those the venues' order journals
    (kept across sessions) already hold."""
    from tradegraph.adapters.ccxt.order_journal import highest_order_numbers
    from tradegraph.strategies.base import Strategy

    if isinstance(component, Strategy):
        highest = highest_order_numbers(journals).get(component.strategy_id, 0)
        component.continue_ids_after(highest)
