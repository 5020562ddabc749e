"""A causal data-clock session (the actors paper and live trading run) gives exactly what the
in-process kernel gives: fills, order ledger and equity, case by case."""

from __future__ import annotations

import pytest

from tests.support.graphs import graph_config
from tradegraph.actors.causal import run_causal_session
from tradegraph.batch.overlays import StressScenario, apply_stress
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, RiskConfig, StrategyConfig
from tradegraph.config.models import FillAt, TradeSourceConfig
from tradegraph.engine.backtest import BacktestResult, load_datasets, run_backtest
from tradegraph.engine.streams import prepare_bar_stream

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

BTC = "BTCUSDT.BINANCE"


def _on_bars(config: GraphConfig, bars: int) -> GraphConfig:
    data = DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=bars),))
    return config.model_copy(update={"data": data})


def _sma_fast_config(
    *, bars: int = 400, latency_ms: float = 0.0, fill_at: FillAt = FillAt.NEXT_OPEN
) -> GraphConfig:
    """SMA(10)/SMA(30) on the first real BTC/USDT minutes: ten fills in 400 bars (a few hundred
    bars per case keep the suite quick; each case still trades and uses its feature)."""
    strategy = StrategyConfig(
        id="sma_fast",
        class_path="sma_cross",
        instruments=(BTC,),
        params={"fast_period": 10, "slow_period": 30, "quantity": 0.01},
    )
    config = graph_config((strategy,), latency_ms=latency_ms, fill_at=fill_at)
    return _on_bars(config, bars)


def _assert_same_run(actors: BacktestResult, local: BacktestResult) -> None:
    assert (actors.bars, actors.trades) == (local.bars, local.trades)
    assert actors.fills_digest == local.fills_digest
    assert actors.fills == local.fills
    assert actors.final_equity == local.final_equity
    assert actors.fees == local.fees
    assert actors.ledger.counts == local.ledger.counts
    assert actors.ledger.to_table().equals(local.ledger.to_table())
    assert actors.equity.tolist() == local.equity.tolist()
    assert actors.ts_ns.tolist() == local.ts_ns.tolist()
    assert actors.execution_reports == local.execution_reports
    assert actors.kill_switch_events == local.kill_switch_events


def test_causal_session_reproduces_the_kernel_on_real_bars() -> None:
    config = _sma_fast_config()
    local = run_backtest(config)

    actors = run_causal_session(config)

    assert len(local.fills) >= 10
    _assert_same_run(actors, local)


def test_causal_session_reproduces_the_kernel_with_venue_latency_timers() -> None:
    # 90 s of latency: every order reaches the venue through a timer, after the next bar.
    config = _sma_fast_config(latency_ms=90_000.0, fill_at=FillAt.CLOSE)
    local = run_backtest(config)
    without_latency = run_backtest(_sma_fast_config(fill_at=FillAt.CLOSE))

    actors = run_causal_session(config)

    assert local.fills_digest != without_latency.fills_digest
    assert len(local.fills) >= 10
    _assert_same_run(actors, local)


def test_causal_session_reproduces_the_kernel_with_a_twap_parent_order() -> None:
    # Twelve children, one every five minutes, each sent by the algorithm's own timer.
    twap = StrategyConfig(
        id="twap",
        class_path="tests.support.graphs:AlgoOrderStrategy",
        instruments=(BTC,),
        params={
            "submit_on_bar": 100,
            "quantity": 0.5,
            "algo": "twap",
            "algo_params": {"duration_s": 3_600, "slices": 12},
        },
    )
    sma = StrategyConfig(
        id="sma",
        class_path="sma_cross",
        instruments=(BTC,),
        params={"fast_period": 10, "slow_period": 30, "quantity": 0.01},
    )
    config = _on_bars(graph_config((sma, twap)), 400)
    local = run_backtest(config)

    actors = run_causal_session(config)

    assert sum(1 for f in local.fills if f.strategy_id == "twap") == 12
    assert local.execution_reports
    _assert_same_run(actors, local)


def test_causal_session_reproduces_the_kernel_on_trade_ticks() -> None:
    bidder = StrategyConfig(
        id="bidder",
        class_path="tests.support.graphs:TradeBidder",
        instruments=(BTC,),
        params={"buy_on_trades": [5, 40, 200], "bid_on_trades": [60], "discount_pct": 0.01},
    )
    trades = TradeSourceConfig(path="sample:BTCUSDT_trades", symbol="BTCUSDT", limit=400)
    config = graph_config((bidder,), fill_at=FillAt.CLOSE)
    config = config.model_copy(update={"data": DataConfig(trades=(trades,))})
    local = run_backtest(config)

    actors = run_causal_session(config)

    assert (local.bars, local.trades) == (0, 400)
    assert len(local.fills) >= 3
    _assert_same_run(actors, local)


