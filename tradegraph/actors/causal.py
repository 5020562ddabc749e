"""The determinism proof of the actor transport: a config replayed as a causal data-clock session.

The session is the one paper and live trading run (one ``LiveHost`` actor per component,
pushed batches over sequenced links, causal fences); only its market data is a replay, one
event at a time, each after everything the previous one caused has gone through the graph,
under clocks that follow the data, with timers fired at their own time between events, and what
an event caused taken by every receiver in the kernel's breadth-first order however many
senders it has (``causal_order.py``). Its orders, fills and equity are then the in-process
kernel's, so the path that is proven is the path that trades.
"""

from __future__ import annotations

from pathlib import Path

from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.actors.session import LiveSession
from tradegraph.config.models import GraphConfig
from tradegraph.engine.backtest import BacktestResult, load_bar_stream, load_trade_stream
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import ConfigError


def causal_session_config(config: GraphConfig) -> GraphConfig:
    """``config`` as a causal replay of its data under data clocks, as fast as the graph takes
    it, without recovery state (a dead actor fails the run instead of being restarted)."""
    session = config.session.model_copy(
        update={
            "market_data": "replay",
            "clock": "data",
            "causal": True,
            "speed": 0.0,
            "state_dir": None,
            "max_restarts": 0,
        }
    )
    return config.model_copy(update={"session": session})


def run_causal_session(
    config: GraphConfig,
    stream: BarStream | None = None,
    trades: TradeStream | None = None,
    audit_dir: Path | None = None,
) -> BacktestResult:
    """Run ``config`` over its data (or over ``stream`` and ``trades``) as a causal data-clock
    session, every component in its own named actor in ``config.session.namespace`` (with
    ``audit_dir``, keeping the session's audit trail there).

    Same arguments and result as ``engine.backtest.run_backtest``; Ray must be initialised
    (see :func:`tradegraph.actors.ray_runtime.ray_session`). ``elapsed_s`` covers the replay,
    not creating the actors.

    Raises:
        ConfigError: the config sets ``data.trade_start`` (a warm-up this session cannot
            replay yet); checked before any actor starts.
        ActorGraphError: the actors could not be created, or the replay did not finish (an
            actor died or hung, and trading was halted).
    """
    if config.data.trade_start is not None:
        raise ConfigError("--engine ray does not support data.trade_start yet")
    if stream is None and trades is None:
        stream = load_bar_stream(config)
        trades = load_trade_stream(config)
    session = LiveSession(
        causal_session_config(config),
        session_id=config.name,
        replay=(stream, trades),
        audit_dir=audit_dir,
    )
    session.start()
    try:
        ended_by = session.run(until_replay_done=True)
        # Read before stopping: the stop trips Risk's kill switch, which the kernel never does.
        result = session.result_so_far() if ended_by == "replay_finished" else None
    finally:
        outcome = session.stop("replay_finished")
    if result is None:
        raise ActorGraphError(
            f"the causal replay of {config.name!r} did not finish: {outcome.halted or ended_by}"
        )
    return result
