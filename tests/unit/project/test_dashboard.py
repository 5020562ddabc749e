"""The Grafana dashboard and Prometheus config in deploy/ query only metrics that exist.

The names tradegraph exports are read from a real ``/metrics`` endpoint (every metric of
``METRICS`` declared, as a run's driver declares them); Ray's are the explicit list in
``tests.support.promql.RAY_METRICS``, checked against a real Ray node by an integration test.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import RAY_METRICS, dashboard_exprs, exposed_names, metric_names
from tradegraph.observability.prometheus import PrometheusSink, serve_metrics

REPO_ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "tradegraph.json"
PROMETHEUS = REPO_ROOT / "deploy" / "prometheus.yml"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Series names a tradegraph ``/metrics`` endpoint offers, scraped over HTTP."""
    with (
        serve_metrics(PrometheusSink().registry, "127.0.0.1", 0) as server,
        urllib.request.urlopen(server.url, timeout=5) as response,
    ):
        return exposed_names(response.read().decode())


def _queried(dashboard: dict[str, Any]) -> dict[str, set[str]]:
    by_name: dict[str, set[str]] = {}
    for title, expr in dashboard_exprs(dashboard):
        for name in metric_names(expr):
            by_name.setdefault(name, set()).add(title)
    return by_name


def test_every_metric_the_dashboard_queries_is_exported(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    queried = _queried(dashboard)
    assert len(list(dashboard_exprs(dashboard))) >= 20
    unknown = {
        name: sorted(panels)
        for name, panels in queried.items()
        if name not in exported and name not in RAY_METRICS
    }
    assert unknown == {}
    assert "tradegraph_fills_total" in exported  # the scrape saw tradegraph's metrics at all


def test_the_dashboard_covers_what_an_operator_watches(dashboard: dict[str, Any]) -> None:
    queried = set(_queried(dashboard))
    for name in (
        "tradegraph_order_intents_total",
        "tradegraph_orders_submitted_total",
        "tradegraph_fills_total",
        "tradegraph_rejections_total",
        "tradegraph_kill_switch_tripped",
        "tradegraph_feed_stale",
        "tradegraph_venue_available",
        "tradegraph_tick_to_order_seconds_bucket",
        "tradegraph_equity",
        "tradegraph_drawdown",
        "ray_component_rss_mb",
    ):
        assert name in queried, name
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (strategy, side) (rate(tradegraph_fills_total{job=~"$job"}[$__rate_interval]))',
            {"tradegraph_fills_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) / on(job) y offset 1h",
            {"x_bucket", "y"},
        ),
        ("count(up == 0) or vector(0)", {"up"}),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_scrape_config_has_tradegraph_and_ray() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"tradegraph", "ray"}
    assert jobs["tradegraph"]["metrics_path"] == "/metrics"
    assert jobs["tradegraph"]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    (discovery,) = jobs["ray"]["file_sd_configs"]
    assert discovery["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]
