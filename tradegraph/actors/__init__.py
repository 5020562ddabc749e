"""The actor graph: the only package that imports ray.

``ComponentHost`` hosts any component core in an actor; ``RayGraph`` builds a ``GraphConfig`` into
named actors (namespace ``tradegraph``); ``SimCoordinator`` steps them through simulated time in
the in-process kernel's exact order; ``run_backtest_ray`` is a backtest through all of it.
``ray_runtime_env`` sets up JSON logging in every worker; ``RayMetricsSink`` writes graph
metrics through ``ray.util.metrics``.
"""

from __future__ import annotations

from tradegraph.actors.backtest import ActorBacktest, ray_session, run_backtest_ray
from tradegraph.actors.coordinator import SimCoordinator
from tradegraph.actors.graph import NAMESPACE, ActorGraphError, RayGraph
from tradegraph.actors.host import ComponentHost
from tradegraph.actors.metrics import RayMetricsSink
from tradegraph.actors.runtime_env import ray_runtime_env

__all__ = [
    "NAMESPACE",
    "ActorBacktest",
    "ActorGraphError",
    "ComponentHost",
    "RayGraph",
    "RayMetricsSink",
    "SimCoordinator",
    "ray_runtime_env",
    "ray_session",
    "run_backtest_ray",
]
