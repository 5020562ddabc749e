"""A backtest through the actor graph: the same results as ``sim.backtest.run_backtest``."""

from __future__ import annotations

import time

import ray

from tradegraph.actors.coordinator import SimCoordinator
from tradegraph.actors.graph import RayGraph
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
