"""What a sweep trial costs beyond its backtest, in this process: prints JSON.

Runs the same N parameter sets as one ``Sweep`` and as N ``run_backtest`` calls (each loading
its config and data, as N ``tradegraph backtest`` runs would), in alternating order over
``--rounds`` rounds, and reports the best time of each.
"""

from __future__ import annotations

import argparse
import json
import time

from tradegraph.batch.sweep import Sweep
from tradegraph.config import load_config
from tradegraph.engine.backtest import run_backtest

FAST = "strategies.sma.params.fast_period"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    values = [10 * (i + 1) for i in range(args.trials)]
    base = ["strategies.sma.params.slow_period=240"]
    sweep_s, single_s, kernel_s, bars = [], [], [], 0
    for _ in range(args.rounds):
        started = time.perf_counter()
        Sweep(
            None,
            [f"{FAST}=" + ",".join(map(str, values))],
            overrides=base,
            in_process=True,
            html=False,
        ).run()
        sweep_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        kernel = 0.0
        for value in values:
            result = run_backtest(load_config(None, [*base, f"{FAST}={value}"]))
            kernel += result.elapsed_s
            bars = result.bars
        single_s.append(time.perf_counter() - started)
        kernel_s.append(kernel)
    best_sweep, best_single, best_kernel = min(sweep_s), min(single_s), min(kernel_s)
    print(
        json.dumps(
            {
                "trials": args.trials,
                "bars_per_trial": bars,
                "sweep_s": round(best_sweep, 3),
                "backtests_s": round(best_single, 3),
                "kernel_s": round(best_kernel, 3),
                "sweep_over_backtests": round(best_sweep / best_single, 3),
                "overhead_per_trial_s": round((best_sweep - best_kernel) / args.trials, 4),
                "overhead_pct_of_kernel": round((best_sweep / best_kernel - 1.0) * 100.0, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
