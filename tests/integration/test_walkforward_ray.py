"""A walk-forward whose train sweeps run on Ray gives the in-process folds and digest."""

from __future__ import annotations

from typing import Any

import pytest

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.walkforward import WalkForward, WalkForwardResult

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

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
def test_walkforward_on_ray_matches_in_process_for_any_worker_count(
    in_process: WalkForwardResult, workers: int
) -> None:
    on_ray = walkforward(workers=workers, runner=RayChunkRunner())

    assert on_ray.summary["folds"] == in_process.summary["folds"] == 2
    assert on_ray.folds.equals(in_process.folds)
    assert on_ray.summary["results_digest"] == in_process.summary["results_digest"]
    assert on_ray.summary["deflated_sharpe"] == in_process.summary["deflated_sharpe"]
