"""The actor shell: one plain class that hosts any component core.

``ComponentHost`` adds transport, never logic. It is a plain class, testable without Ray, made
remote at wiring time (``ray.remote(**options)(ComponentHost)``). Under a simulated clock the
coordinator owns time and the event queue: a host sets its clock to the time the coordinator
gives with each message, delivers the message, and hands back, per delivered message, the
*actions* the component took, in the order it took them: messages published, timers set,
timers cancelled. The coordinator turns those actions into queued events exactly as the
in-process kernel would have, so both transports give the same run.

Recovery contract: ``deliver``, ``start`` and ``stop`` change component state and are not
idempotent; they must never be retried blindly (the graph builder sets ``max_task_retries=0``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import tradegraph
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import Component, Message, TimerFired
from tradegraph.contracts.state import ComponentState
from tradegraph.engine.assembly import build_component

PUBLISH: Final = 0
SET_TIMER: Final = 1
CANCEL_TIMER: Final = 2

Action = tuple[int, Message | str, int]
"""``(PUBLISH, message, 0)``, ``(SET_TIMER, timer_name, at_ns)`` or ``(CANCEL_TIMER, name, 0)``."""

Delivery = tuple[int, Message]
"""A message and the simulated time (ns) at which it is delivered."""

Outputs = list[tuple[int, list[Action]]]
"""For each delivered message that caused any action: its index in the batch and the actions."""

T = TypeVar("T")


class ActionRecorder:
    """Collects the actions of the delivery in progress; clock and outbox write into it."""

    __slots__ = ("actions",)

    def __init__(self) -> None:
        self.actions: list[Action] = []


class HostClock:
    """The component's clock inside a host: time set by the coordinator, timers sent back.

    Timer names set or cancelled during the current batch are remembered, because a
    ``TimerFired`` later in the same batch for such a name was replaced or cancelled before it
    came due and must not be delivered (the kernel drops it the same way).
    """

    __slots__ = ("_now_ns", "_owner", "_recorder", "touched")

    def __init__(self, owner: str, recorder: ActionRecorder, start_ns: int = 0) -> None:
        self._owner = owner
        self._recorder = recorder
        self._now_ns = start_ns
        self.touched: set[str] = set()

    def now_ns(self) -> int:
        return self._now_ns

    def set_now(self, ts_ns: int) -> None:
        self._now_ns = ts_ns

    def set_timer(self, name: str, at_ns: int) -> None:
        if at_ns < self._now_ns:
            raise ValueError(
                f"{self._owner}: timer {name!r} at {at_ns} is before now {self._now_ns}"
            )
        self._recorder.actions.append((SET_TIMER, name, at_ns))
        self.touched.add(name)

    def cancel_timer(self, name: str) -> None:
        self._recorder.actions.append((CANCEL_TIMER, name, 0))
        self.touched.add(name)


class HostOutbox:
    """The component's outbox inside a host: what it publishes goes back to the coordinator."""

    __slots__ = ("_recorder",)

    def __init__(self, recorder: ActionRecorder) -> None:
        self._recorder = recorder

    def publish(self, msg: Message) -> None:
        self._recorder.actions.append((PUBLISH, msg, 0))


class ComponentHost:
    """Hosts the component ``component_id`` of ``config``; one instance per actor.

    Args:
        config: The whole graph's configuration (the host builds only its own component).
        component_id: ``risk``, ``portfolio``, ``broker:<venue>`` or ``strategy:<id>``.
        start_ns: The clock's time before the first delivery.
    """

    def __init__(self, config: GraphConfig, component_id: str, start_ns: int = 0) -> None:
        self.component_id = component_id
        self._recorder = ActionRecorder()
        self._clock = HostClock(component_id, self._recorder, start_ns)
        self._component: Component = build_component(
            config, component_id, self._clock, HostOutbox(self._recorder)
        )

    def _take_actions(self) -> list[Action]:
        actions = self._recorder.actions
        self._recorder.actions = []
        return actions

    def deliver(self, batch: Sequence[Delivery]) -> Outputs:
        """Deliver ``batch`` in order; return the actions of each message that caused any.

        A batch holds every message the coordinator delivers to this component in one step
        (all at one simulated time), in sequence order.
        """
        clock = self._clock
        recorder = self._recorder
        handle = self._component.handle
        touched = clock.touched
        touched.clear()
        recorder.actions = []
        outputs: Outputs = []
        for index, (ts_ns, msg) in enumerate(batch):
            if type(msg) is TimerFired and msg.name in touched:
                continue
            clock.set_now(ts_ns)
            handle(msg)
            if recorder.actions:
                outputs.append((index, recorder.actions))
                recorder.actions = []
        return outputs

    def start(self, ts_ns: int) -> list[Action]:
        """Start the component at ``ts_ns``; return what it did."""
        self._recorder.actions = []
        self._clock.set_now(ts_ns)
        self._component.start()
        return self._take_actions()

    def stop(self, ts_ns: int) -> list[Action]:
        """Stop the component at ``ts_ns``; return what it did."""
        self._recorder.actions = []
        self._clock.set_now(ts_ns)
        self._component.stop()
        return self._take_actions()

    def snapshot(self) -> ComponentState:
        """The component's state model (see ``Component.snapshot``)."""
        return self._component.snapshot()

    def restore(self, state: Any) -> None:
        self._component.restore(state)

    def inspect(self, reader: Callable[[Any], T]) -> T:
        """Apply ``reader`` (a module-level function) to the hosted component and return its result.

        Used to read results out of a finished run, e.g. the portfolio's fills and equity curve.
        """
        return reader(self._component)

    def describe(self) -> dict[str, Any]:
        """Who and where this host is: component id, process id, the tradegraph it imported."""
        return {
            "component_id": self.component_id,
            "component_type": type(self._component).__name__,
            "pid": os.getpid(),
            "tradegraph_path": os.path.dirname(tradegraph.__file__),
        }
