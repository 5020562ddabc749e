"""``tradegraph twin``: a finished session's recorded market data replayed as a backtest and
compared with the session order by order, run as a user runs both commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import ray

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def _tradegraph(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_a_paper_sessions_twin_shows_zero_drift(tmp_path: Path) -> None:
    out = tmp_path / "session"
    paper = _tradegraph(
        *("paper", str(PAPER_YAML), "--out", str(out), "--speed", "0", "--no-html", "--json"),
        *("--address", ray.get_runtime_context().gcs_address, "--namespace", "twin-paper"),
        *("--set", f"session.state_dir={tmp_path / 'state'}"),
        *("--set", "data.bars.0.limit=400", "--set", "data.bars.1.limit=400"),
        cwd=tmp_path,
    )
    assert paper.returncode == 0, paper.stderr
    session = _last_json(paper)
    assert session["fills"] > 0, "the session must trade for the comparison to mean anything"
    assert sorted(p.name for p in (out / "recorded" / "bars" / "60s").iterdir()) == [
        "symbol=BTCUSDT",
        "symbol=ETHUSDT",
    ]

    twin = _tradegraph("twin", str(out), "--json", cwd=tmp_path)

    assert twin.returncode == 0, twin.stderr
    summary = _last_json(twin)
    assert summary["zero_drift"] is True
    assert summary["matched"] == summary["session_orders"] == summary["twin_orders"] > 0
    assert summary["twin_fills_digest"] == session["fills_digest"]
    assert summary["price_drift_bps"]["max_abs"] == 0.0
    drift = pq.read_table(out / "twin" / "drift.parquet")
    assert set(drift.column("present").to_pylist()) == {"both"}
    assert "zero drift" in twin.stdout
    assert (out / "twin" / "report.html").read_text().count("<tr>") > summary["matched"]


def test_twin_of_a_folder_that_is_no_session_says_why(tmp_path: Path) -> None:
    proc = _tradegraph("twin", str(tmp_path), cwd=tmp_path)

    assert proc.returncode != 0
    assert "session_config.json is missing" in proc.stderr
