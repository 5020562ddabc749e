"""A batch on a two-node Ray cluster started on this machine gives the one-node digest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray
from ray.cluster_utils import Cluster

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.config import load_config

pytestmark = pytest.mark.ray

FAST = ["strategies.sma.params.fast_period=5", "strategies.sma.params.slow_period=20"]


@pytest.fixture
def two_nodes() -> Iterator[Cluster]:
    # This test needs its own cluster: leave any session connection first.
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()  # type: ignore[no-untyped-call]


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

    nodes = [n for n in ray.nodes() if n["Alive"]]  # type: ignore[no-untyped-call]
    assert len(nodes) == 2
    assert result.summary["scenarios_failed"] == 0
    assert result.results_digest == expected.results_digest
