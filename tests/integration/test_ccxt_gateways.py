"""The ccxt gateways (broker and market data) against the fake Binance exchange, no Ray.

The real ccxt client talks to the fake over HTTP and websockets; nothing in ccxt or in our code
is patched. Each fault the fake can inject must end with no duplicate order, no lost fill, and
positions (booked by the real Portfolio from the broker's fills) equal to the fake's balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import stubs
from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tests.support.stubs import bar, cancel
from tradegraph.actors.gateway import GatewayBroker
from tradegraph.adapters.ccxt.broker import CcxtBroker, DryRunBroker, build_broker
from tradegraph.adapters.ccxt.market_data import CcxtMarketData
from tradegraph.adapters.ccxt.order_journal import OrderJournal
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, StrategyConfig
from tradegraph.config.models import (
    LiveMode,
    LiveVenueConfig,
    PortfolioConfig,
    RetryConfig,
    VenueConfig,
)
from tradegraph.contracts import (
    CancelOrder,
    FeedStatus,
    Instrument,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    QuoteTick,
    SubmitOrder,
    TradeTick,
)
from tradegraph.data.catalog import instruments_from_exchange_info
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.observability import configure_logging
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox

T = TypeVar("T")

API_KEY = "it-key-7f3a9c1e5b"
SECRET = "it-secret-d4e8b2a6f0"
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "BINANCE_KEY": API_KEY, "BINANCE_SECRET": SECRET}
INSTRUMENTS: dict[str, Instrument] = {
    i.instrument_id: i for i in instruments_from_exchange_info("sample:exchangeinfo")
}
BTC = INSTRUMENTS["BTCUSDT.BINANCE"]
PRICE = 60_000.0
WAIT_S = 5.0


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the gateway tests must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(autouse=True)
def _log_to_current_stderr() -> None:
    # A CLI test run under capsys may have left structlog writing to a closed capture.
    configure_logging()


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


def live_config(fake: FakeExchange, **overrides: Any) -> LiveVenueConfig:
    values: dict[str, Any] = {
        "max_order_notional": 20_000.0,
        "request_timeout_s": 0.5,
        "ambiguous_settle_s": 0.1,
        "poll_interval_s": 0.1,
        "safety_poll_interval_s": 0.5,
        "stale_after_s": 1.0,
        "retry": RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    }
    values.update(overrides)
    return fake_live_venue(fake, key_env="BINANCE_KEY", secret_env="BINANCE_SECRET", **values)


def venue(fake: FakeExchange, **overrides: Any) -> VenueConfig:
    return VenueConfig(name="BINANCE", live=live_config(fake, **overrides))


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 30))


_orders = 0


def submit(
    side: OrderSide = OrderSide.BUY, quantity: float = 0.01, limit_price: float | None = None
) -> SubmitOrder:
    """The next order of strategy "sma" (sma-000001, sma-000002, ...), as risk sends it."""
    global _orders
    _orders += 1
    return stubs.submit(
        side,
        quantity,
        client_order_id=f"sma-{_orders:06d}",
        strategy_id="sma",
        limit_price=limit_price,
        ts_ns=1,
    )


class Session:
    """A live broker on the fake, its watch stream running, every message kept in order and
    booked by a real Portfolio."""

    def __init__(self, broker: CcxtBroker) -> None:
        self.broker = broker
        self.messages: list[Message] = []
        self.portfolio = Portfolio(
            PortfolioConfig(starting_cash=100_000.0),
            {BTC.instrument_id: BTC},
            SimClock(time.time_ns()),
            RecordingOutbox(),
        )
        self._task: asyncio.Task[None] | None = None

    def take(self, batch: list[Message]) -> list[Message]:
        for msg in batch:
            self.messages.append(msg)
            if isinstance(msg, OrderFilled):
                self.portfolio.handle(msg)
        return batch

    async def _consume(self) -> None:
        async for batch in self.broker.watch():
            self.take(batch)

    async def __aenter__(self) -> Session:
        self.take(await self.broker.start())
        report = await self.broker.reconcile()
        assert report.ok, report.summary()
        self.take(list(report.events))
        self.broker.observe(bar(PRICE, ts_ns=1))
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, WAIT_S)

    async def submit(self, cmd: SubmitOrder) -> list[Message]:
        return self.take(await self.broker.submit(cmd))

    async def cancel(self, cmd: CancelOrder) -> list[Message]:
        return self.take(await self.broker.cancel(cmd))

    def fills(self, client_order_id: str | None = None) -> list[OrderFilled]:
        return [
            m
            for m in self.messages
            if isinstance(m, OrderFilled)
            and (client_order_id is None or m.client_order_id == client_order_id)
        ]

    def of(self, client_order_id: str) -> list[str]:
        return [
            type(m).__name__
            for m in self.messages
            if getattr(m, "client_order_id", None) == client_order_id
        ]

    async def until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; messages: {self.messages}")
            await asyncio.sleep(0.02)


def live_broker(
    fake: FakeExchange, *, journal: OrderJournal | None = None, **overrides: Any
) -> CcxtBroker:
    return CcxtBroker(
        venue(fake, **overrides), INSTRUMENTS, session_id="it", environ=ENV, journal=journal
    )


def assert_books_match_the_venue(session: Session, fake: FakeExchange) -> None:
    """Position and cash booked from our fills equal the fake's balances moves."""
    balances = fake.balances()
    btc = float(sum(balances["BTC"]))
    usdt = float(sum(balances["USDT"]))
    positions = session.portfolio.positions()
    position = positions[BTC.instrument_id].quantity if BTC.instrument_id in positions else 0.0
    assert position == pytest.approx(btc - 1.0, abs=1e-9)
    assert session.portfolio.cash == pytest.approx(usdt, abs=1e-6)


