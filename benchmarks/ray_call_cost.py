"""What one remote call to an async Ray actor costs on this machine; one JSON line.

The actor graph's throughput and latency rest on this floor: every batch between two
components is one call. A no-op ``async def push`` is called with a tiny argument and with a
512-bar columnar block, pipelined (many in flight) and one at a time (each awaited), and the
wall time per call and the CPU time per call of the caller and of the actor are reported. The
same calls to a threaded (plain ``def``) actor, whose methods run on the thread that receives
them, are reported under ``threaded_``.

    python benchmarks/ray_call_cost.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import ray

from tradegraph.actors import ray_session
from tradegraph.config import load_config
from tradegraph.engine.backtest import load_bar_stream


class Sink:
    async def push(self, payload: Any) -> None:
        return None

    async def cpu_s(self) -> float:
        return time.process_time()


class ThreadedSink:
    def push(self, payload: Any) -> None:
        return None

    def cpu_s(self) -> float:
        return time.process_time()


def cost(actor: Any, payload: Any, calls: int, pipelined: bool) -> dict[str, float]:
    actor_cpu = ray.get(actor.cpu_s.remote())
    caller_cpu = time.process_time()
    started = time.perf_counter()
    if pipelined:
        ray.get([actor.push.remote(payload) for _ in range(calls)])
    else:
        for _ in range(calls):
            ray.get(actor.push.remote(payload))
    wall = time.perf_counter() - started
    caller = time.process_time() - caller_cpu
    received = ray.get(actor.cpu_s.remote()) - actor_cpu
    return {
        "wall_ms_per_call": round(wall / calls * 1e3, 3),
        "actor_cpu_ms_per_call": round(received / calls * 1e3, 3),
        "caller_cpu_ms_per_call": round(caller / calls * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement")
    args = parser.parse_args()
    block = load_bar_stream(load_config(None, [])).rows(slice(0, 512))
    with ray_session(None, num_cpus=2):
        actors: dict[str, Any] = {
            "": ray.remote(num_cpus=0)(Sink).remote(),
            "threaded_": ray.remote(num_cpus=0)(ThreadedSink).options(max_concurrency=1).remote(),
        }
        ray.get([a.push.remote(None) for a in actors.values()])
        results = {
            f"{kind}{name}_{mode}": cost(actor, payload, args.calls, mode == "pipelined")
            for kind, actor in actors.items()
            for name, payload in (("tiny", 1), ("block512", block))
            for mode in ("pipelined", "sequential")
        }
    print(json.dumps({"benchmark": "ray_call_cost", "calls": args.calls, **results}))


if __name__ == "__main__":
    main()
