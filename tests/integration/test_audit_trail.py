"""A paper session's audit trail: every actor's chain, across an actor's restart, verified and
read with ``tradegraph audit`` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tradegraph.actors.session import LiveSession, operator_command
from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import SubmitOrder
from tradegraph.observability.audit import config_digest

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def tradegraph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.05)


def records(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.audit.ndjson"))
    }


def submitted(session: LiveSession) -> list[str]:
    import ray

    published = ray.get(session.hosts["risk"].published_orders.remote())
    return [m.client_order_id for m in published if isinstance(m, SubmitOrder)]


def test_a_paper_sessions_audit_trail_verifies_and_tells_each_orders_life(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = load_config(
        PAPER_YAML,
        [
            "data.bars.0.limit=300",
            "data.bars.1.limit=300",
            "session.speed=3000",
            "session.namespace=paper-audit",
            f"session.state_dir={tmp_path / 'state'}",
            "session.hang_timeout_s=10",
        ],
    )
    session = started(config)
    audit = Path(session.audit_dir or "")
    wait_until(lambda: len(submitted(session)) >= 2)
    # A strategy killed mid-run: its restarted actor chains on in the same file.
    os.kill(session.status("strategy:sma_btc").pid, signal.SIGKILL)
    operator_command("kill", "audit drill", namespace="paper-audit")
    ended_by = session.run(90.0)
    outcome = session.stop(ended_by)

    assert ended_by == "replay_finished"
    assert outcome.statuses["strategy:sma_btc"].recovered
    assert audit == tmp_path / "state" / "audit" / session.session_id
    trail = records(audit)
    assert set(trail) >= {
        "session.audit.ndjson",
        "risk.audit.ndjson",
        "broker-BINANCE.audit.ndjson",
        "strategy-sma_btc.audit.ndjson",
        "strategy-meanrev_eth.audit.ndjson",
    }
    every = [r for chain in trail.values() for r in chain]
    kinds = {(r["event"], r.get("type")) for r in every}
    assert ("published", "OrderIntent") in kinds
    assert ("published", "SubmitOrder") in kinds
    assert ("published", "OrderFilled") in kinds
    assert ("operator", "TripKillSwitch") in kinds
    trips = [r for r in every if r.get("type") == "KillSwitchChanged" and r["msg"]["tripped"]]
    assert any(r["msg"]["reason"] == "audit drill" for r in trips)
    decisions = {r["decision"] for r in every if "decision" in r}
    assert decisions == {"accepted", "refused"}
    refusals = {r["msg"]["reason"] for r in every if r.get("decision") == "refused"}
    assert "kill_switch" in refusals
    started_record = next(
        r for r in trail["session.audit.ndjson"] if r["event"] == "session_started"
    )
    assert started_record["config_sha256"] == config_digest(config)[0]
    strategy_opened = [r for r in trail["strategy-sma_btc.audit.ndjson"] if r["event"] == "opened"]
    assert len(strategy_opened) == 2
    # The fills in the trail are the session's fills.
    assert outcome.result is not None
    audited_fills = sorted(r["msg"]["fill_id"] for r in every if r.get("type") == "OrderFilled")
    assert audited_fills == sorted(f.fill_id for f in outcome.result.fills)

    verified = tradegraph("audit", "verify", str(tmp_path / "state"))

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "FAILED" not in verified.stdout
    assert f"{len(trail)} chains verified" in verified.stdout

    submitted_ids = [
        r["msg"]["client_order_id"]
        for r in trail["risk.audit.ndjson"]
        if r.get("type") == "SubmitOrder"
    ]
    filled = {r["msg"]["client_order_id"] for r in every if r.get("type") == "OrderFilled"}
    order_id = next(i for i in submitted_ids if i in filled)
    life = tradegraph("audit", "order", order_id, str(audit))

    assert life.returncode == 0, life.stderr
    lines = life.stdout.splitlines()
    life_kinds = [line.split()[3] for line in lines]
    assert life_kinds[:2] == ["OrderIntent", "SubmitOrder"]
    assert "OrderFilled" in life_kinds[2:]
    assert lines[0].split()[1].startswith("strategy:")
    assert "accepted" in lines[1]

    broker = audit / "broker-BINANCE.audit.ndjson"
    data = bytearray(broker.read_bytes())
    at = data.index(b'"last_px":') + len('"last_px":')
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    broker.write_bytes(bytes(data))

    tampered = tradegraph("audit", "verify", str(audit))

    assert tampered.returncode == 1
    line = data[:at].count(b"\n") + 1
    assert f"broker-BINANCE.audit.ndjson line {line}:" in tampered.stdout
