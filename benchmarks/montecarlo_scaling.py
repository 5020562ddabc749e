"""Monte Carlo scaling on one machine; prints one JSON line.

Workload: the packaged default graph (SMA(60)/SMA(240) crossover on BTC/USDT, every risk limit
on), GBM paths calibrated from the bundled July 2025 minute bars, ``--bars`` bars per scenario.

Ray starts once with ``--cpus`` CPUs and its workers are readied: that start-up
(``ray_init_s``, then ``startup_s`` with the workers holding the batch module) is reported
apart from batch time. Then, ``--rounds`` times, the same batch runs with 1 and with 2
workers (batch time: ``elapsed_s - startup_s`` of its summary); before Ray, it runs in this
process as often. Medians are reported (the machine may be shared with other work).

Reported: scenarios/s and scenario-bars/s per worker count, speedup and parallel efficiency
(speedup / workers), the workers' busy fraction (time inside scenarios over workers times
batch time: below 1, workers waited on transport or stragglers) and mean time inside one
scenario (which grows when other processes share the cores), per-scenario overhead of the Ray
transport ((1-worker time - in-process time) / scenarios), and whether every run gave the
same results digest.

``machine_speedup_2`` (at the start and at the end) says what two processes got from the
machine at the time: two idle cores give 2.0, and efficiency cannot beat half of it.

    python benchmarks/montecarlo_scaling.py --paths 1000 --bars 1440
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from typing import Any

from tradegraph.actors.batch import RayChunkRunner, warm_workers
from tradegraph.actors.ray_runtime import ray_pool
from tradegraph.batch.montecarlo import MonteCarlo, MonteCarloResult, run_chunk
from tradegraph.config import load_config


def _run(batch: MonteCarlo) -> MonteCarloResult:
    batch.plan()  # calibration is not part of the scaling
    result = batch.run_batch()
    if result.summary["scenarios_failed"]:
        raise SystemExit(
            f"{result.summary['scenarios_failed']} scenarios failed: {result.failed[:1]}"
        )
    return result


def _batch_s(result: MonteCarloResult) -> float:
    return float(result.summary["elapsed_s"] - result.summary["startup_s"])


def _spin(loops: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i
    return time.perf_counter() - started


def machine_speedup_2(loops: int = 5_000_000) -> float:
    """What two processes get out of this machine now: the time of two pure-Python loops one
    after the other over the time of the same two at once in two processes (2.0 on two idle
    cores; less when other work shares them; the median of three tries). Parallel efficiency cannot beat half of it."""
    ratios = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [loops // 10] * 2)  # start both processes
        for _ in range(3):
            one_by_one = sum(pool.apply(_spin, (loops,)) for _ in range(2))
            started = time.perf_counter()
            pool.map(_spin, [loops] * 2)
            ratios.append(one_by_one / (time.perf_counter() - started))
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", type=int, default=400)
    parser.add_argument("--bars", type=int, default=1_440)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default="gbm")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    capacity = [machine_speedup_2()]

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

    in_process_s: list[float] = []
    digests: set[str] = set()
    for _ in range(args.rounds):
        result = _run(batch(in_process=True))
        in_process_s.append(_batch_s(result))
        digests.add(result.results_digest)
    runs: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    scenario_s: dict[int, list[float]] = {1: [], 2: []}
    started = time.perf_counter()
    with ray_pool(None, args.cpus) as cpus:
        ray_init_s = time.perf_counter() - started
        warm_workers(run_chunk.__module__, cpus)
        startup_s = time.perf_counter() - started
        for _ in range(args.rounds):
            for workers in (1, 2):
                result = _run(batch(workers=workers))
                seconds = _batch_s(result)
                runs[workers].append(seconds)
                work = sum(result.table.column("elapsed_s").to_pylist())
                busy[workers].append(work / (workers * seconds))
                scenario_s[workers].append(work / args.paths)
                digests.add(result.results_digest)

    in_process = statistics.median(in_process_s)
    out: dict[str, Any] = {
        "paths": args.paths,
        "bars_per_path": args.bars,
        "model": args.model,
        "rounds": args.rounds,
        "ray_init_s": round(ray_init_s, 3),
        "startup_s": round(startup_s, 3),
        "in_process_s": round(in_process, 3),
        "in_process_scenarios_per_s": round(args.paths / in_process, 2),
    }
    for workers, times in runs.items():
        seconds = statistics.median(times)
        out[f"workers_{workers}_s"] = round(seconds, 3)
        out[f"workers_{workers}_s_all"] = [round(t, 3) for t in times]
        out[f"workers_{workers}_busy_fraction"] = round(statistics.median(busy[workers]), 3)
        out[f"workers_{workers}_scenario_s"] = round(statistics.median(scenario_s[workers]), 5)
        out[f"workers_{workers}_scenarios_per_s"] = round(args.paths / seconds, 2)
        out[f"workers_{workers}_scenario_bars_per_s"] = round(args.paths * args.bars / seconds)
    speedup = statistics.median(runs[1]) / statistics.median(runs[2])
    out["speedup_2_vs_1"] = round(speedup, 3)
    out["parallel_efficiency"] = round(speedup / 2, 3)
    out["per_scenario_overhead_ms"] = round(
        1_000 * (statistics.median(runs[1]) - in_process) / args.paths, 3
    )
    capacity.append(machine_speedup_2())
    out["machine_speedup_2"] = [round(c, 3) for c in capacity]  # at the start, at the end
    out["same_digest"] = len(digests) == 1
    print(json.dumps(out))


if __name__ == "__main__":
    main()
