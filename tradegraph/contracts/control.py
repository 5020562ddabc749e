"""Control commands and system events."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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


class ReconciliationRepaired(Message):
    """A periodic reconciliation found fills the venue reported that no update had brought,
    and booked them (``recovered_fills``; a fill a stream brought during the pass is counted
    too). Published by ``broker:<venue>``; trading goes on.
    """

    venue: str
    recovered_fills: int
    detail: str = ""


class ReconciliationDrift(Message):
    """A periodic reconciliation found a difference with the venue that nothing explains: a
    balance, an open order or a fill changed behind the session's back. Published by
    ``broker:<venue>`` as it halts trading (``TripKillSwitch`` with the same reason).
    """

    venue: str
    problems: tuple[str, ...]
    reason: str


class GuardBreached(Message):
    """A runtime guard crossed its warning or halting level.

    Attributes:
        guard: Which guard: ``memory`` (an actor's resident memory, MB), ``tick_to_order_p99``
            (ms, over the guard's window) or ``clock_drift`` (ms between our clock and the
            exchange's).
        level: ``warn`` (logged and published, trading goes on) or ``halt`` (trading halts
            with ``detail`` as the reason).
        value: What was measured.
        limit: The level it reached.
        component: The component that measured it (``broker:BINANCE``, ``risk``...).
        detail: One sentence for the operator naming the guard and the values.
    """

    guard: str
    level: str
    value: float
    limit: float
    component: str
    detail: str


class LimitChange(BaseModel):
    """One risk limit set to a new value: ``field`` of ``RiskConfig`` (``max_order_notional``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    field: str
    value: bool | int | float | None


class ChangeLimits(Message):
    """Set risk limits of a running session (``tradegraph limits --set``); validated by Risk
    with the configuration's own model, applied without a restart, and kept in its state."""

    changes: tuple[LimitChange, ...]
    reason: str = ""


class LimitsChanged(Message):
    """Risk applied a :class:`ChangeLimits`: the new values and the ones they replaced."""

    changes: tuple[LimitChange, ...]
    previous: tuple[LimitChange, ...]
    reason: str = ""


class ActorRestarted(Message):
    """The actor hosting ``component_id`` died and was built again (a live session).

    Published by the restarted host to ``control`` once it runs again, from its recovered
    state (``recovered``) or without any.
    """

    component_id: str
    recovered: bool
    detail: str = ""
