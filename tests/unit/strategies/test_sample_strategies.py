"""The sample strategies produce the intents their rules promise, on crafted and random series."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import btcusdt, ethusdt
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    LiquiditySide,
    OrderFilled,
    OrderIntent,
    OrderSide,
    OrderType,
)
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.strategies import (
    MeanReversion,
    SmaCross,
    SmaCrossParams,
    Strategy,
    TrendlineBreakout,
)
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"
INSTRUMENTS = {
    BTC: btcusdt(min_quantity=0.0, min_notional=0.0),
    ETH: ethusdt(min_quantity=0.0, min_notional=0.0),
}
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def make_bar(
    close: float,
    ts: int,
    instrument_id: str = BTC,
    high: float | None = None,
    low: float | None = None,
) -> Bar:
    return Bar(
        instrument_id=instrument_id,
        open=close,
        high=close if high is None else high,
        low=close if low is None else low,
        close=close,
        volume=1.0,
        interval_ns=60,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def build(
    cls: type[Strategy], params: dict[str, Any], instruments: tuple[str, ...] = (BTC,)
) -> tuple[Any, RecordingOutbox]:
    config = StrategyConfig(id="s1", class_path="unused", instruments=instruments, params=params)
    outbox = RecordingOutbox()
    return cls(config, INSTRUMENTS, SimClock(), outbox), outbox


def fill_completely(intent: OrderIntent, price: float, ts: int) -> OrderFilled:
    return OrderFilled(
        fill_id=f"fill-{intent.intent_id}",
        client_order_id=intent.intent_id,
        venue_order_id=f"v-{intent.intent_id}",
        strategy_id=intent.strategy_id,
        instrument_id=intent.instrument_id,
        venue="BINANCE",
        side=intent.side,
        last_qty=intent.quantity,
        last_px=price,
        fee=0.0,
        liquidity=LiquiditySide.TAKER,
        leaves_qty=0.0,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def drive(
    strategy: Strategy, outbox: RecordingOutbox, bars: Sequence[Bar], fill: bool = True
) -> list[tuple[int, str, OrderSide, float]]:
    """Feed bars; fill every intent at the bar's close at once. Returns (bar, instrument, side, qty)."""
    intents: list[tuple[int, str, OrderSide, float]] = []
    for k, bar in enumerate(bars):
        seen = len(outbox.messages)
        strategy.handle(bar)
        for msg in outbox.messages[seen:]:
            assert isinstance(msg, OrderIntent), msg
            assert msg.order_type is OrderType.MARKET
            intents.append((k, msg.instrument_id, msg.side, msg.quantity))
            if fill:
                strategy.handle(fill_completely(msg, bar.close, bar.ts_event_ns))
    return intents


def bars_of(closes: Sequence[float], instrument_id: str = BTC) -> list[Bar]:
    return [make_bar(c, ts=i + 1, instrument_id=instrument_id) for i, c in enumerate(closes)]


def random_walk_bars(seed: int, count: int, instrument_id: str = BTC) -> list[Bar]:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, count)))
    wiggle = rng.uniform(0.0, 0.005, (count, 2))
    return [
        make_bar(
            float(c),
            ts=i + 1,
            instrument_id=instrument_id,
            high=float(c * (1 + up)),
            low=float(c * (1 - down)),
        )
        for i, (c, (up, down)) in enumerate(zip(closes, wiggle, strict=True))
    ]


# ---------------------------------------------------------------- SmaCross


def test_sma_cross_defaults_are_the_benchmark_workload() -> None:
    assert SmaCrossParams() == SmaCrossParams(fast_period=10, slow_period=30, quantity=0.01)


def test_sma_cross_buys_on_the_crossing_bar_and_sells_the_position_on_the_cross_below() -> None:
    strategy, outbox = build(SmaCross, {"fast_period": 2, "slow_period": 4, "quantity": 0.5})
    # bar 3 completes the windows (fast 10 == slow 10); bar 4: fast 9.5 < slow 9.75 (flat: no
    # sell); bar 5: fast 10.5 > slow 10.25, a cross above; bar 6 stays above; bar 7: fast 9 <
    # slow 9.75, a cross below.
    closes = [10, 10, 10, 10, 9, 12, 13, 5]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(5, BTC, BUY, 0.5), (7, BTC, SELL, 0.5)]
    assert strategy.position(BTC) == 0.0


def test_sma_cross_never_signals_on_the_first_ready_bar() -> None:
    strategy, outbox = build(SmaCross, {"fast_period": 2, "slow_period": 4})
    # Fast is above slow from the first ready bar (3) on: there is no cross to act on.
    closes = [1, 1, 1, 5, 6, 7]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == []


def test_sma_cross_counts_equal_then_above_as_a_cross() -> None:
    strategy, outbox = build(SmaCross, {"fast_period": 2, "slow_period": 4})
    # Bar 3 and 4: fast == slow; bar 5: fast above.
    closes = [5, 5, 5, 5, 5, 6]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(5, BTC, BUY, 0.01)]


