"""The in-process kernel feeding graph metrics: what a run publishes is what gets counted."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.graphs import MINUTE_NS, T0, graph_config, ramp_bars
from tradegraph.config import RiskConfig, StrategyConfig
from tradegraph.config.models import FillAt
from tradegraph.data.catalog import TradeArrays
from tradegraph.engine import kernel as kernel_module
from tradegraph.engine.backtest import run_backtest
from tradegraph.engine.kernel import LocalKernel
from tradegraph.engine.streams import prepare_bar_stream, prepare_trade_stream
from tradegraph.observability.metrics import (
    EQUITY,
    FILLED_NOTIONAL,
    FILLS,
    MARKET_DATA_DROPPED,
    MARKET_EVENTS,
    ORDER_INTENTS,
    ORDERS_SUBMITTED,
    POSITION,
    REJECTIONS,
    GraphMetrics,
    InMemorySink,
)

BTC = "BTCUSDT.BINANCE"


def _script(strategy_id: str, **params: object) -> StrategyConfig:
    return StrategyConfig(
        id=strategy_id, class_path="test_script", instruments=(BTC,), params=params
    )


def test_backtest_metrics_match_the_result_and_name_the_refusing_limit() -> None:
    closes = [100.0 + i for i in range(30)]
    closes[10] = float("nan")  # the feed drops this bar and the next (whose open it is)
    config = graph_config(
        (_script("small", buy_on_bar=3, quantity=1.0), _script("big", buy_on_bar=5, quantity=50.0)),
        risk=RiskConfig(price_band_pct=None, max_order_notional=1_000.0),
        fill_at=FillAt.CLOSE,
    )
    stream = prepare_bar_stream([ramp_bars(closes)], config.instrument_map())
    sink = InMemorySink()

    result = run_backtest(config, stream, metrics=GraphMetrics(sink))

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == result.bars == 28
    assert sink.value(MARKET_DATA_DROPPED, reason="not_finite", instrument=BTC) == 2.0
    assert sink.total(ORDER_INTENTS) == result.intents == 2
    assert sink.value(ORDERS_SUBMITTED, strategy="small", instrument=BTC) == 1.0
    assert sink.total(FILLS) == len(result.fills) == 1
    assert sink.value(FILLED_NOTIONAL, instrument=BTC) == pytest.approx(result.fills[0].notional)
    assert (
        sink.value(REJECTIONS, source="risk", reason="max_order_notional", strategy="big")
        == result.risk_rejections
        == 1
    )
    assert sink.value(POSITION, instrument=BTC) == 1.0
    assert sink.value(EQUITY) > 0.0


def test_market_events_are_counted_per_chunk_so_a_partial_replay_is_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel_module, "REPLAY_CHUNK", 4)
    config = graph_config((_script("s"),))
    stream = prepare_bar_stream([ramp_bars([100.0] * 10)], config.instrument_map())
    sink = InMemorySink()
    kernel = LocalKernel(config, stream, metrics=GraphMetrics(sink))

    kernel.start()
    kernel.replay(0, 6)
    after_six = sink.value(MARKET_EVENTS, instrument=BTC, kind="bar")
    kernel.replay(6, 10)
    kernel.stop()

    assert after_six == 6.0
    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 10.0


def test_bars_and_trades_are_counted_by_kind() -> None:
    config = graph_config((_script("s"),))
    bars = prepare_bar_stream([ramp_bars([100.0, 101.0, 102.0])], config.instrument_map())
    trades = prepare_trade_stream(
        [
            TradeArrays(
                symbol="BTCUSDT",
                venue="BINANCE",
                ts_ns=T0 + MINUTE_NS * np.arange(1, 6, dtype=np.int64),
                price=np.array([100.5, 101.0, np.nan, 101.5, 102.0]),
                size=np.ones(5),
                aggressor_buy=np.ones(5, dtype=bool),
                trade_id=np.arange(5, dtype=np.int64),
            )
        ],
        config.instrument_map(),
    )
    sink = InMemorySink()

    LocalKernel(config, bars, trades=trades, metrics=GraphMetrics(sink)).run()

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 3.0
    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="trade") == 4.0
    assert sink.value(MARKET_DATA_DROPPED, reason="not_finite", instrument=BTC) == 1.0


def test_a_run_with_metrics_gives_the_same_fills_as_one_without() -> None:
    config = graph_config((_script("s", buy_on_bar=2, quantity=0.5),))
    stream = prepare_bar_stream([ramp_bars([100.0, 101.0, 99.0, 98.0])], config.instrument_map())

    plain = run_backtest(config, stream)
    observed = run_backtest(config, stream, metrics=GraphMetrics(InMemorySink()))

    assert observed.fills_digest == plain.fills_digest
    assert observed.final_equity == plain.final_equity
    assert observed.ledger.to_table().equals(plain.ledger.to_table())
