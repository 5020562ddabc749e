"""CcxtMarketData against a scripted ccxt client: validation, candles, fallback, staleness."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from tests.support.stubs import btcusdt
from tradegraph.adapters.ccxt.market_data import CcxtMarketData, timeframe_ns
from tradegraph.config.models import LiveVenueConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    FeedStatus,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
    VenueBanned,
)
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.errors import ConfigError
from tradegraph.observability import configure_logging
from tradegraph.testing import RecordingOutbox

T = TypeVar("T")

BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0)
BTC_ID = BTC.instrument_id


class StubMarketClient:
    """Websocket methods return what tests queue (an exception is raised); REST returns lists."""

    instances = 0

    def __init__(self, *, websockets: bool = True) -> None:
        StubMarketClient.instances += 1
        self.has = {
            "watchTrades": websockets,
            "watchOrderBook": websockets,
            "watchOHLCV": websockets,
            "fetchOHLCV": True,
        }
        self.markets: dict[str, Any] = {"BTC/USDT": {"id": "BTCUSDT"}}
        self.trades: asyncio.Queue[Any] = asyncio.Queue()
        self.books: asyncio.Queue[Any] = asyncio.Queue()
        self.candles: asyncio.Queue[Any] = asyncio.Queue()
        self.rest_trades: list[dict[str, Any]] = []
        self.rest_calls = 0
        self.closed = False

    async def load_markets(self) -> dict[str, Any]:
        return self.markets

    def set_markets(self, markets: Any, currencies: Any = None) -> None:
        self.markets = markets

    @staticmethod
    async def _next(queue: asyncio.Queue[Any]) -> Any:
        item = await queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def watch_trades(self, symbol: str) -> Any:
        return await self._next(self.trades)

    async def watch_order_book(self, symbol: str) -> Any:
        return await self._next(self.books)

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> Any:
        return await self._next(self.candles)

    async def fetch_trades(self, symbol: str, since: int | None = None) -> list[dict[str, Any]]:
        self.rest_calls += 1
        return list(self.rest_trades)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return {"bids": [[99.0, 1.0]], "asks": [[101.0, 1.0]], "timestamp": 1}

    async def close(self) -> None:
        self.closed = True


class FakeTime:
    """Monotonic time moved by sleeping; each sleep yields to the event loop."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Rig:
    def __init__(
        self, streams: tuple[str, ...] = ("trades",), websockets: bool = True, **live: Any
    ) -> None:
        self.outbox = RecordingOutbox()
        self.feed = MarketDataFeed({BTC_ID: BTC}, SimClock(0), self.outbox)
        self.time = FakeTime()
        self.clients: list[StubMarketClient] = []
        config = LiveVenueConfig(
            market_data=streams,
            stale_after_s=live.pop("stale_after_s", 1_000.0),
            poll_interval_s=live.pop("poll_interval_s", 0.1),
            **live,
        )

        def factory() -> StubMarketClient:
            client = StubMarketClient(websockets=websockets)
            self.clients.append(client)
            return client

        self.md = CcxtMarketData(
            VenueConfig(name="BINANCE", live=config),
            {BTC_ID: BTC},
            self.feed,
            self.outbox,
            exchange_factory=factory,
            now_ns=lambda: 42,
            monotonic=self.time.monotonic,
            sleep=self.time.sleep,
        )

    @property
    def client(self) -> StubMarketClient:
        return self.clients[-1]

    async def until(self, condition: Callable[[], bool], steps: int = 2_000) -> None:
        for _ in range(steps):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("condition not reached")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def trade(trade_id: str, price: Any, amount: Any = 0.5, ts: int = 1_000) -> dict[str, Any]:
    return {"id": trade_id, "price": price, "amount": amount, "side": "buy", "timestamp": ts}


async def running(rig: Rig) -> asyncio.Task[None]:
    await rig.md.start()
    return asyncio.create_task(rig.md.run())


async def stop(rig: Rig, task: asyncio.Task[None]) -> None:
    await rig.md.close()
    await asyncio.wait_for(task, 5.0)


# ------------------------------------------------------------------ tests


def test_timeframes_are_read_in_nanoseconds() -> None:
    assert timeframe_ns("1m") == 60 * 10**9
    assert timeframe_ns("4h") == 4 * 3_600 * 10**9
    with pytest.raises(ConfigError, match="timeframe"):
        timeframe_ns("1x")


