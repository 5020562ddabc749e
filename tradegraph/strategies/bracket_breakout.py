"""Channel breakout entered with a bracket: every entry carries its take-profit and stop."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    Clock,
    Instrument,
    OrderFilled,
    OrderSide,
    Outbox,
    TimeInForce,
)
from tradegraph.strategies.base import Strategy, StrategyParams


class BracketBreakoutParams(StrategyParams):
    """Parameters of :class:`BracketBreakout`."""

    lookback: int = Field(default=60, gt=1, description="bars in the breakout channel")
    quantity: float = Field(default=0.01, gt=0.0, description="base units bought per entry")
    take_profit_pct: float = Field(
        default=0.5, gt=0.0, description="take-profit distance above the signal close, percent"
    )
    stop_pct: float = Field(
        default=0.3, gt=0.0, lt=100.0, description="stop distance below the signal close, percent"
    )
    entry_expire_s: float | None = Field(
        default=None,
        gt=0.0,
        description="enter with a limit order entry_pullback_pct below the signal close, good "
        "for this many seconds (time in force gtd), instead of at market",
    )
    entry_pullback_pct: float = Field(
        default=0.1, ge=0.0, lt=100.0, description="limit entry's distance below the close, percent"
    )
    trailing: bool = Field(
        default=False,
        description="protect with a trailing stop at stop_pct (in bps of the best price) "
        "instead of the bracket's fixed stop",
    )


class BracketBreakout(Strategy):
    """Long-only breakout of the highest high of the last ``lookback`` bars.

    Flat, with no order working, and a bar closing above the channel's high: buy ``quantity``
    at market in a bracket whose take-profit sits ``take_profit_pct`` above the signal close
    and whose stop sits ``stop_pct`` below it. Risk holds the two exits until the entry has
    filled, then until one of them triggers; the other is cancelled. With ``entry_expire_s``
    the entry is a limit order ``entry_pullback_pct`` below the signal close, good till that many seconds later; the
    exits go with it if it expires unfilled. With ``trailing``, the
    entry is a plain market order and, once it has filled, a reduce-only trailing stop
    ``stop_pct`` (as bps of the best price) behind the high protects it.
    """

    Params = BracketBreakoutParams
    params: BracketBreakoutParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        self._highs: dict[str, deque[float]] = {
            i: deque(maxlen=self.params.lookback) for i in self.instruments
        }

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """``lookback``: the bars that fill the channel."""
        assert isinstance(params, BracketBreakoutParams)
        return params.lookback

    def on_bar(self, bar: Bar) -> None:
        iid = bar.instrument_id
        highs = self._highs[iid]
        full = len(highs) == highs.maxlen
        breakout = full and bar.close > max(highs)
        highs.append(bar.high)
        if not breakout or self.position(iid) != 0.0 or self.has_open_orders(iid):
            return
        p = self.params
        if p.trailing:
            self.buy(iid, p.quantity, tag="breakout")
            return
        expire_s = p.entry_expire_s
        self.bracket(
            iid,
            OrderSide.BUY,
            p.quantity,
            take_profit_price=bar.close * (1.0 + p.take_profit_pct / 100.0),
            stop_price=bar.close * (1.0 - p.stop_pct / 100.0),
            entry_price=None if expire_s is None else bar.close * (1 - p.entry_pullback_pct / 100),
            time_in_force=TimeInForce.GTC if expire_s is None else TimeInForce.GTD,
            expire_at_ns=None if expire_s is None else self.now_ns() + round(expire_s * 1e9),
            tag="breakout",
        )

    def on_fill(self, fill: OrderFilled) -> None:
        if self.params.trailing and fill.side is OrderSide.BUY and fill.leaves_qty <= 0.0:
            self.trailing_stop(
                fill.instrument_id,
                OrderSide.SELL,
                self.position(fill.instrument_id),
                self.params.stop_pct * 100.0,
                offset_type="bps",
                reduce_only=True,
                tag="trail",
            )

    def strategy_state(self) -> dict[str, Any]:
        return {iid: list(highs) for iid, highs in self._highs.items()}

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        for iid, highs in state.items():
            self._highs[iid] = deque(highs, maxlen=self.params.lookback)
