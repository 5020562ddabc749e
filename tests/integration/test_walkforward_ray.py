"""A walk-forward whose train sweeps run on Ray gives the in-process folds and digest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.walkforward import WalkForward, WalkForwardResult

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]

GRID = ["strategies.sma.params.fast_period=5,10", "strategies.sma.params.slow_period=20,40"]


def walkforward(**where: Any) -> WalkForwardResult:
    return WalkForward(
        None,
        GRID,
        train="2d",
        test="1d",
        overrides=["data.bars.0.end='2025-07-05T00:00:00'"],
        html=False,
        **where,
    ).run()


@pytest.fixture(scope="module")
def in_process() -> WalkForwardResult:
    return walkforward(in_process=True)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.usefixtures("ray_session")
def test_walkforward_on_ray_matches_in_process_for_any_worker_count(
    in_process: WalkForwardResult, workers: int
) -> None:
    on_ray = walkforward(workers=workers, runner=RayChunkRunner())

    assert on_ray.summary["folds"] == in_process.summary["folds"] == 2
    assert on_ray.folds.equals(in_process.folds)
    assert on_ray.summary["results_digest"] == in_process.summary["results_digest"]
    assert on_ray.summary["deflated_sharpe"] == in_process.summary["deflated_sharpe"]


class RecordingRayRunner(RayChunkRunner):
    """The Ray runner, noting each pool it opens and each batch it is given."""

    def __init__(self) -> None:
        self.pools = 0
        self.runs: list[tuple[str, int, int]] = []

    def pool(self, address: str | None, workers: int | None) -> AbstractContextManager[int]:
        self.pools += 1
        return super().pool(address, workers)

    def run(self, task: Any, plan: Any, chunks: Sequence[list[int]], **kwargs: Any) -> None:
        self.runs.append((task.__name__, len(chunks), kwargs["concurrency"]))
        super().run(task, plan, chunks, **kwargs)


@pytest.mark.usefixtures("ray_session")
def test_all_folds_share_one_pool_and_out_of_sample_runs_as_ray_tasks(
    in_process: WalkForwardResult,
) -> None:
    runner = RecordingRayRunner()

    on_ray = walkforward(workers=2, runner=runner)

    assert on_ray.summary["results_digest"] == in_process.summary["results_digest"]
    assert on_ray.oos_equity.equals(in_process.oos_equity)
    assert runner.pools == 1
    assert runner.runs == [("run_fold_trials", 8, 2), ("run_oos_chunk", 2, 2)]
    assert on_ray.summary["startup_s"] > 0.0
    assert on_ray.summary["elapsed_s"] > on_ray.summary["startup_s"]
    assert in_process.summary["startup_s"] == 0.0


def test_the_command_on_ray_with_one_or_two_workers_gives_the_in_process_digest(
    tmp_path: Path,
) -> None:
    """``tradegraph walkforward --ray`` as a user runs it (its own local Ray each time)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    args = [
        *("--grid", "strategies.sma.params.fast_period=30,60"),
        *("--grid", "strategies.sma.params.slow_period=120,240"),
        *("--train", "10d", "--test", "5d", "--json", "--no-html"),
    ]
    summaries = {}
    for workers in ("1", "2"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tradegraph",
                "walkforward",
                *args,
                "--ray",
                "--workers",
                workers,
                "--out",
                str(tmp_path / workers),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "s of it starting Ray;" in proc.stdout.splitlines()[0]
        summaries[workers] = json.loads(proc.stdout.strip().splitlines()[-1])
    # The digest of tests/acceptance/test_walkforward_cli.py's in-process run.
    digest = "4ee2a748fa85f689b9ec9528296c19407dd474cb8af77c367c014712a0953ac7"
    for summary in summaries.values():
        assert summary["results_digest"] == digest
        assert 0.0 < summary["startup_s"] < summary["elapsed_s"]
    assert summaries["1"]["fold_rows"] == summaries["2"]["fold_rows"]
