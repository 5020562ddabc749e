"""Portfolio state published by the portfolio component."""

from __future__ import annotations

from tradegraph.contracts.base import Message


class PositionSnapshot(Message):
    instrument_id: str
    quantity: float
    avg_price: float
    mark_price: float
    realized_pnl: float
    unrealized_pnl: float


class PortfolioSnapshot(Message):
    """Account-level state, sent to Risk for exposure, daily-loss and drawdown checks."""

    cash: float
    equity: float
    gross_exposure: float
    net_exposure: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    peak_equity: float
    drawdown: float
    day_start_equity: float
    positions: tuple[PositionSnapshot, ...]

    @property
    def drawdown_pct(self) -> float:
        """``drawdown`` as a percentage of ``peak_equity`` (0 without a positive peak)."""
        return 100.0 * self.drawdown / self.peak_equity if self.peak_equity > 0.0 else 0.0

    @property
    def daily_pnl(self) -> float:
        return self.equity - self.day_start_equity
