"""Live market data from an exchange through ccxt, checked by ``MarketDataFeed`` on the way in.

:class:`CcxtMarketData` watches trades, the order book and, where the venue streams them,
OHLCV candles of the configured instruments over ccxt.pro websockets, and falls back to REST
polling where websockets are unavailable or keep failing. Every value goes through
:class:`~tradegraph.engine.streams.MarketDataFeed`'s ``offer_*`` checks: NaN, non-positive, crossed
or unsorted books, time going backwards and stale book sequences are dropped, counted in
``feed.dropped`` and logged, and never reach a strategy.

A watchdog tracks, per instrument, when data last got *through* the checks. When nothing did
for ``stale_after_s`` it publishes ``FeedStatus(stale=True)`` (Risk refuses new orders on the
instrument) and closes, recreates and resubscribes the client: a ccxt watcher can stall
silently after a bad frame. The first sound update afterwards publishes
``FeedStatus(stale=False)``.

Candles are published as ``Bar`` only once closed (a later candle has started, or, over REST,
its interval has ended), stamped with their close time like every other bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import ccxt

from tradegraph.adapters.ccxt.client import SecretScrubber, create_exchange
from tradegraph.adapters.ccxt.retry import (
    RATE_LIMIT_ERRORS,
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Retrier,
    retry_after_from_headers,
)
from tradegraph.config.models import LiveVenueConfig, VenueConfig
from tradegraph.contracts import MARKET_DATA, FeedStatus, Instrument, Outbox, VenueBanned
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.errors import ConfigError
from tradegraph.observability import get_logger

__all__ = ["CcxtMarketData", "timeframe_ns"]

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_SEEN_TRADES = 5_000
_WS_FAILURES_BEFORE_REST = 3
_WS_RETRY_AFTER_S = 60.0
_CLOSE_TIMEOUT_S = 5.0

_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def timeframe_ns(timeframe: str) -> int:
    """Length of a ccxt timeframe (``1m``, ``15m``, ``1h``, ``1d``...) in nanoseconds."""
    unit = timeframe[-1:]
    count = timeframe[:-1]
    if unit not in _UNITS_S or not count.isdigit() or int(count) <= 0:
        raise ConfigError(f"live.ohlcv_timeframe: cannot read timeframe {timeframe!r}")
    return int(count) * _UNITS_S[unit] * _NS_PER_S


def _num(value: Any) -> float:
    """A float for the feed's checks; anything unreadable becomes NaN (and is dropped there)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _levels(raw: Any, depth: int) -> list[tuple[float, float]]:
    levels: list[tuple[float, float]] = []
    for level in list(raw or ())[:depth]:
        try:
            levels.append((_num(level[0]), _num(level[1])))
        except (TypeError, IndexError, KeyError):
            levels.append((math.nan, math.nan))
    return levels


