"""The session's health probe against real actors: a dead actor, a halt, a stopped session."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import ray

from tradegraph.actors.session import LiveSession
from tradegraph.actors.session_health import SessionHealth
from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def test_a_dead_actor_fails_liveness_and_a_halt_fails_readiness_only(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = load_config(
        PAPER_YAML,
        [
            "session.speed=60",
            "session.namespace=health-probe",
            f"session.state_dir={tmp_path / 'state'}",
        ],
    )
    session = started(config)
    probe = SessionHealth(session, cache_s=0.0)

    assert probe.liveness().ok
    ready = probe.readiness()
    assert ready.ok, ready.checks

    session.halt("broker:BINANCE stopped answering")
    halted = probe.readiness()
    assert halted.body()["failing"] == ["halted"]
    assert halted.checks["halted"].startswith("broker:BINANCE stopped answering; kill switch")
    assert probe.liveness().ok

    ray.kill(session.hosts["strategy:sma_btc"], no_restart=True)
    deadline = time.monotonic() + 20.0
    dead = probe.liveness()
    while dead.ok and time.monotonic() < deadline:  # ray.kill takes a moment to land
        time.sleep(0.1)
        dead = probe.liveness()
    assert not dead.ok
    assert dead.checks == {"graph": "strategy:sma_btc is dead"}
    assert "strategy:sma_btc is dead" in probe.readiness().checks["graph"]

    session.stop("test")
    stopped = probe.liveness()
    assert stopped.status_code == 503
    assert stopped.checks == {"graph": "the session is not running"}
