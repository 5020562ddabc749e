"""Liveness and readiness: the decision from what components said, and its HTTP form."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from prometheus_client import CollectorRegistry

from tradegraph.observability.health import HealthReport, liveness, readiness
from tradegraph.observability.prometheus import PrometheusSink, serve_metrics


def _views(**changes: Any) -> dict[str, Any]:
    """A healthy session: simulated broker, a live broker that reconciled, md, risk."""
    views: dict[str, Any] = {
        "control": {"halted": "", "details": {}},
        "md": {"halted": "", "details": {"published": 10}},
        "risk": {
            "halted": "",
            "details": {
                "kill_switch_tripped": False,
                "kill_switch_reason": "",
                "stale_feeds": {},
                "unavailable_venues": {},
            },
        },
        "broker:BINANCE": {"halted": "", "details": {"open_orders": 0, "in_flight": 0}},
        "broker:KRAKEN": {
            "halted": "",
            "details": {"reconciliation": "3 orders matched", "failure": ""},
        },
    }
    views.update(changes)
    return views


def _risk(**details: Any) -> dict[str, Any]:
    base = _views()["risk"]
    return {"halted": "", "details": {**base["details"], **details}}


def test_a_healthy_running_session_is_alive_and_ready() -> None:
    assert liveness(True, _views()).ok
    report = readiness(True, "", _views())
    assert report.ok, report.checks
    assert report.status_code == 200
    assert report.body() == {
        "status": "ok",
        "failing": [],
        "checks": {"graph": "ok", "venues": "ok", "feed": "ok", "halted": "ok"},
    }


def test_a_tripped_kill_switch_fails_halted_only() -> None:
    report = readiness(
        True, "", _views(risk=_risk(kill_switch_tripped=True, kill_switch_reason="operator kill"))
    )
    assert report.status_code == 503
    assert report.body()["failing"] == ["halted"]
    assert report.checks["halted"] == "kill switch tripped: operator kill"
    # Halted trading is a reason not to route to it, not a reason to restart it.
    assert liveness(True, _views(risk=_risk(kill_switch_tripped=True))).ok


def test_each_failing_condition_is_named_with_its_reason() -> None:
    views = _views(
        md="md did not answer in time",
        risk=_risk(stale_feeds={"BTCUSDT.KRAKEN": "no data for 31 s"}, unavailable_venues={}),
    )
    views["broker:KRAKEN"] = {"halted": "", "details": {"reconciliation": "", "failure": ""}}
    report = readiness(True, "", views)
    assert report.body()["failing"] == ["graph", "venues", "feed"]
    assert report.checks["graph"] == "md did not answer in time"
    assert report.checks["venues"] == "broker:KRAKEN: not reconciled with its exchange yet"
    assert "BTCUSDT.KRAKEN stale: no data for 31 s" in report.checks["feed"]
    assert "market data did not answer" in report.checks["feed"]


def test_a_failed_reconciliation_or_open_circuit_fails_venues() -> None:
    views = _views(risk=_risk(unavailable_venues={"KRAKEN": "circuit open"}))
    views["broker:KRAKEN"] = {
        "halted": "reconciliation failed: 1 unknown order",
        "details": {"reconciliation": "1 unknown order", "failure": "reconciliation failed"},
    }
    report = readiness(True, "", views)
    assert report.checks["venues"] == (
        "broker:KRAKEN: reconciliation failed; venue KRAKEN unavailable: circuit open"
    )
    assert report.checks["halted"] == "broker:KRAKEN: reconciliation failed: 1 unknown order"


def test_the_session_halt_and_a_stopped_session() -> None:
    assert readiness(True, "broker:BINANCE is dead", _views()).checks["halted"] == (
        "broker:BINANCE is dead"
    )
    stopped = readiness(False, "", {})
    assert not stopped.ok
    assert stopped.checks["graph"] == "the session is not running"
    assert not liveness(False, {}).ok


def test_a_dead_actor_fails_liveness_but_a_slow_one_does_not() -> None:
    assert not liveness(True, _views(md="md is dead")).ok
    assert liveness(True, _views(md="md did not answer in time")).ok


class _Probe:
    def __init__(self, ready: HealthReport) -> None:
        self.ready = ready

    def liveness(self) -> HealthReport:
        return HealthReport(True, {"graph": "ok"})

    def readiness(self) -> HealthReport:
        if not self.ready.checks:
            raise RuntimeError("risk unreachable")
        return self.ready


def _get(url: str) -> tuple[int, dict[str, Any] | str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            code, body, kind = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        code, body, kind = exc.code, exc.read(), exc.headers["Content-Type"]
    return code, json.loads(body) if kind == "application/json" else body.decode()


def test_the_endpoints_answer_over_http_beside_metrics() -> None:
    sink = PrometheusSink()
    sink.inc("tradegraph_fills", 2, {"strategy": "s", "instrument": "i", "side": "BUY"})
    probe = _Probe(HealthReport(False, {"graph": "ok", "halted": "kill switch tripped: x"}))
    with serve_metrics(sink.registry, "127.0.0.1", 0, health=probe) as server:
        assert _get(f"{server.base_url}/healthz") == (
            200,
            {"status": "ok", "failing": [], "checks": {"graph": "ok"}},
        )
        code, body = _get(f"{server.base_url}/readyz")
        assert code == 503
        assert isinstance(body, dict)
        assert body["failing"] == ["halted"]
        metrics = _get(server.url)
        assert metrics[0] == 200
        assert "tradegraph_fills_total" in str(metrics[1])
        probe.ready = HealthReport(False, {})
        code, body = _get(f"{server.base_url}/readyz")
        assert code == 503
        assert body == {
            "status": "unavailable",
            "failing": ["probe"],
            "checks": {"probe": "RuntimeError: risk unreachable"},
        }


def test_a_run_without_a_session_is_up_while_it_answers() -> None:
    with serve_metrics(CollectorRegistry(), "127.0.0.1", 0) as server:
        assert _get(f"{server.base_url}/healthz")[0] == 200
        assert _get(f"{server.base_url}/readyz")[0] == 200
