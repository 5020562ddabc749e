"""A session that starts its own Ray listens on the loopback interface only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sockets import listening_addresses, process_tree

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1"}


def test_a_local_paper_session_listens_on_loopback_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [
        sys.executable,
        "-m",
        "tradegraph",
        "paper",
        str(REPO_ROOT / "examples" / "paper.yaml"),
        "--speed",
        "60",
        "--set",
        f"session.state_dir={tmp_path / 'state'}",
        "--set",
        "session.namespace=loopback-check",
        "--out",
        str(tmp_path / "out"),
        "--no-html",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "paper session" in first, proc.stderr.read() if proc.stderr else ""
        listening = listening_addresses(process_tree(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 0, stderr
    # Ray's GCS, raylet, workers and agents all listen somewhere: there is something to check.
    assert len(listening) >= 4, listening
    exposed = [(host, port) for host, port in listening if host not in LOOPBACK]
    assert exposed == []
