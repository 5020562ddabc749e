"""The actor graph under a simulated clock against the in-process kernel; prints one JSON line.

Workload: the packaged default config on the bundled real BTC/USDT minutes, with SMA(10)/SMA(30)
and 0.01 BTC per order so there are many fills. Both engines run the same slice; the JSON says
their bars/s, whether their fills are identical (``same_fills_digest``), how many waves and actor
calls the coordinator needed, and what one message costs to serialise as a pydantic object or
as a plain tuple.

    python benchmarks/actor_graph.py [--bars 3000] [--address auto]
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from typing import Any

from tradegraph.actors import ActorBacktest, ray_session
from tradegraph.config import load_config
from tradegraph.contracts import Bar
from tradegraph.sim.backtest import load_bar_stream, run_backtest


def serialisation_us(obj: Any, repeat: int = 20_000) -> float:
    """Microseconds to pickle and unpickle ``obj`` once."""
    started = time.perf_counter()
    for _ in range(repeat):
        pickle.loads(pickle.dumps(obj, protocol=5))
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=3_000, help="bars of the slice (default 3000)")
    parser.add_argument("--address", help="Ray cluster address; default: start a local Ray")
    args = parser.parse_args()

    config = load_config(
        None,
        [
            f"data.bars.0.limit={args.bars}",
            "strategies.sma.params.fast_period=10",
            "strategies.sma.params.slow_period=30",
            "strategies.sma.params.quantity=0.01",
        ],
    )
    stream = load_bar_stream(config)
    local = run_backtest(config, stream)
    started = time.perf_counter()
    with ray_session(args.address, num_cpus=None if args.address else 2):
        init_s = time.perf_counter() - started
        backtest = ActorBacktest(config, stream)
        actors = backtest.run()
    bar = Bar(
        instrument_id="BTCUSDT.BINANCE",
        open=1.0,
        high=1.0,
        low=1.0,
        close=1.0,
        volume=1.0,
        interval_ns=60_000_000_000,
        ts_event_ns=1,
        ts_init_ns=1,
    )
    as_tuple = tuple(bar.__dict__.values())
    print(
        json.dumps(
            {
                "benchmark": "actor_graph",
                "data": "sample:BTCUSDT_1m",
                "bars": actors.bars,
                "fills": len(actors.fills),
                "ray_bars_per_s": round(actors.bars_per_s, 1),
                "ray_elapsed_s": round(actors.elapsed_s, 3),
                "ray_init_s": round(init_s, 3),
                "actor_build_s": round(backtest.build_s, 3),
                "waves": backtest.waves,
                "remote_calls": backtest.remote_calls,
                "ms_per_wave": round(actors.elapsed_s / max(backtest.waves, 1) * 1e3, 3),
                "local_bars_per_s": round(local.bars_per_s, 1),
                "same_fills_digest": actors.fills_digest == local.fills_digest,
                "fills_digest": actors.fills_digest,
                "pickle_bar_pydantic_us": round(serialisation_us(bar), 2),
                "pickle_bar_tuple_us": round(serialisation_us(as_tuple), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
