"""A live session of the actor graph on a USDⓈ-M perpetual: real Ray, the real ccxt
``binanceusdm`` client (REST and websockets) against the fake exchange's futures side."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_perpetual
from tests.support.live_venue import fake_live_venue, margin_account
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
from tradegraph.config.models import LiveMode, RetryConfig, SessionConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

API_KEY = "perp-session-key-7e1a3c5b"
SECRET = "perp-session-secret-2d4f6a8c"
PRICE = 60_000.0
IID = "BTCUSDT-PERP.BINANCE"


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET, futures_wallet="5000") as exchange:
        exchange.set_futures_price("BTCUSDT", str(PRICE))
        yield exchange


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_PERP_KEY", API_KEY)
    monkeypatch.setenv("TG_TEST_PERP_SECRET", SECRET)
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")


def perpetual_config(fake: FakeExchange, tmp_path: Path, namespace: str) -> GraphConfig:
    live = fake_live_venue(
        fake,
        key_env="TG_TEST_PERP_KEY",
        secret_env="TG_TEST_PERP_SECRET",
        futures=True,
        mode=LiveMode.LIVE,
        max_order_notional=5_000.0,
        request_timeout_s=2.0,
        ambiguous_settle_s=0.1,
        poll_interval_s=0.2,
        safety_poll_interval_s=0.5,
        stale_after_s=30.0,
        market_data=("trades",),
        margin_mode="isolated",
        leverage={"BTCUSDT-PERP": 3},
        retry=RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    )
    return GraphConfig(
        name="live-perpetual-session",
        instruments=(btc_perpetual(),),
        venues=(
            VenueConfig(
                name="BINANCE", live=live, account=margin_account(live, (btc_perpetual(),))
            ),
        ),
        data=DataConfig(
            bars=(BarSourceConfig(path="sample:BTCUSDT_1m", symbol="BTCUSDT-PERP", limit=10),)
        ),
        strategies=(
            StrategyConfig(
                id="perp",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=(IID,),
                params={"buy_on_trade": 3, "quantity": 0.01},
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=5_000.0),
        session=SessionConfig(
            market_data="ccxt",
            clock="wall",
            namespace=namespace,
            state_dir=str(tmp_path / "state"),
            hang_timeout_s=10.0,
        ),
    )


def trade_until(fake: FakeExchange, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Print outside trades on the perpetual's tape until ``predicate`` holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        fake.futures_trade("BTCUSDT", PRICE, "0.001")
        time.sleep(0.1)


def fills_of(session: LiveSession) -> int:
    return int(session.status("portfolio").details["fills"])


def test_a_live_perpetual_session_sets_leverage_trades_and_a_resumed_one_reconciles_the_position(
    fake: FakeExchange, tmp_path: Path, credentials: None
) -> None:
    config = perpetual_config(fake, tmp_path, "live-perp")
    first = LiveSession(config)
    second = first
    try:
        first.start()
        assert first.venue_modes()[0][1] == "live"
        trade_until(fake, lambda: fills_of(first) >= 1)
        first.kill()  # the driver dies; the position stays at the venue

        second = LiveSession(config, resume=True)
        second.start()
        broker = second.status("broker:BINANCE").details
        outcome = second.stop("test")
    finally:
        first.kill()
        second.kill()

    assert fake.futures_settings("BTCUSDT") == (3, "ISOLATED")
    [order] = fake.futures_orders()
    assert (order.symbol, order.side, order.status) == ("BTCUSDT", "BUY", "FILLED")
    assert fake.futures_positions() == {"BTCUSDT": Decimal("0.01000000")}
    assert broker["failure"] == ""
    assert f"{IID} position: 0.01 (journal expects 0.01)" in broker["reconciliation"]
    assert outcome.halted == ""
    # Leverage was set before the order, at each start.
    leverage_posts = fake.requests("/fapi/v1/leverage", "POST")
    assert len(leverage_posts) == 2
    assert leverage_posts[0].at_ms <= fake.requests("/fapi/v1/order", "POST")[0].at_ms
