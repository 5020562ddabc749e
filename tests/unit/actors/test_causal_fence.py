"""Causal fences: a receiver of market data takes nothing caused by a bar before the bar itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.transports import TakingTransport
from tradegraph.actors.inbox import Fence
from tradegraph.actors.live_host import LiveHost
from tradegraph.actors.state_store import StateStore
from tradegraph.actors.wire import expand
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import (
    Bar,
    Message,
    OrderAccepted,
    OrderFilled,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
)
from tradegraph.engine.backtest import load_bar_stream

PAPER = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"
BROKER = "broker:BINANCE"
STRATEGY = "strategy:sma_btc"
MD_INCARNATION = 5


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(
        PAPER, ["data.bars.0.limit=5", "data.bars.1.limit=5", "session.state_dir=null"]
    )


@pytest.fixture(scope="module")
def btc_bars(config: GraphConfig) -> list[Bar]:
    return [b for b in load_bar_stream(config).bars() if b.instrument_id == "BTCUSDT.BINANCE"]


def market_buy(bar: Bar) -> SubmitOrder:
    return SubmitOrder(
        client_order_id="sma_btc-000001",
        strategy_id="sma_btc",
        instrument_id=bar.instrument_id,
        venue="BINANCE",
        side=OrderSide.BUY,
        quantity=0.01,
        order_type=OrderType.MARKET,
        limit_price=None,
        time_in_force=TimeInForce.GTC,
        post_only=False,
        reduce_only=False,
        ts_event_ns=bar.ts_event_ns,
        ts_init_ns=bar.ts_event_ns,
    )


def md_fence(receiver: str, seq: int) -> Fence:
    return {receiver: (MD_INCARNATION, seq)}


def host_with_links(
    config: GraphConfig, component_id: str, state_dir: Path
) -> tuple[LiveHost, TakingTransport]:
    """A host whose peers take every batch at once, journaling what it takes in ``state_dir``."""
    transport = TakingTransport()
    host = LiveHost(config, component_id, "unit", str(state_dir), transport=transport)
    return host, transport


def taken_in_order(state_dir: Path, component_id: str) -> list[Message]:
    """What the host handed its component, in order: its journal (written before delivery)."""
    store = StateStore(state_dir / component_id.replace(":", "_"))
    _, entries = store.load()
    return [m for entry in entries for m in expand(entry.messages)]


def filled(config: GraphConfig, bars: list[Bar], state_dir: Path) -> list[Message]:
    """The broker's acceptance and fill of a market buy sent on the first bar."""
    broker, _ = host_with_links(config, BROKER, state_dir)

    async def deliver() -> None:
        await broker.push("md", MD_INCARNATION, 1, [bars[0]], 0, md_fence(BROKER, 1))
        await broker.push("risk", 7, 1, [market_buy(bars[0])], 0, md_fence(BROKER, 1))
        await broker.push("md", MD_INCARNATION, 2, [bars[1]], 0, md_fence(BROKER, 2))

    asyncio.run(deliver())
    out: list[Message] = [m for m in broker.order_log if type(m) in (OrderAccepted, OrderFilled)]
    assert [type(m) for m in out] == [OrderAccepted, OrderFilled]
    assert out[1].ts_event_ns == bars[1].ts_event_ns
    return out


def strategy_and_answers(
    config: GraphConfig, bars: list[Bar], state_dir: Path
) -> tuple[LiveHost, Message, Message]:
    """A strategy's host and the broker's acceptance and fill."""
    accepted, fill = filled(config, bars, state_dir)
    strategy, _ = host_with_links(config, STRATEGY, state_dir)
    return strategy, accepted, fill


def test_a_fill_that_overtook_its_bar_waits_for_it_and_so_does_what_follows_it(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    strategy, accepted, fill = strategy_and_answers(config, btc_bars, tmp_path)

    async def deliver() -> None:
        await strategy.push("md", MD_INCARNATION, 1, [btc_bars[0]], 0, md_fence(STRATEGY, 1))
        # The broker's answers, caused by md's batch 2 (the second bar), arrive before it.
        first = asyncio.ensure_future(
            strategy.push(BROKER, 3, 1, [accepted], 0, md_fence(STRATEGY, 2))
        )
        second = asyncio.ensure_future(strategy.push(BROKER, 3, 2, [fill], 0, None))
        await asyncio.sleep(0)
        assert strategy.status().held_batches == 2
        await strategy.push("md", MD_INCARNATION, 2, [btc_bars[1]], 0, md_fence(STRATEGY, 2))
        await first
        await second

    asyncio.run(deliver())
    assert strategy.status().held_batches == 0
    assert taken_in_order(tmp_path, STRATEGY) == [btc_bars[0], btc_bars[1], accepted, fill]


def test_without_a_fence_the_fill_is_handled_before_its_bar(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    """The race the fence closes: the same arrivals, unfenced, reach the strategy as they come."""
    strategy, accepted, fill = strategy_and_answers(config, btc_bars, tmp_path)

    async def deliver() -> None:
        await strategy.push(BROKER, 3, 1, [accepted, fill], 0, None)
        await strategy.push("md", MD_INCARNATION, 1, [btc_bars[1]], 0, md_fence(STRATEGY, 1))

    asyncio.run(deliver())
    assert taken_in_order(tmp_path, STRATEGY) == [accepted, fill, btc_bars[1]]


def test_a_fence_of_an_md_that_restarted_since_does_not_hold(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    first = btc_bars[0]
    broker, _ = host_with_links(config, BROKER, tmp_path)

    async def deliver() -> None:
        await broker.push("md", MD_INCARNATION + 1, 1, [first], 0, None)
        # Names batch 9 of md's earlier incarnation, which will never come.
        await broker.push("risk", 7, 1, [market_buy(first)], 0, md_fence(BROKER, 9))

    asyncio.run(deliver())
    assert broker.status().held_batches == 0
    assert broker.status().messages_in == 2


def test_what_a_host_publishes_carries_the_fences_of_what_it_took(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    first, second = btc_bars[0], btc_bars[1]
    broker, transport = host_with_links(config, BROKER, tmp_path)
    on_first = {BROKER: (MD_INCARNATION, 1), STRATEGY: (MD_INCARNATION, 3)}
    on_second = {BROKER: (MD_INCARNATION, 2), STRATEGY: (MD_INCARNATION, 4)}

    async def deliver() -> None:
        await broker.push("md", MD_INCARNATION, 1, [first], 0, on_first)
        await broker.push("risk", 7, 1, [market_buy(first)], 0, md_fence(BROKER, 1))
        await broker.push("md", MD_INCARNATION, 2, [second], 0, on_second)

    asyncio.run(deliver())
    to_strategy = [
        (type(m), fence)
        for dest, items, fence in transport.sent
        if dest == STRATEGY
        for m in expand(items)
    ]
    # The acceptance was caused by the order, taken after md's first batch; the fill by the
    # second bar. Each names what the strategy must have taken from md before it.
    assert to_strategy == [(OrderAccepted, on_first), (OrderFilled, on_second)]
