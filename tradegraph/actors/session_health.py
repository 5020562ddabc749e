"""The health probe of a running session: what its driver's ``/healthz`` and ``/readyz`` ask.

Each probe asks every actor for its status at once and waits ``timeout_s`` at most in all, so a
probe answers in about a second even with an actor hung; answers are kept ``cache_s`` so
probes from several load balancers do not each ask the actors. Deciding from the answers is
:mod:`tradegraph.observability.health`'s (pure, tested without Ray).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ray

from tradegraph.observability import health
from tradegraph.observability.health import DEAD_MARK, ComponentView, HealthReport

if TYPE_CHECKING:
    from tradegraph.actors.session import LiveSession


@dataclass(frozen=True)
class _Seen:
    at: float
    running: bool
    halted: str
    views: dict[str, ComponentView | str]


class SessionHealth:
    """A :class:`~tradegraph.observability.health.HealthProbe` over a :class:`LiveSession`.

    Safe to call from the HTTP server's threads while the driver's own thread runs the session.

    Args:
        session: The session to probe.
        timeout_s: The longest a probe waits for the actors, all together.
        cache_s: How long one round of answers serves further probes.
    """

    def __init__(self, session: LiveSession, timeout_s: float = 1.0, cache_s: float = 0.25) -> None:
        self._session = session
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._seen: _Seen | None = None

    def liveness(self) -> HealthReport:
        seen = self._look()
        return health.liveness(seen.running, seen.views)

    def readiness(self) -> HealthReport:
        seen = self._look()
        return health.readiness(seen.running, seen.halted, seen.views)

    def _look(self) -> _Seen:
        with self._lock:
            seen = self._seen
            if seen is None or time.monotonic() - seen.at > self._cache_s:
                seen = self._seen = self._ask()
            return seen

    def _ask(self) -> _Seen:
        session = self._session
        hosts = dict(session.hosts)
        running = session.running and bool(hosts)
        views: dict[str, ComponentView | str] = {}
        if running:
            refs = {cid: host.report.remote() for cid, host in hosts.items()}
            deadline = time.monotonic() + self._timeout_s
            for cid, ref in refs.items():
                views[cid] = _view(cid, ref, max(0.0, deadline - time.monotonic()))
        return _Seen(time.monotonic(), running, session.halted, views)


def _view(cid: str, ref: Any, timeout_s: float) -> ComponentView | str:
    try:
        status = ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        return f"{cid} did not answer in time"
    except ray.exceptions.ActorDiedError:
        return f"{cid}{DEAD_MARK}"
    except ray.exceptions.RayActorError:
        return f"{cid} is unavailable (restarting)"
    return {"halted": status.halted, "details": status.details}
