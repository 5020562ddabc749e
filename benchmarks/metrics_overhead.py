"""Cost of ``GraphMetrics.observe`` per message type; prints one JSON line.

    python benchmarks/metrics_overhead.py [--n 200000]

``ns_per_observe`` maps each message type to nanoseconds per ``observe`` call (best of five
rounds, on a ``PrometheusSink``, automatic flushes included); ``flush_ns`` is one flush after
one observation of each type.
"""

from __future__ import annotations

import argparse
import json
import time

from tradegraph.contracts import (
    Bar,
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderFilled,
    OrderIntent,
    OrderSide,
    PortfolioSnapshot,
    PositionSnapshot,
    RiskReason,
    RiskRejected,
    TradeTick,
)
from tradegraph.observability.metrics import GraphMetrics
from tradegraph.observability.prometheus import PrometheusSink

BTC = "BTCUSDT.BINANCE"


def sample_messages() -> dict[str, Message]:
    stamp = {"ts_event_ns": 1, "ts_init_ns": 1}
    position = PositionSnapshot(
        instrument_id=BTC,
        quantity=0.5,
        avg_price=100.0,
        mark_price=101.0,
        realized_pnl=0.0,
        unrealized_pnl=0.5,
        **stamp,
    )
    return {
        "Bar": Bar(
            instrument_id=BTC,
            open=100.0,
            high=101.0,
            low=99.0,
            close=100.5,
            volume=1.0,
            interval_ns=60_000_000_000,
            **stamp,
        ),
        "TradeTick": TradeTick(
            instrument_id=BTC, price=100.0, size=0.1, aggressor_side="buy", trade_id="1", **stamp
        ),
        "OrderIntent": OrderIntent(
            intent_id="s-1",
            strategy_id="s",
            instrument_id=BTC,
            side=OrderSide.BUY,
            quantity=0.1,
            **stamp,
        ),
        "RiskRejected": RiskRejected(
            intent_id="s-1",
            strategy_id="s",
            instrument_id=BTC,
            reason=RiskReason.MAX_POSITION,
            detail="",
            **stamp,
        ),
        "OrderFilled": OrderFilled(
            fill_id="f-1",
            client_order_id="s-1",
            venue_order_id="v-1",
            strategy_id="s",
            instrument_id=BTC,
            venue="BINANCE",
            side=OrderSide.BUY,
            last_qty=0.1,
            last_px=100.0,
            fee=0.01,
            liquidity=LiquiditySide.TAKER,
            leaves_qty=0.0,
            **stamp,
        ),
        "PortfolioSnapshot": PortfolioSnapshot(
            cash=1_000.0,
            equity=1_050.0,
            gross_exposure=50.0,
            net_exposure=50.0,
            realized_pnl=0.0,
            unrealized_pnl=0.5,
            fees=0.0,
            peak_equity=1_050.0,
            drawdown=0.0,
            day_start_equity=1_000.0,
            positions=(position,),
            **stamp,
        ),
        "OrderAccepted (ignored)": OrderAccepted(
            client_order_id="s-1",
            venue_order_id="v-1",
            strategy_id="s",
            instrument_id=BTC,
            venue="BINANCE",
            **stamp,
        ),
    }


def ns_per_call(metrics: GraphMetrics, msg: Message, n: int) -> float:
    observe = metrics.observe
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(n):
            observe(msg)
        best = min(best, (time.perf_counter_ns() - started) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per round")
    args = parser.parse_args()
    messages = sample_messages()
    metrics = GraphMetrics(PrometheusSink())
    costs = {name: round(ns_per_call(metrics, msg, args.n), 1) for name, msg in messages.items()}
    for msg in messages.values():
        metrics.observe(msg)
    started = time.perf_counter_ns()
    metrics.flush()
    flush_ns = time.perf_counter_ns() - started
    print(
        json.dumps({"benchmark": "metrics_overhead", "ns_per_observe": costs, "flush_ns": flush_ns})
    )


if __name__ == "__main__":
    main()
