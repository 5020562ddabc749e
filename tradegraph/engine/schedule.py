"""The event schedule both engines step through: the determinism contract in one place.

Events sit in one heap ordered by ``(ts, seq)``; every published message gets the next ``seq``
for each of its destinations, in router order. A timer replaces an earlier timer of the same
owner and name; a cancelled or replaced timer never fires. Messages addressed to the driver go
to ``control`` (and are logged when they need an operator's eye); order-path messages are folded
into the order ledger as they pass.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from tradegraph.contracts import (
    CONTROL,
    GuardBreached,
    KillSwitchChanged,
    LimitsChanged,
    Message,
    PortfolioSnapshot,
    ReconciliationDrift,
    Router,
    StrategyError,
    TimerFired,
)
from tradegraph.engine.ledger import OrderLedger

Event = tuple[int, int, str, Message]


class EventSchedule:
    """Queued events, timers, the order ledger and the driver's control messages.

    Attributes:
        heap: the queue itself, ``(ts, seq, destination, message)``; engines peek at
            ``heap[0][0]`` on their hot path.
        ledger: one row per order.
        control: messages addressed to the driver, in order.
        journal: with ``keep_journal=True``, every published message but portfolio snapshots.
    """

    def __init__(
        self,
        router: Router,
        log: Any,
        *,
        on_control: Callable[[Message], None] | None = None,
        keep_journal: bool = False,
    ) -> None:
        self.router = router
        self.heap: list[Event] = []
        self.ledger = OrderLedger()
        self.control: list[Message] = []
        self.journal: list[Message] = []
        self._keep_journal = keep_journal
        self._on_control = on_control
        self._log = log
        self._seq = 0
        self._timers: dict[tuple[str, str], int] = {}

    def publish(self, msg: Message, now_ns: int) -> None:
        """Queue ``msg`` for each of its destinations at ``now_ns``."""
        if type(msg) is not PortfolioSnapshot:
            self.ledger.record(msg)
            if self._keep_journal:
                self.journal.append(msg)
        for dest in self.router.destinations(msg):
            if dest == CONTROL:
                self.to_control(msg, now_ns)
                continue
            self._seq += 1
            heapq.heappush(self.heap, (now_ns, self._seq, dest, msg))

    def set_timer(self, owner: str, name: str, at_ns: int, now_ns: int) -> None:
        """Queue ``TimerFired(name)`` for ``owner`` at ``at_ns``, replacing one of that name."""
        if at_ns < now_ns:
            raise ValueError(f"{owner}: timer {name!r} at {at_ns} is before now {now_ns}")
        self._seq += 1
        self._timers[(owner, name)] = self._seq
        fired = TimerFired(name=name, ts_event_ns=at_ns, ts_init_ns=at_ns)
        heapq.heappush(self.heap, (at_ns, self._seq, owner, fired))

    def cancel_timer(self, owner: str, name: str) -> None:
        self._timers.pop((owner, name), None)

    def pop(self) -> Event | None:
        """Take the earliest event; ``None`` when it was a cancelled or replaced timer."""
        event = heapq.heappop(self.heap)
        msg = event[3]
        if type(msg) is TimerFired:
            key = (event[2], msg.name)
            if self._timers.get(key) != event[1]:
                return None
            del self._timers[key]
        return event

    def to_control(self, msg: Message, now_ns: int) -> None:
        self.control.append(msg)
        log_for_operator(self._log, msg, sim_time_ns=now_ns)
        if self._on_control is not None:
            self._on_control(msg)


def log_for_operator(log: Any, msg: Message, **context: Any) -> None:
    """Log a message addressed to the operator that needs their eye: a stopped strategy, a
    kill-switch change, reconciliation drift, a guard breached, limits changed."""
    if isinstance(msg, StrategyError):
        log.error(
            "strategy_stopped",
            strategy_id=msg.strategy_id,
            error_type=msg.error_type,
            error=msg.error,
            **context,
        )
    elif isinstance(msg, KillSwitchChanged):
        log.warning(
            "kill_switch", tripped=msg.tripped, mode=msg.mode.value, reason=msg.reason, **context
        )
    elif isinstance(msg, ReconciliationDrift):
        log.error("reconciliation_drift", venue=msg.venue, problems=list(msg.problems), **context)
    elif isinstance(msg, GuardBreached):
        (log.error if msg.level == "halt" else log.warning)(
            "guard_breached",
            guard=msg.guard,
            level=msg.level,
            value=msg.value,
            limit=msg.limit,
            component=msg.component,
            detail=msg.detail,
            **context,
        )
    elif isinstance(msg, LimitsChanged):
        log.warning(
            "limits_changed",
            changes={c.field: c.value for c in msg.changes},
            previous={c.field: c.value for c in msg.previous},
            reason=msg.reason,
            **context,
        )
