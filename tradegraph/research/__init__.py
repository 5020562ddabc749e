"""Research statistics over the trials of a search: how likely the best of them is a fluke."""

from __future__ import annotations

from tradegraph.research.overfitting import (
    BacktestOverfitting,
    DeflatedSharpe,
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_returns,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

__all__ = [
    "BacktestOverfitting",
    "DeflatedSharpe",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_from_returns",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
]
