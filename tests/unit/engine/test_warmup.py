"""``data.trade_start``: bars before it only warm the strategies up, and a strategy declares
how many it needs (``Strategy.warmup_bars``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import Field

from tradegraph.config.loader import load_config
from tradegraph.contracts import Bar
from tradegraph.engine.backtest import run_backtest_with_kernel
from tradegraph.errors import ConfigError
from tradegraph.strategies import Strategy, StrategyParams
from tradegraph.strategies.mean_reversion import MeanReversion, MeanReversionParams
from tradegraph.strategies.resting_bid import RestingBid, RestingBidParams
from tradegraph.strategies.sma_cross import SmaCross, SmaCrossParams

MINUTE_NS = 60_000_000_000
TRADE_START = "2025-07-10T00:00:00"
TRADE_START_NS = int(np.datetime64(TRADE_START, "ns").astype(np.int64))


class RecorderParams(StrategyParams):
    lookback: int = Field(default=30, gt=0)
    trade_after: int = Field(default=31, gt=0, description="the bar on which it buys once")


class Recorder(Strategy):
    """Records the open time of every bar it sees and the clock then; buys once, on bar
    ``trade_after``."""

    Params = RecorderParams
    params: RecorderParams

    def on_start(self) -> None:
        self.seen: list[int] = []

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(bar.ts_event_ns - bar.interval_ns)
        if len(self.seen) == self.params.trade_after:
            self.buy(bar.instrument_id, 0.01)


def _config(lookback: int, trade_after: int, warmup_bars: int) -> Any:
    start = np.datetime64(TRADE_START, "m") - np.timedelta64(warmup_bars, "m")
    return load_config(
        None,
        [
            f"data.bars.0.start='{start}'",
            "data.bars.0.end='2025-07-11T00:00:00'",
            f"data.trade_start='{TRADE_START}'",
            f"strategies.0.class_path={__name__}:Recorder",
            f'strategies.0.params={{"lookback": {lookback}, "trade_after": {trade_after}}}',
        ],
    )


def test_warm_up_bars_reach_the_strategy_before_trading_and_never_from_the_window() -> None:
    config = _config(lookback=30, trade_after=31, warmup_bars=30)

    result, kernel = run_backtest_with_kernel(config)

    seen = kernel.component("strategy:sma").seen
    warm = [t for t in seen if t < TRADE_START_NS]
    assert warm == [TRADE_START_NS - (30 - k) * MINUTE_NS for k in range(30)]
    assert seen[30] == TRADE_START_NS
    assert seen[:30] == warm  # every warm-up bar came before the first bar of the window
    assert result.bars == 24 * 60
    assert int(result.ts_ns[0]) >= TRADE_START_NS
    assert result.fills
    assert all(f.ts_event_ns > TRADE_START_NS for f in result.fills)
    assert result.starting_cash == config.portfolio.starting_cash


def test_a_strategy_trading_inside_its_warm_up_is_refused() -> None:
    config = _config(lookback=30, trade_after=5, warmup_bars=30)

    with pytest.raises(ConfigError, match="sent an order during its warm-up"):
        run_backtest_with_kernel(config)


def test_warmup_bars_of_the_samples_and_the_default_rule() -> None:
    class Plain(Strategy):
        class Params(StrategyParams):
            fast_period: int = 5
            lookback: int = 50
            window_s: float = 900.0

    assert SmaCross.warmup_bars(SmaCrossParams(fast_period=10, slow_period=120)) == 120
    assert MeanReversion.warmup_bars(MeanReversionParams(tema_period=9)) == 26
    assert RestingBid.warmup_bars(RestingBidParams()) == 0
    assert Plain.warmup_bars(Plain.Params()) == 50
    assert Strategy.warmup_bars(StrategyParams()) == 0
