"""Observation inside Ray actors: metrics through ray.util.metrics, JSON logs via the setup hook."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.support.observability_probe import ObservationProbe
from tests.support.stubs import bar
from tradegraph.actors import ray_runtime_env
from tradegraph.contracts import KillSwitchChanged, Message, RiskReason, RiskRejected

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

BTC = "BTCUSDT.BINANCE"
SCRAPE_TIMEOUT_S = 20.0


def _scrape_ray_metrics(prefix: str, timeout_s: float) -> list[str]:
    """Lines of the node's metrics export that start with ``prefix``, once any appear."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    port = next(n["MetricsExportPort"] for n in nodes if n["Alive"])
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            lines = [ln for ln in response.read().decode().splitlines() if ln.startswith(prefix)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.25)


def test_ray_metrics_sink_records_inside_an_actor_and_ray_exports_it() -> None:
    probe: Any = ray.remote(num_cpus=0)(ObservationProbe).remote()
    order_path: list[Message] = [
        KillSwitchChanged(tripped=True, reason="test", ts_event_ns=1, ts_init_ns=1),
        RiskRejected(
            intent_id="s-000001",
            strategy_id="s",
            instrument_id=BTC,
            reason=RiskReason.KILL_SWITCH,
            detail="tripped",
            ts_event_ns=1,
            ts_init_ns=1,
        ),
    ]

    recorded = ray.get(
        probe.record.remote(
            [*(bar(100.0, ts_ns=i, high=101.0, low=99.0) for i in range(1, 8)), *order_path],
            4,
            0.003,
        ),
        timeout=60,
    )
    lines = _scrape_ray_metrics("ray_tradegraph_market_events_total{", SCRAPE_TIMEOUT_S)
    ray.kill(probe)

    assert recorded == 9
    assert any(f'instrument="{BTC}"' in ln and ln.endswith(" 7.0") for ln in lines), lines


def test_actor_with_the_session_runtime_env_logs_json_lines_with_component_and_session(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "actors.jsonl"
    env = ray_runtime_env("obs-session", component="probe", log_file=log_file)
    probe: Any = ray.remote(num_cpus=0)(ObservationProbe).options(runtime_env=env).remote()

    ray.get(probe.log.remote("probe_started"), timeout=60)
    ray.kill(probe)

    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    by_event = {e["event"]: e for e in events}
    plain = by_event["probe_started"]
    named = by_event["probe_started_from_risk"]
    assert (plain["component"], plain["session_id"]) == ("probe", "obs-session")
    assert (named["component"], named["session_id"]) == ("risk", "obs-session")
    assert isinstance(plain["wall_time"], str)
    assert plain["pid"] == named["pid"]
