"""One replay feeding several graphs: each graph's result is bit for bit its result alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.graphs import graph_config
from tradegraph.config import DataConfig, GraphConfig, StrategyConfig, load_config
from tradegraph.config.models import BarSourceConfig, FillAt, TradeSourceConfig
from tradegraph.contracts import Bar, Message
from tradegraph.engine.backtest import (
    BacktestResult,
    load_bar_stream,
    load_trade_stream,
    run_backtest,
)
from tradegraph.engine.shared import SharedReplay, run_shared_backtests
from tradegraph.errors import ConfigError
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.registry import register_strategy

EXAMPLES = Path(__file__).parents[3] / "tradegraph" / "examples"
FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"


class BreakParams(StrategyParams):
    break_on_bar: int = -1


@register_strategy("test_break_graph")
class BreakGraphStrategy(Strategy):
    """Buys on its third bar, then raises past the strategy's safety net on a chosen bar
    (as a broken component would), so the exception leaves the graph."""

    Params = BreakParams
    params: BreakParams

    def on_start(self) -> None:
        self.bars = 0

    def handle(self, msg: Message) -> None:
        if isinstance(msg, Bar):
            self.bars += 1
            if self.bars == self.params.break_on_bar:
                raise RuntimeError(f"graph broken on bar {self.bars}")
        super().handle(msg)

    def on_bar(self, bar: Bar) -> None:
        if self.bars == 3:
            self.buy(bar.instrument_id, 0.001)


def assert_identical(shared: BacktestResult, alone: BacktestResult) -> None:
    """Fills, ledger, equity curve and every metric of the two runs are the same bits."""
    assert shared.fills_digest == alone.fills_digest
    assert [f.model_dump() for f in shared.fills] == [f.model_dump() for f in alone.fills]
    assert shared.ledger.rows == alone.ledger.rows
    assert shared.ts_ns.tobytes() == alone.ts_ns.tobytes()
    assert shared.equity.tobytes() == alone.equity.tobytes()
    assert shared.metrics.model_dump() == alone.metrics.model_dump()
    timing = {"elapsed_s", "bars_per_s"}
    a = {k: v for k, v in shared.summary().items() if k not in timing}
    b = {k: v for k, v in alone.summary().items() if k not in timing}
    assert a == b


def check_shared_equals_alone(configs: list[GraphConfig]) -> list[BacktestResult]:
    stream, trades = load_bar_stream(configs[0]), load_trade_stream(configs[0])
    shared = run_shared_backtests(configs, stream, trades)
    results = []
    for config, outcome in zip(configs, shared, strict=True):
        assert isinstance(outcome, BacktestResult), outcome
        assert_identical(outcome, run_backtest(config, stream, trades))
        results.append(outcome)
    return results


def test_sma_trials_on_sample_bars_match_their_backtests_alone() -> None:
    configs = [
        load_config(None, ["data.bars.0.limit=6000", f"{FAST}={fast}", f"{SLOW}={slow}", *extra])
        for fast, slow, extra in (
            (10, 40, []),
            (20, 120, ["venues.0.latency_ms=250"]),
            (5, 30, ["venues.0.fill_at=close", "risk.max_position_notional=500"]),
            (30, 240, ["venues.0.latency_ms=1500", "portfolio.starting_cash=20000"]),
        )
    ]

    results = check_shared_equals_alone(configs)

    assert all(r.bars == 6000 for r in results)
    assert [len(r.fills) > 0 for r in results] == [True, True, False, True]
    assert results[2].risk_rejections > 0  # its risk limit refuses every order
    assert len({r.fills_digest for r in results}) == 4


def test_multi_instrument_graphs_with_three_strategies_match_alone() -> None:
    path = EXAMPLES / "multi_strategy.yaml"
    configs = [
        load_config(path, ["data.bars.0.limit=3000", "data.bars.1.limit=3000", *extra])
        for extra in (
            [],
            ["strategies.sma_btc.params.fast_period=20"],
            ["venues.0.latency_ms=400", "risk.max_orders_per_s=1"],
        )
    ]

    results = check_shared_equals_alone(configs)

    assert all(r.bars == 6000 for r in results)
    assert sum(len(r.fills) for r in results) > 0


def test_timers_and_latency_run_in_each_graphs_own_schedule() -> None:
    configs = [
        graph_config(
            (
                StrategyConfig(
                    id="s",
                    class_path="test_script",
                    instruments=("BTCUSDT.BINANCE",),
                    params={
                        "timer_offsets_s": offsets,
                        "buy_on_timers": True,
                        "sell_on_bar": 200,
                        "quantity": 0.01,
                    },
                ),
            ),
            latency_ms=latency,
        ).model_copy(
            update={
                "data": DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=400),))
            }
        )
        for offsets, latency in (
            ((90.0, 30.0), 0.0),
            ((45.0,), 750.0),
            ((10.0, 20.0, 125.0), 60_000.0),
        )
    ]

    results = check_shared_equals_alone(configs)

    assert [len(r.fills) for r in results] == [3, 2, 4]


def test_bars_and_trade_ticks_interleaved_match_alone() -> None:
    def config(buy_on_trade: int, fill_at: FillAt) -> GraphConfig:
        base = graph_config(
            (
                StrategyConfig(
                    id="s",
                    class_path="test_script",
                    instruments=("BTCUSDT.BINANCE",),
                    params={"buy_on_trade": buy_on_trade, "buy_on_bar": 3, "quantity": 0.001},
                ),
            ),
            fill_at=fill_at,
        )
        data = DataConfig(
            bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=50),),
            trades=(TradeSourceConfig(path="sample:BTCUSDT_trades", symbol="BTCUSDT", limit=500),),
        )
        return base.model_copy(update={"data": data})

    configs = [config(5, FillAt.CLOSE), config(40, FillAt.NEXT_OPEN), config(-1, FillAt.CLOSE)]

    results = check_shared_equals_alone(configs)

    assert [(r.bars, r.trades) for r in results] == [(50, 500)] * 3
    assert [r.intents for r in results] == [2, 2, 1]
    assert all(r.fills for r in results)


def test_a_warm_up_before_trade_start_matches_alone_and_an_order_in_it_fails_one_graph() -> None:
    configs = [
        load_config(
            None,
            [
                "data.bars.0.limit=3000",
                "data.trade_start='2025-07-01T01:40:00Z'",
                f"{FAST}={fast}",
                f"{SLOW}={slow}",
            ],
        )
        for fast, slow in ((10, 120), (5, 20), (30, 120))
    ]
    stream = load_bar_stream(configs[0])

    shared = run_shared_backtests(configs, stream)

    assert isinstance(shared[1], ConfigError)
    with pytest.raises(ConfigError) as alone:
        run_backtest(configs[1], stream)
    assert str(shared[1]) == str(alone.value)
    assert "during its warm-up" in str(alone.value)
    for i in (0, 2):
        outcome = shared[i]
        assert isinstance(outcome, BacktestResult)
        assert outcome.bars == 3000 - 100
        assert_identical(outcome, run_backtest(configs[i], stream))


def _break_config(break_on_bar: int, starting_cash: float = 1_000_000.0) -> GraphConfig:
    return graph_config(
        (
            StrategyConfig(
                id="s",
                class_path="test_break_graph",
                instruments=("BTCUSDT.BINANCE",),
                params={"break_on_bar": break_on_bar},
            ),
        ),
        starting_cash=starting_cash,
    ).model_copy(
        update={"data": DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=300),))}
    )


def test_a_graph_that_raises_is_dropped_and_the_others_match_alone() -> None:
    configs = [_break_config(-1), _break_config(120), _break_config(-1, 50_000.0)]
    stream = load_bar_stream(configs[0])

    shared = run_shared_backtests(configs, stream)

    assert isinstance(shared[1], RuntimeError)
    assert str(shared[1]) == "graph broken on bar 120"
    with pytest.raises(RuntimeError, match="graph broken on bar 120"):
        run_backtest(configs[1], stream)
    for i in (0, 2):
        outcome = shared[i]
        assert isinstance(outcome, BacktestResult)
        assert outcome.bars == 300
        assert len(outcome.fills) == 1
        assert_identical(outcome, run_backtest(configs[i], stream))


def test_a_graph_that_cannot_be_built_fails_alone() -> None:
    bad = _break_config(-1).model_copy(
        update={
            "strategies": (
                StrategyConfig(
                    id="s",
                    class_path="test_break_graph",
                    instruments=("BTCUSDT.BINANCE",),
                    params={"break_on_bar": "soon"},
                ),
            )
        }
    )
    configs = [_break_config(-1), bad]
    stream = load_bar_stream(configs[0])

    replay = SharedReplay(configs, stream)
    replay.run()

    assert replay.kernels[1] is None
    assert isinstance(replay.errors[1], ConfigError)
    assert 0 not in replay.errors
    kernel = replay.kernels[0]
    assert kernel is not None
    assert kernel.bars_processed == 300


def test_configs_with_different_data_are_refused() -> None:
    a = _break_config(-1)
    b = a.model_copy(
        update={"data": DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),))}
    )

    with pytest.raises(ValueError, match="same data and instruments"):
        run_shared_backtests([a, b], load_bar_stream(a))