class CcxtMarketData:
    """Streams market data of one venue into a :class:`MarketDataFeed`.

    Args:
        venue: The venue; ``venue.live`` says which streams, the staleness budget, polling.
        instruments: Instruments keyed by id; those of other venues are ignored.
        feed: Checks each value and publishes the sound ones.
        outbox: Where ``FeedStatus`` goes (normally the feed's outbox).
        exchange_factory: Builds a fresh ccxt client (default: from ``venue.live``, without
            credentials: market data is public). Called again on every reconnect.
        now_ns: Wall clock in ns (timestamps the venue did not give).
        monotonic: Seconds from a monotonic clock (staleness).
        sleep: Awaitable sleep (polling periods, backoff).
        breaker: The venue's circuit breaker, shared with the broker of the same process: a
            rate-limit ban either of them meets stops both from calling the venue over REST
            until it ends (a request sent into a ban lengthens it). Without one, the client
            keeps its own: a ban it meets is published as ``VenueBanned`` for the venue's
            broker, and one the broker met reaches :meth:`honour_ban`.

    Attributes:
        stats: Counters: ``updates`` (values offered), ``published``, ``reconnects``,
            ``rest_polls``, ``stream_errors``, ``stale_events``.
        stale: Instruments currently stale.
    """

    def __init__(
        self,
        venue: VenueConfig,
        instruments: Mapping[str, Instrument],
        feed: MarketDataFeed,
        outbox: Outbox,
        *,
        exchange_factory: Callable[[], Any] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if venue.live is None:
            raise ConfigError(f"venues.{venue.name}.live is required for live market data")
        self.breaker = (
            breaker
            if breaker is not None
            else CircuitBreaker.from_config(
                venue.live.circuit_breaker, monotonic=monotonic, on_ban=self._on_ban
            )
        )
        self.venue = venue.name
        self.live: LiveVenueConfig = venue.live
        self._feed = feed
        self._outbox = outbox
        self._now_ns = now_ns
        self._monotonic = monotonic
        self._sleep = sleep
        self._instruments = {iid: i for iid, i in instruments.items() if i.venue == venue.name}
        if not self._instruments:
            raise ConfigError(f"no instruments on venue {venue.name} to stream")
        self._bar_ns = timeframe_ns(self.live.ohlcv_timeframe)
        live = self.live
        self._factory: Callable[[], Any] = exchange_factory or (
            lambda: create_exchange(live, None, SecretScrubber(), websockets=live.use_websockets)
        )
        self._exchange: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._fresh_at: dict[str, float] = {}
        self.stale: set[str] = set()
        self._seen_trades: dict[str, OrderedDict[str, None]] = {
            i: OrderedDict() for i in self._instruments
        }
        self._pending_candle: dict[str, list[float]] = {}
        self._last_bar_open_ms: dict[str, int] = {}
        self._last_trade_ms: dict[str, int] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            ("updates", "published", "reconnects", "rest_polls", "stream_errors", "stale_events"), 0
        )
        self._log = get_logger("md", venue=venue.name)
        self._retrier = Retrier(
            self.live.retry,
            self.breaker,
            backoff=Backoff(self.live.retry, sleep=sleep),
            retry_after=self._retry_after,
            component="md",
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Build the client and load the venue's markets (retried like any venue call).

        Raises:
            ConfigError: An instrument is not listed at the venue.
            ccxt.BaseError: The venue could not be reached within the retry budget.
        """
        self._exchange = exchange = self._factory()
        await self._retrier.call("load_markets", lambda: exchange.load_markets())
        missing = [
            f"{iid} ({i.ccxt_symbol})"
            for iid, i in self._instruments.items()
            if i.ccxt_symbol not in (self._exchange.markets or {})
        ]
        if missing:
            raise ConfigError(f"not listed at {self.live.exchange}: {', '.join(missing)}")
        now = self._monotonic()
        for iid in self._instruments:
            self._fresh_at[iid] = now

    async def run(self) -> None:
        """Stream until :meth:`close`; reconnects on staleness, never raises for data trouble."""
        if self._exchange is None:
            await self.start()
        self._start_streams()
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._closed.wait()
        finally:
            watchdog.cancel()
            await self._stop_streams()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await self._close_client()

    async def close(self) -> None:
        """Make :meth:`run` return (after closing the client)."""
        self._closed.set()
        if not self._tasks:
            await self._close_client()

    @property
    def websockets(self) -> bool:
        """Whether the streams use websockets (else REST polling)."""
        has = getattr(self._exchange, "has", {}) or {}
        return bool(self.live.use_websockets and has.get("watchTrades"))

    # ------------------------------------------------------------------ streams

    def _start_streams(self) -> None:
        has = getattr(self._exchange, "has", {}) or {}
        for iid, inst in self._instruments.items():
            symbol = inst.ccxt_symbol
            if "trades" in self.live.market_data:
                self._spawn(
                    "trades", iid, has.get("watchTrades"), self._watch_trades, self._poll_trades
                )
            if "book" in self.live.market_data:
                self._spawn(
                    "book", iid, has.get("watchOrderBook"), self._watch_book, self._poll_book
                )
            if "ohlcv" in self.live.market_data and (
                has.get("watchOHLCV") or has.get("fetchOHLCV")
            ):
                self._spawn(
                    "ohlcv", iid, has.get("watchOHLCV"), self._watch_ohlcv, self._poll_ohlcv
                )
            self._log.info(
                "streaming", instrument_id=iid, symbol=symbol, websockets=self.websockets
            )

    def _spawn(
        self,
        stream: str,
        iid: str,
        has_ws: Any,
        watch: Callable[[str], Awaitable[None]],
        poll: Callable[[str], Awaitable[None]],
    ) -> None:
        use_ws = bool(self.live.use_websockets and has_ws)
        self._tasks.append(asyncio.create_task(self._stream(stream, iid, use_ws, watch, poll)))

    async def _stop_streams(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stream(
        self,
        stream: str,
        iid: str,
        use_ws: bool,
        watch: Callable[[str], Awaitable[None]],
        poll: Callable[[str], Awaitable[None]],
    ) -> None:
        """One stream of one instrument: websocket while it works, REST polling otherwise.

        While the venue bans us, nothing new is asked of it: no REST poll, and no websocket
        opened (a subscription is a request too). A socket already delivering keeps reading.
        """
        failures = 0
        rest_since: float | None = None if use_ws else self._monotonic()
        socket_open = False
        while not self._closed.is_set():
            if (
                rest_since is not None
                and use_ws
                and (self._monotonic() - rest_since >= _WS_RETRY_AFTER_S)
            ):
                rest_since, failures = None, 0  # give the websocket another chance
            ban_s = self.breaker.ban_remaining_s()
            if ban_s > 0.0 and (rest_since is not None or not socket_open):
                await self._sleep(ban_s)  # the venue bans us: asking now would lengthen it
                continue
            try:
                if rest_since is None:
                    socket_open = True
                    await watch(iid)
                    failures = 0
                else:
                    await poll(iid)
                    self.stats["rest_polls"] += 1
                    await self._sleep(self.live.poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bad frame, a dropped socket, a REST error: carry on
                socket_open = False
                if isinstance(exc, RATE_LIMIT_ERRORS):
                    self._retrier.record(exc)  # bans every REST call to the venue
                failures += 1
                self.stats["stream_errors"] += 1
                self._log.warning(
                    "stream_error",
                    stream=stream,
                    instrument_id=iid,
                    failures=failures,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if rest_since is None and failures >= _WS_FAILURES_BEFORE_REST:
                    rest_since = self._monotonic()
                    self._log.warning("stream_rest_fallback", stream=stream, instrument_id=iid)
                await self._sleep(min(self.live.poll_interval_s * failures, 30.0))

    # trades

    async def _watch_trades(self, iid: str) -> None:
        trades = await self._exchange.watch_trades(self._instruments[iid].ccxt_symbol)
        self._offer_trades(iid, trades)

    async def _poll_trades(self, iid: str) -> None:
        since = self._last_trade_ms.get(iid)
        trades = await self._exchange.fetch_trades(self._instruments[iid].ccxt_symbol, since)
        self._offer_trades(iid, trades)

    def _offer_trades(self, iid: str, trades: Any) -> None:
        seen = self._seen_trades[iid]
        for trade in trades or ():
            if not isinstance(trade, Mapping):
                self._offer_result(iid, False, count_only=True)
                continue
            trade_id = str(trade.get("id") or "")
            if trade_id:
                if trade_id in seen:
                    continue
                seen[trade_id] = None
                if len(seen) > _SEEN_TRADES:
                    seen.popitem(last=False)
            timestamp = trade.get("timestamp")
            ts_ns = self._ts_ns(timestamp)
            ok = self._feed.offer_trade(
                iid,
                ts_ns,
                _num(trade.get("price")),
                _num(trade.get("amount")),
                trade.get("side") == "buy",
                trade_id,
            )
            if ok and isinstance(timestamp, int | float):
                # Only a published trade moves the polling cursor: a frame stamped in the
                # future must not make every later poll ask for nothing.
                self._last_trade_ms[iid] = max(self._last_trade_ms.get(iid, 0), int(timestamp))
            self._offer_result(iid, ok)

    # book

    async def _watch_book(self, iid: str) -> None:
        symbol = self._instruments[iid].ccxt_symbol
        book = await self._exchange.watch_order_book(symbol)
        self._offer_book(iid, book)

    async def _poll_book(self, iid: str) -> None:
        symbol = self._instruments[iid].ccxt_symbol
        book = await self._exchange.fetch_order_book(symbol, max(5, self.live.book_depth))
        self._offer_book(iid, book)

    def _offer_book(self, iid: str, book: Any) -> None:
        if not isinstance(book, Mapping):
            self._offer_result(iid, False, count_only=True)
            return
        ts_ns = self._ts_ns(book.get("timestamp"))
        depth = max(1, self.live.book_depth)
        bids = _levels(book.get("bids"), depth)
        asks = _levels(book.get("asks"), depth)
        if not bids or not asks:
            return  # an empty side is no quote; nothing to check or publish
        published = self._feed.offer_quote(iid, ts_ns, bids[0], asks[0])
        if published and self.live.book_depth > 0:
            nonce = book.get("nonce")
            sequence = int(nonce) if isinstance(nonce, int) and nonce > 0 else 0
            self._feed.offer_book(iid, ts_ns, bids, asks, sequence)
        self._offer_result(iid, published)

    # candles

    async def _watch_ohlcv(self, iid: str) -> None:
        symbol = self._instruments[iid].ccxt_symbol
        candles = await self._exchange.watch_ohlcv(symbol, self.live.ohlcv_timeframe)
        for candle in candles or ():
            self._on_candle(iid, candle)

    async def _poll_ohlcv(self, iid: str) -> None:
        symbol = self._instruments[iid].ccxt_symbol
        since = self._last_bar_open_ms.get(iid)
        candles = await self._exchange.fetch_ohlcv(symbol, self.live.ohlcv_timeframe, since)
        now_ms = self._now_ns() // _NS_PER_MS
        bar_ms = self._bar_ns // _NS_PER_MS
        for candle in candles or ():
            self._on_candle(iid, candle)
        pending = self._pending_candle.get(iid)
        if pending is not None and _num(pending[0]) + bar_ms <= now_ms:
            # Its interval is over: REST shows a candle only once, so publish it now.
            del self._pending_candle[iid]
            self._offer_candle(iid, pending)

    def _on_candle(self, iid: str, candle: Any) -> None:
        """Hold the newest candle; publish the one before it once a later one starts."""
        if not isinstance(candle, list | tuple) or len(candle) < 6:
            self._offer_result(iid, False, count_only=True)
            return
        open_ms = _num(candle[0])
        if not math.isfinite(open_ms):
            self._offer_result(iid, False, count_only=True)
            return
        if self._feed.ahead_of_clock(iid, round(open_ms) * _NS_PER_MS):
            # Held as the newest candle, it would hide every real candle after it.
            self.stats["updates"] += 1
            return
        pending = self._pending_candle.get(iid)
        if pending is not None and open_ms > pending[0]:
            self._offer_candle(iid, pending)
        if pending is None or open_ms >= pending[0]:
            self._pending_candle[iid] = [open_ms, *(_num(v) for v in candle[1:6])]

    def _offer_candle(self, iid: str, candle: list[float]) -> None:
        open_ms = int(candle[0])
        if open_ms <= self._last_bar_open_ms.get(iid, -1):
            return  # published already (a REST poll overlapping the stream)
        self._last_bar_open_ms[iid] = open_ms
        values = (candle[1], candle[2], candle[3], candle[4], candle[5])
        ok = self._feed.offer_bar(iid, open_ms * _NS_PER_MS, values, self._bar_ns)
        self._offer_result(iid, ok)

    # ------------------------------------------------------------------ staleness

    def _offer_result(self, iid: str, published: bool, *, count_only: bool = False) -> None:
        self.stats["updates"] += 1
        if count_only:
            self._feed.reject("malformed", iid, "a frame without the fields of its kind")
            return
        if not published:
            return
        self.stats["published"] += 1
        self._fresh_at[iid] = self._monotonic()
        if iid in self.stale:
            self.stale.discard(iid)
            self._publish_status(iid, stale=False, detail="market data fresh again")

    async def _watchdog(self) -> None:
        budget = self.live.stale_after_s
        period = min(1.0, budget / 4.0)
        while not self._closed.is_set():
            await self._sleep(period)
            now = self._monotonic()
            silent = [iid for iid, fresh_at in self._fresh_at.items() if now - fresh_at >= budget]
            if not silent:
                continue
            for iid in silent:
                if iid in self.stale:
                    continue  # announced already; keep reconnecting until data flows
                self.stale.add(iid)
                self.stats["stale_events"] += 1
                silent_s = now - self._fresh_at[iid]
                self._publish_status(
                    iid,
                    stale=True,
                    detail=f"no sound market data for {silent_s:.1f}s; reconnecting",
                )
            await self._reconnect()

    async def _reconnect(self) -> None:
        """Close the client, build a new one and subscribe again."""
        self.stats["reconnects"] += 1
        self._log.warning("reconnecting", stale=sorted(self.stale))
        await self._stop_streams()
        old = self._exchange
        await self._close_client()
        ban_s = self.breaker.ban_remaining_s()
        if ban_s > 0.0:
            # A new connection (and its market list) is a request to the venue: not into a ban.
            self._log.warning("reconnect_waits_for_ban", ban_s=round(ban_s, 3))
            await self._sleep(ban_s)
        try:
            fresh = self._factory()
            markets = getattr(old, "markets", None)
            if markets:
                fresh.set_markets(markets, getattr(old, "currencies", None))
            else:
                await self._retrier.call("load_markets", lambda: fresh.load_markets())
        except (ccxt.BaseError, OSError, CircuitOpenError) as exc:
            self._log.error("reconnect_failed", error=f"{type(exc).__name__}: {exc}")
            fresh = old
        self._exchange = fresh
        # Every instrument gets a full budget on the new connection before the next reconnect.
        now = self._monotonic()
        for iid in self._fresh_at:
            self._fresh_at[iid] = now
        if not self._closed.is_set():
            self._start_streams()

    async def _close_client(self) -> None:
        exchange = self._exchange
        if exchange is None:
            return
        try:
            await asyncio.wait_for(exchange.close(), timeout=_CLOSE_TIMEOUT_S)
        except Exception as exc:  # a client that cannot close cleanly is dropped anyway
            self._log.warning("close_failed", error=f"{type(exc).__name__}: {exc}")

    def _retry_after(self, exc: BaseException) -> float | None:
        headers = getattr(self._exchange, "last_response_headers", None)
        return retry_after_from_headers(headers, self._now_ns() / 1e9)

    def _on_ban(self, seconds: float, detail: str) -> None:
        """Tell the venue's broker of the ban a poll of ours met."""
        now = self._now_ns()
        self._outbox.publish(
            VenueBanned(
                venue=self.venue,
                until_ns=now + round(seconds * _NS_PER_S),
                source=MARKET_DATA,
                detail=detail,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def honour_ban(self, ban: VenueBanned) -> None:
        """Poll the venue no more until the ban another caller met (the broker) is over."""
        if ban.venue != self.venue or ban.source == MARKET_DATA:
            return
        seconds = (ban.until_ns - self._now_ns()) / _NS_PER_S
        self._log.warning("ban_shared", source=ban.source, ban_s=round(seconds, 3))
        self.breaker.honour_ban(seconds, f"met by {ban.source}: {ban.detail}")

    def _publish_status(self, iid: str, *, stale: bool, detail: str) -> None:
        log = self._log.warning if stale else self._log.info
        log("feed_status", instrument_id=iid, stale=stale, detail=detail)
        now = self._now_ns()
        self._outbox.publish(
            FeedStatus(
                instrument_id=iid, stale=stale, detail=detail, ts_event_ns=now, ts_init_ns=now
            )
        )

    def _ts_ns(self, timestamp_ms: Any) -> int:
        value = _num(timestamp_ms)
        if not math.isfinite(value):
            return self._now_ns()
        return round(value * _NS_PER_MS)
