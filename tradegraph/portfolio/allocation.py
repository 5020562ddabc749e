"""Capital allocation across strategies: targets, bounds, drift, rebalancing, risk tilt.

:class:`CapitalAllocator` is a graph component (id ``allocator``), present only when the
configuration has an ``allocation`` section. It keeps each targeted strategy's value (its
capital at the last rebalance plus the PnL it made since, from the strategy's own fills marked
at the portfolio's marks) and tells each strategy its capital with a ``CapitalAllocated``
event. It never places an order: a strategy that gets a new capital resizes with its own
orders, through Risk like every other order.

Rules:

* At start every strategy gets ``weight_i * starting equity`` (targets normalised to sum to 1,
  within the capital and weight bounds).
* Every ``check_interval_s`` the allocator samples each strategy's value. It rebalances when a
  strategy's current weight is more than ``drift_threshold`` away from its target, and every
  ``rebalance_interval_s`` in any case.
* With ``risk_adjusted`` the targets at a rebalance are
  ``weight_i * exp(sensitivity * clip(sharpe_i, -3, 3)) * max(0, 1 - penalty * drawdown_i)``,
  with Sharpe (annualised) and drawdown (a fraction) from the last ``lookback`` samples, and
  are then projected into the bounds so that they sum to 1 (:func:`bounded_weights`).
* Capital bounds bind in currency: ``min_capital`` and ``max_capital`` become weight bounds at
  the current equity. If the minimums cannot all be met they are shared pro rata; if every
  strategy is at its ``max_capital`` the rest of the equity stays as an unallocated reserve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from tradegraph.config.models import AllocationConfig
from tradegraph.contracts import (
    ALLOCATOR,
    CapitalAllocated,
    Clock,
    Instrument,
    Message,
    OrderFilled,
    Outbox,
    PortfolioSnapshot,
    TimerFired,
)
from tradegraph.contracts.state import ComponentState, StateRecord
from tradegraph.portfolio.portfolio import apply_fill_to_position

__all__ = ["CapitalAllocator", "bounded_weights", "capital_split", "trailing_stats"]

NS_PER_S = 1_000_000_000
SECONDS_PER_YEAR = 365.0 * 86_400.0
_CHECK_TIMER = "allocation-check"
_TOL = 1e-12


def bounded_weights(
    raw: Sequence[float], lower: Sequence[float], upper: Sequence[float]
) -> list[float]:
    """Weights proportional to ``raw`` as far as the bounds allow, summing to 1.

    A weight pushed past a bound is pinned there and the rest is shared among the others in
    proportion to ``raw`` (equally where all ``raw`` are 0), until no bound is violated.

    Raises:
        ValueError: Lengths differ, a bound pair is inverted, a raw weight is negative, or the
            bounds cannot sum to 1 (``sum(lower) > 1`` or ``sum(upper) < 1``).
    """
    n = len(raw)
    if len(lower) != n or len(upper) != n:
        raise ValueError("raw, lower and upper must have the same length")
    if any(lo > hi + _TOL for lo, hi in zip(lower, upper, strict=True)):
        raise ValueError(f"a lower bound is above its upper bound: {list(lower)} / {list(upper)}")
    if any(not (math.isfinite(r) and r >= 0.0) for r in raw):
        raise ValueError(f"raw weights must be finite and >= 0, got {list(raw)}")
    if sum(lower) > 1.0 + 1e-9 or sum(upper) < 1.0 - 1e-9:
        raise ValueError(
            f"bounds cannot sum to 1: sum(lower)={sum(lower):.6g}, sum(upper)={sum(upper):.6g}"
        )
    weights = [0.0] * n
    pinned: dict[int, float] = {}
    while True:
        free = [i for i in range(n) if i not in pinned]
        if not free:
            break
        mass = 1.0 - math.fsum(pinned.values())
        raw_sum = math.fsum(raw[i] for i in free)
        for i in free:
            weights[i] = mass * (raw[i] / raw_sum if raw_sum > 0.0 else 1.0 / len(free))
        over = [i for i in free if weights[i] > upper[i] + _TOL]
        under = [i for i in free if weights[i] < lower[i] - _TOL]
        if not over and not under:
            break
        excess = math.fsum(weights[i] - upper[i] for i in over)
        shortfall = math.fsum(lower[i] - weights[i] for i in under)
        # Pin the side with the larger violation first: pinning it cannot push the other side's
        # violators further out, so the loop ends after at most n rounds.
        if excess >= shortfall:
            for i in over:
                pinned[i] = upper[i]
        else:
            for i in under:
                pinned[i] = lower[i]
    for i, value in pinned.items():
        weights[i] = value
    # Rounding leftovers go to the weights with room, so the sum is 1 to float precision.
    residual = 1.0 - math.fsum(weights)
    for i in range(n):
        if abs(residual) <= _TOL:
            break
        if residual > 0.0:
            step = min(residual, upper[i] - weights[i])
        else:
            step = max(residual, lower[i] - weights[i])
        weights[i] += step
        residual -= step
    return weights


def capital_split(
    equity: float,
    weights: Sequence[float],
    min_weight: Sequence[float],
    max_weight: Sequence[float],
    min_capital: Sequence[float],
    max_capital: Sequence[float | None],
) -> list[float]:
    """Split ``equity`` by ``weights`` within weight and capital bounds.

    Returns the capital of each strategy. It sums to ``equity`` unless every strategy is at
    its ``max_capital`` (the remainder is then left unallocated); minimums that cannot all be
    met are shared pro rata.
    """
    n = len(weights)
    if equity <= 0.0:
        return [0.0] * n
    lower = [max(min_weight[i], min_capital[i] / equity) for i in range(n)]
    upper = []
    for i in range(n):
        cap = max_capital[i]
        upper.append(min(max_weight[i], 1.0 if cap is None else cap / equity))
    lower = [min(lo, hi) for lo, hi in zip(lower, upper, strict=True)]
    if sum(upper) < 1.0:
        return [hi * equity for hi in upper]
    if sum(lower) > 1.0:
        total = sum(lower)
        return [lo / total * equity for lo in lower]
    return [w * equity for w in bounded_weights(weights, lower, upper)]


def trailing_stats(values: Sequence[float], periods_per_year: float) -> tuple[float, float]:
    """Annualised Sharpe ratio of the period returns and the maximum drawdown (a fraction).

    A series too short or too flat to measure gives ``(0.0, drawdown)``.
    """
    returns = [
        values[i] / values[i - 1] - 1.0 for i in range(1, len(values)) if values[i - 1] > 0.0
    ]
    peak = -math.inf
    drawdown = 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0.0:
            drawdown = max(drawdown, 1.0 - value / peak)
    if len(returns) < 2:
        return 0.0, drawdown
    mean = math.fsum(returns) / len(returns)
    var = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 1e-24:
        return 0.0, drawdown
    return mean / math.sqrt(var) * math.sqrt(periods_per_year), drawdown


@dataclass(slots=True)
class _Sleeve:
    """One strategy's account inside the allocator."""

    capital: float
    pnl_at_rebalance: float = 0.0
    target_weight: float = 0.0
    # instrument -> [quantity, avg_price, realized_pnl]
    positions: dict[str, list[float]] = field(default_factory=dict)
    fees: float = 0.0
    samples: list[float] = field(default_factory=list)


