"""What one ``--search optuna`` trial costs over a ``--search grid`` trial, in this process:
prints JSON.

Runs N trials as a grid sweep and as an optuna sweep (TPE, rounds of ``--round-size``) over the
same space, alternating over ``--rounds`` rounds, and reports the best time of each, the time
the trials' backtests took inside each, and the difference per trial. ``import optuna`` (paid
once per optuna sweep) is timed apart, in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from tradegraph.batch.sweep import Sweep, SweepResult

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"


def _timed(search: str, trials: int, limit: int, round_size: int) -> tuple[float, float]:
    started = time.perf_counter()
    result: SweepResult = Sweep(
        None,
        [f"{FAST}=" + ",".join(str(5 * (i + 1)) for i in range(trials)), f"{SLOW}=240"],
        overrides=[f"data.bars.0.limit={limit}"] if limit else [],
        search=search,
        trials=trials if search == "optuna" else None,
        workers=round_size,
        in_process=True,
        html=False,
    ).run()
    wall = time.perf_counter() - started
    backtests = sum(t or 0.0 for t in result.table.column("elapsed_s").to_pylist())
    return wall, backtests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--round-size", type=int, default=2)
    parser.add_argument("--bars", type=int, default=0, help="bars per trial (0: the full month)")
    args = parser.parse_args()
    timings: dict[str, list[tuple[float, float]]] = {"grid": [], "optuna": []}
    for _ in range(args.rounds):
        for search in ("optuna", "grid"):
            timings[search].append(_timed(search, args.trials, args.bars, args.round_size))
    grid_s, grid_kernel = min(timings["grid"])
    optuna_s, optuna_kernel = min(timings["optuna"])
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import optuna; print(time.perf_counter() - t)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        json.dumps(
            {
                "trials": args.trials,
                "bars_per_trial": args.bars or "full month",
                "round_size": args.round_size,
                "grid_s": round(grid_s, 3),
                "optuna_s": round(optuna_s, 3),
                "grid_backtests_s": round(grid_kernel, 3),
                "optuna_backtests_s": round(optuna_kernel, 3),
                "optuna_overhead_per_trial_s": round((optuna_s - grid_s) / args.trials, 4),
                "search_overhead_per_trial_s": round(
                    ((optuna_s - optuna_kernel) - (grid_s - grid_kernel)) / args.trials, 4
                ),
                "optuna_overhead_pct_of_backtest": round(
                    (optuna_s - optuna_kernel - grid_s + grid_kernel) / grid_kernel * 100.0, 2
                ),
                "import_optuna_s": round(float(imported.stdout), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
