"""Positions, PnL accounting, equity, per-strategy attribution and capital allocation."""

from __future__ import annotations

from tradegraph.portfolio.account import CashAccount, CashAccountState, Reservation, Shortfall
from tradegraph.portfolio.allocation import (
    CapitalAllocator,
    bounded_weights,
    capital_split,
    trailing_stats,
)
from tradegraph.portfolio.margin import Account, AccountState, MarginAccount, MarginAccountState
from tradegraph.portfolio.portfolio import (
    Portfolio,
    PositionAttribution,
    StrategyAttribution,
    apply_fill_to_position,
)

__all__ = [
    "Account",
    "AccountState",
    "CapitalAllocator",
    "CashAccount",
    "CashAccountState",
    "MarginAccount",
    "MarginAccountState",
    "Portfolio",
    "PositionAttribution",
    "Reservation",
    "Shortfall",
    "StrategyAttribution",
    "apply_fill_to_position",
    "bounded_weights",
    "capital_split",
    "trailing_stats",
]
