from __future__ import annotations

import socket
import urllib.request

import pytest

from tradegraph.errors import ConfigError
from tradegraph.observability.metrics import (
    EQUITY,
    FILLS,
    MARKET_EVENTS,
    TICK_TO_ORDER,
    GraphMetrics,
)
from tradegraph.observability.prometheus import PrometheusSink, serve_metrics

BTC = "BTCUSDT.BINANCE"


def test_sink_writes_counters_gauges_and_histograms_under_the_documented_names() -> None:
    sink = PrometheusSink()

    sink.inc(FILLS, 2, {"strategy": "s", "instrument": BTC, "side": "buy"})
    sink.inc(FILLS, 1, {"strategy": "s", "instrument": BTC, "side": "buy"})
    sink.set(EQUITY, 1_234.5, {})
    sink.observe(TICK_TO_ORDER, 0.003, {})

    registry = sink.registry
    fills = {"strategy": "s", "instrument": BTC, "side": "buy"}
    assert registry.get_sample_value("tradegraph_fills_total", fills) == 3.0
    assert registry.get_sample_value("tradegraph_equity") == 1_234.5
    assert registry.get_sample_value("tradegraph_tick_to_order_seconds_count") == 1.0
    assert (
        registry.get_sample_value("tradegraph_tick_to_order_seconds_bucket", {"le": "0.005"}) == 1.0
    )


def test_two_sinks_in_one_process_keep_separate_registries() -> None:
    first, second = PrometheusSink(), PrometheusSink()

    first.set(EQUITY, 1.0, {})
    second.set(EQUITY, 2.0, {})

    assert first.registry.get_sample_value("tradegraph_equity") == 1.0
    assert second.registry.get_sample_value("tradegraph_equity") == 2.0


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        PrometheusSink().inc("tradegraph_nope", 1, {})


def test_served_registry_is_scraped_over_http_on_a_free_port() -> None:
    sink = PrometheusSink()
    metrics = GraphMetrics(sink)
    metrics.count_market_events("bar", BTC, 42)
    metrics.flush()

    with (
        serve_metrics(sink.registry, "127.0.0.1", 0) as server,
        urllib.request.urlopen(server.url, timeout=5) as response,
    ):
        body = response.read().decode()

    assert server.port > 0
    assert f'{MARKET_EVENTS}_total{{instrument="{BTC}",kind="bar"}} 42.0' in body


def test_stopped_server_releases_its_port() -> None:
    server = serve_metrics(PrometheusSink().registry)
    server.stop()
    server.stop()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", server.port))


def test_serving_on_a_taken_port_says_which_and_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*--metrics-port"):
            serve_metrics(PrometheusSink().registry, "127.0.0.1", port)


def test_totals_of_several_processes_export_like_one_in_process_sink() -> None:
    """What a session's driver serves: its actors' totals merged, as a PrometheusSink names them."""
    from prometheus_client import CollectorRegistry

    from tradegraph.observability.metrics import TeeSink, TotalsSink
    from tradegraph.observability.prometheus import TotalsCollector

    reference = PrometheusSink()
    actors = [TotalsSink(), TotalsSink()]
    fills = {"strategy": "s", "instrument": BTC, "side": "buy"}
    for actor, (n, equity, latency) in zip(actors, ((2, 10.0, 0.003), (3, 20.0, 0.3)), strict=True):
        both = TeeSink(actor, reference)
        both.inc(FILLS, n, fills)
        both.inc(MARKET_EVENTS, 5 * n, {"instrument": BTC, "kind": "bar"})
        both.set(EQUITY, equity, {})
        both.observe(TICK_TO_ORDER, latency, {})
        both.observe(TICK_TO_ORDER, 5.0, {})  # beyond the last bucket

    registry = CollectorRegistry()
    registry.register(TotalsCollector(lambda: [a.totals() for a in actors]))

    def both_say(name: str, labels: dict[str, str] | None = None) -> float | None:
        value = registry.get_sample_value(name, labels)
        assert value == reference.registry.get_sample_value(name, labels), name
        return value

    assert both_say("tradegraph_fills_total", fills) == 5.0
    assert both_say("tradegraph_market_events_total", {"instrument": BTC, "kind": "bar"}) == 25.0
    assert both_say("tradegraph_equity") == 20.0  # a gauge: the last value reported
    assert both_say("tradegraph_tick_to_order_seconds_count") == 4.0
    assert both_say("tradegraph_tick_to_order_seconds_bucket", {"le": "0.005"}) == 1.0
    assert both_say("tradegraph_tick_to_order_seconds_bucket", {"le": "0.5"}) == 2.0
    assert both_say("tradegraph_tick_to_order_seconds_bucket", {"le": "+Inf"}) == 4.0
    assert both_say("tradegraph_tick_to_order_seconds_sum") == pytest.approx(10.303)
