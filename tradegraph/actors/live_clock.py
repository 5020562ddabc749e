"""Clocks of a component in a paper or live session.

* :class:`DataClock` (``session.clock: data``) follows the replayed data: the host moves it to
  the time of every message it delivers, and timers come due as data time passes them, exactly
  as under the backtest's simulated clock. A replay at any speed keeps the backtest's timing.
* :class:`WallClock` (``session.clock: wall``) reads the system clock; timers fire through the
  actor's event loop after the real delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tradegraph.contracts import TimerFired
from tradegraph.contracts.state import ComponentState
from tradegraph.engine.clock import SimClock


class ClockState(ComponentState):
    """A clock's time and pending timers (name -> due time, nanoseconds)."""

    now_ns: int
    timers: dict[str, int]


class DataClock(SimClock):
    """A ``SimClock`` the host advances to each delivered message's time; never backwards.

    Timers due at the same time fire in the order they were (last) set, as the kernel's
    schedule fires them, not by name.
    """

    def set_timer(self, name: str, at_ns: int) -> None:
        # Setting a timer again moves it behind every timer set before.
        self._timers.pop(name, None)
        super().set_timer(name, at_ns)

    def advance(self, ts_ns: int) -> list[TimerFired]:
        """Move to ``ts_ns`` if it is later than now; return the timers due by then."""
        if ts_ns <= self.now_ns():
            return []
        return self.advance_to(ts_ns)

    def advance_to(self, ts_ns: int) -> list[TimerFired]:
        """Move time to ``ts_ns``; return the timers due by then, earliest first."""
        self.set_time(ts_ns)
        due = sorted(
            (at, order, name)
            for order, (name, at) in enumerate(self._timers.items())
            if at <= ts_ns
        )
        for _, _, name in due:
            del self._timers[name]
        return [TimerFired(name=name, ts_event_ns=at, ts_init_ns=ts_ns) for at, _, name in due]

    def next_timer_ns(self) -> int | None:
        """When the earliest pending timer comes due (``None``: no timer)."""
        return min(self._timers.values(), default=None)

    def snapshot(self) -> ClockState:
        return ClockState(now_ns=self.now_ns(), timers=dict(self.pending_timers))

    def restore(self, state: ClockState) -> None:
        """Move to the stored time (never backwards) and set the stored timers again."""
        self.set_time(max(state.now_ns, self.now_ns()))
        for name, at_ns in state.timers.items():
            self.set_timer(name, at_ns)


class WallClock:
    """System time with timers on the running event loop.

    Args:
        fire: Called with a timer's name when it comes due (on the event loop's thread).
    """

    def __init__(self, fire: Callable[[str], None]) -> None:
        self._fire = fire
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._due: dict[str, int] = {}

    def now_ns(self) -> int:
        return time.time_ns()

    def set_timer(self, name: str, at_ns: int) -> None:
        self.cancel_timer(name)
        delay_s = max(0.0, (at_ns - time.time_ns()) / 1e9)
        self._due[name] = at_ns
        self._handles[name] = asyncio.get_running_loop().call_later(delay_s, self._expire, name)

    def cancel_timer(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        self._due.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _expire(self, name: str) -> None:
        self._handles.pop(name, None)
        self._due.pop(name, None)
        self._fire(name)

    def snapshot(self) -> ClockState:
        return ClockState(now_ns=self.now_ns(), timers=dict(self._due))

    def restore(self, state: ClockState) -> None:
        """Set the stored timers again (the time is the system's); needs a running loop."""
        for name, at_ns in state.timers.items():
            self.set_timer(name, at_ns)
