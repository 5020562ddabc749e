"""Research from Python: runs, sweeps and batches loaded as pandas DataFrames, a backtest run
with overrides, and statistics over the trials of a search (how likely the best of them is a
fluke)."""

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
from tradegraph.research.runs import (
    MonteCarloRun,
    Run,
    SweepRun,
    load,
    load_montecarlo,
    load_run,
    load_sweep,
    resolve_run_folder,
    run_backtest,
)

__all__ = [
    "BacktestOverfitting",
    "DeflatedSharpe",
    "MonteCarloRun",
    "Run",
    "SweepRun",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_from_returns",
    "expected_max_sharpe",
    "load",
    "load_montecarlo",
    "load_run",
    "load_sweep",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "resolve_run_folder",
    "run_backtest",
]