def assert_one_order_per_client_id(fake: FakeExchange, broker: CcxtBroker) -> None:
    for order in broker.journal.orders.values():
        assert len(fake.orders_with_client_id(order.venue_client_id)) <= 1


def assert_every_venue_fill_published_once(session: Session, fake: FakeExchange) -> None:
    ours = {o.venue_order_id for o in session.broker.journal.orders.values()}
    venue_fills = [f for f in fake.fills() if str(f.order_id) in ours]
    published = session.fills()
    assert len(published) == len(venue_fills)
    assert len({f.fill_id for f in published}) == len(published)


# ------------------------------------------------------------------ dry run


def test_dry_run_session_journals_orders_and_sends_nothing(
    fake: FakeExchange, tmp_path: Path
) -> None:
    config = venue(fake)
    path = tmp_path / "journal.jsonl"

    async def scenario() -> list[Message]:
        broker, mode, reason = build_broker(
            config, INSTRUMENTS, session_id="dry", environ={}, journal_path=path
        )
        assert isinstance(broker, DryRunBroker)
        assert mode is LiveMode.DRY_RUN
        assert "TRADEGRAPH_ENABLE_LIVE=1 is not set" in reason
        broker.observe(bar(PRICE, ts_ns=1))
        resting = submit(limit_price=59_000.0)
        out = await broker.start()
        out += await broker.submit(submit())
        out += await broker.submit(resting)
        out += await broker.cancel(cancel(resting))
        await broker.close()
        return out

    out = run(scenario)

    assert [type(m).__name__ for m in out] == [
        "OrderAccepted",
        "OrderCancelled",
        "OrderAccepted",
        "OrderCancelled",
    ]
    assert fake.requests(path="/api/v3/order") == []
    assert len(OrderJournal.load(path).orders) == 2


# ------------------------------------------------------------------ live


