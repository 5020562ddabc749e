"""The session's ``control`` raises alerts from the messages it gets, and hosts send it what the
rules read even when the routing table addresses it elsewhere (no Ray: a host on a fake
transport, a sender whose channel records)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.transports import TakingTransport
from tradegraph.actors.live_host import ControlSink, LiveHost
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import (
    CONTROL,
    KillSwitchChanged,
    LiquiditySide,
    OrderFilled,
    OrderSide,
    TripKillSwitch,
)
from tradegraph.observability.alert_sender import AlertSender

PAPER = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"
BROKER = "broker:BINANCE"


def config_with_alerts(*rules: dict[str, Any]) -> GraphConfig:
    config = load_config(PAPER, ["session.state_dir=null"])
    alerts = {"channels": [{"name": "ops", "url": "json://127.0.0.1:9/hook"}], "rules": rules}
    return GraphConfig.model_validate({**config.model_dump(), "alerts": alerts})


def fill(ts: int = 5) -> OrderFilled:
    return OrderFilled(
        fill_id=f"f{ts}",
        client_order_id="c1",
        venue_order_id="v1",
        strategy_id="sma_btc",
        instrument_id="BTCUSDT.BINANCE",
        venue="BINANCE",
        side=OrderSide.BUY,
        last_qty=0.05,
        last_px=60_000.0,
        fee=3.0,
        liquidity=LiquiditySide.TAKER,
        leaves_qty=0.0,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


class Channel:
    """A channel that records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def __call__(
        self, url: str, title: str, body: str, severity: str, timeout_s: float
    ) -> tuple[bool, str]:
        self.sent.append((title, body, severity))
        return True, ""


def control(config: GraphConfig, channel: Channel) -> ControlSink:
    sender = AlertSender(
        {"ops": "json://127.0.0.1:9/hook"}, {}, queue_size=10, timeout_s=1.0, notify=channel
    )
    return ControlSink("sess", config=config, sender=sender)


def test_control_sends_an_alert_when_the_kill_switch_trips() -> None:
    channel = Channel()
    sink = control(
        config_with_alerts({"event": "kill_switch_tripped", "severity": "critical"}), channel
    )

    sink.handle(KillSwitchChanged(tripped=True, reason="operator x", ts_event_ns=1, ts_init_ns=1))
    sink.stop()

    ((title, body, severity),) = channel.sent
    assert title == "[CRITICAL] tradegraph sess: kill switch tripped"
    assert "reason='operator x'" in body
    assert severity == "critical"
    assert sink.alert_counts() == {
        "duplicates": 0,
        "rate_limited": 0,
        "sent": 1,
        "failed": 0,
        "dropped": 0,
    }
    assert sink.counts == {"KillSwitchChanged": 1}


def test_messages_sent_to_control_only_for_a_rule_are_read_not_kept() -> None:
    channel = Channel()
    sink = control(config_with_alerts({"event": "fill", "dedup_window_s": 0}), channel)

    sink.handle(fill(5))
    sink.handle(fill(6))
    sink.handle(TripKillSwitch(reason="broker down", ts_event_ns=7, ts_init_ns=7))
    sink.stop()

    assert [title for title, _, _ in channel.sent] == ["[WARNING] tradegraph sess: fill"] * 2
    assert [type(m).__name__ for m in sink.messages] == ["TripKillSwitch"]
    assert sink.counts == {"TripKillSwitch": 1}
    assert sink.halt_reason == "broker down"


def test_control_without_rules_sends_nothing_and_has_no_sender() -> None:
    sink = ControlSink("sess", config=load_config(PAPER))

    sink.handle(KillSwitchChanged(tripped=True, reason="x", ts_event_ns=1, ts_init_ns=1))

    assert sink.sender is None
    assert sink.alert_counts() == {}


def test_alert_state_survives_a_snapshot_so_a_restart_does_not_repeat_alerts() -> None:
    config = config_with_alerts({"event": "kill_switch_tripped", "dedup_window_s": 60})
    first, again = Channel(), Channel()
    sink = control(config, first)
    sink.handle(KillSwitchChanged(tripped=True, reason="x", ts_event_ns=1, ts_init_ns=1))
    stored = sink.snapshot().model_dump_json()
    sink.stop()

    restarted = control(config, again)
    restarted.restore(ControlSink.State.model_validate_json(stored))
    restarted.handle(KillSwitchChanged(tripped=True, reason="x", ts_event_ns=2, ts_init_ns=2))
    restarted.stop()

    assert len(first.sent) == 1
    assert again.sent == []


def sent_to(config: GraphConfig, component_id: str) -> dict[str, list[str]]:
    """What a host of ``component_id`` sends, by receiver, when its component publishes a fill."""
    transport = TakingTransport()

    async def scenario() -> None:
        host = LiveHost(config, component_id, "taps", transport=transport)
        host.emit(fill())
        host.flush()

    asyncio.run(scenario())
    found: dict[str, list[str]] = {}
    for destination, items, _ in transport.sent:
        found.setdefault(destination, []).extend(type(m).__name__ for m in items)
    return found


def test_a_host_sends_control_what_a_rule_reads() -> None:
    with_rule = sent_to(config_with_alerts({"event": "fill"}), BROKER)
    without = sent_to(load_config(PAPER, ["session.state_dir=null"]), BROKER)

    assert with_rule[CONTROL] == ["OrderFilled"]
    assert CONTROL not in without
    assert {k: v for k, v in with_rule.items() if k != CONTROL} == without
