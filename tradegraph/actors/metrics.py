"""``RayMetricsSink``: graph metrics through ``ray.util.metrics`` inside actors.

Ray's metrics agent on each node exports what actors record (Prometheus format, scraped by the
dashboard and by any Prometheus pointed at the node). The names are those of
``tradegraph.observability.metrics.METRICS``; Ray exposes them with its ``ray_`` prefix and,
for counters, a ``_total`` suffix (``ray_tradegraph_fills_total``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ray.util import metrics as ray_metrics

from tradegraph.observability.metrics import METRICS, MetricKind, MetricSpec


class RayMetricsSink:
    """A ``MetricsSink`` on ``ray.util.metrics``: one Ray metric per spec, declared up front.

    Build it inside the process that records (an actor's constructor): Ray metrics belong to
    the worker that created them.

    Args:
        specs: The metrics to declare (all of tradegraph's by default).
    """

    def __init__(self, specs: Iterable[MetricSpec] = METRICS) -> None:
        self._metrics: dict[str, Any] = {spec.name: _declare(spec) for spec in specs}

    def _metric(self, name: str) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            raise ValueError(f"unknown metric {name!r}")
        return metric

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        if amount > 0:  # Ray refuses a zero increment
            self._metric(name).inc(amount, tags=dict(tags) or None)

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._metric(name).set(value, tags=dict(tags) or None)

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._metric(name).observe(value, tags=dict(tags) or None)


def _declare(spec: MetricSpec) -> Any:
    if spec.kind is MetricKind.COUNTER:
        return ray_metrics.Counter(spec.name, spec.description, spec.tag_keys)
    if spec.kind is MetricKind.GAUGE:
        return ray_metrics.Gauge(spec.name, spec.description, spec.tag_keys)
    return ray_metrics.Histogram(spec.name, spec.description, list(spec.buckets), spec.tag_keys)