def test_live_session_places_fills_and_cancels_and_books_match_balances(
    fake: FakeExchange,
) -> None:
    buy = submit(quantity=0.05)
    rest = submit(OrderSide.SELL, 0.02, limit_price=60_100.0)
    idle = submit(quantity=0.01, limit_price=59_000.0)

    async def scenario() -> Session:
        async with Session(live_broker(fake)) as session:
            await session.submit(buy)
            await session.submit(rest)
            await session.submit(idle)
            fake.trade("BTCUSDT", "60150", "1")  # lifts the resting sell
            await session.until(lambda: len(session.fills(rest.client_order_id)) == 1)
            await session.cancel(cancel(idle))
            await session.until(lambda: "OrderCancelled" in session.of(idle.client_order_id))
            return session

    session = run(scenario)

    assert session.of(buy.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert session.of(rest.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert session.of(idle.client_order_id) == ["OrderAccepted", "OrderCancelled"]
    [maker] = session.fills(rest.client_order_id)
    assert (maker.last_px, maker.leaves_qty, maker.liquidity.value) == (60_100.0, 0.0, "maker")
    assert_books_match_the_venue(session, fake)
    assert_every_venue_fill_published_once(session, fake)


@pytest.mark.parametrize(("status", "retry_after_s"), [(429, 1), (418, None)])
def test_throttling_bans_the_venue_for_retry_after_and_places_one_order(
    fake: FakeExchange, status: int, retry_after_s: int | None
) -> None:
    cmd = submit()

    async def scenario() -> tuple[Session, float]:
        async with Session(live_broker(fake)) as session:
            fake.fail_next(
                1, status=status, retry_after_s=retry_after_s, path="/api/v3/order", method="POST"
            )
            started = time.monotonic()
            await session.submit(cmd)
            return session, time.monotonic() - started

    session, elapsed = run(scenario)

    if retry_after_s is not None:
        assert elapsed >= retry_after_s  # what the venue asked for, in full
    else:
        # No Retry-After: our own ban, never a quick retry into a venue that bans us.
        assert elapsed >= RetryConfig().ban_floor_s
    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert len(fake.requests(path="/api/v3/order", method="POST")) == 2
    assert_one_order_per_client_id(fake, session.broker)
    assert_books_match_the_venue(session, fake)


def test_timeout_after_the_order_was_accepted_is_resolved_by_lookup(fake: FakeExchange) -> None:
    async def scenario() -> tuple[Session, SubmitOrder]:
        async with Session(live_broker(fake)) as session:
            fake.delay_next(delay_s=1.0)
            cmd = submit()
            await session.submit(cmd)
            await session.until(lambda: len(session.fills(cmd.client_order_id)) == 1)
            return session, cmd

    session, cmd = run(scenario)

    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert len(fake.requests(path="/api/v3/order", method="POST")) == 1
    assert_one_order_per_client_id(fake, session.broker)
    assert_every_venue_fill_published_once(session, fake)
    assert_books_match_the_venue(session, fake)


def test_dropped_connection_before_the_venue_acted_resends_the_same_client_id(
    fake: FakeExchange,
) -> None:
    async def scenario() -> tuple[Session, SubmitOrder]:
        async with Session(live_broker(fake)) as session:
            fake.disconnect_next(1, path="/api/v3/order", method="POST")
            cmd = submit()
            await session.submit(cmd)
            return session, cmd

    session, cmd = run(scenario)

    posts = fake.requests(path="/api/v3/order", method="POST")
    assert len(posts) == 2
    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert_one_order_per_client_id(fake, session.broker)
    assert_books_match_the_venue(session, fake)


def test_duplicate_client_id_resolves_to_the_order_already_at_the_venue(
    fake: FakeExchange,
) -> None:
    cmd = submit(limit_price=59_000.0)

    async def scenario() -> tuple[list[Message], Any]:
        # A broker of the session placed the order and died before its journal kept it.
        first = live_broker(fake)
        await first.start()
        first.observe(bar(PRICE, ts_ns=1))
        await first.submit(cmd)
        await first.close()
        # Its successor is given the same command again (say, redelivered by the host).
        second = live_broker(fake)
        await second.start()
        second.observe(bar(PRICE, ts_ns=1))
        out = await second.submit(cmd)
        report = await second.reconcile()
        await second.close()
        return out, report

    out, report = run(scenario)

    [accepted] = out
    assert isinstance(accepted, OrderAccepted)
    [order] = fake.orders()
    assert accepted.venue_order_id == str(order.order_id)
    assert report.ok, report.summary()


def test_clock_skew_is_corrected_and_the_order_placed_once(fake: FakeExchange) -> None:
    async def scenario() -> tuple[Session, SubmitOrder]:
        async with Session(live_broker(fake)) as session:
            fake.set_clock_skew(60_000)
            cmd = submit()
            await session.submit(cmd)
            return session, cmd

    session, cmd = run(scenario)

    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert_one_order_per_client_id(fake, session.broker)
    assert_books_match_the_venue(session, fake)


@pytest.mark.parametrize("fault", ["malformed_user_frame", "dropped_websockets"])
def test_fill_during_a_broken_user_stream_is_published_once(fake: FakeExchange, fault: str) -> None:
    async def scenario() -> tuple[Session, SubmitOrder]:
        async with Session(live_broker(fake)) as session:
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("user")), WAIT_S)
            cmd = submit(OrderSide.SELL, 0.03, limit_price=60_200.0)
            await session.submit(cmd)
            if fault == "malformed_user_frame":
                fake.send_raw_frame('{"e":"executionReport","p":NaN', user=True)
                fake.send_raw_frame("not json at all", user=True)
            else:
                fake.drop_websockets()
            fake.trade("BTCUSDT", "60250", "0.01")  # a partial fill
            fake.trade("BTCUSDT", "60250", "1")  # the rest
            await session.until(
                lambda: sum(f.last_qty for f in session.fills(cmd.client_order_id)) >= 0.03 - 1e-12
            )
            await asyncio.sleep(0.6)  # a safety poll and any late stream update
            return session, cmd

    session, cmd = run(scenario)

    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled", "OrderFilled"]
    assert session.fills(cmd.client_order_id)[-1].leaves_qty == 0.0
    assert_every_venue_fill_published_once(session, fake)
    assert_books_match_the_venue(session, fake)


