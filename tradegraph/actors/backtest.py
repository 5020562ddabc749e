"""A backtest through the actor graph: the same results as ``sim.backtest.run_backtest``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

from tradegraph.actors.coordinator import SimCoordinator
from tradegraph.actors.graph import NAMESPACE, RayGraph
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import PORTFOLIO
from tradegraph.sim.backtest import (
    BacktestResult,
    assemble_result,
    load_bar_stream,
    load_trade_stream,
    portfolio_outcome,
)
from tradegraph.sim.feed import BarStream, TradeStream


@contextmanager
def ray_session(address: str | None = None, **init_options: Any) -> Iterator[None]:
    """Use the Ray already initialised in this process, or connect/start one for the block.

    With ``address`` it connects to that cluster (``"auto"`` finds a local one); without it, it
    starts a local Ray. Only a Ray it started (or connected) itself is shut down afterwards.
    """
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    options.update(init_options)
    ray.init(address=address, namespace=NAMESPACE, **options)
    try:
        yield
    finally:
        ray.shutdown()


def run_backtest_ray(
    config: GraphConfig,
    stream: BarStream | None = None,
    trades: TradeStream | None = None,
    *,
    max_restarts: int = 0,
) -> BacktestResult:
    """Run ``config`` over its data with every component in its own named actor.

    Ray must be initialised (see :func:`ray_session`). ``elapsed_s`` covers the run itself
    (start, replay, stop), not building the actors, as for the in-process engine.
    """
    if stream is None and trades is None:
        stream = load_bar_stream(config)
        trades = load_trade_stream(config)
    stream = stream or BarStream.empty()
    with RayGraph(config, max_restarts=max_restarts) as graph:
        coordinator = SimCoordinator(config, graph.build(), stream, trades=trades)
        started = time.perf_counter()
        coordinator.run()
        elapsed = time.perf_counter() - started
        outcome = ray.get(graph.hosts[PORTFOLIO].inspect.remote(portfolio_outcome))
    return assemble_result(
        config,
        outcome,
        stream=stream,
        trades=coordinator.trades,
        bars=coordinator.bars_processed,
        trade_ticks=coordinator.trades_processed,
        ledger=coordinator.ledger,
        control=coordinator.control,
        elapsed_s=elapsed,
    )
