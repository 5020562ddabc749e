"""Cost of the audit trail on the order path; prints one JSON line.

    python benchmarks/audit_overhead.py [--n 20000] [--batch 4]

A host records each order-path message it publishes (``record_message``, a buffer append) and
writes the batch's records in one go when it flushes (``flush``: JSON, two SHA-256 and one
``write``; one ``fsync`` more in a live session). ``ns_per_record`` is the whole cost per
message, record plus its share of the flush, with ``batch`` messages per flush (a fill batch of
a broker is one or two messages; Risk's decision, one), best of five rounds, for each
durability; ``fsync_flush_us`` is what one durable flush of one record costs on this disk.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tradegraph.contracts import LiquiditySide, Message, OrderFilled, OrderIntent, OrderSide
from tradegraph.observability.audit import AuditChain

BTC = "BTCUSDT.BINANCE"


def messages() -> list[Message]:
    stamp = {"ts_event_ns": 1, "ts_init_ns": 1}
    return [
        OrderIntent(
            intent_id="s-1",
            strategy_id="s",
            instrument_id=BTC,
            side=OrderSide.BUY,
            quantity=0.1,
            **stamp,
        ),
        OrderFilled(
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
    ]


def ns_per_record(folder: Path, n: int, batch: int, durable: bool) -> float:
    sample = messages()
    best = float("inf")
    for round_ in range(5):
        chain = AuditChain(folder / f"r{round_}-{durable}.audit.ndjson", "risk", durable=durable)
        chain.flush()
        start = time.perf_counter_ns()
        for i in range(n):
            chain.record_message("published", sample[i % 2])
            if (i + 1) % batch == 0:
                chain.flush()
        chain.flush()
        best = min(best, (time.perf_counter_ns() - start) / n)
        chain.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        buffered = ns_per_record(folder, args.n, args.batch, durable=False)
        durable = ns_per_record(folder, max(200, args.n // 50), 1, durable=True)
    print(
        json.dumps(
            {
                "benchmark": "audit_overhead",
                "n": args.n,
                "batch": args.batch,
                "ns_per_record": round(buffered),
                "fsync_flush_us": round(durable / 1e3, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
