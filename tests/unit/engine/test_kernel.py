from __future__ import annotations

import numpy as np

from tests.support.graphs import MINUTE_NS, T0, ScriptedStrategy, graph_config, ramp_bars
from tradegraph.config import DataConfig, StrategyConfig
from tradegraph.config.models import FillAt, TradeSourceConfig
from tradegraph.contracts import RISK, KillSwitchChanged, StrategyError, TripKillSwitch
from tradegraph.data import read_trades
from tradegraph.data.catalog import TradeArrays
from tradegraph.engine.backtest import run_backtest
from tradegraph.engine.kernel import LocalKernel
from tradegraph.engine.streams import prepare_bar_stream, prepare_trade_stream
from tradegraph.risk import RiskEngine


def _kernel(params: dict[str, object], closes: list[float], **kw: object) -> LocalKernel:
    config = graph_config(
        (
            StrategyConfig(
                id="s", class_path="test_script", instruments=("BTCUSDT.BINANCE",), params=params
            ),
        ),
        **kw,  # type: ignore[arg-type]
    )
    stream = prepare_bar_stream([ramp_bars(closes)], config.instrument_map())
    return LocalKernel(config, stream, keep_journal=True)


def _strategy(kernel: LocalKernel) -> ScriptedStrategy:
    strategy = kernel.component("strategy:s")
    assert isinstance(strategy, ScriptedStrategy)
    return strategy


def test_timers_fire_in_time_order_between_bars_and_can_be_cancelled() -> None:
    kernel = _kernel(
        {"timer_offsets_s": [90.0, 30.0, 60.0, 45.0], "cancel_timer": "t3"},
        [100.0, 101.0, 102.0, 103.0],
    )
    kernel.run()
    seen = [(ts - T0, kind, detail) for ts, kind, detail in _strategy(kernel).seen]
    m = MINUTE_NS
    s = 1_000_000_000
    assert seen == [
        (1 * m, "Bar", "100.0"),
        (1 * m + 30 * s, "TimerFired", "t1"),
        (2 * m, "TimerFired", "t2"),  # a timer due at a bar's time runs before that bar
        (2 * m, "Bar", "101.0"),
        (2 * m + 30 * s, "TimerFired", "t0"),
        (3 * m, "Bar", "102.0"),
        (4 * m, "Bar", "103.0"),
    ]


def test_market_order_fills_at_next_open_and_fill_reaches_strategy_after_that_bar() -> None:
    kernel = _kernel({"buy_on_bar": 2}, [100.0, 101.0, 105.0, 107.0])
    kernel.run()
    kinds = [(ts - T0, kind, detail) for ts, kind, detail in _strategy(kernel).seen]
    m = MINUTE_NS
    assert kinds == [
        (1 * m, "Bar", "100.0"),
        (2 * m, "Bar", "101.0"),
        (3 * m, "Bar", "105.0"),
        (3 * m, "OrderFilled", "1.0@101.0"),  # the open of bar 3 is the close of bar 2
        (4 * m, "Bar", "107.0"),
    ]
    assert kernel.ledger.orders == 1
    assert kernel.ledger.status_counts() == {"filled": 1}


def test_fill_at_close_fills_at_the_signal_bar_close() -> None:
    kernel = _kernel({"buy_on_bar": 2}, [100.0, 101.0, 105.0], fill_at="close")
    kernel.run()
    fills = [(ts - T0, d) for ts, k, d in _strategy(kernel).seen if k == "OrderFilled"]
    assert fills == [(2 * MINUTE_NS, "1.0@101.0")]