# ------------------------------------------------------------------ reconciliation


def test_restarted_broker_recovers_a_fill_made_while_it_was_away(
    fake: FakeExchange, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"

    async def scenario() -> tuple[Session, Any, SubmitOrder]:
        async with Session(live_broker(fake, journal=OrderJournal.load(path))) as before:
            cmd = submit(OrderSide.SELL, 0.02, limit_price=60_100.0)
            await before.submit(cmd)
        fake.trade("BTCUSDT", "60150", "1")  # fills while no broker runs
        after = live_broker(fake, journal=OrderJournal.load(path))
        await after.start()
        report = await after.reconcile()
        before.take(list(report.events))
        await after.close()
        return before, report, cmd

    session, report, cmd = run(scenario)

    assert report.ok, report.summary()
    assert report.recovered_fills == 1
    assert [type(e).__name__ for e in report.events] == ["OrderFilled"]
    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert_books_match_the_venue(session, fake)


def test_reconciliation_halts_on_a_balance_nobody_can_explain(
    fake: FakeExchange, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"

    async def scenario() -> Any:
        async with Session(live_broker(fake, journal=OrderJournal.load(path))) as session:
            await session.submit(submit())
        fake.set_balance("BTC", "0.5")  # a withdrawal while we were away
        after = live_broker(fake, journal=OrderJournal.load(path))
        await after.start()
        report = await after.reconcile()
        await after.close()
        return report

    report = run(scenario)

    assert not report.ok
    [problem] = report.problems
    assert problem.startswith("BTC balance at the venue is 0.5 but the journal expects 1.00999")
    assert "not explained by any fill" in problem
    assert "FAILED: trading must not start" in report.summary()


# ------------------------------------------------------------------ secrets


def test_keys_never_reach_logs_journals_or_errors(fake: FakeExchange, tmp_path: Path) -> None:
    structured = io.StringIO()
    plain = io.StringIO()
    handler = logging.StreamHandler(plain)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    configure_logging("DEBUG", structured)
    path = tmp_path / "journal.jsonl"
    errors: list[str] = []

    async def scenario() -> None:
        broker = live_broker(fake, journal=OrderJournal.load(path))
        broker._exchange.logger.setLevel(logging.DEBUG)
        async with Session(broker) as session:
            fake.fail_next(1, status=429, retry_after_s=None, path="/api/v3/order")
            fake.delay_next(delay_s=1.0)
            await session.submit(submit())
            rejected = await session.submit(submit(quantity=5.0, limit_price=1.0))  # too small
            errors.extend(getattr(m, "reason", "") for m in rejected)
        bad = CcxtBroker(
            venue(fake),
            INSTRUMENTS,
            session_id="it",
            environ={**ENV, "BINANCE_SECRET": "wrong-" + SECRET},
        )
        try:
            await bad.start()
            report = await bad.reconcile()
            assert not report.ok
            errors.append(report.summary())
        except Exception as exc:
            errors.append(f"{exc!r} {exc}")
        finally:
            await bad.close()

    try:
        run(scenario)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        configure_logging()

    texts = {
        "structured log": structured.getvalue(),
        "stdlib log": plain.getvalue(),
        "journal": path.read_text(),
        "errors": "\n".join(errors),
    }
    assert "Request:" in texts["stdlib log"]  # ccxt's debug log was on
    for where, text in texts.items():
        assert API_KEY not in text, where
        assert SECRET not in text, where


# ------------------------------------------------------------------ market data


@contextlib.asynccontextmanager
async def market_data(
    fake: FakeExchange, **overrides: Any
) -> AsyncIterator[tuple[CcxtMarketData, MarketDataFeed, RecordingOutbox]]:
    outbox = RecordingOutbox()
    feed = MarketDataFeed({BTC.instrument_id: BTC}, SimClock(time.time_ns()), outbox)
    config = live_config(
        fake, mode=LiveMode.PAPER, api_key_env=None, api_secret_env=None, **overrides
    )
    md = CcxtMarketData(
        VenueConfig(name="BINANCE", live=config), {BTC.instrument_id: BTC}, feed, outbox
    )
    await md.start()
    task = asyncio.create_task(md.run())
    try:
        yield md, feed, outbox
    finally:
        await md.close()
        await asyncio.wait_for(task, WAIT_S)


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_market_data_streams_trades_and_quotes_and_drops_bad_frames(fake: FakeExchange) -> None:
    async def scenario() -> tuple[MarketDataFeed, RecordingOutbox]:
        async with market_data(fake, market_data=("trades", "book")) as (_, feed, outbox):
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@trade")), WAIT_S)
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@depth")), WAIT_S)
            fake.trade("BTCUSDT", "60010", "0.5")
            await until(lambda: len(outbox.of_type(TradeTick)) == 1)
            fake.set_price("BTCUSDT", "60005")
            await until(lambda: len(outbox.of_type(QuoteTick)) >= 1)
            fake.set_book("BTCUSDT", [("60100", "1")], [("60000", "1")])  # crossed
            fake.set_price("BTCUSDT", "60020")
            await until(lambda: any(q.bid_price > 60_010 for q in outbox.of_type(QuoteTick)))
            return feed, outbox

    feed, outbox = run(scenario)

    [tick] = outbox.of_type(TradeTick)
    assert (tick.price, tick.size) == (60_010.0, 0.5)
    assert all(q.bid_price < q.ask_price for q in outbox.of_type(QuoteTick))
    assert feed.dropped["crossed_book"] >= 1


def test_stalled_stream_after_a_nan_frame_goes_stale_reconnects_and_recovers(
    fake: FakeExchange,
) -> None:
    async def scenario() -> tuple[CcxtMarketData, RecordingOutbox]:
        async with market_data(fake, market_data=("trades",), stale_after_s=0.6) as (md, _, outbox):
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@trade")), WAIT_S)
            fake.trade("BTCUSDT", "60010", "0.5")
            await until(lambda: len(outbox.of_type(TradeTick)) == 1)
            fake.send_nan_trade("BTCUSDT")  # ccxt's trade watcher stalls on it
            fake.send_raw_frame("{garbage", stream="btcusdt@trade")
            await until(lambda: any(s.stale for s in outbox.of_type(FeedStatus)))
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@trade")), WAIT_S)
            deadline = time.monotonic() + WAIT_S
            while not any(not s.stale for s in outbox.of_type(FeedStatus)):
                fake.trade("BTCUSDT", "60020", "0.1")
                await asyncio.sleep(0.1)
                assert time.monotonic() < deadline, outbox.messages
            return md, outbox

    md, outbox = run(scenario)

    statuses = outbox.of_type(FeedStatus)
    assert [s.stale for s in statuses] == [True, False]
    assert md.stats["reconnects"] >= 1
    prices = [t.price for t in outbox.of_type(TradeTick)]
    assert prices[0] == 60_010.0
    assert 60_020.0 in prices
    assert all(p == p for p in prices)  # no NaN got through


def test_wrong_trades_never_reach_subscribers_and_later_good_ones_still_do(
    fake: FakeExchange,
) -> None:
    year_ms = 365 * 86_400_000

    async def scenario() -> tuple[MarketDataFeed, RecordingOutbox]:
        async with market_data(fake, market_data=("trades",), stale_after_s=30.0) as (
            _,
            feed,
            outbox,
        ):
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@trade")), WAIT_S)
            fake.trade("BTCUSDT", "60010", "0.5")
            await until(lambda: len(outbox.of_type(TradeTick)) == 1)
            fake.send_bad_trade("BTCUSDT", "0.000001", trade_id=10**12)
            fake.send_bad_trade("BTCUSDT", "1000000000000", trade_id=10**12 + 1)
            fake.send_bad_trade(
                "BTCUSDT", "60015", time_ms=fake.now_ms() + year_ms, trade_id=10**12 + 2
            )
            fake.trade("BTCUSDT", "60020", "0.1")
            await until(lambda: len(outbox.of_type(TradeTick)) >= 2)
            fake.trade("BTCUSDT", "60030", "0.1")
            await until(lambda: len(outbox.of_type(TradeTick)) >= 3)
            return feed, outbox

    feed, outbox = run(scenario)

    assert [t.price for t in outbox.of_type(TradeTick)] == [60_010.0, 60_020.0, 60_030.0]
    assert feed.dropped == {"price_out_of_band": 2, "ahead_of_clock": 1}


def test_market_data_survives_dropped_websockets(fake: FakeExchange) -> None:
    async def scenario() -> RecordingOutbox:
        async with market_data(fake, market_data=("trades",)) as (_, _, outbox):
            await asyncio.wait_for(asyncio.wrap_future(fake.subscribed("btcusdt@trade")), WAIT_S)
            fake.drop_websockets()
            deadline = time.monotonic() + WAIT_S
            while not outbox.of_type(TradeTick):
                fake.trade("BTCUSDT", "60030", "0.1")
                await asyncio.sleep(0.1)
                assert time.monotonic() < deadline
            return outbox

    outbox = run(scenario)

    assert outbox.of_type(TradeTick)[0].price == 60_030.0


def test_cancelled_order_event_follows_its_fills(fake: FakeExchange) -> None:
    async def scenario() -> tuple[Session, SubmitOrder]:
        async with Session(live_broker(fake)) as session:
            cmd = submit(OrderSide.SELL, 0.05, limit_price=60_100.0)
            await session.submit(cmd)
            fake.trade("BTCUSDT", "60150", "0.02")  # partial
            await session.cancel(cancel(cmd))
            await session.until(lambda: "OrderCancelled" in session.of(cmd.client_order_id))
            await asyncio.sleep(0.3)
            return session, cmd

    session, cmd = run(scenario)

    assert session.of(cmd.client_order_id) == ["OrderAccepted", "OrderFilled", "OrderCancelled"]
    [done] = [m for m in session.messages if isinstance(m, OrderCancelled)]
    assert done.reason == "cancel requested"
    assert_books_match_the_venue(session, fake)


def gateway_broker(fake: FakeExchange, tmp_path: Path, outbox: RecordingOutbox) -> GatewayBroker:
    """The ``broker:BINANCE`` component of a live session (as its actor hosts it)."""
    config = GraphConfig(
        name="held",
        instruments=(btc_instrument(),),
        venues=(venue(fake),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="sma",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=(BTC.instrument_id,),
            ),
        ),
    )
    return GatewayBroker(
        config,
        "BINANCE",
        session_id="held",
        environ=ENV,
        journal_path=str(tmp_path / "orders" / "BINANCE.jsonl"),
        outbox=outbox,
    )


def test_order_reaching_the_broker_before_it_connects_is_held_then_sent(
    fake: FakeExchange, tmp_path: Path
) -> None:
    outbox = RecordingOutbox()
    broker = gateway_broker(fake, tmp_path, outbox)
    cmd = submit(limit_price=PRICE * 0.9)

    async def scenario() -> str:
        broker.handle(cmd)  # a restarted broker takes batches before it has reconnected
        failure = await broker.connect(lambda: None)
        await until(lambda: any(isinstance(m, OrderAccepted) for m in outbox.messages))
        await broker.close()
        return failure

    failure = run(scenario)

    assert failure == ""
    assert isinstance(broker.gateway, CcxtBroker)
    assert [o.client_order_id for o in fake.orders()] == [
        broker.gateway.journal.orders[cmd.client_order_id].venue_client_id
    ]


def test_order_held_for_a_connection_that_fails_is_rejected_with_the_reason(
    fake: FakeExchange, tmp_path: Path
) -> None:
    outbox = RecordingOutbox()
    fake.set_balance("BTC", "123")  # reconciliation finds a balance the journal cannot explain
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "BINANCE.jsonl").write_text(
        '{"kind":"baseline","balances":{"BTC":1.0,"USDT":100000.0},"ts_ns":1}\n'
    )
    broker = gateway_broker(fake, tmp_path, outbox)
    cmd = submit(limit_price=PRICE * 0.9)

    async def scenario() -> str:
        broker.handle(cmd)
        failure = await broker.connect(lambda: None)
        await broker.close()
        return failure

    failure = run(scenario)

    assert failure.startswith("reconciliation failed")
    rejected = [m for m in outbox.messages if isinstance(m, OrderRejected)]
    assert [m.client_order_id for m in rejected] == [cmd.client_order_id]
    assert rejected[0].reason.startswith("not_sent: reconciliation failed")
    assert fake.orders() == []
