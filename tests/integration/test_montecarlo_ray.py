"""Monte Carlo batches on Ray give the same results as in one process, for any worker count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

FAST = ["strategies.sma.params.fast_period=5", "strategies.sma.params.slow_period=20"]


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(None, FAST)


@pytest.fixture(scope="module")
def in_process_digest(config: GraphConfig) -> str:
    batch = MonteCarlo(config, paths=8, bars_per_path=300, root_seed=5, in_process=True)
    return batch.run_batch().results_digest


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_batch_matches_in_process_for_any_worker_count(
    config: GraphConfig, in_process_digest: str, workers: int
) -> None:
    batch = MonteCarlo(
        config, paths=8, bars_per_path=300, root_seed=5, workers=workers, runner=RayChunkRunner()
    )

    result = batch.run_batch()

    assert result.summary["scenarios_failed"] == 0
    assert result.table.num_rows == 8
    assert result.results_digest == in_process_digest


def test_ray_batch_resumes_from_its_folder(
    config: GraphConfig, in_process_digest: str, tmp_path: Path
) -> None:
    MonteCarlo(
        config,
        paths=3,
        bars_per_path=300,
        root_seed=5,
        workers=2,
        out_dir=tmp_path,
        runner=RayChunkRunner(),
    ).run_batch()

    resumed = MonteCarlo(
        config,
        paths=8,
        bars_per_path=300,
        root_seed=5,
        workers=2,
        out_dir=tmp_path,
        chunk_size=2,
        runner=RayChunkRunner(),
    ).run_batch()

    assert resumed.summary["scenarios_run"] == 5
    assert resumed.results_digest == in_process_digest


@pytest.mark.parametrize("workers", [1, 2])
def test_liquidations_of_a_wick_batch_on_ray_match_in_process(workers: int) -> None:
    from tests.unit.batch.test_perp_stress import EXAMPLE, PERP_FAST, WICKS

    perp = load_config(EXAMPLE, PERP_FAST)
    options = {
        "paths": 4,
        "model": "gbm",
        "bars_per_path": 300,
        "root_seed": 11,
        "stress": ["wicks"],
        "stress_catalog": {"wicks": WICKS},
        "html": False,
    }
    local = MonteCarlo(perp, in_process=True, **options).run_batch()  # type: ignore[arg-type]
    on_ray = MonteCarlo(
        perp,
        workers=workers,
        runner=RayChunkRunner(),
        **options,  # type: ignore[arg-type]
    ).run_batch()

    assert local.summary["prob_liquidation"] > 0.0
    assert on_ray.summary["prob_liquidation"] == local.summary["prob_liquidation"]
    assert on_ray.results_digest == local.results_digest