def test_injected_kill_switch_refuses_later_orders_and_tells_strategies() -> None:
    kernel = _kernel({"buy_on_bar": 3}, [100.0, 101.0, 102.0, 103.0])
    kernel.start()
    kernel.replay(0, 1)
    kernel.inject(
        TripKillSwitch(reason="operator", ts_event_ns=kernel.now_ns, ts_init_ns=kernel.now_ns)
    )
    kernel.replay(1, 4)
    kernel.stop()
    risk = kernel.component(RISK)
    assert isinstance(risk, RiskEngine)
    assert risk.kill_switch_tripped
    seen = [(kind, detail) for _, kind, detail in _strategy(kernel).seen if kind != "Bar"]
    assert seen == [("KillSwitchChanged", "True"), ("RiskRejected", "kill_switch")]
    assert any(isinstance(m, KillSwitchChanged) for m in kernel.control)
    assert kernel.ledger.orders == 0


def test_strategy_error_reaches_control_and_run_goes_on() -> None:
    kernel = _kernel({"raise_on_bar": 2}, [100.0, 101.0, 102.0])
    kernel.run()
    errors = [m for m in kernel.control if isinstance(m, StrategyError)]
    assert [(e.strategy_id, e.error_type) for e in errors] == [("s", "RuntimeError")]
    assert "scripted failure" in errors[0].error
    assert kernel.bars_processed == 3
    assert _strategy(kernel).stopped


def test_latency_delays_acceptance_until_the_timer() -> None:
    kernel = _kernel({"buy_on_bar": 1}, [100.0, 101.0, 102.0], latency_ms=250.0, fill_at="close")
    kernel.run()
    fills = [ts - T0 for ts, k, _ in _strategy(kernel).seen if k == "OrderFilled"]
    assert fills == [MINUTE_NS + 250_000_000]


def test_trade_ticks_replay_in_time_order_and_market_order_fills_at_next_trade() -> None:
    base = graph_config(
        (
            StrategyConfig(
                id="s",
                class_path="test_script",
                instruments=("BTCUSDT.BINANCE",),
                params={"buy_on_trade": 5, "quantity": 0.001},
            ),
        ),
        fill_at=FillAt.CLOSE,
    )
    config = base.model_copy(
        update={
            "data": DataConfig(
                trades=(
                    TradeSourceConfig(path="sample:BTCUSDT_trades", symbol="BTCUSDT", limit=50),
                )
            )
        }
    )
    result = run_backtest(config)
    assert (result.bars, result.trades) == (0, 50)
    assert len(result.fills) == 1
    raw = read_trades("sample:BTCUSDT_trades", symbol="BTCUSDT", limit=50)
    # The order is sent on the 5th print, so it fills at the 6th print's price.
    assert result.fills[0].last_px == float(raw.price[5])
    assert result.fills[0].ts_event_ns == int(raw.ts_ns[5])


def test_bars_and_trades_interleave_by_time_with_the_bar_first_at_equal_times() -> None:
    kernel_config = graph_config(
        (StrategyConfig(id="s", class_path="test_script", instruments=("BTCUSDT.BINANCE",)),)
    )
    bars = prepare_bar_stream([ramp_bars([100.0, 101.0])], kernel_config.instrument_map())
    trades = prepare_trade_stream(
        [
            TradeArrays(
                symbol="BTCUSDT",
                venue="BINANCE",
                ts_ns=np.array([T0 + MINUTE_NS, T0 + MINUTE_NS + 5, T0 + 3 * MINUTE_NS], np.int64),
                price=np.array([100.5, float("nan"), 101.5]),
                size=np.array([1.0, 1.0, 1.0]),
                aggressor_buy=np.array([True, False, True]),
                trade_id=np.array([1, 2, 3], np.int64),
            )
        ],
        kernel_config.instrument_map(),
    )
    kernel = LocalKernel(kernel_config, bars, trades=trades)
    kernel.run()
    seen = [(ts - T0, kind, d) for ts, kind, d in _strategy(kernel).seen]
    assert seen == [
        (MINUTE_NS, "Bar", "100.0"),
        (MINUTE_NS, "TradeTick", "100.5"),
        (2 * MINUTE_NS, "Bar", "101.0"),
        (3 * MINUTE_NS, "TradeTick", "101.5"),
    ]
    assert trades.dropped == {"BTCUSDT.BINANCE": {"not_finite": 1}}
