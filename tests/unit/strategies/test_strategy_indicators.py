"""Incremental indicators against straightforward numpy reference computations."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.strategies.indicators import ATR, EMA, RSI, SMA, TEMA, BollingerBands, Indicator

Array = npt.NDArray[np.float64]

prices = st.lists(
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=120,
)
periods = st.integers(min_value=1, max_value=25)
# (close, distance up to the high, distance down to the low as a fraction of the close)
ohlc_rows = st.lists(
    st.tuples(
        st.floats(min_value=0.01, max_value=1e6),
        st.floats(min_value=0.0, max_value=1e3),
        st.floats(min_value=0.0, max_value=0.99),
    ),
    min_size=1,
    max_size=120,
)


# ---------------------------------------------------------------- numpy references


def sma_reference(x: Array, n: int) -> Array:
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        out[t] = np.mean(x[t - n + 1 : t + 1])
    return out


def ema_reference(x: Array, n: int) -> Array:
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    alpha = 2.0 / (n + 1)
    out[n - 1] = np.mean(x[:n])
    for t in range(n, len(x)):
        out[t] = alpha * x[t] + (1 - alpha) * out[t - 1]
    return out


def rsi_reference(x: Array, n: int) -> Array:
    out = np.full(len(x), np.nan)
    if len(x) < n + 1:
        return out
    change = np.diff(x)
    gains = np.where(change > 0, change, 0.0)
    losses = np.where(change < 0, -change, 0.0)
    avg_gain, avg_loss = np.mean(gains[:n]), np.mean(losses[:n])
    for t in range(n, len(x)):
        if t > n:
            avg_gain = (avg_gain * (n - 1) + gains[t - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[t - 1]) / n
        total = avg_gain + avg_loss
        out[t] = 100.0 * avg_gain / total if total > 0 else 50.0
    return out


def bollinger_reference(x: Array, n: int, k: float) -> tuple[Array, Array, Array]:
    mid = np.full(len(x), np.nan)
    std = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        window = x[t - n + 1 : t + 1]
        mid[t] = np.mean(window)
        std[t] = np.std(window)
    return mid, mid + k * std, mid - k * std


def atr_reference(high: Array, low: Array, close: Array, n: int) -> Array:
    prev_close = np.concatenate(([np.nan], close[:-1]))
    true_range = np.nanmax(
        np.vstack([high - low, np.abs(high - prev_close), np.abs(low - prev_close)]), axis=0
    )
    out = np.full(len(close), np.nan)
    if len(close) < n:
        return out
    out[n - 1] = np.mean(true_range[:n])
    for t in range(n, len(close)):
        out[t] = (out[t - 1] * (n - 1) + true_range[t]) / n
    return out


def tema_reference(x: Array, n: int) -> Array:
    ema1 = ema_reference(x, n)
    valid1 = ~np.isnan(ema1)
    ema2 = np.full(len(x), np.nan)
    ema2[valid1] = ema_reference(ema1[valid1], n)
    valid2 = ~np.isnan(ema2)
    ema3 = np.full(len(x), np.nan)
    ema3[valid2] = ema_reference(ema2[valid2], n)
    tema: Array = 3 * ema1 - 3 * ema2 + ema3
    return tema


# ---------------------------------------------------------------- comparison helper


def assert_series_close(actual: list[float], expected: Array, scale: float) -> None:
    """NaN exactly where the reference is NaN; elsewhere equal to 1e-9 (relative to scale)."""
    got = np.array(actual)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-9, atol=1e-9 * scale)


def run(update: Callable[[float], None], read: Callable[[], float], x: Array) -> list[float]:
    values = []
    for v in x:
        update(float(v))
        values.append(read())
    return values


# ---------------------------------------------------------------- correctness vs numpy


@settings(max_examples=60, deadline=None)
@given(prices, periods)
def test_sma_matches_numpy(raw: list[float], n: int) -> None:
    x = np.array(raw)
    sma = SMA(n)

    values = run(sma.update, lambda: sma.value, x)

    assert_series_close(values, sma_reference(x, n), float(np.max(x)))
    assert sma.ready == (len(x) >= n)


@settings(max_examples=60, deadline=None)
@given(prices, periods)
def test_ema_matches_numpy(raw: list[float], n: int) -> None:
    x = np.array(raw)
    ema = EMA(n)

    values = run(ema.update, lambda: ema.value, x)

    assert_series_close(values, ema_reference(x, n), float(np.max(x)))


@settings(max_examples=60, deadline=None)
@given(prices, periods)
def test_rsi_matches_numpy(raw: list[float], n: int) -> None:
    x = np.array(raw)
    rsi = RSI(n)

    values = run(rsi.update, lambda: rsi.value, x)

    assert_series_close(values, rsi_reference(x, n), 100.0)
    assert all(0.0 <= v <= 100.0 for v in values if not math.isnan(v))


@settings(max_examples=60, deadline=None)
@given(prices, periods, st.floats(min_value=0.0, max_value=4.0))
def test_bollinger_bands_match_numpy(raw: list[float], n: int, k: float) -> None:
    x = np.array(raw)
    bands = BollingerBands(n, k)
    mids, uppers, lowers = [], [], []

    for v in x:
        bands.update(float(v))
        mids.append(bands.middle)
        uppers.append(bands.upper)
        lowers.append(bands.lower)

    mid, upper, lower = bollinger_reference(x, n, k)
    scale = float(np.max(x))
    assert_series_close(mids, mid, scale)
    assert_series_close(uppers, upper, scale)
    assert_series_close(lowers, lower, scale)


@settings(max_examples=60, deadline=None)
@given(ohlc_rows, periods)
def test_atr_matches_numpy(rows: list[tuple[float, float, float]], n: int) -> None:
    close = np.array([c for c, _, _ in rows])
    high = close + np.array([up for _, up, _ in rows])
    low = close * (1.0 - np.array([down for _, _, down in rows]))
    atr = ATR(n)
    values = []

    for h, lo, c in zip(high, low, close, strict=True):
        atr.update(float(h), float(lo), float(c))
        values.append(atr.value)

    assert_series_close(values, atr_reference(high, low, close, n), float(np.max(high)))


@settings(max_examples=60, deadline=None)
@given(prices, periods)
def test_tema_matches_numpy(raw: list[float], n: int) -> None:
    x = np.array(raw)
    tema = TEMA(n)

    values = run(tema.update, lambda: tema.value, x)

    assert_series_close(values, tema_reference(x, n), float(np.max(x)))
    assert tema.ready == (len(x) >= 3 * n - 2)


def test_windowed_indicators_do_not_drift_over_a_long_run() -> None:
    rng = np.random.default_rng(7)
    x = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, 50_000)))
    sma, bands = SMA(30), BollingerBands(20, 2.0)

    for v in x:
        sma.update(float(v))
        bands.update(float(v))

    assert sma.value == pytest.approx(np.mean(x[-30:]), rel=1e-12)
    assert bands.std == pytest.approx(np.std(x[-20:]), rel=1e-9)


def test_rsi_is_fifty_without_movement_and_hundred_when_only_rising() -> None:
    flat, rising = RSI(3), RSI(3)

    for v in (10.0, 10.0, 10.0, 10.0):
        flat.update(v)
    for v in (10.0, 11.0, 12.0, 13.0):
        rising.update(v)

    assert flat.value == 50.0
    assert rising.value == 100.0


@pytest.mark.parametrize("factory", [SMA, EMA, RSI, ATR, TEMA, BollingerBands])
def test_non_positive_period_is_refused(factory: Callable[[int], object]) -> None:
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        factory(0)


# ---------------------------------------------------------------- snapshot / restore


@settings(max_examples=40, deadline=None)
@given(prices, periods, st.integers(min_value=0, max_value=120))
def test_restored_indicators_continue_exactly(raw: list[float], n: int, cut: int) -> None:
    cut = min(cut, len(raw))
    originals: list[SMA | EMA | RSI | TEMA | BollingerBands] = [
        SMA(n),
        EMA(n),
        RSI(n),
        TEMA(n),
        BollingerBands(n, 1.5),
    ]
    atr = ATR(n)
    for v in raw[:cut]:
        for indicator in originals:
            indicator.update(v)
        atr.update(v * 1.01, v * 0.99, v)
    copies: list[SMA | EMA | RSI | TEMA | BollingerBands] = [
        SMA(n),
        EMA(n),
        RSI(n),
        TEMA(n),
        BollingerBands(n, 1.5),
    ]
    atr_copy = ATR(n)

    for original, copy in zip(originals, copies, strict=True):
        copy.restore(json.loads(json.dumps(original.snapshot(), allow_nan=False)))
    atr_copy.restore(json.loads(json.dumps(atr.snapshot(), allow_nan=False)))
    for v in raw[cut:]:
        for indicator in (*originals, *copies):
            indicator.update(v)
        atr.update(v * 1.01, v * 0.99, v)
        atr_copy.update(v * 1.01, v * 0.99, v)

    pairs: list[tuple[Indicator, Indicator]] = [
        *zip(originals, copies, strict=True),
        (atr, atr_copy),
    ]
    for before, after in pairs:
        assert after.ready == before.ready
        assert after.snapshot() == before.snapshot()
        assert (math.isnan(after.value) and math.isnan(before.value)) or (
            after.value == before.value
        )


def test_restore_into_a_different_period_is_refused() -> None:
    sma = SMA(5)

    with pytest.raises(ValueError, match=r"cannot restore a SMA\(5\) snapshot into SMA\(6\)"):
        SMA(6).restore(sma.snapshot())
