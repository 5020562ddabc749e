"""``tradegraph sweep --workers 2 --ray`` gives the in-process results, row for row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"


def sweep(tmp_path: Path, out: str, *more: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "sweep",
            "--set",
            "data.bars.0.limit=400",
            "--grid",
            f"{FAST}=5,10",
            "--grid",
            f"{SLOW}=20,40",
            "--json",
            "--no-html",
            "--out",
            str(tmp_path / out),
            *more,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sweep_on_ray_with_two_workers_matches_in_process(tmp_path: Path) -> None:
    local = sweep(tmp_path, "local", "--in-process")
    on_ray = sweep(tmp_path, "ray", "--workers", "2", "--ray")

    assert local.returncode == 0, local.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    assert on_ray.stderr.splitlines()[0] == "sweep: running on Ray (--ray)"
    expected = json.loads(local.stdout.strip().splitlines()[-1])
    got = json.loads(on_ray.stdout.strip().splitlines()[-1])
    assert got["trials"] == 4
    assert got["results_digest"] == expected["results_digest"]
    assert got["best"] == expected["best"]
    ray_rows = pq.read_table(tmp_path / "ray" / "results.parquet").drop_columns(["elapsed_s"])
    local_rows = pq.read_table(tmp_path / "local" / "results.parquet").drop_columns(["elapsed_s"])
    assert ray_rows.equals(local_rows)


def test_optuna_sweep_on_ray_with_two_workers_matches_in_process(tmp_path: Path) -> None:
    search = ["--search", "optuna", "--trials", "6", "--workers", "2", "--seed", "5"]
    local = sweep(tmp_path, "local", *search, "--in-process")
    on_ray = sweep(tmp_path, "ray", *search, "--ray")

    assert local.returncode == 0, local.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    expected = json.loads(local.stdout.strip().splitlines()[-1])
    got = json.loads(on_ray.stdout.strip().splitlines()[-1])
    assert (got["search"], got["trials"], got["round_size"]) == ("optuna", 6, 2)
    assert got["results_digest"] == expected["results_digest"]
    ray_rows = pq.read_table(tmp_path / "ray" / "results.parquet").drop_columns(["elapsed_s"])
    local_rows = pq.read_table(tmp_path / "local" / "results.parquet").drop_columns(["elapsed_s"])
    assert ray_rows.equals(local_rows)
