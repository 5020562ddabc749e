"""``/healthz`` and ``/readyz`` of a paper session's driver, over real HTTP.

The session is ``tradegraph paper --metrics-port`` in its own process on a ``ray start --head``
cluster, probed the way a load balancer probes it, and tripped by ``tradegraph kill`` from
another process, as an operator would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ray_head import HeadCluster, free_port, head_cluster

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[HeadCluster]:
    with head_cluster() as found:
        yield found


def probe(url: str) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    # A probe never waits on the actors for long.
    assert time.monotonic() - started < 3.0
    found: dict[str, Any] = json.loads(body)
    return code, found


def wait_probe(
    paper: subprocess.Popen[str], url: str, code: int, timeout_s: float = 120
) -> dict[str, Any]:
    """Probe ``url`` until it answers ``code``; the session must stay up meanwhile."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        assert paper.poll() is None, paper.communicate()
        try:
            last = probe(url)
        except (urllib.error.URLError, ConnectionError) as exc:  # not listening yet
            last = exc
        else:
            if last[0] == code:
                found: dict[str, Any] = last[1]
                return found
        time.sleep(0.5)
    pytest.fail(f"{url} never answered {code}; last: {last}")


def test_ready_after_start_and_not_ready_naming_halted_after_kill(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    namespace = "health-http"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    paper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "paper",
            str(PAPER_YAML),
            "--address",
            cluster.address,
            "--namespace",
            namespace,
            "--out",
            str(tmp_path / "out"),
            "--no-html",
            "--speed",
            "60",
            "--duration",
            "300",
            "--metrics-port",
            str(port),
        ],
        env=cluster.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = wait_probe(paper, f"{base}/readyz", 200)
        assert ready == {
            "status": "ok",
            "failing": [],
            "checks": {"graph": "ok", "venues": "ok", "feed": "ok", "halted": "ok"},
        }
        assert probe(f"{base}/healthz")[0] == 200

        killed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tradegraph",
                "kill",
                "--address",
                cluster.address,
                "--namespace",
                namespace,
                "--reason",
                "night desk said stop",
            ],
            env=cluster.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert killed.returncode == 0, killed.stderr

        code, body = probe(f"{base}/readyz")
        assert code == 503
        assert body["status"] == "unavailable"
        assert body["failing"] == ["halted"]
        assert body["checks"]["halted"] == "kill switch tripped: night desk said stop"
        # Halted is not dead: the driver stays alive for the operator.
        assert probe(f"{base}/healthz") == (
            200,
            {"status": "ok", "failing": [], "checks": {"graph": "ok"}},
        )
    finally:
        if paper.poll() is None:
            paper.send_signal(signal.SIGTERM)
        try:
            _, stderr = paper.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            paper.kill()
            _, stderr = paper.communicate()
    assert paper.returncode == 0, stderr
    assert f"health at {base}/healthz and {base}/readyz" in stderr
    # The session's provenance, with the fills it made.
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    session = json.loads((tmp_path / "out" / "session.json").read_text())
    assert manifest["kind"] == "paper"
    assert manifest["run"]["session_id"] == session["session_id"]
    assert manifest["results"]["fills_digest"] == session["fills_digest"]
    assert {e["path"] for e in manifest["data_files"]} == {"sample:BTCUSDT_1m", "sample:ETHUSDT_1m"}
