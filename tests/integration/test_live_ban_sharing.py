"""A rate-limit ban met by one actor of a live Ray session silences every actor calling the venue.

Market data (``md``) and the broker run in separate actors, each with its own ccxt client and
circuit breaker. Binance lengthens the ban of a client that keeps calling, so a ban the broker
meets must stop md's REST polling too, and the other way round. Only one of the two meets the
ban here (the fake refuses one request on one path with 418 and ``Retry-After``); what the
other one sent to the venue during the ban is counted at the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.fake_exchange.server import RecordedRequest
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tradegraph.actors.session import LiveSession
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

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

API_KEY = "ban-share-key-7e1a3c5b9d"
SECRET = "ban-share-secret-4f6b8d0a2c"
PRICE = 60_000.0
BAN_S = 4
# Messages between actors take a moment; requests already on their way may still arrive.
SETTLE_S = 0.6
MARKET_DATA_PATHS = frozenset(
    {"/api/v3/depth", "/api/v3/klines", "/api/v3/uiKlines", "/api/v3/trades", "/api/v3/aggTrades"}
)
BROKER_PATHS = frozenset(
    {"/api/v3/openOrders", "/api/v3/order", "/api/v3/myTrades", "/api/v3/account"}
)


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


@pytest.fixture
def live_session(
    fake: FakeExchange,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
    request: pytest.FixtureRequest,
) -> LiveSession:
    """A live session polling the fake over REST (md and broker), with one bid resting."""
    monkeypatch.setenv("TG_BAN_KEY", API_KEY)
    monkeypatch.setenv("TG_BAN_SECRET", SECRET)
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    live = fake_live_venue(
        fake,
        key_env="TG_BAN_KEY",
        secret_env="TG_BAN_SECRET",
        max_order_notional=5_000.0,
        request_timeout_s=1.0,
        use_websockets=False,
        ambiguous_settle_s=0.1,
        poll_interval_s=0.2,
        safety_poll_interval_s=0.5,
        stale_after_s=60.0,
        retry=RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    )
    config = GraphConfig(
        name="ban-share",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", live=live),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="bidder",
                class_path="tests.support.graphs:TradeBidder",
                instruments=("BTCUSDT.BINANCE",),
                params={"bid_on_trades": (1,), "quantity": 0.01},
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=float(sum(fake.balances()["USDT"]))),
        session=SessionConfig(
            market_data="ccxt",
            clock="wall",
            namespace=f"ban-share-{request.node.name[-12:]}",
            state_dir=str(tmp_path / "state"),
            hang_timeout_s=10.0,
        ),
    )
    session = started(config)
    deadline = time.monotonic() + 30.0
    while not any(o.is_live for o in fake.orders()):
        assert time.monotonic() < deadline, "the bid never rested at the venue"
        fake.trade("BTCUSDT", PRICE, "0.001")
        time.sleep(0.1)
    # Both sides call the venue over REST before the ban: md polls, the broker polls its bid.
    wait_for(lambda: _count(fake.requests(), BROKER_PATHS, fake.now_ms() - 1_000) > 0)
    wait_for(lambda: _count(fake.requests(), MARKET_DATA_PATHS, fake.now_ms() - 1_000) > 0)
    return session


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _count(requests: list[RecordedRequest], paths: frozenset[str], after_ms: int) -> int:
    return sum(1 for r in requests if r.path in paths and r.at_ms > after_ms)


def refused_at_ms(fake: FakeExchange, path: str) -> int:
    """When the fake refused a request on ``path`` with 418 (the ban was met then)."""
    wait_for(lambda: any(r.status == 418 for r in fake.requests(path=path)))
    return next(r.at_ms for r in fake.requests(path=path) if r.status == 418)


def sent_during_ban(fake: FakeExchange, paths: frozenset[str], banned_at_ms: int) -> list[str]:
    """Requests on ``paths`` that reached the fake after the ban had had time to spread, and
    before it ended (waits for the end of the ban and a little more)."""
    end_ms = banned_at_ms + BAN_S * 1_000
    wait_for(lambda: fake.now_ms() > end_ms + 1_500, timeout_s=BAN_S + 10.0)
    start_ms = banned_at_ms + round(SETTLE_S * 1_000)
    return [
        f"{r.method} {r.path} +{r.at_ms - banned_at_ms}ms"
        for r in fake.requests()
        if r.path in paths and start_ms <= r.at_ms < end_ms
    ]


def test_a_ban_the_broker_meets_stops_market_data_polling_until_it_ends(
    fake: FakeExchange, live_session: LiveSession
) -> None:
    fake.fail_next(1, status=418, retry_after_s=BAN_S, path="/api/v3/openOrders")
    banned_at_ms = refused_at_ms(fake, "/api/v3/openOrders")

    from_md = sent_during_ban(fake, MARKET_DATA_PATHS, banned_at_ms)

    assert from_md == []
    # md polls again once the ban is over.
    wait_for(lambda: _count(fake.requests(), MARKET_DATA_PATHS, banned_at_ms + BAN_S * 1_000) > 0)
    assert live_session.status("broker:BINANCE").details["failure"] == ""


def test_a_ban_market_data_meets_stops_the_broker_until_it_ends(
    fake: FakeExchange, live_session: LiveSession
) -> None:
    fake.fail_next(1, status=418, retry_after_s=BAN_S, path="/api/v3/depth")
    banned_at_ms = refused_at_ms(fake, "/api/v3/depth")

    from_broker = sent_during_ban(fake, BROKER_PATHS, banned_at_ms)

    assert from_broker == []
    # The broker polls its bid again once the ban is over, and its circuit closes.
    wait_for(lambda: _count(fake.requests(), BROKER_PATHS, banned_at_ms + BAN_S * 1_000) > 0)
    wait_for(lambda: live_session.status("broker:BINANCE").details["circuit"] == "closed")
