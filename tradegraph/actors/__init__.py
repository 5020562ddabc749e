"""The actor graph: the only package that imports ray.

``ComponentHost`` hosts any component core in an actor; ``RayGraph`` builds a ``GraphConfig`` into
named actors (namespace ``tradegraph``); ``SimCoordinator`` steps them through simulated time in
the in-process kernel's exact order; ``run_backtest_ray`` is a backtest through all of it.
``ray_session`` and ``ray_pool`` start or join Ray (the one way every command does;
a Ray started here listens on loopback only), ``ray_runtime_env`` sets up JSON logging in every
worker; ``RayMetricsSink`` writes graph
metrics through ``ray.util.metrics``.
"""

from __future__ import annotations

from tradegraph.actors.backtest import ActorBacktest, run_backtest_ray
from tradegraph.actors.coordinator import SimCoordinator
from tradegraph.actors.graph import RayGraph
from tradegraph.actors.host import ComponentHost
from tradegraph.actors.metrics import RayMetricsSink
from tradegraph.actors.ray_runtime import ActorGraphError, ray_pool, ray_runtime_env, ray_session

__all__ = [
    "ActorBacktest",
    "ActorGraphError",
    "ComponentHost",
    "RayGraph",
    "RayMetricsSink",
    "SimCoordinator",
    "ray_pool",
    "ray_runtime_env",
    "ray_session",
    "run_backtest_ray",
]
