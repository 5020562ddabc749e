"""Moving-average crossover: the reference strategy and the benchmark workload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import Bar, Clock, Instrument, OrderSide, Outbox
from tradegraph.strategies.base import Strategy, StrategyParams


class SmaCrossParams(StrategyParams):
    """Parameters of :class:`SmaCross`."""

    fast_period: int = Field(default=10, gt=0, description="bars in the fast average")
    slow_period: int = Field(default=30, gt=0, description="bars in the slow average")
    quantity: float = Field(default=0.01, gt=0.0, description="base units bought per entry")
    capital_fraction: float | None = Field(
        default=None,
        gt=0.0,
        description="with capital allocation: buy this share of the sizing capital per entry "
        "instead of a fixed quantity",
    )
    execution_algo: Literal["twap", "vwap", "iceberg", "pov"] | None = Field(
        default=None, description="work entries and exits with this execution algorithm"
    )
    execution_params: dict[str, Any] = Field(
        default_factory=dict, description="parameters of execution_algo"
    )

    @field_validator("slow_period")
    @classmethod
    def _slow_longer_than_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast_period")
        if fast is not None and slow <= fast:
            raise ValueError(f"must be greater than fast_period ({fast})")
        return slow


class _CrossState:
    """Per-instrument state: one ring buffer of the last ``slow_period`` closes.

    The fast window is the newest ``fast_period`` slots of the same buffer, so one store per bar
    feeds both running sums.
    """

    __slots__ = ("closes", "count", "fast_sum", "index", "relation", "slow_sum")

    def __init__(self, slow_period: int) -> None:
        self.closes = [0.0] * slow_period
        self.index = 0
        self.count = 0
        self.fast_sum = 0.0
        self.slow_sum = 0.0
        # +1 fast above slow, -1 below, 0 equal, as of the last bar.
        self.relation = 0


class SmaCross(Strategy):
    """Long-only crossover of a fast and a slow simple moving average of bar closes.

    Rules, per instrument:

    * On every bar, update SMA(``fast_period``) and SMA(``slow_period``) of the close.
    * Once both are ready, compare them. A *cross above* happens on a bar where the fast average
      is above the slow one and was at or below it on the previous bar; a *cross below* is the
      mirror image (now below, previously at or above). The first bar on which both averages
      are ready has no previous relation and never signals.
    * Flat (position 0, no open order for the instrument) and a cross above: buy ``quantity``
      at market.
    * Long (position > 0, no open order) and a cross below: sell the whole position at market.

    With ``capital_fraction`` and capital allocation, an entry buys that share of the sizing
    capital (rounded down to the lot) instead of ``quantity``. With ``execution_algo``, entries
    and exits are parent orders worked by that algorithm, and no new one starts while one works.

    The SMA arithmetic is inlined: this strategy sits on the benchmark's hot path.
    """

    Params = SmaCrossParams
    params: SmaCrossParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        self._fast = self.params.fast_period
        self._slow = self.params.slow_period
        self._quantity = self.params.quantity
        self._algo = self.params.execution_algo
        self._states = {i: _CrossState(self._slow) for i in self.instruments}

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """``slow_period``: the bars that fill the slow window; the bar after may signal."""
        assert isinstance(params, SmaCrossParams)
        return params.slow_period

    def on_start(self) -> None:
        execution = self.params.execution_params
        if self._algo == "vwap" and execution.get("profile") == "online":
            # An online VWAP sizes its slices from the volume seen so far: learn from bar one.
            for instrument_id in self.instruments:
                self.learn_volume_profile(instrument_id, int(execution.get("profile_buckets", 24)))

    def on_bar(self, bar: Bar) -> None:
        state = self._states.get(bar.instrument_id)
        if state is None:
            return
        close = bar.close
        closes = state.closes
        i = state.index
        fast = self._fast
        slow = self._slow
        # Negative indices wrap around the ring; slots not yet written hold 0.0, so the sums
        # are right during warm-up too.
        fast_sum = state.fast_sum + close - closes[i - fast]
        slow_sum = state.slow_sum + close - closes[i]
        closes[i] = close
        i += 1
        if i == slow:
            i = 0
            # Re-add the windows exactly once per lap so rounding cannot accumulate.
            slow_sum = sum(closes)
            fast_sum = sum(closes[slow - fast :])
        state.index = i
        state.fast_sum = fast_sum
        state.slow_sum = slow_sum
        gap = fast_sum / fast - slow_sum / slow
        relation = 1 if gap > 0.0 else (-1 if gap < 0.0 else 0)
        if state.count < slow:
            # Warming up: the relation on the bar that completes the slow window becomes the
            # "previous" of the first bar that may signal.
            state.count += 1
            state.relation = relation
            return
        if relation == state.relation:
            return
        state.relation = relation
        # The relation changed, so a new +1 had 0 or -1 before (a cross above) and a new -1
        # had 0 or +1 before (a cross below).
        if relation == 1:
            if self.position(bar.instrument_id) == 0.0 and not self.has_open_orders(
                bar.instrument_id
            ):
                self._enter(bar)
        elif relation == -1:
            position = self.position(bar.instrument_id)
            if position > 0.0 and not self.has_open_orders(bar.instrument_id):
                self._trade(bar.instrument_id, OrderSide.SELL, position)

    def _enter(self, bar: Bar) -> None:
        quantity = self._quantity
        fraction = self.params.capital_fraction
        sizing = self.sizing_capital
        if fraction is not None and sizing is not None:
            instrument = self.instruments[bar.instrument_id]
            quantity = instrument.round_quantity(fraction * sizing / bar.close)
            if quantity <= 0.0:
                return
        self._trade(bar.instrument_id, OrderSide.BUY, quantity)

    def _trade(self, instrument_id: str, side: OrderSide, quantity: float) -> None:
        if self._algo is None:
            self.submit_order(instrument_id, side, quantity)
        elif not self.parent_orders.active:
            self.submit_algo_order(
                instrument_id, side, quantity, self._algo, **self.params.execution_params
            )

    def strategy_state(self) -> dict[str, Any]:
        return {
            instrument: {
                "closes": list(s.closes),
                "index": s.index,
                "count": s.count,
                "fast_sum": s.fast_sum,
                "slow_sum": s.slow_sum,
                "relation": s.relation,
            }
            for instrument, s in self._states.items()
        }

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        for instrument, raw in state.items():
            s = _CrossState(self._slow)
            s.closes = [float(v) for v in raw["closes"]]
            s.index = int(raw["index"])
            s.count = int(raw["count"])
            s.fast_sum = float(raw["fast_sum"])
            s.slow_sum = float(raw["slow_sum"])
            s.relation = int(raw["relation"])
            self._states[instrument] = s
