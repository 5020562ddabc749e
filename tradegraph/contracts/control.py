"""Control commands and system events."""

from __future__ import annotations

from tradegraph.contracts.base import Message


class TripKillSwitch(Message):
    """Stop all trading: Risk refuses every new order and cancels open ones."""

    reason: str


class ResetKillSwitch(Message):
    """Allow trading again after a trip."""

    reason: str = ""


class KillSwitchChanged(Message):
    """Risk tripped or reset its kill switch."""

    tripped: bool
    reason: str


class StrategyError(Message):
    """A strategy raised; it has been stopped. The run goes on."""

    strategy_id: str
    error_type: str
    error: str


class TimerFired(Message):
    """A timer a component set on its clock has come due."""

    name: str


class FeedStatus(Message):
    """Market data for ``instrument_id`` went stale (``stale=True``) or fresh again."""

    instrument_id: str
    stale: bool
    detail: str = ""


class VenueStatus(Message):
    """A venue gateway can (``available=True``) or cannot reach its exchange.

    Published by a live broker when its circuit breaker opens (repeated failed calls) and when
    it closes again; Risk refuses new orders for the venue's instruments while it is down.
    """

    venue: str
    available: bool
    detail: str = ""


class VenueBanned(Message):
    """A venue banned us for its rate limit until ``until_ns`` (wall-clock ns).

    Published by whichever component met the ban (``source``: ``md`` or ``broker:<venue>``)
    and routed to every other component that calls the venue, which then sends it nothing
    until the ban ends: the venue lengthens the ban of a client that keeps calling.
    """

    venue: str
    until_ns: int
    source: str
    detail: str = ""


class ActorRestarted(Message):
    """The actor hosting ``component_id`` died and was built again (a live session).

    Published by the restarted host to ``control`` once it runs again, from its recovered
    state (``recovered``) or without any.
    """

    component_id: str
    recovered: bool
    detail: str = ""
