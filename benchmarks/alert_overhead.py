"""What alerts cost the session's ``control`` actor, per message; one JSON line.

* ``handle_us``: mean time of ``ControlSink.handle`` per message over a stream of fills and
  portfolio snapshots (what a host sends ``control`` when rules read them), without rules and
  with four (``kill_switch_tripped``, ``fill`` rate-limited, ``drawdown``,
  ``venue_rejections``);
* ``submit_us``: p50/p99 of queuing one alert while the channel hangs (the sender's thread is
  stuck in a send), i.e. what raising an alert can ever cost the caller; the queue fills and
  the rest are dropped, never waited for.

    python benchmarks/alert_overhead.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np

from tradegraph.actors.live_host import ControlSink
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import (
    LiquiditySide,
    Message,
    OrderFilled,
    OrderSide,
    PortfolioSnapshot,
)
from tradegraph.observability import configure_logging
from tradegraph.observability.alert_sender import AlertSender
from tradegraph.observability.alerts import Alert

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper.yaml"
RULES: list[dict[str, object]] = [
    {"event": "kill_switch_tripped", "severity": "critical"},
    {"event": "fill", "max_alerts": 10},
    {"event": "drawdown", "above": 5.0},
    {"event": "venue_rejections"},
]


def stream(count: int) -> list[Message]:
    out: list[Message] = []
    for i in range(count):
        ts = 1_750_000_000_000_000_000 + i * 1_000_000_000
        if i % 2:
            out.append(
                OrderFilled(
                    fill_id=f"f{i}",
                    client_order_id=f"c{i}",
                    venue_order_id=f"v{i}",
                    strategy_id="s",
                    instrument_id="BTCUSDT.BINANCE",
                    venue="BINANCE",
                    side=OrderSide.BUY,
                    last_qty=0.01,
                    last_px=60_000.0,
                    fee=0.6,
                    liquidity=LiquiditySide.TAKER,
                    leaves_qty=0.0,
                    ts_event_ns=ts,
                    ts_init_ns=ts,
                )
            )
        else:
            drawdown = float(i % 7_000)
            out.append(
                PortfolioSnapshot(
                    cash=1e5,
                    equity=1e5 - drawdown,
                    gross_exposure=0.0,
                    net_exposure=0.0,
                    realized_pnl=0.0,
                    unrealized_pnl=0.0,
                    fees=0.0,
                    peak_equity=1e5,
                    drawdown=drawdown,
                    day_start_equity=1e5,
                    positions=(),
                    ts_event_ns=ts,
                    ts_init_ns=ts,
                )
            )
    return out


def config(rules: list[dict[str, object]]) -> GraphConfig:
    base = load_config(PAPER)
    alerts = {"channels": [{"name": "ops", "url": "json://127.0.0.1:9/hook"}], "rules": rules}
    return GraphConfig.model_validate({**base.model_dump(), "alerts": alerts})


def handle_us(rules: list[dict[str, object]], messages: list[Message]) -> float:
    def sent(*_: object) -> tuple[bool, str]:
        return True, ""

    sender = AlertSender({"ops": "json://x/y"}, {}, queue_size=1000, timeout_s=1.0, notify=sent)
    sink = ControlSink("bench", config=config(rules), sender=sender)
    started = time.perf_counter()
    for msg in messages:
        sink.handle(msg)
    elapsed = time.perf_counter() - started
    sink.stop()
    return elapsed / len(messages) * 1e6


def submit_us(count: int) -> dict[str, float]:
    release = threading.Event()

    def hung(*_: object) -> tuple[bool, str]:
        release.wait(60)
        return True, ""

    sender = AlertSender({"ops": "json://x/y"}, {}, queue_size=1000, timeout_s=1.0, notify=hung)
    alert = Alert("r", "fill", "warning", "r/k", 1, "t", "b", ("ops",))
    times = []
    for _ in range(count):
        started = time.perf_counter()
        sender.submit(alert)
        times.append((time.perf_counter() - started) * 1e6)
    release.set()
    sender.close(5.0)
    return {
        "p50": round(float(np.percentile(times, 50)), 2),
        "p99": round(float(np.percentile(times, 99)), 2),
        "dropped": sender.counts()["dropped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    configure_logging("CRITICAL")  # one alert_dropped line per dropped alert otherwise
    messages = stream(args.messages)
    print(
        json.dumps(
            {
                "messages": args.messages,
                "handle_us": {
                    "no_rules": round(handle_us([], messages), 3),
                    "four_rules": round(handle_us(RULES, messages), 3),
                },
                "submit_us_channel_hung": submit_us(5_000),
            }
        )
    )


if __name__ == "__main__":
    main()
