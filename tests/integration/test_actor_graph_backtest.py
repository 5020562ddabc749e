"""The actor graph under a simulated clock gives exactly what the in-process kernel gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray

from tests.support.graphs import graph_config
from tradegraph.actors import RayGraph, run_backtest_ray
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, StrategyConfig
from tradegraph.config.models import DEFAULT_NAMESPACE, FillAt
from tradegraph.engine.backtest import BacktestResult, run_backtest

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
BARS = 3_000


def _sma_fast_config(*, latency_ms: float = 0.0, fill_at: FillAt = FillAt.NEXT_OPEN) -> GraphConfig:
    """SMA(10)/SMA(30) on the first 3,000 real BTC/USDT minutes: about a hundred fills."""
    strategy = StrategyConfig(
        id="sma_fast",
        class_path="sma_cross",
        instruments=("BTCUSDT.BINANCE",),
        params={"fast_period": 10, "slow_period": 30, "quantity": 0.01},
    )
    config = graph_config((strategy,), latency_ms=latency_ms, fill_at=fill_at)
    data = DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=BARS),))
    return config.model_copy(update={"data": data})


def _assert_same_run(actors: BacktestResult, local: BacktestResult) -> None:
    assert actors.bars == local.bars == BARS
    assert actors.fills_digest == local.fills_digest
    assert actors.fills == local.fills
    assert actors.final_equity == local.final_equity
    assert actors.fees == local.fees
    assert actors.ledger.counts == local.ledger.counts
    assert actors.ledger.to_table().equals(local.ledger.to_table())
    assert actors.equity.tolist() == local.equity.tolist()
    assert actors.ts_ns.tolist() == local.ts_ns.tolist()


def test_ray_engine_reproduces_local_engine_on_real_bars() -> None:
    config = _sma_fast_config()
    local = run_backtest(config)

    actors = run_backtest_ray(config)

    assert len(local.fills) > 50
    _assert_same_run(actors, local)


def test_ray_engine_reproduces_local_engine_with_venue_latency_timers() -> None:
    # 90 s of latency: every order reaches the venue through a timer, after the next bar.
    config = _sma_fast_config(latency_ms=90_000.0, fill_at=FillAt.CLOSE)
    local = run_backtest(config)
    without_latency = run_backtest(_sma_fast_config(fill_at=FillAt.CLOSE))

    actors = run_backtest_ray(config)

    assert local.fills_digest != without_latency.fills_digest
    assert len(local.fills) > 50
    _assert_same_run(actors, local)


def test_actors_are_named_in_the_tradegraph_namespace_and_run_this_checkout() -> None:
    config = _sma_fast_config()

    with RayGraph(config) as graph:
        graph.build()
        found = {
            name: _describe(ray.get_actor(name, namespace=DEFAULT_NAMESPACE))
            for name in ("risk", "portfolio", "broker:BINANCE", "strategy:sma_fast")
        }

    assert {name: d["component_id"] for name, d in found.items()} == {
        "risk": "risk",
        "portfolio": "portfolio",
        "broker:BINANCE": "broker:BINANCE",
        "strategy:sma_fast": "strategy:sma_fast",
    }
    assert {d["tradegraph_path"] for d in found.values()} == {str(REPO_ROOT / "tradegraph")}
    assert len({d["pid"] for d in found.values()}) == 4


def _describe(actor: Any) -> dict[str, Any]:
    described: dict[str, Any] = ray.get(actor.describe.remote())
    return described
