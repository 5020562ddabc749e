"""Trendline breakout: buy a close through the resistance line drawn across swing highs."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import Bar, Clock, Instrument, Outbox
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.indicators import ATR


class TrendlineBreakoutParams(StrategyParams):
    """Parameters of :class:`TrendlineBreakout`."""

    pivot_strength: int = Field(
        default=3, gt=0, description="bars on each side a swing high/low must exceed"
    )
    lookback: int = Field(default=100, gt=0, description="bars in which pivots are kept")
    breakout_margin: float = Field(
        default=0.001,
        ge=0.0,
        lt=1.0,
        description="fraction above the line the close must reach (0.001 = 0.1%)",
    )
    atr_period: int = Field(default=14, gt=0)
    atr_multiplier: float = Field(
        default=3.0, gt=0.0, description="trailing stop distance below the high, in ATRs"
    )
    quantity: float = Field(default=0.01, gt=0.0, description="base units bought per entry")

    @field_validator("lookback")
    @classmethod
    def _room_for_two_pivots(cls, lookback: int, info: ValidationInfo) -> int:
        strength = info.data.get("pivot_strength")
        if strength is not None and lookback < 2 * strength + 2:
            raise ValueError(
                f"must be at least 2 * pivot_strength + 2 ({2 * strength + 2}) to hold two pivots"
            )
        return lookback


# A pivot is (bar index, price).
_Pivot = tuple[int, float]


def _line_at(pivots: deque[_Pivot], index: int) -> float:
    """Value at ``index`` of the straight line through the last two pivots."""
    (i1, p1), (i2, p2) = pivots[-2], pivots[-1]
    return p2 + (p2 - p1) / (i2 - i1) * (index - i2)


class _Tracker:
    """Per-instrument state: recent highs/lows, confirmed pivots, ATR and the trailing high."""

    __slots__ = (
        "atr",
        "bar_index",
        "highs",
        "lows",
        "pivot_highs",
        "pivot_lows",
        "prev_close",
        "trail_high",
    )

    def __init__(self, params: TrendlineBreakoutParams) -> None:
        window = 2 * params.pivot_strength + 1
        self.bar_index = -1
        self.highs: deque[float] = deque(maxlen=window)
        self.lows: deque[float] = deque(maxlen=window)
        self.pivot_highs: deque[_Pivot] = deque()
        self.pivot_lows: deque[_Pivot] = deque()
        self.atr = ATR(params.atr_period)
        self.prev_close: float | None = None
        self.trail_high: float | None = None

    def add_bar(self, bar: Bar, strength: int, lookback: int) -> None:
        """Record the bar; confirm the pivot ``strength`` bars back if it is one."""
        self.bar_index += 1
        self.highs.append(bar.high)
        self.lows.append(bar.low)
        self.atr.update(bar.high, bar.low, bar.close)
        if len(self.highs) == self.highs.maxlen:
            highs, lows = list(self.highs), list(self.lows)
            center = self.bar_index - strength
            high, low = highs[strength], lows[strength]
            # Strict on the left, inclusive on the right: a flat top yields one pivot, its first bar.
            if high > max(highs[:strength]) and high >= max(highs[strength + 1 :]):
                self.pivot_highs.append((center, high))
            if low < min(lows[:strength]) and low <= min(lows[strength + 1 :]):
                self.pivot_lows.append((center, low))
        oldest = self.bar_index - lookback
        for pivots in (self.pivot_highs, self.pivot_lows):
            while pivots and pivots[0][0] <= oldest:
                pivots.popleft()


class TrendlineBreakout(Strategy):
    """Long-only breakout through a resistance trendline, per instrument.

    * **Pivots.** A swing (pivot) high is a bar whose high is above the highs of the
      ``pivot_strength`` bars before it and not below those of the ``pivot_strength`` bars after
      it; it is confirmed ``pivot_strength`` bars later, so nothing looks ahead. Pivot lows
      mirror this. Only pivots from the last ``lookback`` bars count.
    * **Lines.** Resistance is the straight line through the last two pivot highs, support the
      line through the last two pivot lows, both extended to the current bar.
    * **Entry** (flat, no open order): the close crosses above resistance by
      ``breakout_margin`` (close > line * (1 + margin) now, previous close at or below the
      line's previous value times the same factor). Buy ``quantity`` at market.
    * **Exit** (long, no open order): the close falls below an ATR trailing stop (the highest
      high since the position was first seen minus ``atr_multiplier`` * ATR(``atr_period``)),
      or below the support line. Sell the whole position at market.
    """

    Params = TrendlineBreakoutParams
    params: TrendlineBreakoutParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        self._trackers = {i: _Tracker(self.params) for i in self.instruments}

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """``lookback`` bars of pivots (the window pivots are kept in), or the ATR's
        ``atr_period + 1``, whichever is longer."""
        assert isinstance(params, TrendlineBreakoutParams)
        return max(params.lookback, params.atr_period + 1)

    def on_bar(self, bar: Bar) -> None:
        tracker = self._trackers.get(bar.instrument_id)
        if tracker is None:
            return
        p = self.params
        tracker.add_bar(bar, p.pivot_strength, p.lookback)
        prev_close = tracker.prev_close
        tracker.prev_close = bar.close
        instrument = bar.instrument_id
        position = self.position(instrument)
        if position <= 0.0:
            tracker.trail_high = None
        else:
            trail = tracker.trail_high
            tracker.trail_high = bar.high if trail is None else max(trail, bar.high)
        if self.has_open_orders(instrument):
            return
        index = tracker.bar_index
        if position == 0.0:
            if prev_close is None or len(tracker.pivot_highs) < 2:
                return
            factor = 1.0 + p.breakout_margin
            now_above = bar.close > _line_at(tracker.pivot_highs, index) * factor
            was_above = prev_close > _line_at(tracker.pivot_highs, index - 1) * factor
            if now_above and not was_above:
                self.buy(instrument, p.quantity)
        elif position > 0.0:
            atr = tracker.atr
            trail_high = tracker.trail_high
            stopped_out = (
                atr.ready
                and trail_high is not None
                and bar.close < trail_high - p.atr_multiplier * atr.value
            )
            below_support = len(tracker.pivot_lows) >= 2 and bar.close < _line_at(
                tracker.pivot_lows, index
            )
            if stopped_out or below_support:
                self.sell(instrument, position)

    def strategy_state(self) -> dict[str, Any]:
        return {
            instrument: {
                "bar_index": t.bar_index,
                "highs": list(t.highs),
                "lows": list(t.lows),
                "pivot_highs": [list(pivot) for pivot in t.pivot_highs],
                "pivot_lows": [list(pivot) for pivot in t.pivot_lows],
                "atr": t.atr.snapshot(),
                "prev_close": t.prev_close,
                "trail_high": t.trail_high,
            }
            for instrument, t in self._trackers.items()
        }

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        for instrument, raw in state.items():
            tracker = _Tracker(self.params)
            tracker.bar_index = int(raw["bar_index"])
            tracker.highs.extend(float(v) for v in raw["highs"])
            tracker.lows.extend(float(v) for v in raw["lows"])
            tracker.pivot_highs.extend((int(i), float(v)) for i, v in raw["pivot_highs"])
            tracker.pivot_lows.extend((int(i), float(v)) for i, v in raw["pivot_lows"])
            tracker.atr.restore(raw["atr"])
            prev_close, trail_high = raw["prev_close"], raw["trail_high"]
            tracker.prev_close = None if prev_close is None else float(prev_close)
            tracker.trail_high = None if trail_high is None else float(trail_high)
            self._trackers[instrument] = tracker
