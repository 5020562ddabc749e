"""Two timeframes: the trend from an average of longer bars, entries on the data's own bars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from tradegraph.config.models import StrategyConfig, interval_seconds
from tradegraph.contracts import Bar, Clock, Instrument, OrderSide, Outbox
from tradegraph.errors import ConfigError
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.indicators import SMA


class TrendFilterParams(StrategyParams):
    """Parameters of :class:`TrendFilter`."""

    trend_interval: str = Field(
        default="1h", description="interval of the trend bars; list it in the strategy's bars too"
    )
    trend_period: int = Field(default=24, gt=0, description="trend bars in the trend average")
    entry_period: int = Field(default=30, gt=0, description="data bars in the entry average")
    quantity: float = Field(default=0.01, gt=0.0, description="base units bought per entry")


class _Legs:
    __slots__ = ("above", "entry", "trend")

    def __init__(self, trend_period: int, entry_period: int) -> None:
        self.trend = SMA(trend_period)
        self.entry = SMA(entry_period)
        # Whether the last data bar closed above the entry average (None before it is ready).
        self.above: bool | None = None


class TrendFilter(Strategy):
    """Long-only: buy pullbacks that recover on the short bars while the long bars trend up.

    Needs ``bars: [<trend_interval>]`` in its strategy section. Per instrument:

    * Each trend bar (``trend_interval``) updates SMA(``trend_period``) of the trend closes; the
      trend is up while the last trend close is above it.
    * Each data bar updates SMA(``entry_period``) of the data closes. Flat, trend up and the
      close crossing above that average (above now, at or below on the previous bar): buy
      ``quantity`` at market.
    * Long and the trend no longer up: sell the whole position at market.
    """

    Params = TrendFilterParams
    params: TrendFilterParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        field = f"strategies.{config.id}.params.trend_interval"
        try:
            self._trend_ns = interval_seconds(self.params.trend_interval) * 1_000_000_000
        except ValueError as exc:
            raise ConfigError(f"{field}: {exc}") from None
        if self._trend_ns not in config.bar_intervals_ns:
            raise ConfigError(
                f"{field}: {self.params.trend_interval!r} is not among strategies.{config.id}"
                f".bars {list(config.bars)}; add it there"
            )
        self._longer_ns = frozenset(config.bar_intervals_ns)
        self._last_trend_close: dict[str, float] = {}
        self._legs = {
            i: _Legs(self.params.trend_period, self.params.entry_period) for i in self.instruments
        }

    def trend_up(self, instrument_id: str) -> bool:
        """Whether the last trend bar of ``instrument_id`` closed above the trend average."""
        trend = self._legs[instrument_id].trend
        return trend.ready and self._last_trend_close.get(instrument_id, 0.0) > trend.value

    def on_bar(self, bar: Bar) -> None:
        legs = self._legs.get(bar.instrument_id)
        if legs is None:
            return
        if bar.interval_ns == self._trend_ns:
            legs.trend.update(bar.close)
            self._last_trend_close[bar.instrument_id] = bar.close
            position = self.position(bar.instrument_id)
            if (
                position > 0.0
                and not self.trend_up(bar.instrument_id)
                and not self.has_open_orders(bar.instrument_id)
            ):
                self.submit_order(bar.instrument_id, OrderSide.SELL, position)
            return
        if bar.interval_ns in self._longer_ns:
            return  # other longer bars: not used
        legs.entry.update(bar.close)
        if not legs.entry.ready:
            return
        above = bar.close > legs.entry.value
        crossed = above and legs.above is False
        legs.above = above
        if (
            crossed
            and self.trend_up(bar.instrument_id)
            and self.position(bar.instrument_id) == 0.0
            and not self.has_open_orders(bar.instrument_id)
        ):
            self.submit_order(bar.instrument_id, OrderSide.BUY, self.params.quantity)

    def strategy_state(self) -> dict[str, Any]:
        return {
            instrument: {
                "trend": legs.trend.snapshot(),
                "entry": legs.entry.snapshot(),
                "above": legs.above,
                "last_trend_close": self._last_trend_close.get(instrument),
            }
            for instrument, legs in self._legs.items()
        }

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        self._last_trend_close = {}
        for instrument, raw in state.items():
            legs = self._legs[instrument]
            legs.trend.restore(raw["trend"])
            legs.entry.restore(raw["entry"])
            legs.above = raw["above"]
            if raw["last_trend_close"] is not None:
                self._last_trend_close[instrument] = float(raw["last_trend_close"])