def test_sma_cross_does_not_trade_again_while_an_order_is_open() -> None:
    strategy, outbox = build(SmaCross, {"fast_period": 2, "slow_period": 4})
    closes = [10, 10, 10, 10, 9, 12, 13, 5, 4, 20, 30]

    intents = drive(strategy, outbox, bars_of(closes), fill=False)

    assert intents == [(5, BTC, BUY, 0.01)]


def sma_cross_reference(
    closes: Sequence[float], fast: int, slow: int, quantity: float
) -> list[tuple[int, OrderSide, float]]:
    x = np.asarray(closes, dtype=float)
    expected: list[tuple[int, OrderSide, float]] = []
    position = 0.0
    previous: float | None = None
    for t in range(slow - 1, len(x)):
        relation = float(
            np.sign(np.mean(x[t - fast + 1 : t + 1]) - np.mean(x[t - slow + 1 : t + 1]))
        )
        if previous is not None:
            if relation > 0 and previous <= 0 and position == 0.0:
                expected.append((t, BUY, quantity))
                position = quantity
            elif relation < 0 and previous >= 0 and position > 0.0:
                expected.append((t, SELL, position))
                position = 0.0
        previous = relation
    return expected


# Integer prices keep every sum exact, so ties (fast == slow) happen and are judged exactly.
@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=150),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=10),
)
def test_sma_cross_matches_a_numpy_reference(prices: list[int], fast: int, extra: int) -> None:
    slow = fast + extra
    strategy, outbox = build(SmaCross, {"fast_period": fast, "slow_period": slow})

    intents = drive(strategy, outbox, bars_of([float(p) for p in prices]))

    assert [(k, side, qty) for k, _, side, qty in intents] == sma_cross_reference(
        prices, fast, slow, 0.01
    )


def test_sma_cross_keeps_instruments_apart() -> None:
    btc_bars = random_walk_bars(1, 400, BTC)
    eth_bars = random_walk_bars(2, 400, ETH)
    params = {"fast_period": 5, "slow_period": 12}
    together, out_together = build(SmaCross, params, instruments=(BTC, ETH))
    alone_btc, out_btc = build(SmaCross, params)
    alone_eth, out_eth = build(SmaCross, params, instruments=(ETH,))
    interleaved = [bar for pair in zip(btc_bars, eth_bars, strict=True) for bar in pair]

    mixed = drive(together, out_together, interleaved)
    btc_only = drive(alone_btc, out_btc, btc_bars)
    eth_only = drive(alone_eth, out_eth, eth_bars)

    assert [(k // 2, side) for k, inst, side, _ in mixed if inst == BTC] == [
        (k, side) for k, _, side, _ in btc_only
    ]
    assert [(k // 2, side) for k, inst, side, _ in mixed if inst == ETH] == [
        (k, side) for k, _, side, _ in eth_only
    ]
    assert btc_only
    assert eth_only


# ---------------------------------------------------------------- MeanReversion

MEAN_REVERSION_FAST = {
    "rsi_period": 3,
    "bb_period": 5,
    "bb_num_std": 1.0,
    "tema_period": 2,
    "oversold": 30.0,
    "overbought": 70.0,
    "quantity": 0.2,
}


def test_mean_reversion_buys_the_oversold_turn_and_exits_above_the_middle_band() -> None:
    strategy, outbox = build(MeanReversion, MEAN_REVERSION_FAST)
    # Bars 7-9 fall hard (RSI < 30, close under the lower band) but the TEMA is still falling.
    # Bar 10 ticks up to 91.2: RSI ~8, lower band ~91.45, TEMA rises: buy. Bar 11 closes at 94,
    # above the middle band (~93.8): sell.
    closes = [100, 101, 100, 101, 100, 101, 100, 98, 95, 91, 91.2, 94, 97]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(10, BTC, BUY, 0.2), (11, BTC, SELL, 0.2)]


def test_mean_reversion_does_not_buy_while_the_tema_keeps_falling() -> None:
    strategy, outbox = build(MeanReversion, MEAN_REVERSION_FAST)
    closes = [100, 101, 100, 101, 100, 101, 100, 98, 95, 91, 88, 86, 85]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == []


def test_mean_reversion_exits_on_overbought_rsi_even_below_the_middle_band() -> None:
    params = {**MEAN_REVERSION_FAST, "bb_num_std": 0.1, "overbought": 40.0}
    strategy, outbox = build(MeanReversion, params)
    # Entry as above (the band is narrower, so 91.2 is still under it); then a rise to 93.5
    # lifts RSI to ~44, over 40, while the close stays under the middle band (~93.74).
    closes = [100, 101, 100, 101, 100, 101, 100, 98, 95, 91, 91.2, 93.5]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(10, BTC, BUY, 0.2), (11, BTC, SELL, 0.2)]
    assert strategy.last_price(BTC) == 93.5


def test_mean_reversion_rejects_overbought_below_oversold() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.s1\.params\.overbought: "):
        build(MeanReversion, {"oversold": 60.0, "overbought": 40.0})


# ---------------------------------------------------------------- TrendlineBreakout

