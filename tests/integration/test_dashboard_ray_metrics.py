"""Ray's metrics the Grafana dashboard queries exist in a real Ray node's export."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
import ray

from tests.support.observability_probe import ObservationProbe
from tests.support.promql import RAY_METRICS, exposed_names

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_the_ray_metrics_of_the_dashboard_are_exported_by_a_ray_node() -> None:
    actor: Any = ray.remote(num_cpus=0)(ObservationProbe).remote()
    assert ray.get(actor.record.remote([], 0, 0.001), timeout=60) == 0
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    port = next(n["MetricsExportPort"] for n in nodes if n["Alive"])
    deadline = time.monotonic() + 60
    names: set[str] = set()
    text = ""
    # The dashboard picks the session's actors by the Component label Ray gives an actor's
    # worker: "ray::" and the actor's class (LiveHost for a session).
    actor_rss = 'ray_component_rss_mb{Component="ray::ObservationProbe'
    try:
        while time.monotonic() < deadline and not (names >= RAY_METRICS and actor_rss in text):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                text = page.read().decode()
            names = exposed_names(text)
            time.sleep(1.0)
    finally:
        ray.kill(actor)

    assert sorted(RAY_METRICS - names) == []
    assert actor_rss in text
