"""Batches on a two-node Ray cluster started on this machine give the one-node digests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray
from ray.cluster_utils import Cluster

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.batch.sweep import Sweep
from tradegraph.config import load_config

pytestmark = pytest.mark.ray

FAST = ["strategies.sma.params.fast_period=5", "strategies.sma.params.slow_period=20"]
GRID = ["strategies.sma.params.fast_period=5,10,15", "strategies.sma.params.slow_period=20,40"]
SHORT_DATA = ["data.bars.0.limit=400"]


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    # These tests need their own cluster, started once for the module: leave any session
    # connection first.
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()  # type: ignore[no-untyped-call]


def alive_nodes() -> int:
    return len([n for n in ray.nodes() if n["Alive"]])  # type: ignore[no-untyped-call]


def test_two_node_cluster_gives_the_single_process_digest(two_nodes: Cluster) -> None:
    config = load_config(None, FAST)
    expected = MonteCarlo(
        config, paths=6, bars_per_path=300, root_seed=2, in_process=True
    ).run_batch()

    result = MonteCarlo(
        config,
        paths=6,
        bars_per_path=300,
        root_seed=2,
        workers=2,
        chunk_size=1,
        runner=RayChunkRunner(),
    ).run_batch()

    assert alive_nodes() == 2
    assert result.summary["scenarios_failed"] == 0
    assert result.results_digest == expected.results_digest
    assert 0.0 < result.summary["startup_s"] < result.summary["elapsed_s"]


def test_sweep_on_two_node_cluster_gives_the_single_process_digest(two_nodes: Cluster) -> None:
    expected = Sweep(None, GRID, overrides=SHORT_DATA, in_process=True, html=False).run()

    result = Sweep(
        None,
        GRID,
        overrides=SHORT_DATA,
        workers=2,
        chunk_size=1,
        html=False,
        runner=RayChunkRunner(),
    ).run()

    assert alive_nodes() == 2
    assert result.summary["trials"] == 6
    assert result.summary["trials_failed"] == 0
    assert result.summary["results_digest"] == expected.summary["results_digest"]
    assert result.summary["best"] == expected.summary["best"]
    assert 0.0 < result.summary["startup_s"] < result.summary["elapsed_s"]
    assert expected.summary["startup_s"] == 0.0