class SleeveState(StateRecord):
    """One strategy's sleeve, as stored (positions: instrument -> quantity, avg price,
    realized PnL)."""

    capital: float
    pnl_at_rebalance: float
    target_weight: float
    positions: dict[str, list[float]]
    fees: float
    samples: list[float]


class AllocatorState(ComponentState):
    """All of a :class:`CapitalAllocator`'s state."""

    sleeves: dict[str, SleeveState]
    marks: dict[str, float]
    reserve: float
    last_rebalance_ns: int
    history: list[CapitalAllocated]


class CapitalAllocator:
    """Allocates capital across strategies; see the module docstring for the rules.

    Args:
        config: The ``allocation`` section.
        instruments: Instruments keyed by id (for marks before the first snapshot).
        clock: Time and the check timer.
        outbox: Where ``CapitalAllocated`` goes (to the strategy and the driver).
        starting_equity: Equity to allocate at start (the portfolio's starting cash).

    Attributes:
        history: Every allocation sent, in order.
    """

    State: ClassVar[type[AllocatorState]] = AllocatorState

    component_id = ALLOCATOR

    def __init__(
        self,
        config: AllocationConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
        *,
        starting_equity: float,
    ) -> None:
        self._config = config
        self._clock = clock
        self._outbox = outbox
        self._starting_equity = starting_equity
        self._targets = {t.strategy: t for t in config.targets}
        total = math.fsum(t.weight for t in config.targets)
        self._base_weights = {t.strategy: t.weight / total for t in config.targets}
        self._sleeves: dict[str, _Sleeve] = {s: _Sleeve(capital=0.0) for s in self._targets}
        self._marks: dict[str, float] = {}
        self._reserve = 0.0
        self._last_rebalance_ns = 0
        self._check_ns = round(config.check_interval_s * NS_PER_S)
        self._periods_per_year = SECONDS_PER_YEAR / config.check_interval_s
        self.history: list[CapitalAllocated] = []

    # ------------------------------------------------------------------ component interface

    def start(self) -> None:
        """Allocate the starting equity and arm the first check."""
        now = self._clock.now_ns()
        self._rebalance(self._starting_equity, "initial", dict(self._base_weights))
        self._clock.set_timer(_CHECK_TIMER, now + self._check_ns)

    def stop(self) -> None:
        """Nothing to do."""

    def handle(self, msg: Message) -> None:
        if type(msg) is OrderFilled:
            self._on_fill(msg)
        elif type(msg) is PortfolioSnapshot:
            for position in msg.positions:
                self._marks[position.instrument_id] = position.mark_price
        elif type(msg) is TimerFired and msg.name == _CHECK_TIMER:
            self._on_check()

    # ------------------------------------------------------------------ reading

    def strategy_value(self, strategy_id: str) -> float:
        """Capital at the last rebalance plus the PnL made since, after fees."""
        sleeve = self._sleeves[strategy_id]
        return sleeve.capital + self._pnl(sleeve) - sleeve.pnl_at_rebalance

    def current_weights(self) -> dict[str, float]:
        """Each strategy's value as a share of the allocatable equity."""
        equity = self.allocatable_equity()
        if equity <= 0.0:
            return dict.fromkeys(self._sleeves, 0.0)
        return {s: self.strategy_value(s) / equity for s in self._sleeves}

    def allocatable_equity(self) -> float:
        return math.fsum(self.strategy_value(s) for s in self._sleeves) + self._reserve

    def drift(self) -> dict[str, float]:
        """``|current weight - target weight|`` per strategy."""
        return {
            s: abs(w - self._sleeves[s].target_weight) for s, w in self.current_weights().items()
        }

    # ------------------------------------------------------------------ internals

    def _pnl(self, sleeve: _Sleeve) -> float:
        total = -sleeve.fees
        for instrument_id, (quantity, avg_price, realized) in sleeve.positions.items():
            mark = self._marks.get(instrument_id, avg_price)
            total += realized + quantity * (mark - avg_price)
        return total

    def _on_fill(self, fill: OrderFilled) -> None:
        sleeve = self._sleeves.get(fill.strategy_id)
        if sleeve is None:
            return
        position = sleeve.positions.setdefault(fill.instrument_id, [0.0, 0.0, 0.0])
        quantity, avg_price, realized, _ = apply_fill_to_position(
            position[0], position[1], fill.signed_qty, fill.last_px
        )
        position[0], position[1] = quantity, avg_price
        position[2] += realized
        sleeve.fees += fill.fee
        self._marks.setdefault(fill.instrument_id, fill.last_px)

    def _on_check(self) -> None:
        now = self._clock.now_ns()
        config = self._config
        lookback = config.lookback + 1
        for strategy_id, sleeve in self._sleeves.items():
            sleeve.samples.append(self.strategy_value(strategy_id))
            del sleeve.samples[:-lookback]
        reason = ""
        interval = config.rebalance_interval_s
        if interval is not None and now - self._last_rebalance_ns >= round(interval * NS_PER_S):
            reason = "schedule"
        elif config.drift_threshold is not None and any(
            d > config.drift_threshold for d in self.drift().values()
        ):
            reason = "drift"
        if reason:
            weights = self._risk_adjusted() if config.risk_adjusted else dict(self._base_weights)
            self._rebalance(self.allocatable_equity(), reason, weights)
        self._clock.set_timer(_CHECK_TIMER, now + self._check_ns)

    def _risk_adjusted(self) -> dict[str, float]:
        config = self._config
        raw = {}
        for strategy_id, sleeve in self._sleeves.items():
            sharpe, drawdown = trailing_stats(sleeve.samples, self._periods_per_year)
            tilt = math.exp(config.sharpe_sensitivity * max(-3.0, min(3.0, sharpe)))
            damp = max(0.0, 1.0 - config.drawdown_penalty * drawdown)
            raw[strategy_id] = self._base_weights[strategy_id] * tilt * damp
        return raw

    def _rebalance(self, equity: float, reason: str, raw_weights: dict[str, float]) -> None:
        ids = list(self._sleeves)
        targets = [self._targets[s] for s in ids]
        capitals = capital_split(
            equity,
            [raw_weights[s] for s in ids],
            [t.min_weight for t in targets],
            [t.max_weight for t in targets],
            [t.min_capital for t in targets],
            [t.max_capital for t in targets],
        )
        raw_total = math.fsum(raw_weights[s] for s in ids)
        now = self._clock.now_ns()
        self._last_rebalance_ns = now
        self._reserve = equity - math.fsum(capitals)
        for strategy_id, target, capital in zip(ids, targets, capitals, strict=True):
            sleeve = self._sleeves[strategy_id]
            sleeve.capital = capital
            sleeve.pnl_at_rebalance = self._pnl(sleeve)
            weight = capital / equity if equity > 0.0 else 0.0
            sleeve.target_weight = weight
            event = CapitalAllocated(
                strategy_id=strategy_id,
                capital=capital,
                weight=weight,
                target_weight=raw_weights[strategy_id] / raw_total if raw_total > 0.0 else 0.0,
                risk_multiplier=target.risk_multiplier,
                equity=equity,
                reason=reason,
                ts_event_ns=now,
                ts_init_ns=now,
            )
            self.history.append(event)
            self._outbox.publish(event)

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> AllocatorState:
        return AllocatorState(
            sleeves={
                s: SleeveState(
                    capital=v.capital,
                    pnl_at_rebalance=v.pnl_at_rebalance,
                    target_weight=v.target_weight,
                    positions={k: list(p) for k, p in v.positions.items()},
                    fees=v.fees,
                    samples=list(v.samples),
                )
                for s, v in self._sleeves.items()
            },
            marks=dict(self._marks),
            reserve=self._reserve,
            last_rebalance_ns=self._last_rebalance_ns,
            history=list(self.history),
        )

    def restore(self, state: AllocatorState) -> None:
        for strategy_id, raw in state.sleeves.items():
            self._sleeves[strategy_id] = _Sleeve(
                capital=raw.capital,
                pnl_at_rebalance=raw.pnl_at_rebalance,
                target_weight=raw.target_weight,
                positions={k: list(p) for k, p in raw.positions.items()},
                fees=raw.fees,
                samples=list(raw.samples),
            )
        self._marks = dict(state.marks)
        self._reserve = state.reserve
        self._last_rebalance_ns = state.last_rebalance_ns
        self.history = list(state.history)
