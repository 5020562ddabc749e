"""The broker of a live session under venue faults: a stuck submit, a rate-limit ban.

The broker component (``GatewayBroker``, as its actor hosts it) drives the real ccxt client
against the fake Binance exchange over HTTP; no Ray. What is asserted is what the venue saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tradegraph.actors.gateway import KILL_SWITCH_REASON, GatewayBroker
from tradegraph.adapters.ccxt.broker import CcxtBroker
from tradegraph.adapters.ccxt.market_data import CcxtMarketData
from tradegraph.adapters.ccxt.retry import CircuitBreaker
from tradegraph.config import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    PortfolioConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.config.models import (
    RetryConfig,
    SessionConfig,
)
from tradegraph.contracts import (
    CancelOrder,
    Message,
    OrderRejected,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
    VenueStatus,
)
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.testing import RecordingOutbox

T = TypeVar("T")

API_KEY = "vf-key-2c4e6a8b0d"
SECRET = "vf-secret-1b3d5f7a9c"
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "VF_KEY": API_KEY, "VF_SECRET": SECRET}
PRICE = 60_000.0
REQUEST_TIMEOUT_S = 3.0


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


def graph(fake: FakeExchange, **overrides: Any) -> GraphConfig:
    values: dict[str, Any] = {
        "max_order_notional": 5_000.0,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "use_websockets": False,
        "ambiguous_settle_s": 0.1,
        "poll_interval_s": 0.2,
        "safety_poll_interval_s": 0.5,
        "stale_after_s": 30.0,
        "retry": RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    }
    values.update(overrides)
    return GraphConfig(
        name="venue-faults",
        instruments=(btc_instrument(),),
        venues=(
            VenueConfig(
                name="BINANCE",
                live=fake_live_venue(fake, key_env="VF_KEY", secret_env="VF_SECRET", **values),
            ),
        ),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="vf",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=("BTCUSDT.BINANCE",),
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=100_000.0),
        session=SessionConfig(market_data="ccxt", clock="wall"),
    )


_counter = 0


def bid(price: float) -> SubmitOrder:
    global _counter
    _counter += 1
    return SubmitOrder(
        client_order_id=f"vf-{_counter:06d}",
        strategy_id="vf",
        instrument_id="BTCUSDT.BINANCE",
        venue="BINANCE",
        side=OrderSide.BUY,
        quantity=0.01,
        order_type=OrderType.LIMIT,
        limit_price=price,
        time_in_force=TimeInForce.GTC,
        post_only=False,
        reduce_only=False,
        ts_event_ns=time.time_ns(),
        ts_init_ns=time.time_ns(),
    )


def kill(cmd: SubmitOrder) -> CancelOrder:
    return CancelOrder(
        client_order_id=cmd.client_order_id,
        strategy_id=cmd.strategy_id,
        instrument_id=cmd.instrument_id,
        venue=cmd.venue,
        reason=f"{KILL_SWITCH_REASON} test",
        ts_event_ns=time.time_ns(),
        ts_init_ns=time.time_ns(),
    )


def open_at_venue(fake: FakeExchange) -> int:
    return sum(1 for o in fake.orders() if o.is_live)


async def until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def of(outbox: RecordingOutbox, cmd: SubmitOrder) -> list[str]:
    return [
        type(m).__name__
        for m in outbox.messages
        if getattr(m, "client_order_id", None) == cmd.client_order_id
    ]


async def connected(fake: FakeExchange, **overrides: Any) -> tuple[GatewayBroker, RecordingOutbox]:
    outbox = RecordingOutbox()
    broker = GatewayBroker(
        graph(fake, **overrides),
        "BINANCE",
        session_id=f"vf{time.time_ns()}",
        environ=ENV,
        journal_path=None,
        outbox=outbox,
    )
    assert await broker.connect(lambda: None) == ""
    return broker, outbox


def test_kill_switch_cancels_at_once_while_a_submit_is_stuck(fake: FakeExchange) -> None:
    resting, stuck = bid(59_000.0), bid(58_000.0)

    async def scenario() -> tuple[float, RecordingOutbox]:
        broker, outbox = await connected(fake)
        try:
            broker.handle(resting)
            await until(lambda: "OrderAccepted" in of(outbox, resting))
            # The venue takes the next order but holds its answer past the client's timeout.
            fake.delay_next(delay_s=2 * REQUEST_TIMEOUT_S)
            broker.handle(stuck)
            await until(lambda: open_at_venue(fake) == 2)
            tripped = time.monotonic()
            broker.handle(kill(resting))
            broker.handle(kill(stuck))
            await until(lambda: open_at_venue(fake) == 0)
            quiet_s = time.monotonic() - tripped
            await until(
                lambda: all("OrderCancelled" in of(outbox, c) for c in (resting, stuck)),
                timeout_s=4 * REQUEST_TIMEOUT_S,
            )
        finally:
            await broker.close()
        return quiet_s, outbox

    quiet_s, outbox = run(scenario)

    assert quiet_s < REQUEST_TIMEOUT_S / 3, quiet_s  # not behind the stuck submit
    assert len(fake.requests(path="/api/v3/openOrders", method="DELETE")) == 1
    assert of(outbox, resting) == ["OrderAccepted", "OrderCancelled"]
    assert of(outbox, stuck) == ["OrderAccepted", "OrderCancelled"]
    assert len(fake.orders()) == 2


def test_kill_switch_rejects_submits_still_queued_unsent(fake: FakeExchange) -> None:
    first, queued = bid(58_000.0), bid(57_000.0)

    async def scenario() -> RecordingOutbox:
        broker, outbox = await connected(fake)
        try:
            fake.delay_next(delay_s=REQUEST_TIMEOUT_S / 2)
            broker.handle(first)
            broker.handle(queued)
            await until(lambda: open_at_venue(fake) == 1)
            broker.handle(kill(first))
            broker.handle(kill(queued))
            await until(lambda: "OrderRejected" in of(outbox, queued))
            await until(lambda: "OrderCancelled" in of(outbox, first))
        finally:
            await broker.close()
        return outbox

    outbox = run(scenario)

    [rejected] = outbox.of_type(OrderRejected)
    assert rejected.reason.startswith("not_sent: kill switch:")
    assert [o.client_order_id for o in fake.orders()] != []
    assert len(fake.requests(path="/api/v3/order", method="POST")) == 1  # the queued one never
    assert open_at_venue(fake) == 0


def test_kill_switch_during_a_ban_sends_nothing_until_the_ban_ends(fake: FakeExchange) -> None:
    resting = bid(59_000.0)
    ban_s = 1.5

    async def scenario() -> tuple[float, float, RecordingOutbox]:
        broker, outbox = await connected(fake)
        try:
            broker.handle(resting)
            await until(lambda: "OrderAccepted" in of(outbox, resting))
            fake.ban(ban_s, escalate=True)
            banned_at = time.monotonic()
            # The broker's next poll meets the ban (418, Retry-After) and tells Risk.
            await until(lambda: any(not s.available for s in outbox.of_type(VenueStatus)))
            broker.handle(kill(resting))
            await until(lambda: open_at_venue(fake) == 0, timeout_s=20.0)
            quiet_after_s = time.monotonic() - banned_at
            await until(lambda: "OrderCancelled" in of(outbox, resting))
            await until(lambda: outbox.of_type(VenueStatus)[-1].available, timeout_s=10.0)
        finally:
            await broker.close()
        return quiet_after_s, fake.banned_for_s(), outbox

    quiet_after_s, still_banned_s, outbox = run(scenario)

    refused = [r for r in fake.requests() if r.status == 418]
    assert len(refused) == 1  # nothing more was sent into the ban, so it was not lengthened
    assert still_banned_s == 0.0
    # The ban became 2 * ban_s with the one refused request; the cancel went out as it ended.
    assert 2 * ban_s - 0.1 <= quiet_after_s < 2 * ban_s + 1.5, quiet_after_s
    assert [s.available for s in outbox.of_type(VenueStatus)] == [False, True]
    assert of(outbox, resting) == ["OrderAccepted", "OrderCancelled"]


def test_a_ban_met_by_market_data_stops_the_broker_too(fake: FakeExchange) -> None:
    config = graph(fake, poll_interval_s=0.05)
    venue = config.venue("BINANCE")
    cmd = bid(59_000.0)

    async def scenario() -> tuple[list[Message], int]:
        outbox = RecordingOutbox()
        broker = CcxtBroker(
            venue, config.instrument_map(), session_id=f"vf{time.time_ns()}", environ=ENV
        )
        breaker: CircuitBreaker = broker.breaker
        feed = MarketDataFeed(config.instrument_map(), SimClock(time.time_ns()), outbox)
        md = CcxtMarketData(venue, config.instrument_map(), feed, outbox, breaker=breaker)
        await broker.start()
        await md.start()
        streaming = asyncio.create_task(md.run())
        try:
            fake.ban(30.0, escalate=False)
            await until(lambda: breaker.ban_remaining_s() > 0.0)
            posts_before = len(fake.requests(path="/api/v3/order", method="POST"))
            out = await broker.submit(cmd)
            posts = len(fake.requests(path="/api/v3/order", method="POST")) - posts_before
        finally:
            await md.close()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
            await broker.close()
        return out, posts

    out, posts = run(scenario)

    assert posts == 0
    assert [type(m).__name__ for m in out][-1:] == ["OrderRejected"]
    assert "banned" in out[-1].reason  # type: ignore[attr-defined]
    # At most the requests that were on their way together (one per market-data stream).
    refused = [r for r in fake.requests() if r.status == 418]
    assert 1 <= len(refused) <= len(venue.live.market_data)  # type: ignore[union-attr]
