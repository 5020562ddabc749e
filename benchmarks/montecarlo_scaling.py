"""Monte Carlo scaling on one machine; prints one JSON line.

Workload: the packaged default graph (SMA(60)/SMA(240) crossover on BTC/USDT, every risk limit
on), GBM paths calibrated from the bundled July 2025 minute bars, ``--bars`` bars per scenario.
Ray starts once with ``--cpus`` CPUs and is warmed up; then the same batch runs with 1 and with
2 workers, and once in this process without Ray.

Reported: scenarios/s and scenario-bars/s per worker count, speedup and parallel efficiency
(speedup / workers), per-scenario overhead of the Ray transport ((1-worker time - in-process
time) / scenarios), and whether every run gave the same results digest.

    python benchmarks/montecarlo_scaling.py --paths 1000 --bars 1440
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.actors.ray_runtime import ray_pool
from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.config import load_config


def _timed(batch: MonteCarlo) -> tuple[float, str]:
    batch.plan()  # calibration is not part of the scaling
    started = time.perf_counter()
    result = batch.run_batch()
    elapsed = time.perf_counter() - started
    if result.summary["scenarios_failed"]:
        raise SystemExit(
            f"{result.summary['scenarios_failed']} scenarios failed: {result.failed[:1]}"
        )
    return elapsed, result.results_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", type=int, default=400)
    parser.add_argument("--bars", type=int, default=1_440)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default="gbm")
    args = parser.parse_args()

    config = load_config(None)

    def batch(**kwargs: Any) -> MonteCarlo:
        return MonteCarlo(
            config,
            paths=args.paths,
            model=args.model,
            bars_per_path=args.bars,
            root_seed=1,
            runner=RayChunkRunner(),
            **kwargs,
        )

    in_process_s, digest = _timed(batch(in_process=True))
    runs: dict[int, float] = {}
    digests = {digest}
    with ray_pool(None, args.cpus):
        # Warm-up: start the worker processes and import the graph in each.
        MonteCarlo(
            config,
            paths=2 * args.cpus,
            bars_per_path=args.bars,
            chunk_size=1,
            runner=RayChunkRunner(),
        ).run_batch()
        for workers in (1, 2):
            runs[workers], run_digest = _timed(batch(workers=workers))
            digests.add(run_digest)

    out: dict[str, Any] = {"paths": args.paths, "bars_per_path": args.bars, "model": args.model}
    out["in_process_s"] = in_process_s
    out["in_process_scenarios_per_s"] = args.paths / in_process_s
    for workers, seconds in runs.items():
        out[f"workers_{workers}_s"] = seconds
        out[f"workers_{workers}_scenarios_per_s"] = args.paths / seconds
        out[f"workers_{workers}_scenario_bars_per_s"] = args.paths * args.bars / seconds
    speedup = runs[1] / runs[2]
    out["speedup_2_vs_1"] = speedup
    out["parallel_efficiency"] = speedup / 2
    out["per_scenario_overhead_ms"] = 1_000 * (runs[1] - in_process_s) / args.paths
    out["same_digest"] = len(digests) == 1
    print(json.dumps(out))


if __name__ == "__main__":
    main()
