"""Backtest throughput on the standard comparison workload; prints one JSON line.

Workload: SMA(10)/SMA(30) crossover on close; when flat and fast crosses above slow, buy 0.01 at
market; when long and it crosses below, sell the 0.01. Taker fee 0.1 %, starting cash 1,000,000,
no slippage, no risk limits beyond the defaults that cannot bind. pnl = final equity - starting
cash, open position marked at the last close, fees included.

Without ``--data`` it generates a geometric Brownian motion (seed 42, start 30000, per-bar sigma
0.001). The full graph runs: feed -> strategy -> risk -> venue -> portfolio.

    python benchmarks/backtest_throughput.py --bars 1000000 [--fill-at close|next_open]

With ``--algo twap|vwap|pov`` every entry and exit is a parent order worked by that execution
algorithm (``--slices`` slices, one a minute; POV at 50 %); the same data then also runs
without algorithms and the line adds ``baseline_bars_per_s``, ``algo_overhead_pct`` (the drop
in bars/s) and the order counts of both. ``--slices 1`` keeps the order flow of the baseline
and so measures the algorithm layer alone; more slices also multiply the orders every part
of the graph must handle. ``--repeat N`` keeps the fastest of N runs of each.

With ``--account margin`` the instrument is a linear perpetual traded through a margin account
(leverage 1, maintenance 0.5 %; the venue tests every bar for liquidation), instead of spot
through a cash account; the long-only workload makes the same fills either way.

With ``--metrics`` the same data also runs with a ``GraphMetrics`` on a ``PrometheusSink``
observing the run, and the line adds ``metrics_bars_per_s`` and ``metrics_overhead_pct``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from tradegraph.config import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    InstrumentConfig,
    PortfolioConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.config.models import AccountConfig, FillAt, ReportConfig
from tradegraph.contracts import AccountKind, InstrumentKind
from tradegraph.data.catalog import BarArrays, read_bars
from tradegraph.engine.backtest import run_backtest
from tradegraph.engine.streams import prepare_bar_stream
from tradegraph.observability.metrics import GraphMetrics
from tradegraph.observability.prometheus import PrometheusSink

MINUTE_NS = 60_000_000_000


def gbm_bars(n: int, *, seed: int = 42, start: float = 30_000.0, sigma: float = 0.001) -> BarArrays:
    """Bars whose closes follow a driftless GBM; open = previous close; volume 10."""
    rng = np.random.default_rng(seed)
    log_returns = sigma * rng.standard_normal(n) - 0.5 * sigma * sigma
    close = start * np.exp(np.cumsum(log_returns))
    close = np.round(close, 2)
    open_ = np.concatenate(([start], close[:-1]))
    high = np.maximum(open_, close)
    low = np.minimum(open_, close)
    ts = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * MINUTE_NS
    return BarArrays(
        symbol="BTCUSDT",
        venue="BINANCE",
        interval_ns=MINUTE_NS,
        ts_open_ns=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.full(n, 10.0),
    )


ALGOS = ("pov", "twap", "vwap")


def algo_params(algo: str, slices: int) -> dict[str, object]:
    if algo == "pov":
        return {"participation": 0.5}
    return {"duration_s": 60 * slices, "slices": slices}


def workload_config(
    fill_at: FillAt, algo: str | None = None, slices: int = 5, account: str = "cash"
) -> GraphConfig:
    params: dict[str, object] = {"fast_period": 10, "slow_period": 30, "quantity": 0.01}
    if algo is not None:
        params["execution_algo"] = algo
        params["execution_params"] = algo_params(algo, slices)
    return GraphConfig(
        name="throughput",
        instruments=(
            InstrumentConfig(
                symbol="BTCUSDT",
                venue="BINANCE",
                base="BTC",
                quote="USDT",
                tick_size=0.01,
                lot_size=0.00001,
                min_notional=0.0,
                maker_fee=0.001,
                taker_fee=0.001,
                kind=InstrumentKind.PERPETUAL if account == "margin" else InstrumentKind.SPOT,
            ),
        ),
        venues=(
            VenueConfig(
                name="BINANCE", fill_at=fill_at, account=AccountConfig(kind=AccountKind(account))
            ),
        ),
        data=DataConfig(bars=(BarSourceConfig(path="<generated>"),)),
        strategies=(
            StrategyConfig(
                id="sma",
                class_path="sma_cross",
                instruments=("BTCUSDT.BINANCE",),
                params=params,
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=1_000_000.0),
        report=ReportConfig(html=False),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="Parquet bar file instead of generated GBM bars")
    parser.add_argument("--bars", type=int, default=100_000, help="number of bars (default 100k)")
    parser.add_argument("--fill-at", choices=[f.value for f in FillAt], default="next_open")
    parser.add_argument("--algo", choices=ALGOS, help="work every order with this algorithm")
    parser.add_argument("--slices", type=int, default=5, help="TWAP/VWAP slices, one a minute")
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    parser.add_argument(
        "--account",
        choices=[k.value for k in AccountKind],
        default="cash",
        help="cash (spot, the default) or margin (a perpetual on a margin account)",
    )
    parser.add_argument(
        "--metrics", action="store_true", help="also run with graph metrics on and compare"
    )
    args = parser.parse_args()

    config = workload_config(FillAt(args.fill_at), args.algo, args.slices, args.account)
    if args.data:
        datasets = read_bars(args.data, symbol="BTCUSDT", venue="BINANCE", limit=args.bars)[:1]
        source = args.data
    else:
        datasets = [gbm_bars(args.bars)]
        source = "gbm(seed=42,start=30000,sigma=0.001)"
    stream = prepare_bar_stream(datasets, config.instrument_map())
    del datasets  # the stream holds its own merged copy
    wall = time.perf_counter()
    runs = []
    baselines = []
    observed = []
    for _ in range(max(1, args.repeat)):
        # Interleaved, so that a slow spell of the machine hits both sides alike.
        runs.append(run_backtest(config, stream))
        if args.algo is not None:
            baselines.append(run_backtest(workload_config(FillAt(args.fill_at)), stream))
        if args.metrics:
            metrics = GraphMetrics(PrometheusSink())
            observed.append(run_backtest(config, stream, metrics=metrics))
    result = min(runs, key=lambda r: r.elapsed_s)
    total_s = time.perf_counter() - wall
    extra: dict[str, object] = {}
    if observed:
        with_metrics = min(observed, key=lambda r: r.elapsed_s)
        extra["metrics_bars_per_s"] = round(with_metrics.bars_per_s, 1)
        extra["metrics_overhead_pct"] = round(
            100.0 * (1.0 - with_metrics.bars_per_s / result.bars_per_s), 2
        )
    if baselines:
        baseline = min(baselines, key=lambda r: r.elapsed_s)
        extra |= {
            "slices": None if args.algo == "pov" else args.slices,
            "parent_orders": len(result.execution_reports),
            "orders": result.orders,
            "baseline_orders": baseline.orders,
            "baseline_bars_per_s": round(baseline.bars_per_s, 1),
            "algo_overhead_pct": round(100.0 * (1.0 - result.bars_per_s / baseline.bars_per_s), 2),
        }
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "benchmark": "backtest_throughput",
                "data": source,
                "fill_at": args.fill_at,
                "algo": args.algo,
                "account": args.account,
                "bars": result.bars,
                "fills": len(result.fills),
                "pnl": result.pnl,
                "fees": result.fees,
                "bars_per_s": round(result.bars_per_s, 1),
                "elapsed_s": round(result.elapsed_s, 4),
                "total_s": round(total_s, 4),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "fills_digest": result.fills_digest,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
