# %% [markdown]
# # Research from Python
#
# Run backtests from Python, load their folders as pandas DataFrames, compare two parameter
# choices with a bootstrap interval for their Sharpe difference, and ask how likely the best
# of a few choices is a fluke. Open it as a notebook (Jupyter, VS Code) or run it:
# `python examples/research.py` (it writes under `out/research-example/`).

# %%
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tradegraph.research import (
    deflated_sharpe_ratio_from_returns,
    load_run,
    probability_of_backtest_overfitting,
    run_backtest,
)
from tradegraph.research.compare import compare_runs

OUT = Path("out/research-example")
# The packaged default graph (SMA crossover on Binance BTC/USDT 1-minute bars) over its first
# week; pass the path of your own YAML instead of None.
WEEK = ["data.bars.0.limit=10080"]

# %% [markdown]
# ## One backtest, written to a folder and loaded back

# %%
run_backtest(None, WEEK, out=OUT / "default")
run = load_run(OUT / "default")
print(run.summary["status"], f"sharpe {run.summary['sharpe']:.2f}", f"fills {len(run.fills)}")
print(run.equity.tail(3))
print(run.fills[["ts", "side", "quantity", "price", "fee"]].head())

# %% [markdown]
# ## Two parameter choices side by side

# %%
choices = {fast: f"strategies.sma.params.fast_period={fast}" for fast in (20, 40, 60, 120)}
runs = {
    fast: run_backtest(None, [*WEEK, override], out=OUT / f"fast-{fast}")
    for fast, override in choices.items()
}
comparison = compare_runs([runs[60], runs[20]], resamples=1_000, seed=1)
print(pd.DataFrame(comparison["runs"]).set_index("label")[["sharpe", "total_return", "fills"]])
(interval,) = comparison["sharpe_difference"]
print(
    f"Sharpe(fast 60) - Sharpe(fast 20) = {interval['difference']:.2f}, "
    f"95 % interval [{interval['low']:.2f}, {interval['high']:.2f}]"
)

# %% [markdown]
# ## How likely is the best choice a fluke?
#
# Hourly returns of every choice form a periods x trials matrix; the probability of backtest
# overfitting and the deflated Sharpe ratio take it as it is.

# %%
hourly = pd.DataFrame(
    {fast: r.equity["equity"].resample("1h").last().pct_change() for fast, r in runs.items()}
).dropna()
pbo = probability_of_backtest_overfitting(hourly.to_numpy(), n_splits=8)
dsr = deflated_sharpe_ratio_from_returns(hourly.to_numpy())
print(f"{len(hourly)} hourly returns x {hourly.shape[1]} choices")
print(f"probability of backtest overfitting: {pbo.pbo:.2f}")
print(f"deflated Sharpe ratio of the best choice: {dsr.deflated_sharpe_ratio:.2f}")
