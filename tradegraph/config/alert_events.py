"""The events an ``alerts`` rule can name, and the messages they are read from.

A rule names either one of :data:`ALERT_EVENTS` (``kill_switch_tripped``, ``feed_stale``...) or,
for any other event, the name of a message type of :mod:`tradegraph.contracts`
(``VenueStatus``, or a message a later component publishes), narrowed with ``where`` and
``contains``. A built-in event is no more than such a mapping, written down once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tradegraph.contracts  # noqa: F401  (every message type is defined once it is imported)
from tradegraph.contracts import Message

SESSION_STOP_REASON = "session stopping"
"""The kill switch's reason when a session trips it to stop cleanly (not worth an alert)."""


@dataclass(frozen=True)
class AlertEvent:
    """What a built-in event reads from the message stream.

    Attributes:
        message: Name of the message type.
        title: What the alert's title says happened.
        where: Fields that must equal these values.
        unless: Fields that must not equal these values.
        contains: Text fields that must contain these texts.
        key: Default deduplication key, a template of the message's fields.
        field: The level a rule's ``above`` is compared with (a field or property).
        count: Default number of matching events within ``window_s`` that make one alert.
        window_s: Default window of ``count``.
    """

    message: str
    title: str
    where: Mapping[str, Any] = field(default_factory=dict)
    unless: Mapping[str, Any] = field(default_factory=dict)
    contains: Mapping[str, str] = field(default_factory=dict)
    key: str = ""
    field: str | None = None
    count: int = 1
    window_s: float = 60.0


ALERT_EVENTS: dict[str, AlertEvent] = {
    "kill_switch_tripped": AlertEvent(
        "KillSwitchChanged",
        "kill switch tripped",
        where={"tripped": True},
        unless={"reason": SESSION_STOP_REASON},
        key="{reason}",
    ),
    "kill_switch_reset": AlertEvent(
        "KillSwitchChanged", "kill switch reset", where={"tripped": False}, key="{reason}"
    ),
    "trading_halted": AlertEvent("TripKillSwitch", "trading halted", key="{reason}"),
    "reconciliation_failed": AlertEvent(
        "TripKillSwitch",
        "reconciliation failed",
        contains={"reason": "reconciliation failed"},
        key="{reason}",
    ),
    "reconciliation_drift": AlertEvent(
        "ReconciliationDrift", "reconciliation drift: trading halted", key="{venue}"
    ),
    "reconciliation_repaired": AlertEvent(
        "ReconciliationRepaired", "reconciliation repaired missed fills", key="{venue}"
    ),
    "guard_warning": AlertEvent(
        "GuardBreached", "guard warning", where={"level": "warn"}, key="{guard}:{component}"
    ),
    "guard_halt": AlertEvent(
        "GuardBreached",
        "guard halted trading",
        where={"level": "halt"},
        key="{guard}:{component}",
    ),
    "memory": AlertEvent(
        "GuardBreached", "memory above its limit", where={"guard": "memory"}, key="{component}"
    ),
    "limits_changed": AlertEvent("LimitsChanged", "risk limits changed", key="{reason}"),
    "feed_stale": AlertEvent(
        "FeedStatus", "market data stale", where={"stale": True}, key="{instrument_id}"
    ),
    "venue_unavailable": AlertEvent(
        "VenueStatus",
        "venue unavailable (circuit open)",
        where={"available": False},
        key="{venue}",
    ),
    "venue_banned": AlertEvent("VenueBanned", "venue banned us (rate limit)", key="{venue}"),
    "venue_rejections": AlertEvent(
        "OrderRejected", "venue rejections", key="{venue}", count=5, window_s=300.0
    ),
    "drawdown": AlertEvent("PortfolioSnapshot", "drawdown", field="drawdown_pct"),
    "actor_restarted": AlertEvent("ActorRestarted", "actor restarted", key="{component_id}"),
    "strategy_error": AlertEvent("StrategyError", "strategy stopped", key="{strategy_id}"),
    "fill": AlertEvent("OrderFilled", "fill", key="{fill_id}"),
}
"""Built-in events by name."""


def message_types() -> dict[str, type[Message]]:
    """Every message type of the graph, by class name."""
    found: dict[str, type[Message]] = {}
    pending = list(Message.__subclasses__())
    while pending:
        kind = pending.pop()
        found.setdefault(kind.__name__, kind)
        pending.extend(kind.__subclasses__())
    return found


def readable_fields(kind: type[Message]) -> set[str]:
    """What a rule may read of a message of ``kind``: its fields and its properties."""
    names = set(kind.model_fields)
    names.update(n for n in dir(kind) if isinstance(getattr(kind, n, None), property))
    return names
