"""Long-only mean reversion: buy oversold dips below the lower Bollinger band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import Bar, Clock, Instrument, Outbox
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.indicators import RSI, TEMA, BollingerBands


class MeanReversionParams(StrategyParams):
    """Parameters of :class:`MeanReversion`."""

    rsi_period: int = Field(default=14, gt=0)
    oversold: float = Field(default=30.0, gt=0.0, lt=100.0, description="RSI entry threshold")
    overbought: float = Field(default=70.0, gt=0.0, lt=100.0, description="RSI exit threshold")
    bb_period: int = Field(default=20, gt=1)
    bb_num_std: float = Field(default=2.0, gt=0.0)
    tema_period: int = Field(default=9, gt=0)
    setup_bars: int = Field(
        default=10,
        ge=1,
        description="bars a stretched-down setup stays armed, waiting for the turn",
    )
    quantity: float = Field(default=0.01, gt=0.0, description="base units bought per entry")

    @field_validator("overbought")
    @classmethod
    def _overbought_above_oversold(cls, overbought: float, info: ValidationInfo) -> float:
        oversold = info.data.get("oversold")
        if oversold is not None and overbought <= oversold:
            raise ValueError(f"must be greater than oversold ({oversold})")
        return overbought


class _Signals:
    __slots__ = ("armed", "bands", "prev_tema", "rsi", "tema")

    def __init__(self, params: MeanReversionParams) -> None:
        self.rsi = RSI(params.rsi_period)
        self.bands = BollingerBands(params.bb_period, params.bb_num_std)
        self.tema = TEMA(params.tema_period)
        self.prev_tema: float | None = None
        # Bars left in which a TEMA upturn triggers an entry; 0 when no setup is armed.
        self.armed = 0


class MeanReversion(Strategy):
    """Long-only mean reversion on bar closes, per instrument.

    Indicators: RSI(``rsi_period``), Bollinger bands(``bb_period``, ``bb_num_std``) and
    TEMA(``tema_period``) of the close. No signal until all three are ready.

    * Setup: RSI < ``oversold`` **and** close < lower band: price is stretched down. The setup
      stays armed for ``setup_bars`` bars (re-armed while the stretch lasts).
    * Entry (flat, no open order, setup armed): the TEMA turns up (higher than on the previous
      bar): price has started to come back. Buy ``quantity`` at market. Requiring the turn on
      the very bar of the stretch would almost never fire: a fast TEMA is still falling then.
    * Exit (long, no open order): RSI > ``overbought`` **or** close > middle band: the stretch
      has reverted. Sell the whole position at market.
    """

    Params = MeanReversionParams
    params: MeanReversionParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        self._signals = {i: _Signals(self.params) for i in self.instruments}

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """Until RSI (``rsi_period + 1`` closes), the bands (``bb_period``) and the TEMA
        (``3 * tema_period - 2``) are ready, plus one bar for the TEMA's previous value."""
        assert isinstance(params, MeanReversionParams)
        return max(params.rsi_period + 1, params.bb_period, 3 * params.tema_period - 2) + 1

    def on_bar(self, bar: Bar) -> None:
        signals = self._signals.get(bar.instrument_id)
        if signals is None:
            return
        close = bar.close
        rsi, bands, tema = signals.rsi, signals.bands, signals.tema
        rsi.update(close)
        bands.update(close)
        tema.update(close)
        if not tema.ready:
            return
        prev_tema = signals.prev_tema
        signals.prev_tema = tema.value
        if prev_tema is None or not (rsi.ready and bands.ready):
            return
        p = self.params
        if rsi.value < p.oversold and close < bands.lower:
            signals.armed = p.setup_bars
        elif signals.armed:
            signals.armed -= 1
        instrument = bar.instrument_id
        if self.has_open_orders(instrument):
            return
        position = self.position(instrument)
        if position == 0.0:
            if signals.armed and tema.value > prev_tema:
                signals.armed = 0
                self.buy(instrument, p.quantity)
        elif position > 0.0 and (rsi.value > p.overbought or close > bands.middle):
            self.sell(instrument, position)

    def strategy_state(self) -> dict[str, Any]:
        return {
            instrument: {
                "rsi": s.rsi.snapshot(),
                "bands": s.bands.snapshot(),
                "tema": s.tema.snapshot(),
                "prev_tema": s.prev_tema,
                "armed": s.armed,
            }
            for instrument, s in self._signals.items()
        }

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        for instrument, raw in state.items():
            signals = _Signals(self.params)
            signals.rsi.restore(raw["rsi"])
            signals.bands.restore(raw["bands"])
            signals.tema.restore(raw["tema"])
            prev = raw["prev_tema"]
            signals.prev_tema = None if prev is None else float(prev)
            signals.armed = int(raw.get("armed", 0))
            self._signals[instrument] = signals
