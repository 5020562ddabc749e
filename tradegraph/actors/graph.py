"""Build a ``GraphConfig`` into named Ray actors, one ``ComponentHost`` per component."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import ray

from tradegraph.actors.host import ComponentHost
from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.config.models import DEFAULT_NAMESPACE, GraphConfig
from tradegraph.engine.assembly import component_ids


class RayGraph:
    """The components of one graph as named actors in a Ray namespace.

    Names are the component ids: ``risk``, ``portfolio``, ``broker:<venue>``,
    ``strategy:<id>``, so ``ray.get_actor("risk", namespace="tradegraph")`` reaches Risk from
    any driver on the cluster. Ray must be initialised before :meth:`build`.

    Args:
        config: The graph to build.
        namespace: Ray namespace of the actors.
        max_restarts: How often Ray restarts a dead actor. Tasks are never retried
            (``max_task_retries=0``): every method of a host is on the order path.
        num_cpus_per_actor: CPUs each actor reserves; 0 lets a whole graph share a small node.
    """

    def __init__(
        self,
        config: GraphConfig,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_restarts: int = 0,
        num_cpus_per_actor: float = 0.0,
    ) -> None:
        if max_restarts < -1:
            raise ActorGraphError(f"max_restarts must be >= -1 (-1: forever), was {max_restarts}")
        self.config = config
        self.namespace = namespace
        self.max_restarts = max_restarts
        self.num_cpus_per_actor = num_cpus_per_actor
        self.hosts: dict[str, Any] = {}

    def actor_options(self, component_id: str) -> dict[str, Any]:
        """Ray options of the actor hosting ``component_id``."""
        return {
            "name": component_id,
            "namespace": self.namespace,
            "max_restarts": self.max_restarts,
            "max_task_retries": 0,
            "num_cpus": self.num_cpus_per_actor,
        }

    def build(self, start_ns: int = 0) -> Mapping[str, Any]:
        """Create every actor, wait until each has built its component; return the handles.

        Raises:
            ActorGraphError: if Ray is not initialised or an actor name is already taken.
        """
        if not ray.is_initialized():
            raise ActorGraphError("Ray is not initialised: call ray.init() before building")
        remote_host = ray.remote(ComponentHost)
        try:
            for cid in component_ids(self.config):
                options = self.actor_options(cid)
                self.hosts[cid] = remote_host.options(**options).remote(self.config, cid, start_ns)
        except ValueError as exc:
            self.shutdown()
            raise ActorGraphError(
                f"cannot create the actor graph in namespace {self.namespace!r}: {exc} "
                f"(is another session running? stop it or use another namespace)"
            ) from exc
        ray.get([host.describe.remote() for host in self.hosts.values()])
        return self.hosts

    def describe(self) -> dict[str, dict[str, Any]]:
        """``describe()`` of every host, keyed by component id."""
        ids = list(self.hosts)
        found = ray.get([self.hosts[cid].describe.remote() for cid in ids])
        return dict(zip(ids, found, strict=True))

    def shutdown(self) -> None:
        """Kill every actor of the graph (no restart); safe to call twice."""
        for host in self.hosts.values():
            ray.kill(host, no_restart=True)
        self.hosts.clear()

    def __enter__(self) -> RayGraph:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
