"""A paper session whose strategy raised says it failed; ``--strict`` turns that into exit 5.

The session runs as a user runs it (a subprocess of ``tradegraph paper`` joining the test
session's Ray), with the raising strategy's module in the working directory, shipped to the
cluster's workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import ray

from tradegraph.cli import STRICT_EXIT_CODE

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"

RAISING_STRATEGY = """
from tradegraph.strategies.sma_cross import SmaCross


class RaisingAfter(SmaCross):
    seen = 0

    def on_bar(self, bar):
        self.seen += 1
        if self.seen > 100:
            raise ValueError("signal went bad")
        super().on_bar(bar)
"""


def _paper(
    tmp_path: Path, name: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, Any]]:
    out = tmp_path / name
    cmd = [
        *(sys.executable, "-m", "tradegraph", "paper", str(PAPER_YAML)),
        *("--address", ray.get_runtime_context().gcs_address, "--namespace", f"failed-{name}"),
        *("--set", f"session.state_dir={tmp_path / name / 'state'}", "--out", str(out)),
        *("--set", "data.bars.0.limit=300", "--set", "data.bars.1.limit=300"),
        *("--set", "strategies.sma_btc.class_path=raising_strategy:RaisingAfter"),
        *("--speed", "0", "--no-html", "--json", *extra),
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    session = json.loads((out / "session.json").read_text())
    return proc, summary, session


def test_a_paper_session_whose_strategy_raised_is_marked_failed(tmp_path: Path) -> None:
    (tmp_path / "raising_strategy.py").write_text(RAISING_STRATEGY)

    plain, summary, session = _paper(tmp_path, "plain")
    strict, strict_summary, _ = _paper(tmp_path, "strict", "--strict")

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE, strict.stderr
    assert session["stopped_by"] == "replay_finished"
    assert session["halted"] == ""
    for found in (summary, strict_summary, session):
        assert found["status"] == "failed"
        [reason] = found["failure_reasons"]
        assert reason.startswith("strategy sma_btc stopped: ValueError: signal went bad")
    assert json.loads(plain.stdout.strip().splitlines()[-1]) == session
    assert "RUN FAILED" in plain.stdout
    assert "strategy sma_btc stopped: ValueError: signal went bad" in plain.stdout
    assert "run failed: strategy sma_btc stopped" in plain.stderr


def test_a_clean_paper_session_is_ok_under_strict(tmp_path: Path) -> None:
    proc, summary, session = _paper(
        tmp_path, "clean", "--set", "strategies.sma_btc.class_path=sma_cross", "--strict"
    )

    assert proc.returncode == 0, proc.stderr
    assert summary["status"] == session["status"] == "ok"
    assert summary["failure_reasons"] == session["failure_reasons"] == []
    assert summary["fills"] > 0
    assert "RUN FAILED" not in proc.stdout
