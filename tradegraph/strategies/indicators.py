"""Incremental technical indicators: O(1) work per update, state that snapshots to plain data.

Every indicator has ``update(...)``, a ``value`` that is NaN until ``ready``, its ``period``, and
``snapshot()``/``restore()`` so a strategy can carry it across a restart. Read ``value`` and
``ready`` as attributes; only ``update`` and ``restore`` change them.

Why an indicator's snapshot is a plain dict and not a :class:`~tradegraph.contracts.state.
ComponentState` like a component's: a user puts ``sma.snapshot()`` into the dict their
``Strategy.strategy_state()`` returns, and that dict is kept as is inside the strategy's typed
``StrategyState`` (JSON through and through). A model there would not be JSON when stored, and
``restore_strategy_state`` would get a dict back, not the model. The snapshot names its
``kind`` and ``period``, and ``restore`` refuses one of another kind or period.

Running sums drift by rounding over millions of updates, so the windowed indicators (SMA,
Bollinger) re-add their window exactly each time their ring buffer wraps; that costs one pass
over the window every ``period`` updates.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

_NAN = math.nan


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"period must be an integer >= 1, was {period!r}")
    return period


def _check_state(kind: str, period: int, state: dict[str, Any]) -> None:
    if state.get("kind") != kind or state.get("period") != period:
        raise ValueError(
            f"cannot restore a {state.get('kind')}({state.get('period')}) snapshot "
            f"into {kind}({period})"
        )


def _nan_if_none(value: float | None) -> float:
    return _NAN if value is None else float(value)


class Indicator(Protocol):
    """What every indicator offers."""

    @property
    def period(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    @property
    def value(self) -> float: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class SMA:
    """Simple moving average of the last ``period`` values (ring buffer and running sum)."""

    __slots__ = ("_buffer", "_index", "_sum", "count", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._buffer = [0.0] * period
        self._index = 0
        self._sum = 0.0
        self.count = 0
        self.ready = False
        self.value = _NAN

    def update(self, x: float) -> None:
        """Add one value."""
        i = self._index
        self._sum += x - self._buffer[i]
        self._buffer[i] = x
        i += 1
        if i == self.period:
            i = 0
            self._sum = math.fsum(self._buffer)
        self._index = i
        if not self.ready:
            self.count += 1
            if self.count < self.period:
                return
            self.ready = True
        self.value = self._sum / self.period

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "SMA",
            "period": self.period,
            "buffer": list(self._buffer),
            "index": self._index,
            "sum": self._sum,
            "count": self.count,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("SMA", self.period, state)
        self._buffer = [float(v) for v in state["buffer"]]
        self._index = int(state["index"])
        self._sum = float(state["sum"])
        self.count = int(state["count"])
        self.ready = self.count >= self.period
        self.value = self._sum / self.period if self.ready else _NAN


class EMA:
    """Exponential moving average, ``alpha = 2 / (period + 1)``.

    The first value, once ``period`` inputs have arrived, is their simple average.
    """

    __slots__ = ("_seed_sum", "alpha", "count", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self.alpha = 2.0 / (period + 1)
        self._seed_sum = 0.0
        self.count = 0
        self.ready = False
        self.value = _NAN

    def update(self, x: float) -> None:
        """Add one value."""
        if self.ready:
            self.value += self.alpha * (x - self.value)
            return
        self._seed_sum += x
        self.count += 1
        if self.count == self.period:
            self.ready = True
            self.value = self._seed_sum / self.period

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "EMA",
            "period": self.period,
            "seed_sum": self._seed_sum,
            "count": self.count,
            "value": self.value if self.ready else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("EMA", self.period, state)
        self._seed_sum = float(state["seed_sum"])
        self.count = int(state["count"])
        self.ready = self.count >= self.period
        self.value = _nan_if_none(state["value"])


class RSI:
    """Relative strength index with Wilder's smoothing, 0..100.

    The first value comes after ``period`` price changes (``period + 1`` prices): average gain
    and loss are then the simple means of those changes, and afterwards
    ``avg = (avg * (period - 1) + new) / period``. ``RSI = 100 * avg_gain / (avg_gain +
    avg_loss)``; a window without any movement reads 50.
    """

    __slots__ = ("_avg_gain", "_avg_loss", "_prev", "count", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._prev: float | None = None
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self.count = 0
        self.ready = False
        self.value = _NAN

    def update(self, close: float) -> None:
        """Add one closing price."""
        prev = self._prev
        self._prev = close
        if prev is None:
            return
        change = close - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        n = self.period
        if self.ready:
            self._avg_gain = (self._avg_gain * (n - 1) + gain) / n
            self._avg_loss = (self._avg_loss * (n - 1) + loss) / n
        else:
            # During warm-up the averages hold plain sums of gains and losses.
            self._avg_gain += gain
            self._avg_loss += loss
            self.count += 1
            if self.count < n:
                return
            self._avg_gain /= n
            self._avg_loss /= n
            self.ready = True
        total = self._avg_gain + self._avg_loss
        self.value = 100.0 * (self._avg_gain / total) if total > 0.0 else 50.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "RSI",
            "period": self.period,
            "prev": self._prev,
            "avg_gain": self._avg_gain,
            "avg_loss": self._avg_loss,
            "count": self.count,
            "value": self.value if self.ready else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("RSI", self.period, state)
        prev = state["prev"]
        self._prev = None if prev is None else float(prev)
        self._avg_gain = float(state["avg_gain"])
        self._avg_loss = float(state["avg_loss"])
        self.count = int(state["count"])
        self.ready = self.count >= self.period
        self.value = _nan_if_none(state["value"])


_FLAT_WINDOW = 1e-8
"""Below this ratio of a window's sum of squared deviations to ``n`` times the largest square
the sliding update touched, Bollinger bands recompute the window exactly."""


class BollingerBands:
    """Bollinger bands: the SMA of the last ``period`` values ± ``num_std`` population stds.

    ``value`` is the middle band. The window's mean and sum of squared deviations are updated
    in O(1) with Welford's sliding-window recurrences, which stay accurate for prices far from
    zero, where the sum-of-squares shortcut loses most of its digits.
    """

    __slots__ = (
        "_buffer",
        "_index",
        "_m2",
        "_mean",
        "count",
        "lower",
        "middle",
        "num_std",
        "period",
        "ready",
        "std",
        "upper",
        "value",
    )

    def __init__(self, period: int, num_std: float = 2.0) -> None:
        self.period = _check_period(period)
        if not math.isfinite(num_std) or num_std < 0.0:
            raise ValueError(f"num_std must be a finite number >= 0, was {num_std!r}")
        self.num_std = float(num_std)
        self._buffer = [0.0] * period
        self._index = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.count = 0
        self.ready = False
        self.value = self.middle = self.upper = self.lower = self.std = _NAN

    def update(self, x: float) -> None:
        """Add one value."""
        n = self.period
        i = self._index
        if self.ready:
            old = self._buffer[i]
            old_mean = self._mean
            self._mean = old_mean + (x - old) / n
            self._m2 += (x - old) * (x - self._mean + old - old_mean)
            # The update cancels terms of the size of old² and x²: when the window's spread is
            # tiny beside them (a plateau after a jump), what is left is rounding. Recompute.
            if self._m2 < _FLAT_WINDOW * n * max(old * old, x * x):
                self._buffer[i] = x
                self._mean = math.fsum(self._buffer) / n
                mean = self._mean
                self._m2 = math.fsum((v - mean) * (v - mean) for v in self._buffer)
        else:
            self.count += 1
            delta = x - self._mean
            self._mean += delta / self.count
            self._m2 += delta * (x - self._mean)
        self._buffer[i] = x
        i += 1
        if i == n:
            i = 0
            self._mean = math.fsum(self._buffer) / n
            mean = self._mean
            self._m2 = math.fsum((v - mean) * (v - mean) for v in self._buffer)
            self.ready = True
        self._index = i
        if self.ready:
            self._publish()

    def _publish(self) -> None:
        self.std = math.sqrt(max(self._m2, 0.0) / self.period)
        self.value = self.middle = self._mean
        band = self.num_std * self.std
        self.upper = self._mean + band
        self.lower = self._mean - band

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "BollingerBands",
            "period": self.period,
            "num_std": self.num_std,
            "buffer": list(self._buffer),
            "index": self._index,
            "mean": self._mean,
            "m2": self._m2,
            "count": self.count,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("BollingerBands", self.period, state)
        if state["num_std"] != self.num_std:
            raise ValueError(
                f"cannot restore BollingerBands with num_std={state['num_std']} "
                f"into one with num_std={self.num_std}"
            )
        self._buffer = [float(v) for v in state["buffer"]]
        self._index = int(state["index"])
        self._mean = float(state["mean"])
        self._m2 = float(state["m2"])
        self.count = int(state["count"])
        self.ready = self.count >= self.period
        if self.ready:
            self._publish()
        else:
            self.value = self.middle = self.upper = self.lower = self.std = _NAN


class ATR:
    """Average true range with Wilder's smoothing.

    True range is ``max(high - low, |high - prev_close|, |low - prev_close|)``; for the very
    first bar, without a previous close, it is ``high - low``. The first value, after
    ``period`` bars, is the mean of their true ranges; then
    ``atr = (atr * (period - 1) + tr) / period``.
    """

    __slots__ = ("_prev_close", "_seed_sum", "count", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._prev_close: float | None = None
        self._seed_sum = 0.0
        self.count = 0
        self.ready = False
        self.value = _NAN

    def update(self, high: float, low: float, close: float) -> None:
        """Add one bar."""
        prev_close = self._prev_close
        self._prev_close = close
        true_range = high - low
        if prev_close is not None:
            true_range = max(true_range, abs(high - prev_close), abs(low - prev_close))
        n = self.period
        if self.ready:
            self.value = (self.value * (n - 1) + true_range) / n
            return
        self._seed_sum += true_range
        self.count += 1
        if self.count == n:
            self.ready = True
            self.value = self._seed_sum / n

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "ATR",
            "period": self.period,
            "prev_close": self._prev_close,
            "seed_sum": self._seed_sum,
            "count": self.count,
            "value": self.value if self.ready else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("ATR", self.period, state)
        prev_close = state["prev_close"]
        self._prev_close = None if prev_close is None else float(prev_close)
        self._seed_sum = float(state["seed_sum"])
        self.count = int(state["count"])
        self.ready = self.count >= self.period
        self.value = _nan_if_none(state["value"])


class TEMA:
    """Triple exponential moving average: ``3 * EMA1 - 3 * EMA2 + EMA3``.

    EMA2 smooths EMA1's values and EMA3 smooths EMA2's, each seeded like :class:`EMA`; the
    first value therefore comes after ``3 * period - 2`` inputs.
    """

    __slots__ = ("_ema1", "_ema2", "_ema3", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._ema1 = EMA(period)
        self._ema2 = EMA(period)
        self._ema3 = EMA(period)
        self.ready = False
        self.value = _NAN

    def update(self, x: float) -> None:
        """Add one value."""
        ema1 = self._ema1
        ema1.update(x)
        if not ema1.ready:
            return
        ema2 = self._ema2
        ema2.update(ema1.value)
        if not ema2.ready:
            return
        ema3 = self._ema3
        ema3.update(ema2.value)
        if ema3.ready:
            self.ready = True
            self.value = 3.0 * ema1.value - 3.0 * ema2.value + ema3.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "TEMA",
            "period": self.period,
            "ema1": self._ema1.snapshot(),
            "ema2": self._ema2.snapshot(),
            "ema3": self._ema3.snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state("TEMA", self.period, state)
        self._ema1.restore(state["ema1"])
        self._ema2.restore(state["ema2"])
        self._ema3.restore(state["ema3"])
        self.ready = self._ema3.ready
        if self.ready:
            self.value = 3.0 * self._ema1.value - 3.0 * self._ema2.value + self._ema3.value
        else:
            self.value = _NAN
