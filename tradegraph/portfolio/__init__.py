"""Positions, PnL accounting, equity and per-strategy attribution."""

from __future__ import annotations

from tradegraph.portfolio.portfolio import (
    Portfolio,
    PositionAttribution,
    StrategyAttribution,
    apply_fill_to_position,
)

__all__ = [
    "Portfolio",
    "PositionAttribution",
    "StrategyAttribution",
    "apply_fill_to_position",
]
