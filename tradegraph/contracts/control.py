"""Control commands and system events."""

from __future__ import annotations

from tradegraph.contracts.base import Message
from tradegraph.contracts.enums import KillSwitchMode

FLATTEN_TAG = "kill_switch_flatten"
"""The tag of the market orders with which a ``flatten`` kill switch closes positions (and so
of their fills: the run's outputs tell what the kill switch closed)."""


class TripKillSwitch(Message):
    """Stop trading: Risk trips its kill switch in ``mode``.

    ``mode=None`` is an operator's trip: the mode ``risk.kill_switch_modes`` gives the
    ``operator`` source, else ``risk.kill_switch_mode``. A trip while the switch is already
    tripped changes its mode only to one that goes further (``reduce_only`` < ``halt`` <
    ``flatten``).
    """

    reason: str
    mode: KillSwitchMode | None = None


class ResetKillSwitch(Message):
    """Allow trading again after a trip."""

    reason: str = ""


class KillSwitchChanged(Message):
    """Risk tripped or reset its kill switch, or a later trip moved it to a further mode.

    ``mode`` is the mode in force (on a reset: the mode of the trip that ended).
    """

    tripped: bool
    reason: str
    mode: KillSwitchMode = KillSwitchMode.HALT


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
