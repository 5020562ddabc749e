"""Timers of a causal data-clock session fire at their own time, when md asks (``advance``),
and every host tells md when its next timer is due."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.actors.test_causal_fence import (
    BROKER,
    MD_INCARNATION,
    PAPER,
    host_with_links,
    market_buy,
    md_fence,
    taken_in_order,
)
from tradegraph.actors.causal_order import CausalReport, TimerReport, merge_timer_reports
from tradegraph.actors.live_clock import DataClock
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import Bar, OrderAccepted
from tradegraph.engine.backtest import load_bar_stream

LATENCY_NS = 90_000_000_000


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(
        PAPER,
        [
            "data.bars.0.limit=5",
            "data.bars.1.limit=5",
            "session.state_dir=null",
            "venues.0.latency_ms=90000",
        ],
    )


@pytest.fixture(scope="module")
def btc_bars(config: GraphConfig) -> list[Bar]:
    return [b for b in load_bar_stream(config).bars() if b.instrument_id == "BTCUSDT.BINANCE"]


def test_an_order_in_flight_reaches_the_venue_at_its_own_time_when_md_advances_the_broker(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    broker, _ = host_with_links(config, BROKER, tmp_path)
    first = btc_bars[0]
    due_ns = first.ts_event_ns + LATENCY_NS
    reports: list[CausalReport | None] = []

    async def deliver() -> None:
        await broker.push("md", MD_INCARNATION, 1, [first], 0, md_fence(BROKER, 1))
        reports.append(await broker.push("risk", 7, 1, [market_buy(first)], 0, md_fence(BROKER, 1)))
        reports.append(await broker.advance(due_ns - 1))
        reports.append(await broker.advance(due_ns))

    asyncio.run(deliver())

    waiting, too_early, fired = reports
    assert waiting is not None
    assert too_early is not None
    assert fired is not None
    assert waiting.timers[BROKER][1] == due_ns
    assert too_early.timers[BROKER][1] == due_ns
    assert fired.timers[BROKER][1] is None
    assert waiting.timers[BROKER][0] < too_early.timers[BROKER][0] < fired.timers[BROKER][0]
    accepted = [m for m in broker.order_log if type(m) is OrderAccepted]
    assert [(m.ts_event_ns, m.ts_init_ns) for m in accepted] == [(due_ns, due_ns)]
    assert broker.status().clock_ns == due_ns


def test_a_timer_fired_by_advance_is_fired_again_by_recovery_not_twice(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    journaled = load_config(PAPER, ["session.causal=true", "venues.0.latency_ms=90000"])
    journaled = config.model_copy(update={"session": journaled.session})
    state_dir = tmp_path / "state"
    first = btc_bars[0]
    due_ns = first.ts_event_ns + LATENCY_NS
    broker, _ = host_with_links(journaled, BROKER, state_dir)

    async def deliver() -> None:
        await broker.push("md", MD_INCARNATION, 1, [first], 0, md_fence(BROKER, 1))
        await broker.push("risk", 7, 1, [market_buy(first)], 0, md_fence(BROKER, 1))
        await broker.advance(due_ns)

    asyncio.run(deliver())
    assert [type(m).__name__ for m in taken_in_order(state_dir, BROKER)][-1] == "TimerFired"

    recovered, _ = host_with_links(journaled, BROKER, state_dir)

    assert recovered.recovered
    assert [m for m in recovered.order_log if type(m) is OrderAccepted] == [
        m for m in broker.order_log if type(m) is OrderAccepted
    ]
    assert recovered.status().clock_ns == due_ns
    assert recovered.status().details["open_orders"] == broker.status().details["open_orders"]


def test_timers_due_together_fire_in_the_order_they_were_set_not_by_name() -> None:
    clock = DataClock()
    clock.set_timer("b", 10)
    clock.set_timer("a", 10)
    clock.set_timer("c", 5)
    clock.set_timer("b", 10)  # set again: now the last of the three due at 10

    fired = clock.advance(10)

    assert [(t.name, t.ts_event_ns, t.ts_init_ns) for t in fired] == [
        ("c", 5, 10),
        ("a", 10, 10),
        ("b", 10, 10),
    ]
    assert clock.next_timer_ns() is None


def test_the_latest_report_of_each_host_wins() -> None:
    merged: TimerReport = {"risk": (3, 100), BROKER: (5, 40)}

    merge_timer_reports(merged, {"risk": (2, 7), BROKER: (6, None), "portfolio": (1, 9)})

    assert merged == {"risk": (3, 100), BROKER: (6, None), "portfolio": (1, 9)}
