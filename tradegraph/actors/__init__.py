"""The actor graph: the only package that imports ray.

``LiveHost`` hosts any component core in a named actor (its links, inbox and recovery beside
it); ``LiveSession`` builds a ``GraphConfig`` into one actor per component and runs it, paper or
live under the wall clock, or as a causal replay under data clocks: ``run_causal_session`` is a
backtest through the very actors that trade, equal to the in-process kernel's.
``ray_session`` and ``ray_pool`` start or join Ray (the one way every command does; a Ray
started here listens on loopback only), ``ray_runtime_env`` sets up JSON logging in every
worker; ``RayMetricsSink`` writes graph metrics through ``ray.util.metrics``.
"""

from __future__ import annotations

from tradegraph.actors.causal import run_causal_session
from tradegraph.actors.metrics import RayMetricsSink
from tradegraph.actors.ray_runtime import ActorGraphError, ray_pool, ray_runtime_env, ray_session

__all__ = [
    "ActorGraphError",
    "RayMetricsSink",
    "ray_pool",
    "ray_runtime_env",
    "ray_session",
    "run_causal_session",
]
