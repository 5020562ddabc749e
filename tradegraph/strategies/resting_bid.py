"""A passive sample: keep one limit buy resting below the market while trading is allowed.

Useful to exercise the order path without taking positions quickly: the bid rests, is
cancelled when the kill switch trips, and is placed again after a reset.
"""

from __future__ import annotations

from pydantic import BaseModel

from tradegraph.contracts import Bar, OrderSide, OrderType
from tradegraph.strategies.base import Strategy, StrategyParams


class RestingBidParams(StrategyParams):
    quantity: float = 0.01
    discount_pct: float = 2.0


class RestingBid(Strategy):
    """One limit buy ``discount_pct`` below the last close per instrument, re-placed when gone."""

    Params = RestingBidParams
    params: RestingBidParams

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """None: it quotes off the last close from the first bar."""
        return 0

    def on_start(self) -> None:
        self.placed = 0

    def on_bar(self, bar: Bar) -> None:
        if self.kill_switch_tripped or self.has_open_orders(bar.instrument_id):
            return
        self.submit_order(
            bar.instrument_id,
            OrderSide.BUY,
            self.params.quantity,
            OrderType.LIMIT,
            limit_price=bar.close * (1.0 - self.params.discount_pct / 100.0),
        )
        self.placed += 1
