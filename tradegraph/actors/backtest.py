"""A backtest through the actor graph: the same results as ``sim.backtest.run_backtest``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

from tradegraph.actors.coordinator import SimCoordinator
from tradegraph.actors.graph import NAMESPACE, ActorGraphError, RayGraph
from tradegraph.actors.runtime_env import (
    check_reachable,
    local_pythonpath,
    ray_logging_options,
    ray_runtime_env,
    with_strategy_modules,
)
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import PORTFOLIO
from tradegraph.engine.backtest import (
    BacktestResult,
    assemble_result,
    load_bar_stream,
    load_trade_stream,
    portfolio_outcome,
)
from tradegraph.engine.streams import BarStream, TradeStream


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    session_id: str = "tradegraph",
    log_level: str = "INFO",
    namespace: str = NAMESPACE,
    **init_options: Any,
) -> Iterator[None]:
    """Use the Ray already initialised in this process, or connect/start one for the block.

    With ``address`` it connects to that cluster (``"auto"`` finds a local one); without it, it
    starts a local Ray whose workers import this tradegraph. Only a Ray it started (or
    connected) itself is shut down afterwards. Its workers log JSON lines bound to
    ``session_id`` (see :func:`ray_runtime_env`), unless ``runtime_env`` is among
    ``init_options``. ``namespace`` is the driver's Ray namespace (actors named without one
    are looked up there).
    """
    if ray.is_initialized():
        yield
        return
    local_env = {"PYTHONPATH": local_pythonpath()} if address is None else None
    runtime_env = ray_runtime_env(session_id, log_level=log_level, env_vars=local_env)
    if address is not None or os.environ.get("RAY_ADDRESS"):
        runtime_env = with_strategy_modules(runtime_env)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": runtime_env,
        **ray_logging_options(),
    }
    options.update(init_options)
    try:
        check_reachable(address)
        ray.init(address=address, namespace=namespace, **options)
    except ConnectionError as exc:
        raise ActorGraphError(
            f"cannot reach a Ray cluster at {address!r}: {exc} "
            f"(start one with `ray start --head`, or leave out --address to start a local Ray)"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


class ActorBacktest:
    """A backtest through the actor graph; after :meth:`run`, how the run was stepped.

    Attributes:
        build_s: Seconds spent creating the actors and building their components.
        waves: Steps the coordinator took (each one remote call per actor involved).
        remote_calls: Actor calls made to deliver messages.
    """

    def __init__(
        self,
        config: GraphConfig,
        stream: BarStream | None = None,
        trades: TradeStream | None = None,
        *,
        max_restarts: int = 0,
    ) -> None:
        if stream is None and trades is None:
            stream = load_bar_stream(config)
            trades = load_trade_stream(config)
        self.config = config
        self.stream = stream or BarStream.empty()
        self.trades = trades
        self.max_restarts = max_restarts
        self.build_s = 0.0
        self.waves = 0
        self.remote_calls = 0

    def run(self) -> BacktestResult:
        """Build the actors, run the whole stream, read the portfolio, remove the actors.

        Ray must be initialised (see :func:`ray_session`). ``elapsed_s`` of the result covers
        the run itself (start, replay, stop), not building the actors, as for the in-process
        engine.
        """
        config = self.config
        with RayGraph(config, max_restarts=self.max_restarts) as graph:
            started = time.perf_counter()
            hosts = graph.build()
            self.build_s = time.perf_counter() - started
            coordinator = SimCoordinator(config, hosts, self.stream, trades=self.trades)
            started = time.perf_counter()
            coordinator.run()
            elapsed = time.perf_counter() - started
            outcome = ray.get(hosts[PORTFOLIO].inspect.remote(portfolio_outcome))
        self.waves = coordinator.waves
        self.remote_calls = coordinator.remote_calls
        return assemble_result(
            config,
            outcome,
            stream=self.stream,
            trades=coordinator.trades,
            bars=coordinator.bars_processed,
            trade_ticks=coordinator.trades_processed,
            ledger=coordinator.ledger,
            control=coordinator.control,
            elapsed_s=elapsed,
        )


def run_backtest_ray(
    config: GraphConfig,
    stream: BarStream | None = None,
    trades: TradeStream | None = None,
    *,
    max_restarts: int = 0,
) -> BacktestResult:
    """Run ``config`` over its data with every component in its own named actor.

    Same arguments and result as ``sim.backtest.run_backtest``; Ray must be initialised (see
    :func:`ray_session`).
    """
    return ActorBacktest(config, stream, trades, max_restarts=max_restarts).run()