def test_trades_pass_the_feed_checks_once_each() -> None:
    async def scenario() -> Rig:
        rig = Rig()
        task = await running(rig)
        rig.client.trades.put_nowait([trade("1", 100.0), trade("2", math.nan), trade("3", None)])
        rig.client.trades.put_nowait([trade("1", 100.0), trade("4", 101.0, ts=2_000)])
        await rig.until(lambda: len(rig.outbox.of_type(TradeTick)) == 2)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    ticks = rig.outbox.of_type(TradeTick)
    assert [(t.trade_id, t.price, t.ts_event_ns) for t in ticks] == [
        ("1", 100.0, 1_000_000_000),
        ("4", 101.0, 2_000_000_000),
    ]
    assert rig.feed.dropped == {"not_finite": 2}
    assert rig.client.closed


def test_book_becomes_a_quote_and_a_crossed_book_is_dropped() -> None:
    async def scenario() -> Rig:
        rig = Rig(streams=("book",), book_depth=2)
        task = await running(rig)
        good = {
            "bids": [[99.0, 1.0], [98.0, 2.0]],
            "asks": [[101.0, 1.5]],
            "timestamp": 5,
            "nonce": 7,
        }
        crossed = {"bids": [[102.0, 1.0]], "asks": [[101.0, 1.0]], "timestamp": 6, "nonce": 8}
        rig.client.books.put_nowait(good)
        rig.client.books.put_nowait(crossed)
        rig.client.books.put_nowait("garbage")
        await rig.until(lambda: sum(rig.feed.dropped.values()) == 2)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    [quote] = rig.outbox.of_type(QuoteTick)
    [book] = rig.outbox.of_type(OrderBookSnapshot)
    assert (quote.bid_price, quote.ask_price) == (99.0, 101.0)
    assert book.bids == ((99.0, 1.0), (98.0, 2.0))
    assert book.sequence == 7
    assert rig.feed.dropped == {"crossed_book": 1, "malformed": 1}


def test_candle_becomes_a_bar_at_its_close_once_the_next_one_starts() -> None:
    async def scenario() -> Rig:
        rig = Rig(streams=("ohlcv",))
        task = await running(rig)
        rig.client.candles.put_nowait([[0, 10.0, 12.0, 9.0, 11.0, 5.0]])
        rig.client.candles.put_nowait([[0, 10.0, 13.0, 9.0, 12.0, 6.0]])  # same candle, updated
        rig.client.candles.put_nowait([[60_000, 12.0, 12.0, 12.0, 12.0, 0.1]])
        await rig.until(lambda: len(rig.outbox.of_type(Bar)) == 1)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    [bar] = rig.outbox.of_type(Bar)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 13.0, 9.0, 12.0, 6.0)
    assert bar.ts_event_ns == 60 * 10**9
    assert bar.interval_ns == 60 * 10**9


YEAR_MS = 365 * 86_400_000


def test_candle_a_year_ahead_is_dropped_and_hides_no_later_candle() -> None:
    async def scenario() -> Rig:
        rig = Rig(streams=("ohlcv",))
        task = await running(rig)
        rig.client.candles.put_nowait([[YEAR_MS, 10.0, 12.0, 9.0, 11.0, 5.0]])
        rig.client.candles.put_nowait([[0, 10.0, 13.0, 9.0, 12.0, 6.0]])
        rig.client.candles.put_nowait([[60_000, 12.0, 12.0, 12.0, 12.0, 0.1]])
        await rig.until(lambda: len(rig.outbox.of_type(Bar)) == 1)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    [bar] = rig.outbox.of_type(Bar)
    assert (bar.high, bar.ts_event_ns) == (13.0, 60 * 10**9)
    assert rig.feed.dropped == {"ahead_of_clock": 1}


def test_polled_trade_a_year_ahead_does_not_move_the_polling_cursor() -> None:
    async def scenario() -> Rig:
        rig = Rig(websockets=False)
        await rig.md.start()
        rig.client.rest_trades = [trade("1", 100.0), trade("2", 100.0, ts=YEAR_MS)]
        task = asyncio.create_task(rig.md.run())
        await rig.until(lambda: rig.client.rest_calls >= 2)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    assert [t.trade_id for t in rig.outbox.of_type(TradeTick)] == ["1"]
    assert rig.md._last_trade_ms[BTC_ID] == 1_000
    assert rig.feed.dropped == {"ahead_of_clock": 1}


def test_malformed_frames_are_counted_and_logged() -> None:
    log = io.StringIO()
    configure_logging(stream=log)

    async def scenario() -> Rig:
        rig = Rig()
        task = await running(rig)
        rig.client.trades.put_nowait(["not a trade", trade("1", 100.0)])
        await rig.until(lambda: len(rig.outbox.of_type(TradeTick)) == 1)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    configure_logging()
    assert rig.feed.dropped == {"malformed": 1}
    assert '"reason": "malformed"' in log.getvalue()


