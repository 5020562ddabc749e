"""Protocols that components are written against.

A component is ``Component(config, clock, outbox)``: it reads time only from its clock, emits
messages only through its outbox, and is driven by ``handle(msg)``. The in-process kernel and the
Ray actors provide different clocks and outboxes; the component cannot tell.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tradegraph.contracts.base import Message
from tradegraph.contracts.state import ComponentState


@runtime_checkable
class Clock(Protocol):
    """Time as the component sees it, plus timers that come back as ``TimerFired`` messages."""

    def now_ns(self) -> int: ...

    def set_timer(self, name: str, at_ns: int) -> None:
        """Deliver ``TimerFired(name)`` to the owner at ``at_ns`` (replaces a timer of that name)."""
        ...

    def cancel_timer(self, name: str) -> None: ...


@runtime_checkable
class Outbox(Protocol):
    """Where a component's messages go. Routing is the graph's business, not the component's."""

    def publish(self, msg: Message) -> None: ...


@runtime_checkable
class Component(Protocol):
    """The shape every component core has.

    ``State`` is the component's state model, a :class:`ComponentState`: ``snapshot()``
    returns one, ``restore`` takes one back. ``restore``'s argument is typed ``Any`` here only
    because each component narrows it to its own ``State`` (a protocol parameter typed
    ``ComponentState`` would refuse every narrower one).
    """

    component_id: str

    def handle(self, msg: Message) -> None: ...

    def start(self) -> None:
        """Called once by the engine before the first message."""
        ...

    def stop(self) -> None:
        """Called once by the engine after the last message."""
        ...

    def snapshot(self) -> ComponentState: ...

    def restore(self, state: Any) -> None: ...
