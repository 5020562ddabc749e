"""The actor graph on a local Ray: simulated-clock backtest and real-time sessions; one JSON line.

Data clock: the packaged default config on the bundled real BTC/USDT minutes, with
SMA(10)/SMA(30) and 0.01 BTC per order so there are many fills, through ``--engine ray`` (a
causal session) and the in-process kernel; bars/s of each and whether their fills are identical.

Real time (``LiveSession``), on ``examples/paper.yaml`` (BTC and ETH minutes, two strategies):

* ``live_events_per_s``: market events per second sustained through md -> strategy -> risk ->
  broker -> portfolio, replayed as fast as the graph takes them (columnar batches of up to
  ``--batch-size`` events, 8 in flight), without and with the recovery journal; timed from the
  replay's first batch to the last receiver going idle;
* ``tick_to_order_ms``: wall time from a market event falling due at md to the order it caused
  reaching the broker, p50/p99: flat out, paced at 50,000 and at 8,300 events/s (batches of
  what fell due every ``session.batch_interval_ms``, counted from the batch's first event),
  and in a causal replay (one event at a time, the paper default);
* ``trip_to_quiet_ms``: from ``tradegraph kill`` reaching Risk to no order left open at the
  venue, p50/p99 over repeated trips of a session keeping a bid resting;
* with ``--intervals 5,10,20,40``: the 8,300 events/s run again with each batch interval, and
  the CPU seconds the session's actors spent (``actor_cpu_s``, read from ``/proc``);
* ``trip_to_quiet_venue_faults``: a live session (real ccxt) against the fake Binance exchange
  (``tests/support/fake_exchange``), one bid resting at the venue, tripped ``--fault-trips``
  times in each of two faults: ``stuck_submit`` (a second order's submit is held by the venue
  for twice the client's 10 s request timeout when the kill arrives) and ``ban`` (the venue
  bans the address for 3 s, 418 with Retry-After; the kill comes 0.25 s after the first
  refused request). ``quiet_ms``: from the kill reaching Risk
  to no order open at the venue; for the ban also ``ban_left_ms`` at the trip and the 418s
  the venue sent. ``--only-venue-faults`` runs just these.

    python benchmarks/actor_graph.py [--bars 3000] [--live-bars 44640] [--trips 30]
        [--intervals 5,10,20,40] [--fault-trips 3] [--only-venue-faults]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray

from tradegraph.actors import ray_session, run_causal_session
from tradegraph.actors.session import LiveSession, operator_command
from tradegraph.config import load_config
from tradegraph.contracts import Bar
from tradegraph.engine.backtest import load_bar_stream, run_backtest


def serialisation_us(obj: Any, repeat: int = 20_000) -> float:
    """Microseconds to pickle and unpickle ``obj`` once."""
    started = time.perf_counter()
    for _ in range(repeat):
        pickle.loads(pickle.dumps(obj, protocol=5))
    return (time.perf_counter() - started) / repeat * 1e6


PAPER_YAML = Path(__file__).resolve().parents[1] / "examples" / "paper.yaml"


def percentiles_ms(samples_us: list[float]) -> dict[str, float | int]:
    if not samples_us:
        return {"samples": 0}
    values = np.asarray(samples_us) / 1e3
    return {
        "samples": len(samples_us),
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
    }


def process_cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` so far (``None`` off Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 300.0, poll_s: float = 0.002
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the session did not get there in time")
        time.sleep(poll_s)


def live_run(bars: int, *overrides: str) -> dict[str, Any]:
    """Replay ``bars`` minutes of each symbol through a session; events/s and tick-to-order."""
    with tempfile.TemporaryDirectory() as state:
        config = load_config(
            PAPER_YAML,
            [
                f"data.bars.0.limit={bars}",
                f"data.bars.1.limit={bars}",
                "session.speed=0",
                f"session.state_dir={state}",
                "session.namespace=bench-live",
                "strategies.sma_btc.params.fast_period=5",
                "strategies.sma_btc.params.slow_period=15",
                *overrides,
            ],
        )
        session = LiveSession(config)
        session.start()
        pids = [session.status(component).pid for component in session.hosts]
        cpu_before = [process_cpu_s(pid) for pid in pids]
        try:
            # Polled every 20 ms: each poll is a remote call the graph's actors pay for.
            wait_until(lambda: bool(session.status("md").details["replay_finished"]), poll_s=0.02)
            wait_until(
                lambda: all(ray.get([h.idle.remote() for h in session.hosts.values()])),
                poll_s=0.005,
            )
            elapsed = time.time() - float(session.status("md").details["replay_started_at"])
            latencies = ray.get(session.hosts["broker:BINANCE"].tick_to_order.remote())
            cpu_after = [process_cpu_s(pid) for pid in pids]
        finally:
            outcome = session.stop()
    spent = [
        a - b for a, b in zip(cpu_after, cpu_before, strict=True) if a is not None and b is not None
    ]
    return {
        "events": outcome.market_events,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(outcome.market_events / elapsed, 1),
        "fills": len(outcome.portfolio.fills) if outcome.portfolio else None,
        "tick_to_order_ms": percentiles_ms(latencies),
        "actor_cpu_s": round(sum(spent), 2) if spent else None,
    }


def paced_speed(events_per_s: float) -> float:
    """The replay speed (data seconds per wall second) at which the paper config's two
    minute-bar streams deliver ``events_per_s``."""
    events_per_data_s = 2 / 60
    return events_per_s / events_per_data_s


def trip_to_quiet(trips: int) -> dict[str, float | int]:
    """Trip and reset the kill switch of a session keeping one bid resting, ``trips`` times."""
    config = load_config(
        PAPER_YAML,
        [
            "session.speed=600",
            "session.state_dir=null",
            "session.namespace=bench-trip",
            "strategies.sma_btc.class_path=resting_bid",
            "strategies.sma_btc.params={}",
        ],
    )
    only_btc = config.strategies[0].model_copy(update={"params": {"quantity": 0.01}})
    config = config.model_copy(update={"strategies": (only_btc,)})
    session = LiveSession(config)
    session.start()
    broker = "broker:BINANCE"
    samples: list[float] = []
    try:
        for _ in range(trips):
            wait_until(lambda: session.status(broker).details["open_orders"] > 0, 30.0)
            started = time.perf_counter()
            operator_command("kill", "benchmark", namespace="bench-trip")
            wait_until(lambda: session.status(broker).details["open_orders"] == 0, 30.0)
            samples.append((time.perf_counter() - started) * 1e6)
            operator_command("resume", "benchmark", namespace="bench-trip")
    finally:
        session.stop()
    return percentiles_ms(samples)


FAULT_KEY_ENV = ("TG_BENCH_BINANCE_KEY", "TG_BENCH_BINANCE_SECRET")
FAULT_REQUEST_TIMEOUT_S = 10.0
FAULT_BAN_S = 3.0
FAULT_NAMESPACE = "bench-faults"


def venue_fault_config(fake: Any) -> Any:
    """A live session of one idle strategy against ``fake`` (REST only, as after a websocket
    outage); orders come from the benchmark through Risk."""
    from tradegraph.config import GraphConfig
    from tradegraph.config.models import CircuitBreakerConfig, LiveVenueConfig, RetryConfig

    base = load_config(PAPER_YAML, ["session.state_dir=null"])
    btc = next(i for i in base.instruments if i.symbol == "BTCUSDT")
    ccxt_config = fake.ccxt_config()
    live = LiveVenueConfig(
        mode="live",
        exchange="binance",
        api_key_env=FAULT_KEY_ENV[0],
        api_secret_env=FAULT_KEY_ENV[1],
        urls=ccxt_config["urls"],
        options=ccxt_config["options"],
        max_order_notional=5_000.0,
        request_timeout_s=FAULT_REQUEST_TIMEOUT_S,
        enable_rate_limit=False,
        use_websockets=False,
        market_data=("trades",),
        poll_interval_s=0.2,
        stale_after_s=60.0,
        retry=RetryConfig(),
        circuit_breaker=CircuitBreakerConfig(),
    )
    venue = next(v for v in base.venues if v.name == "BINANCE").model_copy(update={"live": live})
    strategy = base.strategies[0].model_copy(
        update={
            "id": "bench",
            "class_path": "resting_bid",
            "params": {"quantity": 0.01},
            "instruments": ("BTCUSDT.BINANCE",),
        }
    )
    data = base.data.model_copy(update={"bars": base.data.bars[:1]})
    return GraphConfig.model_validate(
        {
            **base.model_dump(),
            "instruments": (btc,),
            "venues": (venue,),
            "strategies": (strategy,),
            "data": data,
            "risk": base.risk.model_copy(update={"price_band_pct": None}),
            "session": base.session.model_copy(
                update={"market_data": "ccxt", "clock": "wall", "namespace": FAULT_NAMESPACE}
            ),
        }
    )


def venue_fault_trips(trips: int) -> dict[str, Any]:
    """Trip-to-quiet of a live session with a stuck submit, and during a ban (see the top)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.fake_exchange import FakeExchange
    from tradegraph.contracts import OrderIntent, OrderSide, OrderType

    key, secret = "bench-key-6b1f", "bench-secret-93ad"
    os.environ.update(
        {FAULT_KEY_ENV[0]: key, FAULT_KEY_ENV[1]: secret, "TRADEGRAPH_ENABLE_LIVE": "1"}
    )
    stuck: list[float] = []
    banned: list[float] = []
    ban_left: list[float] = []
    refusals: list[int] = []
    with FakeExchange(api_key=key, secret=secret) as fake:
        fake.set_price("BTCUSDT", "60000")
        session = LiveSession(venue_fault_config(fake))
        session.start()
        risk = session.hosts["risk"]
        broker = "broker:BINANCE"
        count = 0

        def open_at_venue() -> int:
            return sum(1 for o in fake.orders() if o.is_live)

        def bid(price: float) -> None:
            nonlocal count
            count += 1
            now = time.time_ns()
            intent = OrderIntent(
                intent_id=f"bench-{count:05d}",
                strategy_id="bench",
                instrument_id="BTCUSDT.BINANCE",
                side=OrderSide.BUY,
                quantity=0.01,
                order_type=OrderType.LIMIT,
                limit_price=price,
                ts_event_ns=now,
                ts_init_ns=now,
            )
            ray.get(risk.request.remote(intent), timeout=10)

        def resting(count: int) -> None:
            try:
                wait_until(lambda: open_at_venue() == count, 30.0)
            except TimeoutError:
                risk_details = session.status("risk").details
                raise RuntimeError(f"bids not at the venue; risk: {risk_details}") from None

        def quiet_after_kill(limit_s: float) -> float:
            started = time.perf_counter()
            operator_command("kill", "benchmark", namespace=FAULT_NAMESPACE)
            wait_until(lambda: open_at_venue() == 0, limit_s, 0.005)
            return (time.perf_counter() - started) * 1e6

        def settle() -> None:
            wait_until(lambda: session.status(broker).details["open_orders"] == 0, 120.0)
            wait_until(lambda: session.status(broker).details["circuit"] == "closed", 120.0)
            operator_command("resume", "benchmark", namespace=FAULT_NAMESPACE)

        try:
            # Risk needs a price first: trades on the fake's tape reach md by REST polling.
            wait_until(lambda: _traded(fake) and _priced(session), 60.0)
            for _ in range(trips):
                bid(58_000.0)
                resting(1)
                fake.delay_next(delay_s=2 * FAULT_REQUEST_TIMEOUT_S)
                bid(57_000.0)
                resting(2)
                stuck.append(quiet_after_kill(120.0))
                settle()
            for _ in range(trips):
                bid(58_000.0)
                resting(1)
                fake.clear_requests()
                fake.ban(FAULT_BAN_S, escalate=False)
                # Until the session has met the ban (the broker and md poll every 0.2 s).
                wait_until(lambda: any(r.status == 418 for r in fake.requests()), 30.0)
                time.sleep(0.25)
                ban_left.append(fake.banned_for_s() * 1e6)
                banned.append(quiet_after_kill(600.0))
                refusals.append(sum(1 for r in fake.requests() if r.status == 418))
                settle()
        finally:
            session.stop()
    return {
        "stuck_submit": {"quiet_ms": percentiles_ms(stuck)},
        "ban": {
            "quiet_ms": percentiles_ms(banned),
            "ban_left_ms": percentiles_ms(ban_left),
            "refused_requests": refusals,
        },
        "request_timeout_s": FAULT_REQUEST_TIMEOUT_S,
        "ban_s": FAULT_BAN_S,
    }


