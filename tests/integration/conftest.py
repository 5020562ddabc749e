"""Integration tests run against one local Ray, started once per test session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray

from tests.support.ray_head import free_port
from tradegraph.actors.session import LiveSession
from tradegraph.config.models import GraphConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray whose workers import this checkout's ``tradegraph``.

    Workers inherit the driver's environment when Ray starts, so ``PYTHONPATH`` set here puts
    this checkout ahead of any installed copy in every actor.
    """
    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    started = not ray.is_initialized()
    if started:
        context = ray.init(
            num_cpus=2,
            # The dashboard hosts the job server the job-submission test talks to; on a port
            # of its own, so another Ray on the machine (8265 by default) is never in the way.
            include_dashboard=True,
            dashboard_port=free_port(),
            log_to_driver=False,
            namespace="tradegraph-tests",
            # Metrics reach the node's exporter within a second (default 10 s), so tests can
            # scrape what actors recorded without waiting long.
            _system_config={"metrics_report_interval_ms": 1_000},
        )
        os.environ["TRADEGRAPH_TEST_DASHBOARD"] = f"http://{context.dashboard_url}"
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@pytest.fixture
def started() -> Iterator[Callable[[GraphConfig], LiveSession]]:
    """Start live sessions of a test; whatever is left of them is removed afterwards."""
    sessions: list[LiveSession] = []

    def start(config: GraphConfig) -> LiveSession:
        session = LiveSession(config)
        sessions.append(session)
        session.start()
        return session

    yield start
    for session in sessions:
        session.kill()