TRENDLINE_FAST = {
    "pivot_strength": 1,
    "lookback": 50,
    "breakout_margin": 0.001,
    "atr_period": 3,
    "quantity": 0.3,
}
# Pivot highs at bars 1 (15) and 3 (13): resistance falls 1 per bar and reads 11 at bar 5 and
# 10 at bar 6. Pivot lows at bars 2 and 4 (10): support is flat at 10. Bar 5 closes at 11, not
# above 11 * 1.001; bar 6 closes at 11.5 > 10.01 after being below: the breakout.
BREAKOUT_PREFIX = [10, 15, 10, 13, 10, 11, 11.5]


def test_trendline_breakout_buys_the_break_and_exits_below_support() -> None:
    strategy, outbox = build(TrendlineBreakout, {**TRENDLINE_FAST, "atr_multiplier": 5.0})
    # A wide trailing stop never triggers here; the close of 9.5 breaks support at 10.
    closes = [*BREAKOUT_PREFIX, 13, 14, 9.5, 9]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(6, BTC, BUY, 0.3), (9, BTC, SELL, 0.3)]


def test_trendline_breakout_exits_on_the_atr_trailing_stop() -> None:
    strategy, outbox = build(TrendlineBreakout, {**TRENDLINE_FAST, "atr_multiplier": 1.0})
    # Steady half-point rises shrink the ATR to ~0.6; the highest high is 14.5, so the stop is
    # ~13.66 on bar 13, whose close (13.2) is well above support (10).
    closes = [*BREAKOUT_PREFIX, 12, 12.5, 13, 13.5, 14, 14.5, 13.2, 13]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(6, BTC, BUY, 0.3), (13, BTC, SELL, 0.3)]


def test_trendline_breakout_needs_two_pivot_highs() -> None:
    strategy, outbox = build(TrendlineBreakout, TRENDLINE_FAST)
    # Only one swing high (bar 1) before the rally: no line, no trade.
    closes = [10, 15, 10, 9, 8, 12, 16, 20]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == []


def test_trendline_breakout_rejects_a_lookback_too_short_for_two_pivots() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.s1\.params\.lookback: "):
        build(TrendlineBreakout, {"pivot_strength": 5, "lookback": 8})


# ---------------------------------------------------------------- snapshot / restore


SAMPLES: list[tuple[type[Strategy], dict[str, Any]]] = [
    (SmaCross, {"fast_period": 3, "slow_period": 8}),
    (
        MeanReversion,
        {"rsi_period": 5, "bb_period": 10, "bb_num_std": 1.0, "tema_period": 3, "oversold": 40.0},
    ),
    (TrendlineBreakout, {"pivot_strength": 2, "lookback": 40, "atr_period": 5}),
]


@pytest.mark.parametrize(("cls", "params"), SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), cut=st.integers(min_value=0, max_value=300))
def test_restored_sample_behaves_like_the_original(
    cls: type[Strategy], params: dict[str, Any], seed: int, cut: int
) -> None:
    bars = random_walk_bars(seed, 300)
    original, out_original = build(cls, params)
    drive(original, out_original, bars[:cut])
    state = Strategy.State.model_validate(
        json.loads(json.dumps(original.snapshot().model_dump(mode="json"), allow_nan=False))
    )
    restored, out_restored = build(cls, params)
    restored.restore(state)
    out_original.clear()

    after_original = drive(original, out_original, bars[cut:])
    after_restored = drive(restored, out_restored, bars[cut:])

    assert after_restored == after_original
    assert out_restored.messages == out_original.messages
    assert restored.snapshot() == original.snapshot()


@pytest.mark.parametrize(("cls", "params"), SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_samples_trade_a_random_walk(cls: type[Strategy], params: dict[str, Any]) -> None:
    strategy, outbox = build(cls, params)

    intents = drive(strategy, outbox, random_walk_bars(3, 3_000))

    sides = [side for _, _, side, _ in intents]
    assert sides
    assert sides[::2] == [BUY] * len(sides[::2])
    assert sides[1::2] == [SELL] * len(sides[1::2])
    assert strategy.position(BTC) in (0.0, 0.01)


def test_mean_reversion_buys_a_turn_that_comes_bars_after_the_stretch() -> None:
    strategy, outbox = build(MeanReversion, {**MEAN_REVERSION_FAST, "setup_bars": 5})
    # The fall stretches price under the band (armed) while the TEMA still falls; the upturn at
    # bar 13 comes when the stretch itself is over, but inside the armed window: buy.
    closes = [100, 101, 100, 101, 100, 101, 100, 98, 95, 91, 88, 86, 85, 86.5]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == [(13, BTC, BUY, 0.2)]


def test_mean_reversion_setup_expires_after_setup_bars() -> None:
    strategy, outbox = build(MeanReversion, {**MEAN_REVERSION_FAST, "setup_bars": 1})
    # Same fall, then the price drifts sideways long enough for RSI to leave oversold and the
    # one-bar setup to lapse before the TEMA turns: no entry.
    closes = [100, 101, 100, 101, 100, 101, 100, 98, 95, 91, 88, 86, 85, 85, 85, 85, 85, 86.5]

    intents = drive(strategy, outbox, bars_of(closes))

    assert intents == []
