"""A Binance-compatible spot exchange on 127.0.0.1 for tests: REST, market streams and the
websocket API user-data stream, with fault injection. The real ccxt client talks to it.

The server runs its own event loop in a background thread. Every control and inspection
method below may be called from any thread (a test, or the event loop of a ccxt client): the
work runs on the server's loop, so its state is never touched from two threads.

Example:
    with FakeExchange() as fake:
        fake.set_price("BTCUSDT", "60000")
        exchange = ccxt.pro.binance(fake.ccxt_config())
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tradegraph.data.catalog import BarArrays, resolve_path

from .book import (
    ZERO,
    BalanceEvent,
    BinanceError,
    DepthEvent,
    Event,
    Fill,
    MatchingEngine,
    Order,
    OrderEvent,
    PublicTrade,
    SymbolRules,
    TradeEvent,
)
from .faults import AddressBan, FaultPlan, RequestFault
from .futures import (
    FundingEvent,
    FuturesAccount,
    funding_info,
    funding_rows,
    futures_exchange_info,
    income_rows,
    premium_index,
    set_leverage,
    set_margin_type,
)
from .klines import INTERVALS_MS, KlineStore, bundled_bars

T = TypeVar("T")

DEFAULT_API_KEY = "fake-api-key"
DEFAULT_SECRET = "fake-api-secret"
DEFAULT_BALANCES: Mapping[str, str] = {"USDT": "100000", "BTC": "1", "ETH": "10"}

CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
# Parameters never kept in the request record: they are credentials or derived from them.
UNRECORDED_PARAMS = frozenset({"signature", "apiKey"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received.

    ``method`` is the HTTP method, or ``WS`` for a websocket-API request (``path`` is then its
    method name, e.g. ``userDataStream.subscribe.signature``). ``params`` are the query and form
    parameters without the signature or any API key. ``status`` is the HTTP status answered
    (0 when the connection was dropped instead); ``error_code`` the Binance error code, if any.
    """

    method: str
    path: str
    params: Mapping[str, str]
    status: int
    error_code: int | None
    at_ms: int


@dataclass(frozen=True)
class _Route:
    handler: Callable[[dict[str, str]], Any]
    signed: bool


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    kind: str  # "market", "futures" (USDⓈ-M market streams) or "user"
    transport: asyncio.Transport | None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    streams: set[str] = field(default_factory=set)
    user_subscription_id: int | None = None


@dataclass
class _LiveKline:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    first_trade_id: int
    last_trade_id: int
    trades: int


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _normalize_stream(stream: str) -> str:
    """``BTCUSDT@depth@100ms`` and ``btcusdt@depth`` are one stream to the fake."""
    name = stream.lower()
    if "@depth" in name:
        name = name.split("@depth")[0] + "@depth"
    return name


def _missing(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _need(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise _missing(name)
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= ZERO:
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return value


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]+$'."
        ) from None


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    value = _int(params, "limit")
    if value is None:
        return default
    if value < 1:
        raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
    return min(value, maximum)


