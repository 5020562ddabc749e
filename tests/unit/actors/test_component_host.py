"""The actor shell as a plain object: what it hands back for each delivered message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.graphs import MINUTE_NS, T0, graph_config
from tradegraph.actors.host import (
    CANCEL_TIMER,
    PUBLISH,
    SET_TIMER,
    ActionRecorder,
    ComponentHost,
    HostClock,
)
from tradegraph.config import StrategyConfig
from tradegraph.contracts import Bar, OrderIntent, TimerFired

STRATEGY = "strategy:s"


def _host(**params: Any) -> ComponentHost:
    config = graph_config(
        (
            StrategyConfig(
                id="s", class_path="test_script", instruments=("BTCUSDT.BINANCE",), params=params
            ),
        )
    )
    host = ComponentHost(config, STRATEGY)
    host.start(T0 - 1)
    return host


def _bar(minute: int, close: float = 100.0) -> Bar:
    ts = T0 + minute * MINUTE_NS
    return Bar(
        instrument_id="BTCUSDT.BINANCE",
        open=close,
        high=close,
        low=close,
        close=close,
        volume=10.0,
        interval_ns=MINUTE_NS,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def test_deliver_reports_actions_per_message_in_the_order_taken() -> None:
    host = _host(buy_on_bar=2, timer_offsets_s=(30.0,))
    bars = [_bar(0), _bar(1), _bar(2)]

    outputs = host.deliver([(b.ts_event_ns, b) for b in bars])

    assert [index for index, _ in outputs] == [0, 1]
    ((kind0, name, at_ns),) = outputs[0][1]
    assert (kind0, name, at_ns) == (SET_TIMER, "t0", T0 + 30 * 1_000_000_000)
    ((kind1, intent, _),) = outputs[1][1]
    assert kind1 == PUBLISH
    assert isinstance(intent, OrderIntent)
    assert intent.ts_event_ns == bars[1].ts_event_ns


def test_component_reads_the_time_the_coordinator_gives() -> None:
    host = _host()
    bar = _bar(3)

    host.deliver([(bar.ts_event_ns + 7, bar)])

    assert host.inspect(_seen)[-1][0] == bar.ts_event_ns + 7


def test_timer_replaced_earlier_in_the_same_batch_is_not_delivered() -> None:
    host = _host(timer_offsets_s=(0.0,))
    first, second = _bar(0), _bar(1)
    fired = TimerFired(name="t0", ts_event_ns=first.ts_event_ns, ts_init_ns=first.ts_event_ns)

    outputs = host.deliver([(first.ts_event_ns, first), (first.ts_event_ns, fired)])
    later = host.deliver([(second.ts_event_ns, fired)])

    assert [a[0] for a in outputs[0][1]] == [SET_TIMER]
    assert [kind for _, kind, _ in host.inspect(_seen)] == ["Bar", "TimerFired"]
    assert later == []


def test_cancel_is_reported_as_an_action() -> None:
    host = _host(timer_offsets_s=(60.0,), cancel_timer="t0")

    outputs = host.deliver([(T0, _bar(0))])

    assert [a[:2] for a in outputs[0][1]] == [(SET_TIMER, "t0"), (CANCEL_TIMER, "t0")]


def test_timer_in_the_past_is_refused_with_the_owner_named() -> None:
    clock = HostClock("risk", ActionRecorder(), start_ns=T0)

    with pytest.raises(ValueError, match=r"risk: timer 'late'"):
        clock.set_timer("late", T0 - 1)


def test_describe_names_the_component_and_its_type() -> None:
    described = _host().describe()

    assert described["component_id"] == STRATEGY
    assert described["component_type"] == "ScriptedStrategy"


def _seen(strategy: Any) -> list[tuple[int, str, str]]:
    seen: list[tuple[int, str, str]] = strategy.seen
    return seen
