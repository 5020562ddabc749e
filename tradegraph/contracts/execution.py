"""Execution-algorithm and capital-allocation events.

An execution algorithm works a *parent* order by sending child ``OrderIntent`` s (each tagged
with the parent id) through Risk; when the parent reaches a terminal state it publishes one
``ExecutionReport``. A capital allocator tells each strategy how much capital it may size from
with ``CapitalAllocated``.
"""

from __future__ import annotations

from tradegraph.contracts.base import Message
from tradegraph.contracts.enums import OrderSide


class ExecutionReport(Message):
    """The outcome of one parent order worked by an execution algorithm.

    Prices are in the quote currency; basis-point figures are signed so that a positive value
    is a cost (paid more than the benchmark on a buy, received less on a sell).

    Attributes:
        parent_id: The parent's execution id; every child intent and fill carries it as ``tag``.
        strategy_id: The strategy that owns the parent.
        instrument_id: What was traded.
        algo: ``twap``, ``vwap``, ``iceberg`` or ``pov``.
        side: Buy or sell.
        status: ``completed``, ``cancelled``, ``expired`` or ``failed``.
        reason: Why the parent ended, for humans.
        quantity: Parent quantity (rounded down to the lot).
        filled_quantity: Sum of the child fills.
        avg_price: Volume-weighted fill price; ``None`` when nothing filled.
        arrival_price: Last price known when the parent was submitted.
        implementation_shortfall_bps: ``side * (avg_price - arrival_price) / arrival_price``
            in basis points, over the filled part; ``None`` when nothing filled.
        interval_vwap: Market VWAP (typical price ``(high+low+close)/3`` weighted by volume) of
            the bars seen while the parent worked; ``None`` without volume.
        slippage_vs_vwap_bps: ``side * (avg_price - interval_vwap) / interval_vwap`` in basis
            points; ``None`` when either is unknown.
        fees: Fees paid by the children.
        child_orders: Child intents sent.
        child_fills: Child fills received.
        rejections: Children refused by Risk or the venue.
        start_ns: When the parent was submitted.
        end_ns: When it reached its terminal state.
    """

    parent_id: str
    strategy_id: str
    instrument_id: str
    algo: str
    side: OrderSide
    status: str
    reason: str = ""
    quantity: float
    filled_quantity: float
    avg_price: float | None
    arrival_price: float
    implementation_shortfall_bps: float | None
    interval_vwap: float | None
    slippage_vs_vwap_bps: float | None
    fees: float
    child_orders: int
    child_fills: int
    rejections: int
    start_ns: int
    end_ns: int

    @property
    def leaves_quantity(self) -> float:
        """Quantity the parent did not fill."""
        return max(0.0, self.quantity - self.filled_quantity)


class CapitalAllocated(Message):
    """The allocator set a strategy's capital; the strategy sizes its orders from it.

    Attributes:
        strategy_id: The strategy.
        capital: Capital allocated, in the quote currency.
        weight: ``capital`` as a share of the allocatable equity.
        target_weight: The weight the allocator aimed at (after risk adjustment and bounds).
        risk_multiplier: The strategy sizes from ``capital * risk_multiplier``.
        equity: Allocatable equity at the time (the sum of the strategies' values plus any
            unallocated reserve).
        reason: ``initial``, ``schedule`` or ``drift``.
    """

    strategy_id: str
    capital: float
    weight: float
    target_weight: float
    risk_multiplier: float
    equity: float
    reason: str

    @property
    def sizing_capital(self) -> float:
        """What the strategy should size from: ``capital * risk_multiplier``."""
        return self.capital * self.risk_multiplier