def _to_decimal(value: str | float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class FakeExchange:
    """A Binance-compatible spot exchange with one account, served on 127.0.0.1.

    Args:
        port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        api_key: the only API key accepted.
        secret: its HMAC-SHA256 secret.
        balances: starting free balances by asset (default 100,000 USDT, 1 BTC, 10 ETH).
        maker_fee: commission rate of resting fills.
        taker_fee: commission rate of crossing fills.
        bars: one-minute bars served as klines, by symbol (default: the bundled July 2025
            BTCUSDT and ETHUSDT bars).
        exchange_info: a raw Binance ``exchangeInfo`` JSON file (default: the bundled one);
            it fixes the symbols, their filters and so ccxt's precision and limits.
        futures_wallet: starting USDT wallet balance of the USDⓈ-M futures account, whose
            perpetuals (``BTCUSDT``, ``ETHUSDT``) are served under ``/fapi`` (see
            :mod:`.futures`).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        secret: str = DEFAULT_SECRET,
        balances: Mapping[str, str | float | Decimal] | None = None,
        maker_fee: str | Decimal = "0.001",
        taker_fee: str | Decimal = "0.001",
        bars: Mapping[str, BarArrays] | None = None,
        exchange_info: str | Path = "sample:exchangeinfo",
        futures_wallet: str | float | Decimal = "10000",
    ) -> None:
        self.host = "127.0.0.1"
        self._requested_port = port
        self._api_key = api_key
        self._secret = secret.encode()
        self._exchange_info: dict[str, Any] = json.loads(resolve_path(exchange_info).read_text())
        rules = {
            s["symbol"]: SymbolRules.from_exchange_info(s) for s in self._exchange_info["symbols"]
        }
        self._clock_skew_ms = 0
        start = DEFAULT_BALANCES if balances is None else balances
        self.engine = MatchingEngine(
            rules,
            balances={asset: _to_decimal(v) for asset, v in start.items()},
            maker_fee=_to_decimal(maker_fee),
            taker_fee=_to_decimal(taker_fee),
            clock_ms=self.now_ms,
        )
        self.klines = KlineStore(bundled_bars() if bars is None else bars)
        self.futures = FuturesAccount(clock_ms=self.now_ms, wallet=_to_decimal(futures_wallet))
        self._faults = FaultPlan()
        self.held_requests = 0
        """Requests held back by :meth:`slow_next` so far."""
        self._ban = AddressBan()
        self._records: list[RecordedRequest] = []
        self._sockets: set[_Socket] = set()
        self._waiters: list[tuple[str, concurrent.futures.Future[None]]] = []
        self._live_klines: dict[tuple[str, str, str], _LiveKline] = {}
        self._next_subscription_id = 0
        self._routes = self._build_routes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeExchange:
        """Bind and serve in a background thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the fake exchange is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-exchange", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the fake exchange could not start: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        """Close every connection, stop serving and join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_get("/ws", self._serve_market_socket)
        app.router.add_get("/ws/{stream}", self._serve_market_socket)
        app.router.add_get("/fws", self._serve_futures_socket)
        app.router.add_get("/fws/{stream}", self._serve_futures_socket)
        app.router.add_get("/ws-api/v3", self._serve_user_socket)
        app.router.add_route("*", "/{tail:.*}", self._serve_rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = int(server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        assert self._closing is not None
        self._closing.set()
        for sock in list(self._sockets):
            sock.queue.put_nowait(None)
            await sock.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("start() the fake exchange first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; REST lives under ``/api/v3``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The market-stream base, ``ws://127.0.0.1:PORT/ws`` (ccxt appends ``/<n>``)."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def ws_api_url(self) -> str:
        """The websocket API, where ccxt subscribes to the spot user-data stream."""
        return f"ws://{self.host}:{self.port}/ws-api/v3"

    def ccxt_config(
        self,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        timeout_ms: int = 5_000,
        enable_rate_limit: bool = False,
        futures: bool = False,
    ) -> dict[str, Any]:
        """Constructor config for ``ccxt.binance``, ``ccxt.async_support.binance`` or
        ``ccxt.pro.binance`` that points every URL at this fake; with ``futures``, for
        ``binanceusdm`` (USDⓈ-M perpetuals). See
        :func:`tests.support.fake_exchange.ccxt_urls.ccxt_binance_config`."""
        from .ccxt_urls import ccxt_binance_config

        return ccxt_binance_config(
            self.base_url,
            api_key=self._api_key if api_key is None else api_key,
            secret=self._secret.decode() if secret is None else secret,
            timeout_ms=timeout_ms,
            enable_rate_limit=enable_rate_limit,
            futures=futures,
        )

    # -- cross-thread plumbing ----------------------------------------------------------------

    def _call(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the server loop (or right here before start) and return its result."""
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return work()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(work())
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def now_ms(self) -> int:
        """The exchange's clock: the wall clock plus the injected skew."""
        return int(time.time() * 1000) + self._clock_skew_ms

    # -- market control -----------------------------------------------------------------------

    def set_price(
        self,
        symbol: str,
        price: str | float | Decimal,
        *,
        levels: int = 5,
        qty_per_level: str | float | Decimal = "1",
        spread_ticks: int = 1,
    ) -> None:
        """Move ``symbol`` to ``price``: a fresh ladder of ``levels`` levels of
        ``qty_per_level`` each side (best bid/ask ``spread_ticks`` ticks away) and resting
        orders at or through ``price`` fill in full, at their limit, as maker."""

        def work() -> None:
            self.engine.set_price(
                symbol,
                _to_decimal(price),
                levels=levels,
                qty_per_level=_to_decimal(qty_per_level),
                spread_ticks=spread_ticks,
            )
            self._publish_events()

        self._call(work)

    def set_book(
        self,
        symbol: str,
        bids: Iterable[tuple[str | float | Decimal, str | float | Decimal]],
        asks: Iterable[tuple[str | float | Decimal, str | float | Decimal]],
    ) -> None:
        """Replace the book's outside liquidity; resting orders are not touched."""
        bid_rows = [(_to_decimal(p), _to_decimal(q)) for p, q in bids]
        ask_rows = [(_to_decimal(p), _to_decimal(q)) for p, q in asks]

        def work() -> None:
            self.engine.set_book(symbol, bid_rows, ask_rows)
            self._publish_events()

        self._call(work)

    def trade(self, symbol: str, price: str | float | Decimal, qty: str | float | Decimal) -> None:
        """An outside trade: resting orders it reaches fill (partially if ``qty`` runs out),
        the rest prints on the tape and the trade, aggTrade and kline streams."""

        def work() -> None:
            self.engine.trade(symbol, _to_decimal(price), _to_decimal(qty))
            self._publish_events()

        self._call(work)

    def set_balance(self, asset: str, free: str | float | Decimal) -> None:
        """Set the free balance of ``asset`` (locked amounts stay)."""

        def work() -> None:
            self.engine.free[asset] = _to_decimal(free)
            self.engine.locked.setdefault(asset, ZERO)

        self._call(work)

    # -- futures control ----------------------------------------------------------------------

    def set_futures_price(
        self,
        symbol: str,
        price: str | float | Decimal,
        *,
        levels: int = 5,
        qty_per_level: str | float | Decimal = "1",
    ) -> None:
        """Move the perpetual ``symbol``'s book to ``price`` (as :meth:`set_price` does for
        spot); resting futures orders it reaches fill. The mark price follows it."""

        def work() -> None:
            self.futures.engine.set_price(
                symbol,
                _to_decimal(price),
                levels=levels,
                qty_per_level=_to_decimal(qty_per_level),
                spread_ticks=1,
            )
            self.futures.mark_prices[symbol] = _to_decimal(price)
            self._publish_events()

        self._call(work)

    def futures_trade(
        self, symbol: str, price: str | float | Decimal, qty: str | float | Decimal
    ) -> None:
        """An outside trade on the perpetual ``symbol``: resting futures orders it reaches fill."""

        def work() -> None:
            self.futures.engine.trade(symbol, _to_decimal(price), _to_decimal(qty))
            self._publish_events()

        self._call(work)

    def pay_funding(self, symbol: str, rate: str | float | Decimal) -> Decimal:
        """A funding event now on ``symbol`` at ``rate``: it joins the funding-rate history and
        the open position pays (longs, when positive) or gets ``rate`` of its mark-price
        notional. Returns what the account got (negative: paid)."""
        return self._call(
            lambda: self.futures.pay_funding(symbol, _to_decimal(rate), self.now_ms())
        )

    def set_funding_history(
        self, symbol: str, rows: Iterable[tuple[int, str | float | Decimal, str | float | Decimal]]
    ) -> None:
        """Replace ``symbol``'s funding-rate history by ``(time_ms, rate, mark_price)`` rows."""
        events = [FundingEvent(t, _to_decimal(r), _to_decimal(m)) for t, r, m in rows]

        def work() -> None:
            self.futures.engine.rules_for(symbol)
            self.futures.funding[symbol] = sorted(events, key=lambda e: e.time_ms)

        self._call(work)

    def set_funding_interval(self, symbol: str, hours: int) -> None:
        """Pay ``symbol``'s funding every ``hours`` hours (Binance's default is 8); it is then
        listed in ``/fapi/v1/fundingInfo``."""

        def work() -> None:
            self.futures.engine.rules_for(symbol)
            self.futures.funding_hours[symbol] = hours

        self._call(work)

    def set_futures_position(
        self, symbol: str, amount: str | float | Decimal, entry_price: str | float | Decimal
    ) -> None:
        """Make the futures account hold ``amount`` (signed) of ``symbol`` without any fill:
        a position changed outside the session (another client, a liquidation)."""

        def work() -> None:
            pos = self.futures.positions[symbol]
            pos.amount = _to_decimal(amount)
            pos.entry_price = _to_decimal(entry_price)
            pos.update_ms = self.now_ms()

        self._call(work)

    def futures_positions(self) -> dict[str, Decimal]:
        """Net position (signed, in base units) by perpetual symbol, zeros omitted."""
        return self._call(
            lambda: {s: p.amount for s, p in sorted(self.futures.positions.items()) if p.amount}
        )

    def futures_wallet(self) -> Decimal:
        """The futures account's USDT wallet balance (fees, realized profit and funding in)."""
        return self._call(lambda: self.futures.wallet)

    def futures_margin_balance(self) -> Decimal:
        """The wallet plus the unrealized profit of open positions at the mark price (what
        ccxt's ``fetch_balance`` reports as the USDT total)."""
        return self._call(
            lambda: (
                self.futures.wallet
                + sum((self.futures.unrealized(s) for s in self.futures.positions), ZERO)
            )
        )

    def futures_settings(self, symbol: str) -> tuple[int, str]:
        """``(leverage, margin type)`` of ``symbol``: margin type ``CROSSED`` or ``ISOLATED``."""
        return self._call(lambda: (self.futures.leverage[symbol], self.futures.margin_type[symbol]))

    def futures_orders(self) -> list[Order]:
        """Every futures order ever accepted (copies), oldest first."""
        return self._call(lambda: [copy.deepcopy(o) for o in self.futures.engine.orders.values()])

    def corrupt_kline(self, symbol: str, open_time_ms: int, **values: float) -> None:
        """Serve bad values in one one-minute kline, e.g. ``close=float("nan")``."""
        self._call(lambda: self.klines.corrupt(symbol, open_time_ms, **values))

    # -- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        retry_after_s: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next ``count`` matching REST requests with ``status`` (429 rate limit,
        418 IP ban, 5xx outage) and ``Retry-After`` instead of processing them.

        Args:
            count: how many requests fail.
            status: the HTTP status.
            retry_after_s: the ``Retry-After`` header in seconds; ``None`` sends none.
            path: only requests to this path (``/api/v3/order``); ``None`` for any.
            method: only this HTTP method; ``None`` for any.
            after: let this many matching requests through first.
        """
        fault = RequestFault(
            "status",
            count,
            after=after,
            path=path,
            method=method,
            status=status,
            retry_after_s=retry_after_s,
        )
        self._call(lambda: self._faults.arm(fault))

    def disconnect_next(
        self, count: int = 1, *, path: str | None = None, method: str | None = None, after: int = 0
    ) -> None:
        """Close the connection of the next ``count`` matching REST requests without answering,
        before processing them (a network failure).

        aiohttp (ccxt's async client) silently resends a GET or DELETE once when a kept-alive
        connection closes before any answer, so a single such call needs ``count=2`` to fail;
        a POST, or the synchronous client (requests), fails on the first."""
        fault = RequestFault("disconnect", count, after=after, path=path, method=method)
        self._call(lambda: self._faults.arm(fault))

    def delay_next(
        self,
        count: int = 1,
        *,
        delay_s: float,
        path: str | None = "/api/v3/order",
        method: str | None = "POST",
        after: int = 0,
    ) -> None:
        """Process the next ``count`` matching requests (an order is accepted and may fill),
        then hold each answer ``delay_s`` seconds: a client with a shorter timeout meets
        ``RequestTimeout`` and does not know the outcome."""
        fault = RequestFault("delay", count, after=after, path=path, method=method, delay_s=delay_s)
        self._call(lambda: self._faults.arm(fault))

    def slow_next(
        self,
        count: int = 1,
        *,
        delay_s: float,
        path: str | None = "/api/v3/order",
        method: str | None = "POST",
    ) -> None:
        """Hold the next ``count`` matching requests ``delay_s`` seconds before processing
        them (network latency): ``held_requests`` counts those held so far."""
        fault = RequestFault("latency", count, path=path, method=method, delay_s=delay_s)
        self._call(lambda: self._faults.arm(fault))

    def ban(self, seconds: float, *, escalate: bool = True) -> None:
        """Ban the client's address for ``seconds``, as Binance does after too many requests:
        every REST request answers 418 with ``Retry-After`` (the seconds left, rounded up).
        With ``escalate``, each request sent during the ban doubles its length from then on
        (Binance lengthens the bans of repeat offenders)."""
        now_ms = self.now_ms()
        self._call(lambda: self._ban.start(now_ms, seconds, escalate=escalate))

    def banned_for_s(self) -> float:
        """Seconds the ban still lasts (0 when there is none)."""
        now_ms = self.now_ms()
        return self._call(lambda: self._ban.remaining_s(now_ms))

    def set_clock_skew(self, skew_ms: int) -> None:
        """Run the exchange's clock ``skew_ms`` ahead of the wall clock (negative: behind).
        Signed requests outside ``recvWindow`` then fail with -1021; ``/time`` shows the skew."""

        def work() -> None:
            self._clock_skew_ms = skew_ms

        self._call(work)

    def clear_faults(self) -> None:
        """Disarm every request fault and remove the clock skew."""

        def work() -> None:
            self._faults.clear()
            self._clock_skew_ms = 0

        self._call(work)

    def send_raw_frame(self, text: str, *, stream: str | None = None, user: bool = False) -> int:
        """Send ``text`` as it is (malformed JSON, a NaN...) to the market sockets subscribed to
        ``stream`` (every market socket when ``None``), or to the user-data sockets when
        ``user``. Returns how many sockets it went to."""

        def work() -> int:
            targets = self._targets(stream, user)
            for sock in targets:
                sock.queue.put_nowait(text)
            return len(targets)

        return self._call(work)

    def send_nan_trade(self, symbol: str) -> int:
        """Send a well-formed trade frame whose price and quantity are ``"NaN"``."""
        frame = {
            "e": "trade",
            "E": self.now_ms(),
            "s": symbol,
            "t": 1,
            "p": "NaN",
            "q": "NaN",
            "T": self.now_ms(),
            "m": False,
            "M": True,
        }
        return self.send_raw_frame(_dumps(frame), stream=f"{symbol.lower()}@trade")

    def send_bad_trade(
        self,
        symbol: str,
        price: str,
        *,
        qty: str = "0.01",
        time_ms: int | None = None,
        trade_id: int = 10**12,
    ) -> int:
        """Send a well-formed trade frame that is wrong: a ``price`` far off the market
        (``"0.000001"``, ``"1000000000000"``) or a trade time ``time_ms`` far from now (a year
        ahead). It prints on no tape and fills nothing. Returns how many sockets it went to."""
        when = self.now_ms() if time_ms is None else time_ms
        frame = {
            "e": "trade",
            "E": when,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "T": when,
            "m": False,
            "M": True,
        }
        return self.send_raw_frame(_dumps(frame), stream=f"{symbol.lower()}@trade")

    def drop_websockets(self, *, market: bool = True, user: bool = True) -> int:
        """Cut websocket connections abruptly (no close frame). Returns how many were cut."""

        def work() -> int:
            cut = 0
            for sock in list(self._sockets):
                if (sock.kind == "market" and market) or (sock.kind == "user" and user):
                    self._sockets.discard(sock)
                    sock.queue.put_nowait(None)
                    if sock.transport is not None:
                        sock.transport.abort()
                    cut += 1
            return cut

        return self._call(work)

    # -- inspection ---------------------------------------------------------------------------

    def requests(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        """Requests received so far, oldest first, optionally only one path or method."""
        return self._call(
            lambda: [
                r
                for r in self._records
                if (path is None or r.path == path) and (method is None or r.method == method)
            ]
        )

    def clear_requests(self) -> None:
        self._call(self._records.clear)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}`` now."""
        return self._call(lambda: {a: self.engine.balance(a) for a in sorted(self.engine.free)})

    def orders(self) -> list[Order]:
        """Every order ever accepted (copies), oldest first."""
        return self._call(lambda: [copy.deepcopy(o) for o in self.engine.orders.values()])

    def orders_with_client_id(self, client_order_id: str) -> list[Order]:
        """Orders accepted under ``client_order_id``, oldest first (more than one only if the
        id was used again after its order had finished, as Binance allows)."""
        return [o for o in self.orders() if o.client_order_id == client_order_id]

    def fills(self) -> list[Fill]:
        """Every execution of the account, oldest first."""
        return self._call(lambda: list(self.engine.fills))

    def tape(self, symbol: str) -> list[PublicTrade]:
        return self._call(lambda: [t for t in self.engine.tape if t.symbol == symbol])

    def subscribed(self, stream: str) -> concurrent.futures.Future[None]:
        """Done once a market socket is subscribed to ``stream`` (``btcusdt@trade``,
        ``btcusdt@depth``, ``btcusdt@kline_1m``) or, for ``stream="user"``, once a user-data
        subscription is confirmed. Await it with ``asyncio.wrap_future`` from a ccxt loop."""
        key = "user" if stream == "user" else _normalize_stream(stream)
        waiter: concurrent.futures.Future[None] = concurrent.futures.Future()

        def work() -> None:
            if self._is_subscribed(key):
                waiter.set_result(None)
            else:
                self._waiters.append((key, waiter))

        self._call(work)
        return waiter

    def _is_subscribed(self, key: str) -> bool:
        for sock in self._sockets:
            if key == "user" and sock.user_subscription_id is not None:
                return True
            if key in sock.streams:
                return True
        return False

    def _wake_waiters(self) -> None:
        still: list[tuple[str, concurrent.futures.Future[None]]] = []
        for key, waiter in self._waiters:
            if self._is_subscribed(key):
                waiter.set_result(None)
            else:
                still.append((key, waiter))
        self._waiters = still

    # -- REST ---------------------------------------------------------------------------------

    def _build_routes(self) -> dict[tuple[str, str], _Route]:
        public: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
            ("GET", "/api/v3/ping"): lambda p: {},
            ("GET", "/api/v3/time"): lambda p: {"serverTime": self.now_ms()},
            ("GET", "/api/v3/exchangeInfo"): self._get_exchange_info,
            ("GET", "/api/v3/depth"): self._get_depth,
            ("GET", "/api/v3/klines"): self._get_klines,
            ("GET", "/api/v3/uiKlines"): self._get_klines,
            ("GET", "/api/v3/trades"): self._get_trades,
            ("GET", "/api/v3/aggTrades"): self._get_agg_trades,
            ("GET", "/api/v3/ticker/bookTicker"): self._get_book_ticker,
            ("GET", "/api/v3/ticker/price"): self._get_ticker_price,
            ("GET", "/api/v3/ticker/24hr"): self._get_ticker_24hr,
            # ccxt's default load_markets also asks the coin-margined venue; the fake has none.
            ("GET", "/dapi/v1/exchangeInfo"): lambda p: {"symbols": []},
            ("GET", "/fapi/v1/ping"): lambda p: {},
            ("GET", "/fapi/v1/time"): lambda p: {"serverTime": self.now_ms()},
            ("GET", "/fapi/v1/exchangeInfo"): self._get_futures_exchange_info,
            ("GET", "/fapi/v1/depth"): self._get_futures_depth,
            ("GET", "/fapi/v1/trades"): lambda p: self._trades_of(
                self.futures.engine, self._futures_symbol(p), p
            ),
            ("GET", "/fapi/v1/aggTrades"): lambda p: self._agg_trades_of(
                self.futures.engine, self._futures_symbol(p), p
            ),
            ("GET", "/fapi/v1/premiumIndex"): self._get_premium_index,
            ("GET", "/fapi/v1/fundingRate"): self._get_funding_rate,
            ("GET", "/fapi/v1/fundingInfo"): lambda p: funding_info(self.futures),
        }
        signed: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
            ("GET", "/api/v3/account"): self._get_account,
            ("POST", "/api/v3/order"): self._post_order,
            ("POST", "/api/v3/order/test"): self._post_order_test,
            ("GET", "/api/v3/order"): self._get_order,
            ("DELETE", "/api/v3/order"): self._delete_order,
            ("GET", "/api/v3/openOrders"): self._get_open_orders,
            ("DELETE", "/api/v3/openOrders"): self._delete_open_orders,
            ("GET", "/api/v3/allOrders"): self._get_all_orders,
            ("GET", "/api/v3/myTrades"): self._get_my_trades,
            ("POST", "/fapi/v1/order"): self._post_futures_order,
            ("GET", "/fapi/v1/order"): self._get_futures_order,
            ("DELETE", "/fapi/v1/order"): self._delete_futures_order,
            ("GET", "/fapi/v1/openOrders"): self._get_futures_open_orders,
            ("DELETE", "/fapi/v1/allOpenOrders"): self._delete_futures_open_orders,
            ("GET", "/fapi/v1/userTrades"): self._get_futures_trades,
            ("GET", "/fapi/v1/leverageBracket"): self._get_leverage_bracket,
            ("POST", "/fapi/v1/leverage"): self._post_leverage,
            ("POST", "/fapi/v1/marginType"): self._post_margin_type,
            ("GET", "/fapi/v1/income"): self._get_income,
            ("GET", "/fapi/v2/account"): self._get_futures_account,
            ("GET", "/fapi/v3/account"): self._get_futures_account,
            ("GET", "/fapi/v2/positionRisk"): self._get_position_risk,
            ("GET", "/fapi/v3/positionRisk"): self._get_position_risk,
        }
        routes = {k: _Route(v, signed=False) for k, v in public.items()}
        routes.update({k: _Route(v, signed=True) for k, v in signed.items()})
        return routes

    async def _serve_rest(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        path = request.path
        raw_query = request.rel_url.raw_query_string
        body = await request.text() if request.can_read_body else ""
        params = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        if body:
            params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))

        def record(status: int, code: int | None) -> None:
            kept = {k: v for k, v in params.items() if k not in UNRECORDED_PARAMS}
            self._records.append(RecordedRequest(method, path, kept, status, code, self.now_ms()))

        retry_after_s = self._ban.refuse(self.now_ms())
        if retry_after_s is not None:
            record(418, -1003)
            return self._fault_response(
                RequestFault("status", 1, status=418, retry_after_s=retry_after_s)
            )
        slow = self._faults.take(method, path, ("latency",))
        if slow is not None:
            self.held_requests += 1
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=slow.delay_s)
        fault = self._faults.take(method, path, ("status", "disconnect"))
        if fault is not None and fault.kind == "disconnect":
            record(0, None)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault is not None:
            record(fault.status, -1003 if fault.status in (418, 429) else None)
            return self._fault_response(fault)

        status, payload, code = 200, None, None
        try:
            route = self._routes.get((method, path))
            if route is None:
                raise BinanceError(
                    -1020,
                    f"This operation is not supported. (the fake exchange does not serve "
                    f"{method} {path})",
                    http_status=404,
                )
            if route.signed:
                self._authenticate(request, raw_query, body, params)
            payload = route.handler(params)
        except BinanceError as exc:
            status, code = exc.http_status, exc.code
            payload = {"code": exc.code, "msg": exc.msg}
        record(status, code)
        self._publish_events()
        held = self._faults.take(method, path, ("delay",))
        if held is not None:
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=held.delay_s)
        return web.Response(status=status, text=_dumps(payload), content_type="application/json")

    def _fault_response(self, fault: RequestFault) -> web.Response:
        headers = {}
        if fault.retry_after_s is not None:
            headers["Retry-After"] = str(fault.retry_after_s)
        if fault.status == 429:
            body = {
                "code": -1003,
                "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                "minute. Please use WebSocket Streams for live updates to avoid polling the API.",
            }
        elif fault.status == 418:
            until = self.now_ms() + 1000 * (fault.retry_after_s or 60)
            body = {
                "code": -1003,
                "msg": f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            }
        else:
            # Binance's gateway answers outages with a bare text body, not JSON.
            return web.Response(status=fault.status, text="Service Unavailable", headers=headers)
        return web.Response(
            status=fault.status, text=_dumps(body), content_type="application/json", headers=headers
        )

    def _authenticate(
        self, request: web.Request, raw_query: str, body: str, params: Mapping[str, str]
    ) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", http_status=401)
        if not hmac.compare_digest(key, self._api_key):
            raise BinanceError(
                -2015, "Invalid API-key, IP, or permissions for action.", http_status=401
            )
        payload, signature = _signed_payload(raw_query, body)
        if signature is None:
            raise _missing("signature")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower(), expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        self._check_timestamp(params)

    def _check_timestamp(self, params: Mapping[str, Any]) -> None:
        raw_ts = params.get("timestamp")
        if raw_ts is None:
            raise _missing("timestamp")
        try:
            timestamp = int(raw_ts)
            recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (TypeError, ValueError):
            raise _missing("timestamp") from None
        if recv_window > MAX_RECV_WINDOW_MS:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        server = self.now_ms()
        if timestamp >= server + 1000:
            raise BinanceError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if server - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # -- public endpoints ---------------------------------------------------------------------

    def _symbol(self, params: Mapping[str, str]) -> str:
        symbol = _need(params, "symbol")
        self.engine.rules_for(symbol)
        return symbol

    def _get_exchange_info(self, params: dict[str, str]) -> Any:
        info = copy.deepcopy(self._exchange_info)
        info["serverTime"] = self.now_ms()
        wanted: set[str] | None = None
        if "symbol" in params:
            wanted = {params["symbol"]}
        elif "symbols" in params:
            try:
                wanted = set(json.loads(params["symbols"]))
            except json.JSONDecodeError:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
        if wanted is not None:
            unknown = wanted - {s["symbol"] for s in info["symbols"]}
            if unknown:
                raise BinanceError(-1121, "Invalid symbol.")
            info["symbols"] = [s for s in info["symbols"] if s["symbol"] in wanted]
        return info

    def _get_depth(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        update_id, bids, asks = self.engine.depth(symbol, _limit(params, 100, 5000))
        return {
            "lastUpdateId": update_id,
            "bids": [[_fmt(p), _fmt(q)] for p, q in bids],
            "asks": [[_fmt(p), _fmt(q)] for p, q in asks],
        }

    def _get_klines(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        return self.klines.klines(
            symbol,
            _need(params, "interval"),
            start_ms=_int(params, "startTime"),
            end_ms=_int(params, "endTime"),
            limit=_limit(params, 500, 1000),
        )

    def _get_trades(self, params: dict[str, str]) -> Any:
        return self._trades_of(self.engine, self._symbol(params), params)

    def _trades_of(self, engine: MatchingEngine, symbol: str, params: dict[str, str]) -> Any:
        tape = [t for t in engine.tape if t.symbol == symbol]
        return [
            {
                "id": t.trade_id,
                "price": _fmt(t.price),
                "qty": _fmt(t.qty),
                "quoteQty": _fmt(t.price * t.qty),
                "time": t.time_ms,
                "isBuyerMaker": t.buyer_is_maker,
                "isBestMatch": True,
            }
            for t in tape[-_limit(params, 500, 1000) :]
        ]

    def _get_agg_trades(self, params: dict[str, str]) -> Any:
        return self._agg_trades_of(self.engine, self._symbol(params), params)

    def _agg_trades_of(self, engine: MatchingEngine, symbol: str, params: dict[str, str]) -> Any:
        tape = [t for t in engine.tape if t.symbol == symbol]
        from_id, start, end = (
            _int(params, "fromId"),
            _int(params, "startTime"),
            _int(params, "endTime"),
        )
        limit = _limit(params, 500, 1000)
        if from_id is not None:
            tape = [t for t in tape if t.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            tape = [
                t
                for t in tape
                if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
            ][:limit]
        else:
            tape = tape[-limit:]
        return [
            {
                "a": t.trade_id,
                "p": _fmt(t.price),
                "q": _fmt(t.qty),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": t.time_ms,
                "m": t.buyer_is_maker,
                "M": True,
            }
            for t in tape
        ]

    def _book_ticker(self, symbol: str, engine: MatchingEngine | None = None) -> dict[str, Any]:
        _, bids, asks = (engine or self.engine).depth(symbol, 1)
        bid = bids[0] if bids else (ZERO, ZERO)
        ask = asks[0] if asks else (ZERO, ZERO)
        return {
            "symbol": symbol,
            "bidPrice": _fmt(bid[0]),
            "bidQty": _fmt(bid[1]),
            "askPrice": _fmt(ask[0]),
            "askQty": _fmt(ask[1]),
        }

    def _symbols_param(self, params: Mapping[str, str]) -> list[str] | None:
        if "symbol" in params:
            return [self._symbol(params)]
        return None

    def _get_book_ticker(self, params: dict[str, str]) -> Any:
        chosen = self._symbols_param(params)
        if chosen is not None:
            return self._book_ticker(chosen[0])
        return [self._book_ticker(s) for s in sorted(self.engine.rules)]

    def _last_price(self, symbol: str) -> Decimal:
        return self.engine.books[symbol].last_price or ZERO

    def _get_ticker_price(self, params: dict[str, str]) -> Any:
        chosen = self._symbols_param(params)
        rows = [
            {"symbol": s, "price": _fmt(self._last_price(s))}
            for s in (chosen or sorted(self.engine.rules))
        ]
        return rows[0] if chosen else rows

    def _ticker_24hr(self, symbol: str) -> dict[str, Any]:
        now = self.now_ms()
        day = [t for t in self.engine.tape if t.symbol == symbol and t.time_ms > now - 86_400_000]
        last = self._last_price(symbol)
        open_price = day[0].price if day else last
        volume = sum((t.qty for t in day), ZERO)
        quote_volume = sum((t.qty * t.price for t in day), ZERO)
        book = self._book_ticker(symbol)
        change = last - open_price
        return {
            "symbol": symbol,
            "priceChange": _fmt(change),
            "priceChangePercent": f"{(change / open_price * 100) if open_price else ZERO:.3f}",
            "weightedAvgPrice": _fmt(quote_volume / volume if volume else last),
            "prevClosePrice": _fmt(open_price),
            "lastPrice": _fmt(last),
            "lastQty": _fmt(day[-1].qty if day else ZERO),
            "bidPrice": book["bidPrice"],
            "bidQty": book["bidQty"],
            "askPrice": book["askPrice"],
            "askQty": book["askQty"],
            "openPrice": _fmt(open_price),
            "highPrice": _fmt(max((t.price for t in day), default=last)),
            "lowPrice": _fmt(min((t.price for t in day), default=last)),
            "volume": _fmt(volume),
            "quoteVolume": _fmt(quote_volume),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": day[0].trade_id if day else -1,
            "lastId": day[-1].trade_id if day else -1,
            "count": len(day),
        }

    def _get_ticker_24hr(self, params: dict[str, str]) -> Any:
        chosen = self._symbols_param(params)
        if chosen is not None:
            return self._ticker_24hr(chosen[0])
        return [self._ticker_24hr(s) for s in sorted(self.engine.rules)]

    # -- private endpoints --------------------------------------------------------------------

    def _get_account(self, params: dict[str, str]) -> Any:
        omit_zero = params.get("omitZeroBalances") == "true"
        rows = []
        for asset in sorted(self.engine.free):
            free, locked = self.engine.balance(asset)
            if omit_zero and free == ZERO and locked == ZERO:
                continue
            rows.append({"asset": asset, "free": _fmt(free), "locked": _fmt(locked)})
        bps = int(self.engine.taker_fee * 10_000)
        return {
            "makerCommission": int(self.engine.maker_fee * 10_000),
            "takerCommission": bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _fmt(self.engine.maker_fee),
                "taker": _fmt(self.engine.taker_fee),
                "buyer": _fmt(ZERO),
                "seller": _fmt(ZERO),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.now_ms(),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def _parse_new_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        symbol = self._symbol(params)
        client_order_id = params.get("newClientOrderId")
        if client_order_id is not None and not CLIENT_ORDER_ID.match(client_order_id):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        return {
            "symbol": symbol,
            "side": _need(params, "side"),
            "order_type": _need(params, "type"),
            "client_order_id": client_order_id,
            "quantity": _decimal(params, "quantity"),
            "quote_order_qty": _decimal(params, "quoteOrderQty"),
            "price": _decimal(params, "price"),
            "time_in_force": params.get("timeInForce"),
        }

    def _post_order(self, params: dict[str, str]) -> Any:
        order = self.engine.place_order(**self._parse_new_order(params))
        response_type = params.get("newOrderRespType", "FULL")
        return _order_response(order, response_type)

    def _post_order_test(self, params: dict[str, str]) -> Any:
        self._parse_new_order(params)
        return {}

    def _lookup(self, params: Mapping[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._symbol(params)
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return symbol, order_id, client_id

    def _get_order(self, params: dict[str, str]) -> Any:
        return _order_json(self.engine.find_order(*self._lookup(params)))

    def _delete_order(self, params: dict[str, str]) -> Any:
        symbol, order_id, client_id = self._lookup(params)
        order, cancel_id = self.engine.cancel_order(
            symbol, order_id, client_id, cancel_client_order_id=params.get("newClientOrderId")
        )
        return _cancel_json(order, cancel_id)

    def _get_open_orders(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params) if "symbol" in params else None
        return [_order_json(o) for o in self.engine.open_orders(symbol)]

    def _delete_open_orders(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        out = []
        for order in self.engine.open_orders(symbol):
            cancelled, cancel_id = self.engine.cancel_order(symbol, order.order_id, None)
            out.append(_cancel_json(cancelled, cancel_id))
        return out

    def _get_all_orders(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        order_id, start, end = (
            _int(params, "orderId"),
            _int(params, "startTime"),
            _int(params, "endTime"),
        )
        rows = [
            o
            for o in self.engine.orders.values()
            if o.symbol == symbol
            and (order_id is None or o.order_id >= order_id)
            and (start is None or o.time_ms >= start)
            and (end is None or o.time_ms <= end)
        ]
        limit = _limit(params, 500, 1000)
        rows = rows[:limit] if order_id is not None or start is not None else rows[-limit:]
        return [_order_json(o) for o in rows]

    def _get_my_trades(self, params: dict[str, str]) -> Any:
        symbol = self._symbol(params)
        order_id, from_id, start, end = (
            _int(params, "orderId"),
            _int(params, "fromId"),
            _int(params, "startTime"),
            _int(params, "endTime"),
        )
        rows = [
            f
            for f in self.engine.fills
            if f.symbol == symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
        ]
        limit = _limit(params, 500, 1000)
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [_my_trade_json(f) for f in rows]

    # -- futures (USDⓈ-M, /fapi) ---------------------------------------------------------------

    def _futures_symbol(self, params: Mapping[str, str]) -> str:
        symbol = _need(params, "symbol")
        self.futures.engine.rules_for(symbol)
        return symbol

    def _get_futures_exchange_info(self, params: dict[str, str]) -> Any:
        info = futures_exchange_info()
        info["serverTime"] = self.now_ms()
        return info

    def _get_futures_depth(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params)
        update_id, bids, asks = self.futures.engine.depth(symbol, _limit(params, 100, 1000))
        now = self.now_ms()
        return {
            "lastUpdateId": update_id,
            "E": now,
            "T": now,
            "bids": [[_fmt(p), _fmt(q)] for p, q in bids],
            "asks": [[_fmt(p), _fmt(q)] for p, q in asks],
        }

    def _get_premium_index(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            return premium_index(self.futures, self._futures_symbol(params), self.now_ms())
        return [premium_index(self.futures, s, self.now_ms()) for s in sorted(self.futures.funding)]

    def _get_funding_rate(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params) if "symbol" in params else None
        return funding_rows(
            self.futures,
            symbol,
            _int(params, "startTime"),
            _int(params, "endTime"),
            _limit(params, 100, 1000),
        )

    def _post_futures_order(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params)
        if params.get("positionSide", "BOTH") != "BOTH":
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        order_type = _need(params, "type")
        tif = params.get("timeInForce")
        if order_type == "LIMIT" and tif == "GTX":
            order_type, tif = "LIMIT_MAKER", None
        if params.get("reduceOnly") == "true":
            self._check_reduce_only(symbol, _need(params, "side"), _decimal(params, "quantity"))
        client_order_id = params.get("newClientOrderId")
        if client_order_id is not None and not CLIENT_ORDER_ID.match(client_order_id):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'.")
        if client_order_id is not None and any(
            o.client_order_id == client_order_id and o.is_live
            for o in self.futures.engine.orders.values()
        ):
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        order = self.futures.engine.place_order(
            symbol=symbol,
            side=_need(params, "side"),
            order_type=order_type,
            client_order_id=client_order_id,
            quantity=_decimal(params, "quantity"),
            price=_decimal(params, "price"),
            time_in_force=tif,
        )
        self._publish_events()
        return self.futures.order_json(order)

    def _check_reduce_only(self, symbol: str, side: str, quantity: Decimal | None) -> None:
        amount = self.futures.positions[symbol].amount
        reduces = (side == "SELL" and amount > ZERO) or (side == "BUY" and amount < ZERO)
        if not reduces or (quantity is not None and quantity > abs(amount)):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")

    def _futures_lookup(self, params: Mapping[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._futures_symbol(params)
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return symbol, order_id, client_id

    def _get_futures_order(self, params: dict[str, str]) -> Any:
        return self.futures.order_json(
            self.futures.engine.find_order(*self._futures_lookup(params))
        )

    def _delete_futures_order(self, params: dict[str, str]) -> Any:
        symbol, order_id, client_id = self._futures_lookup(params)
        order, _ = self.futures.engine.cancel_order(symbol, order_id, client_id)
        self._publish_events()
        return self.futures.order_json(order)

    def _get_futures_open_orders(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params) if "symbol" in params else None
        return [self.futures.order_json(o) for o in self.futures.engine.open_orders(symbol)]

    def _delete_futures_open_orders(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params)
        for order in self.futures.engine.open_orders(symbol):
            self.futures.engine.cancel_order(symbol, order.order_id, None)
        self._publish_events()
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _get_futures_trades(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params)
        order_id, from_id, start, end = (
            _int(params, "orderId"),
            _int(params, "fromId"),
            _int(params, "startTime"),
            _int(params, "endTime"),
        )
        rows = [
            f
            for f in self.futures.fills
            if f.fill.symbol == symbol
            and (order_id is None or f.fill.order_id == order_id)
            and (from_id is None or f.fill.trade_id >= from_id)
            and (start is None or f.fill.time_ms >= start)
            and (end is None or f.fill.time_ms <= end)
        ]
        limit = _limit(params, 500, 1000)
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [self.futures.trade_json(f) for f in rows]

    def _get_leverage_bracket(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params) if "symbol" in params else None
        rows = self.futures.brackets_json(symbol)
        return rows[0] if symbol is not None else rows

    def _post_leverage(self, params: dict[str, str]) -> Any:
        return set_leverage(self.futures, self._futures_symbol(params), params.get("leverage"))

    def _post_margin_type(self, params: dict[str, str]) -> Any:
        return set_margin_type(self.futures, self._futures_symbol(params), params.get("marginType"))

    def _get_income(self, params: dict[str, str]) -> Any:
        return income_rows(self.futures, params, _limit(params, 100, 1000))

    def _get_futures_account(self, params: dict[str, str]) -> Any:
        return self.futures.account_json(self.now_ms())

    def _get_position_risk(self, params: dict[str, str]) -> Any:
        symbol = self._futures_symbol(params) if "symbol" in params else None
        names = [symbol] if symbol is not None else sorted(self.futures.positions)
        return [self.futures.position_json(s) for s in names]

    # -- websockets ---------------------------------------------------------------------------

    async def _attach(
        self, request: web.Request, kind: str
    ) -> tuple[web.WebSocketResponse, _Socket]:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws=ws, kind=kind, transport=request.transport)
        self._sockets.add(sock)
        return ws, sock

    async def _write_loop(self, sock: _Socket) -> None:
        while True:
            text = await sock.queue.get()
            if text is None:
                return
            try:
                await sock.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _serve_futures_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_market_socket(request, kind="futures")

    async def _serve_market_socket(
        self, request: web.Request, kind: str = "market"
    ) -> web.StreamResponse:
        ws, sock = await self._attach(request, kind)
        raw_stream = request.match_info.get("stream", "")
        if "@" in raw_stream:
            # Binance's raw-stream form: /ws/<stream> is subscribed from the start.
            sock.streams.add(_normalize_stream(raw_stream))
            self._wake_waiters()
        await self._converse(ws, sock, self._on_market_message)
        return ws

    async def _converse(
        self, ws: web.WebSocketResponse, sock: _Socket, on_text: Callable[[_Socket, str], None]
    ) -> None:
        """Hand each text frame to ``on_text`` while a writer drains ``sock``'s queue."""
        writer = asyncio.create_task(self._write_loop(sock))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    on_text(sock, msg.data)
        finally:
            self._sockets.discard(sock)
            sock.queue.put_nowait(None)
            await writer

    def _on_market_message(self, sock: _Socket, text: str) -> None:
        try:
            message = json.loads(text)
            method = message["method"]
            request_id = message.get("id")
            streams = [str(s) for s in message.get("params", [])]
        except (json.JSONDecodeError, KeyError, TypeError):
            sock.queue.put_nowait(_dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
            return
        self._records.append(
            RecordedRequest("WS", method, {"params": ",".join(streams)}, 200, None, self.now_ms())
        )
        result: Any = None
        if method == "SUBSCRIBE":
            sock.streams.update(_normalize_stream(s) for s in streams)
        elif method == "UNSUBSCRIBE":
            sock.streams.difference_update(_normalize_stream(s) for s in streams)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(sock.streams)
        else:
            sock.queue.put_nowait(
                _dumps(
                    {
                        "error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                        "id": request_id,
                    }
                )
            )
            return
        sock.queue.put_nowait(_dumps({"result": result, "id": request_id}))
        self._wake_waiters()

    async def _serve_user_socket(self, request: web.Request) -> web.StreamResponse:
        ws, sock = await self._attach(request, "user")
        await self._converse(ws, sock, self._on_user_message)
        return ws

    def _on_user_message(self, sock: _Socket, text: str) -> None:
        try:
            message = json.loads(text)
            request_id = message.get("id")
            method = str(message["method"])
            params = dict(message.get("params") or {})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            sock.queue.put_nowait(
                _dumps({"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON"}})
            )
            return
        kept = {k: str(v) for k, v in params.items() if k not in UNRECORDED_PARAMS}
        status, code = 200, None
        try:
            if method == "userDataStream.subscribe.signature":
                self._check_ws_signature(params)
                self._next_subscription_id += 1
                sock.user_subscription_id = self._next_subscription_id
                result: Any = {"subscriptionId": sock.user_subscription_id}
            elif method == "userDataStream.unsubscribe":
                sock.user_subscription_id = None
                result = {}
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self.now_ms()}
            else:
                raise BinanceError(-1020, f"This operation is not supported. ({method})")
            reply: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        except BinanceError as exc:
            status, code = exc.http_status, exc.code
            reply = {
                "id": request_id,
                "status": status,
                "error": {"code": exc.code, "msg": exc.msg},
            }
        self._records.append(RecordedRequest("WS", method, kept, status, code, self.now_ms()))
        sock.queue.put_nowait(_dumps(reply))
        self._wake_waiters()

    def _check_ws_signature(self, params: Mapping[str, Any]) -> None:
        if str(params.get("apiKey", "")) != self._api_key:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signature = params.get("signature")
        if signature is None:
            raise _missing("signature")
        payload = "&".join(
            f"{k}={_ws_value(v)}" for k, v in sorted(params.items()) if k != "signature"
        )
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(str(signature).lower(), expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        self._check_timestamp({k: str(v) for k, v in params.items()})

    def _targets(self, stream: str | None, user: bool, kind: str = "market") -> list[_Socket]:
        if user:
            return [s for s in self._sockets if s.user_subscription_id is not None]
        key = None if stream is None else _normalize_stream(stream)
        return [s for s in self._sockets if s.kind == kind and (key is None or key in s.streams)]

    def _publish(self, stream: str, payload: Mapping[str, Any], kind: str = "market") -> None:
        targets = self._targets(stream, user=False, kind=kind)
        if targets:
            text = _dumps(payload)
            for sock in targets:
                sock.queue.put_nowait(text)

    def _publish_user(self, event: Mapping[str, Any]) -> None:
        for sock in self._targets(None, user=True):
            sock.queue.put_nowait(
                _dumps({"subscriptionId": sock.user_subscription_id, "event": event})
            )

    def _publish_events(self) -> None:
        for event in self.engine.drain_events():
            self._publish_event(event)
        # The futures side has market streams only (no user-data stream).
        for event in self.futures.settle():
            if isinstance(event, TradeEvent):
                self._publish_trade(event, kind="futures")

    def _publish_event(self, event: Event) -> None:
        if isinstance(event, OrderEvent):
            self._publish_user(_execution_report(event))
        elif isinstance(event, BalanceEvent):
            self._publish_user(
                {
                    "e": "outboundAccountPosition",
                    "E": event.time_ms,
                    "u": event.time_ms,
                    "B": [{"a": a, "f": _fmt(f), "l": _fmt(lk)} for a, f, lk in event.balances],
                }
            )
        elif isinstance(event, DepthEvent):
            lower = event.symbol.lower()
            self._publish(
                f"{lower}@depth",
                {
                    "e": "depthUpdate",
                    "E": event.time_ms,
                    "s": event.symbol,
                    "U": event.first_update_id,
                    "u": event.last_update_id,
                    "b": [[_fmt(p), _fmt(q)] for p, q in event.bids],
                    "a": [[_fmt(p), _fmt(q)] for p, q in event.asks],
                },
            )
            ticker = self._book_ticker(event.symbol)
            self._publish(
                f"{lower}@bookTicker",
                {
                    "u": event.last_update_id,
                    "s": event.symbol,
                    "b": ticker["bidPrice"],
                    "B": ticker["bidQty"],
                    "a": ticker["askPrice"],
                    "A": ticker["askQty"],
                },
            )
        else:
            self._publish_trade(event)

    def _publish_trade(self, event: TradeEvent, kind: str = "market") -> None:
        t = event.trade
        lower = t.symbol.lower()
        self._publish(
            f"{lower}@trade",
            {
                "e": "trade",
                "E": t.time_ms,
                "s": t.symbol,
                "t": t.trade_id,
                "p": _fmt(t.price),
                "q": _fmt(t.qty),
                "T": t.time_ms,
                "m": t.buyer_is_maker,
                "M": True,
            },
            kind,
        )
        self._publish(
            f"{lower}@aggTrade",
            {
                "e": "aggTrade",
                "E": t.time_ms,
                "s": t.symbol,
                "a": t.trade_id,
                "p": _fmt(t.price),
                "q": _fmt(t.qty),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": t.time_ms,
                "m": t.buyer_is_maker,
                "M": True,
            },
            kind,
        )
        prefix = f"{lower}@kline_"
        intervals = {
            s.removeprefix(prefix)
            for sock in self._sockets
            if sock.kind == kind
            for s in sock.streams
            if s.startswith(prefix)
        }
        for interval in sorted(intervals & INTERVALS_MS.keys()):
            self._update_live_kline(t, interval, kind)

    def _update_live_kline(self, t: PublicTrade, interval: str, kind: str = "market") -> None:
        interval_ms = INTERVALS_MS[interval]
        open_ms = t.time_ms - t.time_ms % interval_ms
        key = (kind, t.symbol, interval)
        live = self._live_klines.get(key)
        if live is not None and live.open_ms < open_ms:
            self._publish_kline(t.symbol, interval, live, closed=True, time_ms=t.time_ms, kind=kind)
            live = None
        if live is None:
            live = _LiveKline(
                open_ms, t.price, t.price, t.price, t.price, ZERO, ZERO, t.trade_id, t.trade_id, 0
            )
            self._live_klines[key] = live
        live.high = max(live.high, t.price)
        live.low = min(live.low, t.price)
        live.close = t.price
        live.volume += t.qty
        live.quote_volume += t.qty * t.price
        live.last_trade_id = t.trade_id
        live.trades += 1
        self._publish_kline(t.symbol, interval, live, closed=False, time_ms=t.time_ms, kind=kind)

    def _publish_kline(
        self,
        symbol: str,
        interval: str,
        live: _LiveKline,
        *,
        closed: bool,
        time_ms: int,
        kind: str = "market",
    ) -> None:
        self._publish(
            f"{symbol.lower()}@kline_{interval}",
            {
                "e": "kline",
                "E": time_ms,
                "s": symbol,
                "k": {
                    "t": live.open_ms,
                    "T": live.open_ms + INTERVALS_MS[interval] - 1,
                    "s": symbol,
                    "i": interval,
                    "f": live.first_trade_id,
                    "L": live.last_trade_id,
                    "o": _fmt(live.open),
                    "c": _fmt(live.close),
                    "h": _fmt(live.high),
                    "l": _fmt(live.low),
                    "v": _fmt(live.volume),
                    "n": live.trades,
                    "x": closed,
                    "q": _fmt(live.quote_volume),
                    "V": "0.00000000",
                    "Q": "0.00000000",
                    "B": "0",
                },
            },
            kind,
        )


# -- wire formats ------------------------------------------------------------------------------


def _signed_payload(raw_query: str, body: str) -> tuple[str, str | None]:
    """What Binance signs (query string then body, as sent, without the signature) and the
    signature sent."""
    signature: str | None = None
    parts: list[str] = []
    for raw in (raw_query, body):
        if not raw:
            continue
        kept = []
        for piece in raw.split("&"):
            if piece.startswith("signature="):
                signature = urllib.parse.unquote(piece.removeprefix("signature="))
            else:
                kept.append(piece)
        parts.append("&".join(kept))
    return "".join(parts), signature


def _ws_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _order_json(o: Order) -> dict[str, Any]:
    """``GET /api/v3/order``, ``openOrders`` and ``allOrders`` rows."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": _fmt(o.price),
        "origQty": _fmt(o.orig_qty),
        "executedQty": _fmt(o.executed_qty),
        "cummulativeQuoteQty": _fmt(o.cumulative_quote_qty),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "stopPrice": _fmt(ZERO),
        "icebergQty": _fmt(ZERO),
        "time": o.time_ms,
        "updateTime": o.update_time_ms,
        "isWorking": o.type != "MARKET",
        "workingTime": o.time_ms,
        "origQuoteOrderQty": _fmt(o.orig_quote_order_qty),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _order_response(o: Order, response_type: str) -> dict[str, Any]:
    """``POST /api/v3/order`` in its ``ACK``, ``RESULT`` or ``FULL`` form."""
    ack: dict[str, Any] = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": o.time_ms,
    }
    if response_type == "ACK":
        return ack
    result = {
        **ack,
        "price": _fmt(o.price),
        "origQty": _fmt(o.orig_qty),
        "executedQty": _fmt(o.executed_qty),
        "origQuoteOrderQty": _fmt(o.orig_quote_order_qty),
        "cummulativeQuoteQty": _fmt(o.cumulative_quote_qty),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "workingTime": o.time_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if response_type == "RESULT":
        return result
    result["fills"] = [
        {
            "price": _fmt(f.price),
            "qty": _fmt(f.qty),
            "commission": _fmt(f.commission),
            "commissionAsset": f.commission_asset,
            "tradeId": f.trade_id,
        }
        for f in o.fills
    ]
    return result


def _cancel_json(o: Order, cancel_client_order_id: str) -> dict[str, Any]:
    """``DELETE /api/v3/order``: ``clientOrderId`` is the cancel request's own id, as on Binance;
    the order's is ``origClientOrderId``."""
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_order_id,
        "transactTime": o.update_time_ms,
        "price": _fmt(o.price),
        "origQty": _fmt(o.orig_qty),
        "executedQty": _fmt(o.executed_qty),
        "origQuoteOrderQty": _fmt(o.orig_quote_order_qty),
        "cummulativeQuoteQty": _fmt(o.cumulative_quote_qty),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _my_trade_json(f: Fill) -> dict[str, Any]:
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": _fmt(f.price),
        "qty": _fmt(f.qty),
        "quoteQty": _fmt(f.quote_qty),
        "commission": _fmt(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time_ms,
        "isBuyer": f.side == "BUY",
        "isMaker": f.is_maker,
        "isBestMatch": True,
    }


def _execution_report(event: OrderEvent) -> dict[str, Any]:
    o, fill = event.order, event.fill
    cancelled = event.execution_type == "CANCELED"
    return {
        "e": "executionReport",
        "E": event.time_ms,
        "s": o.symbol,
        "c": event.cancel_client_order_id if cancelled else o.client_order_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": _fmt(o.orig_qty),
        "p": _fmt(o.price),
        "P": _fmt(ZERO),
        "F": _fmt(ZERO),
        "g": -1,
        "C": o.client_order_id if cancelled else "",
        "x": event.execution_type,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": _fmt(fill.qty if fill else ZERO),
        "z": _fmt(o.executed_qty),
        "L": _fmt(fill.price if fill else ZERO),
        "n": _fmt(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": event.time_ms,
        "t": fill.trade_id if fill else -1,
        "I": o.order_id * 10 + len(o.fills),
        "w": o.is_live and o.type != "MARKET",
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": o.time_ms,
        "Z": _fmt(o.cumulative_quote_qty),
        "Y": _fmt(fill.quote_qty if fill else ZERO),
        "Q": _fmt(o.orig_quote_order_qty),
        "W": o.time_ms,
        "V": "EXPIRE_MAKER",
    }