def test_causal_session_reproduces_the_kernel_in_venue_outage_and_latency_windows() -> None:
    stress = StressScenario.model_validate(
        {
            "name": "windows",
            "overlays": [
                {"kind": "latency_spike", "extra_latency_ms": 600_000, "start": 0.2},
                {"kind": "exchange_outage", "at": 0.5, "duration_min": 120},
                {"kind": "fee_shock", "factor": 4, "start": 0.7},
            ],
        }
    )
    base = _sma_fast_config(fill_at=FillAt.CLOSE)
    config, datasets = apply_stress([stress], base, load_datasets(base))
    stream = prepare_bar_stream(datasets, config.instrument_map())
    local = run_backtest(config, stream)
    unstressed = run_backtest(base)

    actors = run_causal_session(config, stream)

    assert local.fills_digest != unstressed.fills_digest
    assert len(local.fills) >= 5
    assert any(row["source"] == "venue" for row in local.summary()["rejection_reasons"])
    _assert_same_run(actors, local)


@pytest.mark.parametrize(
    ("variant", "bars"),
    [
        ({"entry_expire_s": 300.0, "entry_pullback_pct": 0.02}, 1_500),
        ({"trailing": True}, 800),
    ],
    ids=["brackets-with-gtd-entries", "trailing-stops"],
)
def test_causal_session_reproduces_the_kernel_with_emulated_orders(
    variant: dict[str, object], bars: int
) -> None:
    # Brackets with GTD limit entries (Risk's expiry timers), or trailing stops: every held
    # order triggers in Risk's actor exactly where it triggers in the kernel.
    params = {"lookback": 20, "quantity": 0.01, "take_profit_pct": 0.2, "stop_pct": 0.15}
    strategy = StrategyConfig(
        id="breakout", class_path="bracket_breakout", instruments=(BTC,), params=params | variant
    )
    config = _on_bars(graph_config((strategy,)), bars)
    local = run_backtest(config)

    actors = run_causal_session(config)

    reasons = [row.reason for row in local.ledger.rows.values()]
    if "trailing" in variant:
        assert sum(f.side.value == "sell" for f in local.fills) >= 5
    else:
        assert sum(r == "expired: good till date" for r in reasons) >= 3
        assert sum(r.startswith("oco: ") for r in reasons) >= 3
    _assert_same_run(actors, local)


def _sma(strategy_id: str, quantity: float) -> StrategyConfig:
    return StrategyConfig(
        id=strategy_id,
        class_path="sma_cross",
        instruments=(BTC,),
        params={"fast_period": 10, "slow_period": 30, "quantity": quantity},
    )


def _same_bar_orders(local: BacktestResult) -> int:
    """Bars on which more than one strategy sent an order."""
    senders: dict[int, set[str]] = {}
    for row in local.ledger.rows.values():
        senders.setdefault(row.ts_submit_ns, set()).add(row.strategy_id)
    return sum(len(s) > 1 for s in senders.values())


@pytest.mark.parametrize(
    "quantities", [(0.05, 0.07), (0.05, 0.07, 0.03)], ids=["two-strategies", "three-strategies"]
)
def test_causal_session_reproduces_the_kernel_with_strategies_acting_on_the_same_bars(
    quantities: tuple[float, ...],
) -> None:
    # Every strategy crosses on the same bars: Risk, the venue, the portfolio and each strategy
    # take what one bar caused from several senders, in the kernel's order.
    strategies = tuple(_sma(f"sma_{i}", q) for i, q in enumerate(quantities))
    config = _on_bars(graph_config(strategies), 1_500)
    local = run_backtest(config)

    actors = run_causal_session(config)

    assert len(local.fills) >= 30 * len(quantities)
    assert _same_bar_orders(local) >= 30
    _assert_same_run(actors, local)


def test_causal_session_reproduces_the_kernel_when_a_limit_refuses_the_second_order() -> None:
    # Both strategies buy on the same bar; the position limit lets the first through and refuses
    # the second, so which reaches Risk first decides who trades.
    risk = RiskConfig(price_band_pct=None, max_position_quantity={BTC: 0.1})
    config = _on_bars(graph_config((_sma("first", 0.05), _sma("second", 0.07)), risk=risk), 1_500)
    local = run_backtest(config)

    actors = run_causal_session(config)

    traded = {f.strategy_id for f in local.fills}
    refused = {
        row.strategy_id for row in local.ledger.rows.values() if row.status == "risk_rejected"
    }
    assert traded >= {"first"}
    assert "second" in refused
    assert local.risk_rejections >= 10
    _assert_same_run(actors, local)
