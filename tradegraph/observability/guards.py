"""Runtime guards of a session: a measured value against a warning and a halting level.

Three guards (``guards:`` in the configuration): ``memory_mb`` (an actor's resident memory),
``tick_to_order_p99_ms`` (p99 of tick-to-order latency at a broker over a window) and
``clock_drift_ms`` (our clock against the exchange's). Each actor host measures what applies to
it every ``guards.interval_s`` and hands the values to a :class:`GuardSet`; what it gets back is
the ``GuardBreached`` messages to publish, and the reason to halt trading, if any.

The cores here read no clock and do no I/O (the memory reader is the one exception, and it is
injected where it is used), so they are tested without Ray.
"""

from __future__ import annotations

import math
import resource
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tradegraph.config.models import GuardLevelsConfig, GuardsConfig, LatencyGuardConfig
from tradegraph.contracts import GuardBreached

MEMORY = "memory_mb"
TICK_TO_ORDER = "tick_to_order_p99_ms"
CLOCK_DRIFT = "clock_drift_ms"

_UNITS = {MEMORY: "MB", TICK_TO_ORDER: "ms", CLOCK_DRIFT: "ms"}
_WHAT = {
    MEMORY: "resident memory",
    TICK_TO_ORDER: "tick-to-order latency p99",
    CLOCK_DRIFT: "clock drift from the exchange",
}


@dataclass
class Guard:
    """One guard's levels and what it has said: it warns once per excursion above ``warn``
    (again after the value came back below), and halts once.

    Args:
        name: ``memory_mb``, ``tick_to_order_p99_ms`` or ``clock_drift_ms``.
        levels: Its ``warn`` and ``halt`` levels (``None``: off).
        component: Who measures (named in every message).
    """

    name: str
    levels: GuardLevelsConfig
    component: str
    warned: bool = False
    halted: bool = False

    @property
    def enabled(self) -> bool:
        return self.levels.warn is not None or self.levels.halt is not None

    def judge(self, value: float, now_ns: int) -> GuardBreached | None:
        """The message ``value`` calls for, if any (a halt before a warning)."""
        halt, warn = self.levels.halt, self.levels.warn
        if halt is not None and value >= halt:
            if self.halted:
                return None
            self.halted = self.warned = True
            return self._breached("halt", value, halt, now_ns)
        if warn is not None and value >= warn:
            if self.warned:
                return None
            self.warned = True
            return self._breached("warn", value, warn, now_ns)
        if warn is None or value < warn:
            self.warned = False
        return None

    def _breached(self, level: str, value: float, limit: float, now_ns: int) -> GuardBreached:
        unit = _UNITS.get(self.name, "")
        action = "halting trading" if level == "halt" else "warning"
        detail = (
            f"guard {self.name} on {self.component}: {_WHAT.get(self.name, self.name)} "
            f"{value:.1f} {unit} reached its {level} level {limit:g} {unit} ({action})"
        )
        return GuardBreached(
            guard=self.name,
            level=level,
            value=round(value, 3),
            limit=limit,
            component=self.component,
            detail=detail,
            ts_event_ns=now_ns,
            ts_init_ns=now_ns,
        )


class LatencyWindow:
    """Tick-to-order latencies of the last ``window_s`` seconds, and their p99.

    Args:
        config: ``window_s`` and ``min_samples`` (fewer samples: no p99).
    """

    def __init__(self, config: LatencyGuardConfig) -> None:
        self._window_ns = round(config.window_s * 1e9)
        self._min = config.min_samples
        self._samples: deque[tuple[int, float]] = deque()

    def add(self, at_ns: int, latency_ms: float) -> None:
        self._samples.append((at_ns, latency_ms))

    def p99(self, now_ns: int) -> float | None:
        """p99 (nearest rank) of the samples in the window ending at ``now_ns``."""
        cutoff = now_ns - self._window_ns
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
        if len(self._samples) < self._min:
            return None
        ordered = sorted(latency for _, latency in self._samples)
        rank = max(1, math.ceil(0.99 * len(ordered)))
        return ordered[rank - 1]


class GuardSet:
    """The guards one actor checks, each judged on the values measured this round.

    Args:
        config: The ``guards:`` section.
        component: The actor's component id.
    """

    def __init__(self, config: GuardsConfig, component: str) -> None:
        self.config = config
        self.guards = {
            MEMORY: Guard(MEMORY, config.memory_mb, component),
            TICK_TO_ORDER: Guard(TICK_TO_ORDER, config.tick_to_order_p99_ms, component),
            CLOCK_DRIFT: Guard(CLOCK_DRIFT, config.clock_drift_ms, component),
        }
        self.latency = LatencyWindow(config.tick_to_order_p99_ms)
        self.last: dict[str, float] = {}

    def enabled(self, name: str) -> bool:
        return self.guards[name].enabled

    @property
    def any_enabled(self) -> bool:
        return any(g.enabled for g in self.guards.values())

    def judge(
        self, values: Mapping[str, float | None], now_ns: int
    ) -> tuple[list[GuardBreached], str]:
        """Messages to publish for this round's ``values`` (guard name -> value, ``None``:
        not measured), and the reason to halt trading (``""``: none)."""
        out: list[GuardBreached] = []
        halt = ""
        for name, value in values.items():
            guard = self.guards[name]
            if value is None or not guard.enabled:
                continue
            self.last[name] = value
            breached = guard.judge(value, now_ns)
            if breached is None:
                continue
            out.append(breached)
            if breached.level == "halt" and not halt:
                halt = breached.detail
        return out, halt


def resident_memory_mb(status: Path = Path("/proc/self/status")) -> float:
    """This process's resident memory (RSS) in MB: ``VmRSS`` where Linux has it, else the
    peak resident size the OS reports (``ru_maxrss``)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kilobytes on Linux, bytes on macOS.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


MemoryReader = Callable[[], float]
"""Returns the current process's resident memory in MB (injected so tests need no process)."""

__all__ = [
    "CLOCK_DRIFT",
    "MEMORY",
    "TICK_TO_ORDER",
    "Guard",
    "GuardSet",
    "LatencyWindow",
    "MemoryReader",
    "resident_memory_mb",
]
