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
    """A ``SimClock`` the host advances to each delivered message's time; never backwards."""

    def advance(self, ts_ns: int) -> list[TimerFired]:
        """Move to ``ts_ns`` if it is later than now; return the timers due by then."""
        if ts_ns <= self.now_ns():
            return []
        return self.advance_to(ts_ns)

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
