"""Ray's metrics the Grafana dashboard queries exist in a real Ray node's export."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
import ray

from tests.support.promql import RAY_METRICS, exposed_names

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


class _Idle:
    def ping(self) -> int:
        return 1


def test_the_ray_metrics_of_the_dashboard_are_exported_by_a_ray_node() -> None:
    actor: Any = ray.remote(num_cpus=0)(_Idle).remote()
    assert ray.get(actor.ping.remote(), timeout=60) == 1
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    port = next(n["MetricsExportPort"] for n in nodes if n["Alive"])
    deadline = time.monotonic() + 60
    names: set[str] = set()
    try:
        while time.monotonic() < deadline and not names >= RAY_METRICS:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                names = exposed_names(page.read().decode())
            time.sleep(1.0)
    finally:
        ray.kill(actor)

    assert sorted(RAY_METRICS - names) == []
