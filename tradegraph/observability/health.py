"""Liveness and readiness of a running graph, as ``/healthz`` and ``/readyz`` answer them.

The shape is the one Kubernetes probes and load balancers expect: the status code says it all
(200 or 503) and a small JSON body says why. Deciding is pure: it reads what each component
last said about itself (:class:`ComponentView`, a plain mapping with ``halted`` and
``details`` as ``HostStatus`` carries them) or why it could not answer, so it is tested without
Ray; the session's driver gathers the views (``LiveSession.health``).

Liveness (``/healthz``): the driver answers, the session runs, and no actor is dead. A slow or
restarting actor is not a reason to restart the driver, so it fails readiness only.

Readiness (``/readyz``), each a named condition in the body:

- ``graph``: the session runs and every actor answered in time;
- ``venues``: every live broker reconciled with its exchange and none failed, and Risk knows
  of no venue that cannot be reached (circuit open);
- ``feed``: market data answers and Risk knows of no stale instrument feed;
- ``halted``: trading is not halted (the session's halt, an actor's, Risk's kill switch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from tradegraph.contracts import MARKET_DATA, RISK

GRAPH: Final = "graph"
VENUES: Final = "venues"
FEED: Final = "feed"
HALTED: Final = "halted"
READY_CONDITIONS: Final = (GRAPH, VENUES, FEED, HALTED)
"""The conditions ``/readyz`` checks, in the order its body lists them."""

DEAD_MARK: Final = " is dead"
"""What an unanswered status says when Ray reports the actor dead (not restarting, not slow)."""

ComponentView = Mapping[str, Any]
"""What a component last said about itself: ``halted`` (str) and ``details`` (dict)."""


@dataclass(frozen=True)
class HealthReport:
    """One probe's answer.

    Attributes:
        ok: 200 if true, else 503.
        checks: Each condition and ``"ok"``, or why it fails.
    """

    ok: bool
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def status_code(self) -> int:
        return 200 if self.ok else 503

    def body(self) -> dict[str, Any]:
        """``{"status": "ok"|"unavailable", "failing": [...], "checks": {...}}``."""
        return {
            "status": "ok" if self.ok else "unavailable",
            "failing": [name for name, why in self.checks.items() if why != "ok"],
            "checks": dict(self.checks),
        }

    def json_bytes(self) -> bytes:
        return (json.dumps(self.body(), sort_keys=False) + "\n").encode()


class HealthProbe(Protocol):
    """What an HTTP endpoint asks: both answers must come back within about a second."""

    def liveness(self) -> HealthReport:
        """Whether the process and its graph are alive."""
        ...

    def readiness(self) -> HealthReport:
        """Whether the graph may be trusted to trade now."""
        ...


class AlwaysUp:
    """The probe of a process that runs no session (a backtest): alive and ready while it
    answers at all."""

    def liveness(self) -> HealthReport:
        return HealthReport(True, {"process": "ok"})

    def readiness(self) -> HealthReport:
        return HealthReport(True, {"process": "ok"})


def _answered(views: Mapping[str, ComponentView | str]) -> dict[str, ComponentView]:
    return {cid: v for cid, v in views.items() if not isinstance(v, str)}


def _join(reasons: list[str]) -> str:
    return "; ".join(reasons) if reasons else "ok"


def liveness(running: bool, views: Mapping[str, ComponentView | str]) -> HealthReport:
    """Alive: the session runs and Ray reports none of its actors dead.

    Args:
        running: The session started and has not stopped.
        views: Each actor's view, or why it could not answer.
    """
    if not running:
        return HealthReport(False, {GRAPH: "the session is not running"})
    dead = [why for why in views.values() if isinstance(why, str) and DEAD_MARK in why]
    return HealthReport(not dead, {GRAPH: _join(dead)})


def readiness(running: bool, halted: str, views: Mapping[str, ComponentView | str]) -> HealthReport:
    """Ready: graph up, venues reconciled, feed fresh, trading not halted.

    Args:
        running: The session started and has not stopped.
        halted: Why the session itself halted trading (``""`` if it did not).
        views: Each actor's view, or why it could not answer in time.
    """
    answered = _answered(views)
    risk = answered.get(RISK, {}).get("details", {})

    if not running:
        graph = ["the session is not running"]
    else:
        graph = [why for why in views.values() if isinstance(why, str)]

    venues: list[str] = []
    for cid, view in sorted(answered.items()):
        if not cid.startswith("broker:"):
            continue
        details = view.get("details", {})
        if details.get("failure"):
            venues.append(f"{cid}: {details['failure']}")
        elif "reconciliation" in details and not details.get("reconciliation"):
            venues.append(f"{cid}: not reconciled with its exchange yet")
    for venue, why in sorted(dict(risk.get("unavailable_venues") or {}).items()):
        venues.append(f"venue {venue} unavailable: {why}" if why else f"venue {venue} unavailable")

    feed: list[str] = []
    if isinstance(views.get(MARKET_DATA), str):
        feed.append(f"market data did not answer ({views[MARKET_DATA]})")
    for instrument, why in sorted(dict(risk.get("stale_feeds") or {}).items()):
        feed.append(f"{instrument} stale: {why}" if why else f"{instrument} stale")

    stops: list[str] = []
    if halted:
        stops.append(halted)
    for cid, view in sorted(answered.items()):
        why = view.get("halted") or ""
        if why and why != halted:  # the session's halt is mostly an actor's, said once
            stops.append(f"{cid}: {why}")
    if risk.get("kill_switch_tripped"):
        stops.append(f"kill switch tripped: {risk.get('kill_switch_reason') or 'no reason given'}")
    if running and RISK not in answered and RISK in views:
        stops.append("risk did not answer: the kill switch cannot be read")

    checks = {GRAPH: _join(graph), VENUES: _join(venues), FEED: _join(feed), HALTED: _join(stops)}
    return HealthReport(all(why == "ok" for why in checks.values()), checks)
