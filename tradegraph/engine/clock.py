"""Simulated time. Only the engine advances it; components just read it."""

from __future__ import annotations

import heapq

from tradegraph.contracts import TimerFired


class SimClock:
    """A clock that moves only when told to, with named timers.

    Standalone it serves unit tests: ``advance_to`` moves time and returns the timers that came
    due, in time order, as ``TimerFired`` messages for the caller to deliver.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns
        self._timers: dict[str, int] = {}

    def now_ns(self) -> int:
        return self._now_ns

    def set_timer(self, name: str, at_ns: int) -> None:
        if at_ns < self._now_ns:
            raise ValueError(f"timer {name!r} at {at_ns} is in the past (now {self._now_ns})")
        self._timers[name] = at_ns

    def cancel_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    @property
    def pending_timers(self) -> dict[str, int]:
        return dict(self._timers)

    def set_time(self, ts_ns: int) -> None:
        """Move time to ``ts_ns`` without firing timers (the kernel fires them itself)."""
        if ts_ns < self._now_ns:
            raise ValueError(f"time cannot go backwards: {ts_ns} < {self._now_ns}")
        self._now_ns = ts_ns

    def advance_to(self, ts_ns: int) -> list[TimerFired]:
        """Move time to ``ts_ns``; return the timers due by then, earliest first."""
        self.set_time(ts_ns)
        due = [(at, name) for name, at in self._timers.items() if at <= ts_ns]
        heapq.heapify(due)
        fired: list[TimerFired] = []
        while due:
            at, name = heapq.heappop(due)
            del self._timers[name]
            fired.append(TimerFired(name=name, ts_event_ns=at, ts_init_ns=ts_ns))
        return fired
