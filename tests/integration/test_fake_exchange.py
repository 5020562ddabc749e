"""The real ccxt client (REST and websockets) against the fake Binance spot exchange.

Each test starts its own fake on a free port and drives a fresh ``ccxt.pro.binance`` configured
only through its constructor (``urls``, ``options``). No Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.pro
import numpy as np
import pytest

from tests.support.fake_exchange import DEFAULT_API_KEY, DEFAULT_SECRET, FakeExchange
from tradegraph.data.catalog import read_bars

T = TypeVar("T")

JULY_1_MS = 1_751_328_000_000
WAIT_S = 5.0
# How long a watcher is given to show it stalled: frames on 127.0.0.1 arrive in milliseconds.
STALL_S = 0.3


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the fake exchange tests must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        exchange.set_price("BTCUSDT", "60000")
        yield exchange


@contextlib.asynccontextmanager
async def client(fake: FakeExchange, **config: Any) -> AsyncIterator[Any]:
    """A ``ccxt.pro.binance`` on the fake, markets loaded, closed on exit."""
    settings = fake.ccxt_config(timeout_ms=config.pop("timeout_ms", 5_000))
    # ccxt waits this long on close() for TLS sessions to wind down; the fake has none.
    settings["timeout_on_exit"] = 0
    settings.update(config)
    exchange = ccxt.pro.binance(settings)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 20))


async def until_subscribed(fake: FakeExchange, stream: str) -> None:
    await asyncio.wait_for(asyncio.wrap_future(fake.subscribed(stream)), WAIT_S)


# -- REST ----------------------------------------------------------------------------------------


def test_load_markets_gives_the_bundled_precision_and_limits(fake: FakeExchange) -> None:
    async def scenario() -> dict[str, Any]:
        async with client(fake) as ex:
            markets: dict[str, Any] = ex.markets
            return markets

    markets = run(scenario)

    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["base"], btc["quote"]) == ("BTCUSDT", True, "BTC", "USDT")
    assert btc["precision"]["price"] == 0.01
    assert btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["cost"]["min"] == 10.0
    assert markets["ETH/USDT"]["precision"]["amount"] == 0.0001
    assert [(r.method, r.path) for r in fake.requests()] == [("GET", "/api/v3/exchangeInfo")]


def test_fetch_ohlcv_pages_through_the_bundled_bars(fake: FakeExchange) -> None:
    async def scenario() -> list[list[float]]:
        rows: list[list[float]] = []
        async with client(fake) as ex:
            since = JULY_1_MS
            while len(rows) < 2_500:
                page = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=1000)
                rows += page
                since = page[-1][0] + 60_000
        return rows[:2_500]

    rows = run(scenario)

    bundled = read_bars("sample:BTCUSDT_1m", limit=2_500)[0]
    assert np.array_equal(np.array([r[0] for r in rows]) * 1_000_000, bundled.ts_open_ns)
    assert np.array_equal(np.array([r[4] for r in rows]), bundled.close)
    assert np.array_equal(np.array([r[5] for r in rows]), bundled.volume)
    starts = [int(r.params["startTime"]) for r in fake.requests("/api/v3/klines")]
    assert starts == [JULY_1_MS, JULY_1_MS + 60_000_000, JULY_1_MS + 120_000_000]


def test_fetch_ohlcv_aggregates_hours_from_minutes(fake: FakeExchange) -> None:
    async def scenario() -> list[list[float]]:
        async with client(fake) as ex:
            rows: list[list[float]] = await ex.fetch_ohlcv(
                "BTC/USDT", "1h", since=JULY_1_MS, limit=2
            )
            return rows

    rows = run(scenario)

    minutes = read_bars("sample:BTCUSDT_1m", limit=60)[0]
    assert rows[0] == [
        JULY_1_MS,
        minutes.open[0],
        minutes.high.max(),
        minutes.low.min(),
        minutes.close[-1],
        pytest.approx(minutes.volume.sum()),
    ]
    assert rows[1][0] == JULY_1_MS + 3_600_000


def test_market_order_walks_the_book_and_balances_pay_price_and_fee(fake: FakeExchange) -> None:
    async def scenario() -> dict[str, Any]:
        async with client(fake) as ex:
            order: dict[str, Any] = await ex.create_order(
                "BTC/USDT", "market", "buy", 1.5, params={"clientOrderId": "tg-buy-1"}
            )
            return order

    order = run(scenario)

    # The ladder holds 1 BTC per level: 60000.01, then 0.5 at 60000.02.
    assert order["status"] == "closed"
    assert order["clientOrderId"] == "tg-buy-1"
    assert order["filled"] == 1.5
    assert order["cost"] == pytest.approx(60000.01 + 0.5 * 60000.02)
    assert order["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0015)}
    free = {asset: f for asset, (f, _) in fake.balances().items()}
    assert free["BTC"] == Decimal("1") + Decimal("1.5") - Decimal("0.0015")
    assert free["USDT"] == Decimal("100000") - Decimal("60000.01") - Decimal("30000.01")


def test_market_order_larger_than_the_book_expires_partly_filled(fake: FakeExchange) -> None:
    async def scenario() -> dict[str, Any]:
        async with client(fake) as ex:
            order: dict[str, Any] = await ex.create_order("BTC/USDT", "market", "sell", 5.5)
            return order

    fake.set_balance("BTC", "10")
    order = run(scenario)

    assert order["status"] == "expired"
    assert order["filled"] == 5.0
    assert order["remaining"] == pytest.approx(0.5)


def test_limit_order_rests_then_fills_when_the_price_moves_through_it(fake: FakeExchange) -> None:
    async def scenario() -> tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        async with client(fake) as ex:
            placed = await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.1, 59000, params={"clientOrderId": "tg-lim-1"}
            )
            fake.set_price("BTCUSDT", "58990")
            fetched = await ex.fetch_order(None, "BTC/USDT", params={"clientOrderId": "tg-lim-1"})
            trades = await ex.fetch_my_trades("BTC/USDT")
            balance = await ex.fetch_balance()
            return placed["status"], fetched, trades, balance

    placed_status, fetched, trades, balance = run(scenario)

    assert placed_status == "open"
    assert (fetched["status"], fetched["filled"], fetched["price"]) == ("closed", 0.1, 59000.0)
    assert len(trades) == 1
    assert (trades[0]["takerOrMaker"], trades[0]["price"], trades[0]["amount"]) == (
        "maker",
        59000.0,
        0.1,
    )
    assert trades[0]["order"] == fetched["id"]
    assert balance["USDT"]["used"] == 0.0
    assert balance["USDT"]["free"] == pytest.approx(100000 - 5900)
    assert balance["BTC"]["free"] == pytest.approx(1 + 0.1 * 0.999)


def test_outside_trade_fills_resting_orders_partially_by_its_quantity(fake: FakeExchange) -> None:
    async def scenario() -> dict[str, Any]:
        async with client(fake) as ex:
            await ex.create_order(
                "BTC/USDT", "limit", "sell", 0.5, 60100, params={"clientOrderId": "tg-ask"}
            )
            fake.trade("BTCUSDT", "60150", "0.2")
            order: dict[str, Any] = await ex.fetch_order(
                None, "BTC/USDT", params={"clientOrderId": "tg-ask"}
            )
            return order

    order = run(scenario)

    assert (order["status"], order["filled"], order["remaining"]) == ("open", 0.2, 0.3)
    assert [f.trade_id for f in fake.fills()] == [t.trade_id for t in fake.tape("BTCUSDT")]


def test_cancel_by_client_id_releases_the_locked_balance(fake: FakeExchange) -> None:
    async def scenario() -> tuple[float, dict[str, Any], list[dict[str, Any]]]:
        async with client(fake) as ex:
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.2, 50000, params={"clientOrderId": "tg-c-1"}
            )
            locked = (await ex.fetch_balance())["USDT"]["used"]
            cancelled = await ex.cancel_order(None, "BTC/USDT", params={"clientOrderId": "tg-c-1"})
            still_open = await ex.fetch_open_orders("BTC/USDT")
            return locked, cancelled, still_open

    locked, cancelled, still_open = run(scenario)

    assert locked == 10000.0
    assert cancelled["status"] == "canceled"
    # As on Binance, a cancel answer's clientOrderId is the cancel request's own id.
    assert cancelled["info"]["origClientOrderId"] == "tg-c-1"
    assert still_open == []
    assert fake.balances()["USDT"] == (Decimal("100000"), Decimal("0"))


def test_a_client_order_id_of_an_open_order_is_refused_and_one_order_exists(
    fake: FakeExchange,
) -> None:
    async def scenario() -> None:
        async with client(fake) as ex:
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.01, 50_000.0, params={"clientOrderId": "once"}
            )
            await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.01, 50_000.0, params={"clientOrderId": "once"}
            )

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        run(scenario)

    posts = fake.requests("/api/v3/order", "POST")
    assert [(p.params["newClientOrderId"], p.error_code) for p in posts] == [
        ("once", None),
        ("once", -2010),
    ]
    assert len(fake.orders_with_client_id("once")) == 1


def test_a_resent_market_order_trades_twice(fake: FakeExchange) -> None:
    # Binance keeps client order ids unique among *open* orders only: a market order is
    # finished the moment it is placed, so sending it again with the same id trades again.
    async def scenario() -> dict[str, Any]:
        async with client(fake) as ex:
            await ex.create_order(
                "BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "again"}
            )
            await ex.create_order(
                "BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "again"}
            )
            found: dict[str, Any] = await ex.fetch_order(
                None, "BTC/USDT", params={"clientOrderId": "again"}
            )
            return found

    found = run(scenario)

    orders = fake.orders_with_client_id("again")
    assert len(orders) == 2
    assert [o.status for o in orders] == ["FILLED", "FILLED"]
    assert found["id"] == str(orders[-1].order_id)  # a lookup by client id finds the newest
    assert sum(f.qty for f in fake.fills()) == Decimal("0.02")


def test_order_filters_and_funds_map_to_ccxt_errors(fake: FakeExchange) -> None:
    async def attempt(coro: Awaitable[Any]) -> type[BaseException] | None:
        try:
            await coro
        except ccxt.BaseError as exc:
            return type(exc)
        return None

    async def scenario() -> list[type[BaseException] | None]:
        async with client(fake) as ex:
            return [
                await attempt(ex.create_order("BTC/USDT", "limit", "buy", 0.0001, 1000)),
                await attempt(ex.create_order("BTC/USDT", "market", "buy", 3)),
                await attempt(ex.fetch_order("424242", "BTC/USDT")),
                await attempt(ex.cancel_order("424242", "BTC/USDT")),
                await attempt(ex.fetch_trading_fees()),
            ]

    errors = run(scenario)

    assert errors == [
        ccxt.BadRequest,  # -1013 Filter failure: MIN_NOTIONAL
        ccxt.InsufficientFunds,  # 3 BTC cost more than the 100,000 USDT held
        ccxt.OrderNotFound,  # -2013
        ccxt.OrderNotFound,  # -2011
        ccxt.BadRequest,  # a wallet (sapi) endpoint the fake does not serve
    ]


# -- websockets ------------------------------------------------------------------------------


def test_watch_trades_order_book_and_ohlcv_receive_updates(fake: FakeExchange) -> None:
    async def scenario() -> tuple[list[Any], dict[str, Any], dict[str, Any], list[list[float]]]:
        async with client(fake) as ex:
            trades = asyncio.create_task(ex.watch_trades("BTC/USDT"))
            await until_subscribed(fake, "btcusdt@trade")
            fake.trade("BTCUSDT", "60001.5", "0.25")
            seen_trades = await asyncio.wait_for(trades, WAIT_S)
            first_book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), WAIT_S)
            first = {"bid": first_book["bids"][0], "nonce": first_book["nonce"]}
            moved = asyncio.create_task(ex.watch_order_book("BTC/USDT"))
            fake.set_price("BTCUSDT", "60100")
            book = await asyncio.wait_for(moved, WAIT_S)
            second = {"bid": book["bids"][0], "ask": book["asks"][0], "nonce": book["nonce"]}
            candles = asyncio.create_task(ex.watch_ohlcv("BTC/USDT", "1m"))
            await until_subscribed(fake, "btcusdt@kline_1m")
            fake.trade("BTCUSDT", "60120", "0.5")
            ohlcv = await asyncio.wait_for(candles, WAIT_S)
            return seen_trades, first, second, ohlcv

    trades, first, second, ohlcv = run(scenario)

    assert [(t["symbol"], t["price"], t["amount"]) for t in trades] == [("BTC/USDT", 60001.5, 0.25)]
    assert first["bid"] == [59999.99, 1.0]
    assert second["bid"] == [60099.99, 1.0]
    assert second["ask"] == [60100.01, 1.0]
    assert second["nonce"] > first["nonce"]
    assert ohlcv[-1][1:] == [60120.0, 60120.0, 60120.0, 60120.0, 0.5]


def test_watch_orders_and_my_trades_receive_the_fill(fake: FakeExchange) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with client(fake) as ex:
            orders = asyncio.create_task(ex.watch_orders("BTC/USDT"))
            fills = asyncio.create_task(ex.watch_my_trades("BTC/USDT"))
            await until_subscribed(fake, "user")
            await ex.create_order(
                "BTC/USDT", "market", "sell", 0.1, params={"clientOrderId": "ws-1"}
            )
            return await asyncio.wait_for(orders, WAIT_S), await asyncio.wait_for(fills, WAIT_S)

    orders, fills = run(scenario)

    assert [(o["clientOrderId"], o["status"], o["filled"]) for o in orders] == [
        ("ws-1", "closed", 0.1)
    ]
    assert len(fills) == 1
    assert (fills[0]["side"], fills[0]["price"], fills[0]["amount"]) == ("sell", 59999.99, 0.1)
    assert fills[0]["id"] == str(fake.fills()[0].trade_id)
    assert fills[0]["fee"]["currency"] == "USDT"


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_statuses_raise_ddos_protection_with_retry_after(
    fake: FakeExchange, status: int
) -> None:
    async def scenario() -> str:
        async with client(fake) as ex:
            fake.fail_next(status=status, retry_after_s=7, path="/api/v3/account")
            with pytest.raises(ccxt.DDoSProtection):
                await ex.fetch_balance()
            retry_after: str = ex.last_response_headers["Retry-After"]
            await ex.fetch_balance()
            return retry_after

    assert run(scenario) == "7"
    assert [r.status for r in fake.requests("/api/v3/account")] == [status, 200]


def test_an_order_accepted_without_an_answer_is_found_by_its_client_id(fake: FakeExchange) -> None:
    async def scenario() -> dict[str, Any]:
        async with client(fake, timeout_ms=300) as ex:
            fake.delay_next(delay_s=5.0)
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order(
                    "BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "amb"}
                )
            found: dict[str, Any] = await ex.fetch_order(
                None, "BTC/USDT", params={"clientOrderId": "amb"}
            )
            return found

    found = run(scenario)

    assert (found["clientOrderId"], found["status"], found["filled"]) == ("amb", "closed", 0.01)
    assert len(fake.orders_with_client_id("amb")) == 1


def test_outages_raise_network_errors(fake: FakeExchange) -> None:
    async def scenario() -> None:
        async with client(fake) as ex:
            fake.fail_next(status=503, retry_after_s=None)
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.fetch_balance()
            fake.disconnect_next(path="/api/v3/order")
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.create_order(
                    "BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "x"}
                )

    run(scenario)

    assert [r.status for r in fake.requests("/api/v3/order")] == [0]
    assert fake.orders() == []


@pytest.mark.parametrize("skew_ms", [20_000, -5_000], ids=["client-behind", "client-ahead"])
def test_clock_skew_raises_invalid_nonce(fake: FakeExchange, skew_ms: int) -> None:
    async def scenario() -> None:
        async with client(fake) as ex:
            fake.set_clock_skew(skew_ms)
            await ex.fetch_balance()

    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        run(scenario)


def test_a_wrong_secret_raises_authentication_error(fake: FakeExchange) -> None:
    async def scenario() -> None:
        async with client(fake, secret="not-the-secret") as ex:
            await ex.fetch_balance()

    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        run(scenario)


def test_an_unknown_api_key_raises_authentication_error(fake: FakeExchange) -> None:
    async def scenario() -> None:
        async with client(fake, apiKey="not-the-key") as ex:
            await ex.fetch_balance()

    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        run(scenario)


def test_a_dropped_connection_rejects_watchers_and_a_new_watch_reconnects(
    fake: FakeExchange,
) -> None:
    async def scenario() -> tuple[int, list[Any]]:
        async with client(fake) as ex:
            trades = asyncio.create_task(ex.watch_trades("BTC/USDT"))
            orders = asyncio.create_task(ex.watch_orders())
            await until_subscribed(fake, "btcusdt@trade")
            await until_subscribed(fake, "user")
            cut = fake.drop_websockets()
            for watcher in (trades, orders):
                with pytest.raises(ccxt.NetworkError, match="closed"):
                    await asyncio.wait_for(watcher, WAIT_S)
            again = asyncio.create_task(ex.watch_trades("BTC/USDT"))
            await until_subscribed(fake, "btcusdt@trade")
            fake.trade("BTCUSDT", "60000", "1")
            return cut, await asyncio.wait_for(again, WAIT_S)

    cut, trades = run(scenario)

    assert cut == 2
    assert [t["amount"] for t in trades] == [1.0]


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda f: f.send_nan_trade("BTCUSDT"), id="nan-price"),
        pytest.param(lambda f: f.send_raw_frame('{"e":"trade", oops}'), id="malformed-json"),
    ],
)
def test_a_bad_frame_stalls_the_ccxt_trade_watcher_silently(
    fake: FakeExchange, inject: Callable[[FakeExchange], int]
) -> None:
    # ccxt's receive loop dies on the exception the frame raises: no error reaches the caller
    # and later frames are never read. Only closing and recreating the client recovers.
    async def scenario() -> None:
        async with client(fake) as ex:
            watcher = asyncio.create_task(ex.watch_trades("BTC/USDT"))
            await until_subscribed(fake, "btcusdt@trade")
            assert inject(fake) == 1
            fake.trade("BTCUSDT", "60000", "1")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(watcher, STALL_S)

    run(scenario)


def test_user_stream_with_a_wrong_secret_fails_to_subscribe(fake: FakeExchange) -> None:
    # The fake answers -1022 as Binance does; ccxt 4.5 loses it on this path and raises KeyError.
    async def scenario() -> None:
        async with client(fake, secret="not-the-secret") as ex:
            await asyncio.wait_for(ex.watch_orders(), WAIT_S)

    with pytest.raises(KeyError):
        run(scenario)

    subscribe = fake.requests("userDataStream.subscribe.signature", "WS")
    assert [r.error_code for r in subscribe] == [-1022]


def test_a_stopped_fake_refuses_connections() -> None:
    fake = FakeExchange().start()
    url = fake.base_url
    fake.stop()

    exchange = ccxt.binance({"urls": {"api": {"public": f"{url}/api/v3"}}, "timeout": 1_000})
    with pytest.raises(ccxt.NetworkError):
        exchange.fetch_time()


def test_recorded_requests_never_hold_credentials(fake: FakeExchange) -> None:
    async def scenario() -> None:
        async with client(fake) as ex:
            await ex.fetch_balance()
            await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            watcher = asyncio.create_task(ex.watch_orders())
            await until_subscribed(fake, "user")
            watcher.cancel()

    run(scenario)

    requests = fake.requests()
    assert all(not {"signature", "apiKey"} & set(r.params) for r in requests)
    recorded = repr(requests)
    assert DEFAULT_API_KEY not in recorded
    assert DEFAULT_SECRET not in recorded
    assert {r.path for r in fake.requests()} >= {
        "/api/v3/account",
        "/api/v3/order",
        "userDataStream.subscribe.signature",
    }
