"""Prometheus exposition for in-process runs and drivers: a sink and an HTTP server of
``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tradegraph.errors import ConfigError
from tradegraph.observability.health import AlwaysUp, HealthProbe, HealthReport
from tradegraph.observability.metrics import (
    METRICS,
    MetricKind,
    MetricSpec,
    MetricTotals,
    merge_totals,
)


class PrometheusSink:
    """A ``MetricsSink`` on prometheus-client, with every metric of ``specs`` registered.

    Each sink has its own registry unless one is given, so several sessions (or tests) in one
    process never collide over metric names.

    Attributes:
        registry: The registry to expose, e.g. with :func:`serve_metrics`.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, specs: Iterable[MetricSpec] = METRICS
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._specs: dict[str, MetricSpec] = {}
        self._metrics: dict[str, Any] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        for spec in specs:
            self._specs[spec.name] = spec
            self._metrics[spec.name] = _declare(spec, self.registry)

    def _child(self, name: str, tags: Mapping[str, str]) -> Any:
        spec = self._specs.get(name)
        if spec is None:
            raise ValueError(f"unknown metric {name!r}")
        if not spec.tag_keys:
            return self._metrics[name]
        values = tuple(tags[key] for key in spec.tag_keys)
        key = (name, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metrics[name].labels(*values)
        return child

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        self._child(name, tags).inc(amount)

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._child(name, tags).set(value)

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._child(name, tags).observe(value)


def _declare(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    labels = spec.tag_keys
    if spec.kind is MetricKind.COUNTER:
        return Counter(spec.name, spec.description, labels, registry=registry)
    if spec.kind is MetricKind.GAUGE:
        return Gauge(spec.name, spec.description, labels, registry=registry)
    return Histogram(spec.name, spec.description, labels, registry=registry, buckets=spec.buckets)


class MetricsServer:
    """A running ``/metrics``, ``/healthz`` and ``/readyz`` endpoint; :meth:`stop` (or leaving
    a ``with`` block) ends it.

    Attributes:
        host: The address it listens on.
        port: The port it listens on (the one picked, when asked for port 0).
    """

    def __init__(self, server: Any, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = int(server.server_port)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5.0)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    """Logs no line per request (probes come every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow probe never holds up a scrape."""

    daemon_threads = True


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PROBES: Mapping[str, str] = {"/healthz": "liveness", "/readyz": "readiness"}
"""The health paths and the probe method each one asks."""


def health_app(metrics: WsgiApp, probe: HealthProbe) -> WsgiApp:
    """A WSGI app that answers ``/healthz`` and ``/readyz`` from ``probe`` and everything else
    from ``metrics``.

    A probe that raises answers 503 with the error named, never a traceback page.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = PROBES.get(environ.get("PATH_INFO", ""))
        if method is None:
            return metrics(environ, start_response)
        try:
            report: HealthReport = getattr(probe, method)()
        except Exception as exc:  # a probe must answer, whatever went wrong behind it
            report = HealthReport(False, {"probe": f"{type(exc).__name__}: {exc}"})
        body = report.json_bytes()
        status = "200 OK" if report.ok else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]

    return app


def serve_metrics(
    registry: CollectorRegistry,
    host: str = "127.0.0.1",
    port: int = 0,
    health: HealthProbe | None = None,
) -> MetricsServer:
    """Serve ``registry`` at ``/metrics``, and ``health`` at ``/healthz`` and ``/readyz``, over
    HTTP from a daemon thread.

    Args:
        registry: What to expose (``PrometheusSink.registry``).
        host: Address to listen on; ``0.0.0.0`` for every interface.
        port: Port to listen on; 0 picks a free one (read it from ``.port``).
        health: What the health paths answer (default: 200 while the process answers, for
            runs with no session behind them).

    Raises:
        ConfigError: if the address cannot be bound (port in use, unknown host).
    """
    app = health_app(make_wsgi_app(registry), health if health is not None else AlwaysUp())
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]

        class _Server(_ThreadingServer):
            address_family = family

        server = make_server(str(address[0]), port, app, _Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
            f"(choose another --metrics-port, or 0 for any free port)"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return MetricsServer(server, thread, host)


class TotalsCollector:
    """A prometheus-client collector that exports running totals gathered elsewhere.

    A session's driver registers one over the totals its actors last reported, so its
    ``/metrics`` shows the whole graph, named as an in-process run's
    (:class:`PrometheusSink`) names it.

    Args:
        read: Returns the latest totals of every reporting process; called on each scrape.
    """

    def __init__(
        self, read: Callable[[], Iterable[MetricTotals]], specs: Iterable[MetricSpec] = METRICS
    ) -> None:
        self._read = read
        self._specs = {spec.name: spec for spec in specs}

    def collect(self) -> Iterator[Metric]:
        merged = merge_totals(list(self._read()))
        values: dict[str, list[tuple[list[str], Any]]] = {name: [] for name in self._specs}
        for section in ("counters", "gauges", "histograms"):
            for name, tags, *rest in merged[section]:
                spec = self._specs.get(name)
                if spec is not None:
                    values[name].append(([str(tags.get(k, "")) for k in spec.tag_keys], rest))
        for name, spec in self._specs.items():
            labels = list(spec.tag_keys)
            if spec.kind is MetricKind.COUNTER:
                counter = CounterMetricFamily(name, spec.description, labels=labels)
                for label_values, (value,) in values[name]:
                    counter.add_metric(label_values, value)
                yield counter
            elif spec.kind is MetricKind.GAUGE:
                gauge = GaugeMetricFamily(name, spec.description, labels=labels)
                for label_values, (value,) in values[name]:
                    gauge.add_metric(label_values, value)
                yield gauge
            else:
                histogram = HistogramMetricFamily(name, spec.description, labels=labels)
                for label_values, (counts, total) in values[name]:
                    bounds = [*(str(b) for b in spec.buckets), "+Inf"]
                    cumulative, running = [], 0.0
                    for bound, count in zip(bounds, counts, strict=True):
                        running += count
                        cumulative.append((bound, running))
                    histogram.add_metric(label_values, cumulative, sum_value=total)
                yield histogram
