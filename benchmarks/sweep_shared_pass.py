"""Sweep trials on one core: one kernel per trial against one shared pass; prints JSON.

N trials of the default config (real BTC/USDT 1-minute bars, July 2025; SMA cross with
``fast_period`` 10, 20, ... and ``slow_period`` 240) run over the same loaded bars, in this
process, as N ``run_backtest`` calls and as one ``run_shared_backtests`` pass, alternating over
``--repeat`` rounds; the line gives the median trial-bars/s of each (trials x bars / wall time,
building the graphs and collecting the results included), the same per second of this
process's CPU time (less moved by other processes on a loaded machine), and checks that both give the same
fills. With ``--reference`` it also runs ``benchmarks/backtest_throughput.py --bars 100000``
for the single-backtest bars/s of the standard workload.

The machine may be shared: run both sides in the same sitting and compare the ratio, not the
absolute figures across runs.

    python benchmarks/sweep_shared_pass.py --trials 8 --repeat 5 [--reference]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tradegraph.config import load_config
from tradegraph.engine.backtest import BacktestResult, load_bar_stream, run_backtest
from tradegraph.engine.shared import run_shared_backtests

FAST = "strategies.sma.params.fast_period"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the median is kept")
    parser.add_argument("--limit", type=int, help="bars of the sample to replay (default all)")
    parser.add_argument(
        "--reference", action="store_true", help="also run backtest_throughput.py --bars 100000"
    )
    args = parser.parse_args()
    base = ["strategies.sma.params.slow_period=240"]
    if args.limit:
        base.append(f"data.bars.0.limit={args.limit}")
    configs = [load_config(None, [*base, f"{FAST}={10 * (i + 1)}"]) for i in range(args.trials)]
    stream = load_bar_stream(configs[0])
    separate_s, shared_s, separate_cpu, shared_cpu = [], [], [], []
    digests: tuple[list[str], list[str]] = ([], [])
    for _ in range(max(1, args.repeat)):
        started, cpu = time.perf_counter(), time.process_time()
        alone = [run_backtest(config, stream) for config in configs]
        separate_s.append(time.perf_counter() - started)
        separate_cpu.append(time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        shared = run_shared_backtests(configs, stream)
        shared_s.append(time.perf_counter() - started)
        shared_cpu.append(time.process_time() - cpu)
        digests = (
            [r.fills_digest for r in alone],
            [r.fills_digest for r in shared if isinstance(r, BacktestResult)],
        )
    trial_bars = args.trials * len(stream)
    separate = trial_bars / statistics.median(separate_s)
    together = trial_bars / statistics.median(shared_s)
    separate_per_cpu = trial_bars / statistics.median(separate_cpu)
    together_per_cpu = trial_bars / statistics.median(shared_cpu)
    out: dict[str, object] = {
        "benchmark": "sweep_shared_pass",
        "data": "sample:BTCUSDT_1m (default config)",
        "trials": args.trials,
        "bars_per_trial": len(stream),
        "repeat": args.repeat,
        "separate_trial_bars_per_s": round(separate, 1),
        "shared_trial_bars_per_s": round(together, 1),
        "shared_gain": round(together / separate, 3),
        "separate_trial_bars_per_cpu_s": round(separate_per_cpu, 1),
        "shared_trial_bars_per_cpu_s": round(together_per_cpu, 1),
        "shared_gain_cpu": round(together_per_cpu / separate_per_cpu, 3),
        "separate_s_median": round(statistics.median(separate_s), 4),
        "shared_s_median": round(statistics.median(shared_s), 4),
        "same_fills": digests[0] == digests[1],
    }
    if args.reference:
        script = Path(__file__).with_name("backtest_throughput.py")
        line = subprocess.run(
            [sys.executable, str(script), "--bars", "100000", "--repeat", "3"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        out["backtest_throughput_bars_per_s"] = json.loads(line.splitlines()[-1])["bars_per_s"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