def _traded(fake: Any) -> bool:
    fake.trade("BTCUSDT", "60000", "0.001")
    return True


def _priced(session: LiveSession) -> bool:
    return bool(session.status("md").details["published"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=3_000, help="bars of the slice (default 3000)")
    parser.add_argument("--address", help="Ray cluster address; default: start a local Ray")
    parser.add_argument(
        "--live-bars", type=int, default=44_640, help="minutes of each symbol for live runs"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1024, help="most events per batch when flat out"
    )
    parser.add_argument("--trips", type=int, default=30, help="kill-switch trips to time")
    parser.add_argument(
        "--fault-trips", type=int, default=3, help="kill-switch trips per venue fault"
    )
    parser.add_argument(
        "--only-venue-faults", action="store_true", help="run only the venue-fault trips"
    )
    parser.add_argument(
        "--intervals",
        default="",
        help="comma-separated batch intervals (ms) to rerun the 8,300 events/s run with",
    )
    args = parser.parse_args()
    if args.only_venue_faults:
        with ray_session(args.address, num_cpus=None if args.address else 2):
            faults = venue_fault_trips(args.fault_trips)
        print(json.dumps({"benchmark": "actor_graph", "trip_to_quiet_venue_faults": faults}))
        return

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
        actors = run_causal_session(config, stream)
        fast = (
            "session.causal=false",
            f"session.batch_size={args.batch_size}",
            "session.max_in_flight=8",
        )
        live = live_run(args.live_bars, *fast, "session.state_dir=null")
        journaled = live_run(args.live_bars, *fast)
        paced = {
            rate: live_run(
                args.live_bars,
                "session.causal=false",
                "session.batch_size=100000",
                f"session.speed={paced_speed(rate)}",
                "session.state_dir=null",
            )
            for rate in (50_000, 8_300)
        }
        by_interval = {
            interval: live_run(
                args.live_bars,
                "session.causal=false",
                "session.batch_size=100000",
                f"session.speed={paced_speed(8_300)}",
                f"session.batch_interval_ms={interval}",
                "session.state_dir=null",
            )
            for interval in (float(i) for i in args.intervals.split(",") if i.strip())
        }
        causal = live_run(min(args.live_bars, 1_000), "session.state_dir=null")
        trips = trip_to_quiet(args.trips)
        faults = venue_fault_trips(args.fault_trips)
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
    block = stream.rows(slice(0, 512))
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
                "ms_per_bar": round(actors.elapsed_s / max(actors.bars, 1) * 1e3, 3),
                "local_bars_per_s": round(local.bars_per_s, 1),
                "same_fills_digest": actors.fills_digest == local.fills_digest,
                "fills_digest": actors.fills_digest,
                "pickle_bar_pydantic_us": round(serialisation_us(bar), 2),
                "pickle_bar_in_block_us": round(serialisation_us(block, 2_000) / len(block), 3),
                "live_events": live["events"],
                "live_events_per_s": live["events_per_s"],
                "live_events_per_s_journaled": journaled["events_per_s"],
                "live_fills": live["fills"],
                "tick_to_order_ms_full_load": live["tick_to_order_ms"],
                "tick_to_order_ms_paced_50k": paced[50_000]["tick_to_order_ms"],
                "paced_50k_events_per_s": paced[50_000]["events_per_s"],
                "tick_to_order_ms_paced_8300": paced[8_300]["tick_to_order_ms"],
                "paced_8300_events_per_s": paced[8_300]["events_per_s"],
                "paced_8300_actor_cpu_s": paced[8_300]["actor_cpu_s"],
                "paced_8300_by_interval_ms": {
                    f"{interval:g}": {
                        "tick_to_order_ms": run["tick_to_order_ms"],
                        "events_per_s": run["events_per_s"],
                        "elapsed_s": run["elapsed_s"],
                        "actor_cpu_s": run["actor_cpu_s"],
                    }
                    for interval, run in by_interval.items()
                },
                "tick_to_order_ms_causal": causal["tick_to_order_ms"],
                "causal_events_per_s": causal["events_per_s"],
                "trip_to_quiet_ms": trips,
                "trip_to_quiet_venue_faults": faults,
            }
        )
    )


if __name__ == "__main__":
    main()
