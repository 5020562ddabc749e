"""Monte Carlo and stress pick in-process or Ray execution, say which, and keep Ray quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]


def montecarlo(tmp_path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "montecarlo",
            "--paths",
            "2",
            "--bars-per-path",
            "500",
            "--workers",
            "2",
            "--no-html",
            "--out",
            str(tmp_path / "out"),
            *more,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_small_batch_runs_in_process_and_says_so(tmp_path: Path) -> None:
    done = montecarlo(tmp_path)

    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("montecarlo: running in this process (about 0 s of work, ")
    assert "Started a local Ray instance" not in done.stderr
    assert "2 scenarios (2 run now, 0 failed)" in done.stdout


def test_ray_when_asked_keeps_its_start_up_lines_off_the_terminal(tmp_path: Path) -> None:
    done = montecarlo(tmp_path, "--ray")

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == "montecarlo: running on Ray (--ray)"
    assert "worker.py" not in done.stderr
    assert "Started a local Ray instance" not in done.stderr


def test_ray_lines_show_with_log_level_debug(tmp_path: Path) -> None:
    done = montecarlo(tmp_path, "--ray", "--log-level", "DEBUG")

    assert done.returncode == 0, done.stderr
    assert "Started a local Ray instance" in done.stderr
