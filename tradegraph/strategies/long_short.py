"""A long/short moving-average crossover for margin accounts (perpetuals)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    Clock,
    Instrument,
    OrderSide,
    Outbox,
    PositionLiquidated,
)
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.indicators import SMA


class LongShortParams(StrategyParams):
    """Parameters of :class:`LongShort`."""

    fast_period: int = Field(default=20, gt=0, description="bars in the fast average")
    slow_period: int = Field(default=60, gt=0, description="bars in the slow average")
    quantity: float = Field(default=0.01, gt=0.0, description="size of the long or the short")

    @field_validator("slow_period")
    @classmethod
    def _slow_longer_than_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast_period")
        if fast is not None and slow <= fast:
            raise ValueError(f"must be greater than fast_period ({fast})")
        return slow


class LongShort(Strategy):
    """Always in the market once the averages are ready: long ``quantity`` while the fast SMA
    of closes is above the slow one, short ``quantity`` while it is below.

    On a cross, one market order takes the position from where it is to the new target (a
    flip trades twice ``quantity``). Nothing is sent while an order is open. Needs a margin
    account (``venues[].account: margin``); on a cash account every short is refused.
    A liquidation is counted in ``liquidations`` and the next cross trades again from flat.
    """

    Params = LongShortParams
    params: LongShortParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        self._fast = {i: SMA(self.params.fast_period) for i in self.instruments}
        self._slow = {i: SMA(self.params.slow_period) for i in self.instruments}
        self._side: dict[str, int] = {}
        self.liquidations = 0

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """``slow_period``: the bars that fill the slow window."""
        assert isinstance(params, LongShortParams)
        return params.slow_period

    def on_bar(self, bar: Bar) -> None:
        iid = bar.instrument_id
        fast = self._fast.get(iid)
        if fast is None:
            return
        slow = self._slow[iid]
        fast.update(bar.close)
        slow.update(bar.close)
        if not slow.ready:
            return
        gap = fast.value - slow.value
        side = 1 if gap > 0.0 else (-1 if gap < 0.0 else 0)
        if side == 0 or side == self._side.get(iid) or self.has_open_orders(iid):
            return
        self._side[iid] = side
        target = side * self.params.quantity
        change = self.instruments[iid].round_quantity(abs(target - self.position(iid)))
        if change > 0.0:
            self.submit_order(
                iid, OrderSide.BUY if target > self.position(iid) else OrderSide.SELL, change
            )

    def on_liquidation(self, event: PositionLiquidated) -> None:
        # Stay out until the averages cross again rather than re-enter into the same move.
        self.liquidations += 1