def test_without_websockets_trades_are_polled_over_rest() -> None:
    async def scenario() -> Rig:
        rig = Rig(websockets=False)
        await rig.md.start()
        rig.client.rest_trades = [trade("1", 100.0), trade("2", 100.5, ts=1_001)]
        task = asyncio.create_task(rig.md.run())
        await rig.until(lambda: rig.client.rest_calls >= 3)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    assert [t.trade_id for t in rig.outbox.of_type(TradeTick)] == ["1", "2"]
    assert rig.md.stats["rest_polls"] >= 3


def test_failing_websocket_falls_back_to_rest_polling() -> None:
    async def scenario() -> Rig:
        rig = Rig()
        task = await running(rig)
        rig.client.rest_trades = [trade("9", 100.0)]
        for _ in range(3):
            rig.client.trades.put_nowait(ConnectionResetError("socket closed"))
        await rig.until(lambda: len(rig.outbox.of_type(TradeTick)) == 1)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    assert rig.md.stats["stream_errors"] == 3
    assert rig.client.rest_calls >= 1


def test_silent_feed_goes_stale_reconnects_and_recovers() -> None:
    async def scenario() -> Rig:
        rig = Rig(stale_after_s=2.0)
        task = await running(rig)
        await rig.until(lambda: len(rig.clients) == 2, steps=10_000)
        rig.client.trades.put_nowait([trade("1", 100.0)])
        await rig.until(lambda: len(rig.outbox.of_type(FeedStatus)) == 2)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    stale, fresh = rig.outbox.of_type(FeedStatus)
    assert (stale.instrument_id, stale.stale) == (BTC_ID, True)
    assert stale.detail.startswith("no sound market data for 2.")
    assert (fresh.stale, fresh.detail) == (False, "market data fresh again")
    assert rig.clients[0].closed
    assert rig.md.stats["reconnects"] == 1
    assert rig.md.stale == set()


def test_stream_of_only_bad_values_counts_as_silence() -> None:
    async def scenario() -> Rig:
        rig = Rig(stale_after_s=2.0)
        task = await running(rig)
        for n in range(50):
            rig.client.trades.put_nowait([trade(str(n), -1.0)])
        await rig.until(lambda: len(rig.clients) == 2, steps=20_000)
        await stop(rig, task)
        return rig

    rig = run(scenario)

    [stale] = rig.outbox.of_type(FeedStatus)
    assert stale.stale
    assert rig.outbox.of_type(TradeTick) == []


def test_unlisted_instrument_is_a_config_error() -> None:
    async def scenario() -> None:
        rig = Rig()
        original = rig.md._factory

        def unlisted() -> Any:
            client = original()
            client.markets = {}
            return client

        rig.md._factory = unlisted
        await rig.md.start()

    with pytest.raises(ConfigError, match=r"not listed at binance: BTCUSDT.BINANCE \(BTC/USDT\)"):
        run(scenario)


def broker_ban(seconds: float) -> VenueBanned:
    """A ban the broker met, as it reaches market data (the rig's ``now_ns`` is 42)."""
    return VenueBanned(
        venue="BINANCE",
        until_ns=42 + round(seconds * 1e9),
        source="broker:BINANCE",
        detail="418 I'm a teapot",
        ts_event_ns=42,
        ts_init_ns=42,
    )


def test_a_dropped_websocket_is_not_reopened_while_the_venue_bans_us() -> None:
    async def scenario() -> tuple[Rig, list[float]]:
        rig = Rig()
        task = await running(rig)
        opened: list[float] = []
        watch = rig.client.watch_trades

        async def counting_watch(symbol: str) -> Any:
            opened.append(rig.time.now)
            return await watch(symbol)

        rig.client.watch_trades = counting_watch  # type: ignore[method-assign]
        rig.md.honour_ban(broker_ban(120.0))
        rig.client.trades.put_nowait(ConnectionResetError("socket closed"))
        await rig.until(lambda: len(opened) >= 1, steps=10_000)
        await stop(rig, task)
        return rig, opened

    rig, opened = run(scenario)

    assert rig.md.stats["stream_errors"] == 1
    # The socket open when the ban came kept reading; once dropped, it was reopened after it.
    assert opened[0] >= 120.0


def test_a_reconnect_waits_for_the_ban_before_calling_the_venue() -> None:
    async def scenario() -> tuple[Rig, list[float]]:
        rig = Rig(stale_after_s=2.0)
        task = await running(rig)
        rig.md.honour_ban(broker_ban(300.0))
        await rig.until(lambda: len(rig.clients) == 2, steps=20_000)
        built_at = rig.time.now
        await stop(rig, task)
        return rig, [built_at]

    rig, [built_at] = run(scenario)

    assert rig.md.stats["reconnects"] == 1
    assert built_at >= 300.0
