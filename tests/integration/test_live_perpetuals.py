"""A live session's broker on a USDⓈ-M perpetual: the real ccxt ``binanceusdm`` client against
the fake exchange's ``/fapi`` endpoints over HTTP, driven by the broker component as its actor
hosts it (``GatewayBroker``); no Ray. Asserted: what the venue saw and what the session says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_perpetual
from tests.support.live_venue import fake_live_venue, margin_account
from tradegraph.actors.gateway import GatewayBroker
from tradegraph.config import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    PortfolioConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.config.models import InstrumentConfig, RetryConfig, SessionConfig
from tradegraph.contracts import (
    AccountBalances,
    OrderFilled,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
)
from tradegraph.observability import configure_logging
from tradegraph.testing import RecordingOutbox

API_KEY = "perp-key-4a6c8e0b2d"
SECRET = "perp-secret-3b5d7f9a1c"
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "PERP_KEY": API_KEY, "PERP_SECRET": SECRET}
PRICE = 60_000.0
IID = "BTCUSDT-PERP.BINANCE"
LEVERAGE_PATH = "/fapi/v1/leverage"
ORDER_PATH = "/fapi/v1/order"


@pytest.fixture(autouse=True)
def _log_to_current_stderr() -> None:
    configure_logging()


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET, futures_wallet="5000") as exchange:
        exchange.set_futures_price("BTCUSDT", str(PRICE))
        yield exchange


def graph(
    fake: FakeExchange, instrument: InstrumentConfig | None = None, **overrides: Any
) -> GraphConfig:
    values: dict[str, Any] = {
        "max_order_notional": 5_000.0,
        "request_timeout_s": 3.0,
        "use_websockets": False,
        "ambiguous_settle_s": 0.1,
        "poll_interval_s": 0.2,
        "safety_poll_interval_s": 0.5,
        "margin_mode": "isolated",
        "leverage": {"BTCUSDT-PERP": 5},
        "retry": RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    }
    values.update(overrides)
    live = fake_live_venue(
        fake, key_env="PERP_KEY", secret_env="PERP_SECRET", futures=True, **values
    )
    instruments = (instrument or btc_perpetual(),)
    return GraphConfig(
        name="live-perpetual",
        instruments=instruments,
        venues=(VenueConfig(name="BINANCE", live=live, account=margin_account(live, instruments)),),
        data=DataConfig(
            bars=(BarSourceConfig(path="sample:BTCUSDT_1m", symbol="BTCUSDT-PERP", limit=10),)
        ),
        strategies=(
            StrategyConfig(
                id="perp",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=(IID,),
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=5_000.0),
        session=SessionConfig(market_data="ccxt", clock="wall"),
    )


_counter = 0


def order(side: OrderSide, quantity: float, price: float) -> SubmitOrder:
    """A limit order through the book: it fills at once as taker."""
    global _counter
    _counter += 1
    now = time.time_ns()
    return SubmitOrder(
        client_order_id=f"perp-{_counter:06d}",
        strategy_id="perp",
        instrument_id=IID,
        venue="BINANCE",
        side=side,
        quantity=quantity,
        order_type=OrderType.LIMIT,
        limit_price=price,
        time_in_force=TimeInForce.GTC,
        post_only=False,
        reduce_only=False,
        ts_event_ns=now,
        ts_init_ns=now,
    )


async def until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Session:
    """One start of the broker component on a journal file, as a restarted session."""

    def __init__(
        self,
        fake: FakeExchange,
        journal: Path,
        instrument: InstrumentConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.outbox = RecordingOutbox()
        self.gateway = GatewayBroker(
            graph(fake, instrument, **overrides),
            "BINANCE",
            session_id="perp-session",
            environ=ENV,
            journal_path=str(journal),
            outbox=self.outbox,
        )

    async def __aenter__(self) -> Session:
        self.failure = await self.gateway.connect(lambda: None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.close()

    async def trade(self, cmd: SubmitOrder) -> None:
        self.gateway.handle(cmd)
        await until(
            lambda: any(
                isinstance(m, OrderFilled)
                and m.client_order_id == cmd.client_order_id
                and m.leaves_qty == 0
                for m in self.outbox.messages
            )
        )

    def balances(self) -> dict[str, float]:
        [reported] = self.outbox.of_type(AccountBalances)
        return dict(reported.balances)


def test_start_sets_margin_mode_and_leverage_and_a_restart_reconciles_the_net_position(
    fake: FakeExchange, tmp_path: Path
) -> None:
    journal = tmp_path / "BINANCE.jsonl"

    async def scenario() -> tuple[str, str, str]:
        async with Session(fake, journal) as first:
            assert first.failure == ""
            await first.trade(order(OrderSide.BUY, 0.01, PRICE + 100))
        async with Session(fake, journal) as second:
            assert second.failure == "", second.failure
            long_seen = second.gateway.reconciliation
            await second.trade(order(OrderSide.SELL, 0.03, PRICE - 100))
        async with Session(fake, journal) as third:
            assert third.failure == "", third.failure
            short_seen = third.gateway.reconciliation
            wallet = third.balances()
        return long_seen, short_seen, f"{wallet['USDT']:.8f}"

    long_seen, short_seen, wallet = asyncio.run(scenario())

    assert fake.futures_settings("BTCUSDT") == (5, "ISOLATED")
    leverage_posts = fake.requests(LEVERAGE_PATH, "POST")
    assert [(r.params["symbol"], r.params["leverage"]) for r in leverage_posts] == [
        ("BTCUSDT", "5")
    ] * 3  # at every start, before anything trades
    first_post = fake.requests(ORDER_PATH, "POST")[0]
    assert leverage_posts[0].at_ms <= first_post.at_ms
    assert first_post.params["symbol"] == "BTCUSDT"
    assert f"{IID} position: 0.01 (journal expects 0.01)" in long_seen
    # One long 0.01 then a sell of 0.03: net short 0.02, as the venue holds it.
    assert fake.futures_positions() == {"BTCUSDT": Decimal("-0.02000000")}
    assert f"{IID} position: -0.02 (journal expects -0.02)" in short_seen
    # The futures account's margin balance (wallet with fees and realized profit in, plus the
    # unrealized profit) is what the session reports.
    assert Decimal(wallet) == fake.futures_margin_balance()
    assert fake.futures_wallet() < Decimal("5000")


def test_a_position_changed_outside_the_session_halts_the_restart(
    fake: FakeExchange, tmp_path: Path
) -> None:
    journal = tmp_path / "BINANCE.jsonl"

    async def scenario() -> tuple[str, list[str]]:
        async with Session(fake, journal) as first:
            await first.trade(order(OrderSide.BUY, 0.01, PRICE + 100))
        fake.set_futures_position("BTCUSDT", "0.05", str(PRICE))
        posts_before = len(fake.requests(ORDER_PATH, "POST"))
        async with Session(fake, journal) as second:
            cmd = order(OrderSide.BUY, 0.01, PRICE + 100)
            second.gateway.handle(cmd)
            await asyncio.sleep(0.3)
            sent = len(fake.requests(ORDER_PATH, "POST")) - posts_before
            rejected = [type(m).__name__ for m in second.outbox.messages]
            assert sent == 0
            return second.failure, rejected

    failure, published = asyncio.run(scenario())

    assert failure.startswith("reconciliation failed:")
    assert f"{IID} position at the venue is 0.05 but the journal expects 0.01" in failure, failure
    assert "OrderFilled" not in published


def test_funding_paid_since_the_last_start_is_in_the_reconciliation(
    fake: FakeExchange, tmp_path: Path
) -> None:
    journal = tmp_path / "BINANCE.jsonl"

    async def scenario() -> str:
        async with Session(fake, journal) as first:
            await first.trade(order(OrderSide.BUY, 0.01, PRICE + 100))
        fake.pay_funding("BTCUSDT", "0.0001")  # the long pays 0.01 * 60,000 * 1 bp
        async with Session(fake, journal) as second:
            assert second.failure == "", second.failure
            return second.gateway.reconciliation

    summary = asyncio.run(scenario())

    assert f"{IID} position: 0.01 (journal expects 0.01), funding -0.06" in summary
    assert fake.requests("/fapi/v1/income", "GET")


def test_a_5xx_on_the_leverage_endpoint_is_retried_and_the_session_starts(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.fail_next(2, status=503, retry_after_s=None, path=LEVERAGE_PATH, method="POST")

    async def scenario() -> str:
        async with Session(fake, tmp_path / "BINANCE.jsonl") as session:
            return session.failure

    assert asyncio.run(scenario()) == ""
    assert [r.status for r in fake.requests(LEVERAGE_PATH, "POST")] == [503, 503, 200]
    assert fake.futures_settings("BTCUSDT") == (5, "ISOLATED")


def test_a_venue_that_keeps_refusing_the_leverage_stops_the_start_with_the_reason(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.fail_next(10, status=503, retry_after_s=None, path=LEVERAGE_PATH, method="POST")

    async def scenario() -> str:
        async with Session(fake, tmp_path / "BINANCE.jsonl") as session:
            session.gateway.handle(order(OrderSide.BUY, 0.01, PRICE + 100))
            await asyncio.sleep(0.2)
            return session.failure

    failure = asyncio.run(scenario())

    assert failure.startswith("broker:BINANCE could not start: VenueError: set_leverage failed")
    assert len(fake.requests(LEVERAGE_PATH, "POST")) == 4  # retry.max_attempts
    assert fake.requests(ORDER_PATH, "POST") == []
    assert fake.futures_positions() == {}


def test_a_ban_on_the_futures_order_endpoint_is_waited_out_as_on_spot(
    fake: FakeExchange, tmp_path: Path
) -> None:
    async def scenario() -> list[str]:
        async with Session(fake, tmp_path / "BINANCE.jsonl") as session:
            fake.fail_next(1, status=418, retry_after_s=1, path=ORDER_PATH, method="POST")
            cmd = order(OrderSide.BUY, 0.01, PRICE + 100)
            await session.trade(cmd)
            return [
                type(m).__name__
                for m in session.outbox.messages
                if getattr(m, "client_order_id", None) == cmd.client_order_id
            ]

    published = asyncio.run(scenario())

    assert [r.status for r in fake.requests(ORDER_PATH, "POST")] == [418, 200]
    assert published == ["OrderAccepted", "OrderFilled"]
    assert fake.futures_positions() == {"BTCUSDT": Decimal("0.01000000")}


@pytest.mark.parametrize(
    ("instrument", "overrides", "reason"),
    [
        (
            btc_perpetual(contract_size=0.001),
            {},
            f"{IID}: contract_size is 0.001 but one BTC/USDT:USDT contract at binanceusdm is 1",
        ),
        (
            btc_perpetual(),
            {"leverage": {"ETHUSDT-PERP": 2}},
            "live.leverage names ETHUSDT-PERP, which is no perpetual instrument of venue BINANCE",
        ),
        (
            btc_perpetual(kind="spot"),
            {},
            "not listed at binanceusdm: BTCUSDT-PERP.BINANCE (BTC/USDT)",
        ),
    ],
    ids=["contract-size", "leverage-key", "spot-on-a-futures-venue"],
)
def test_a_perpetual_the_venue_does_not_match_refuses_the_start_before_any_setting(
    fake: FakeExchange,
    tmp_path: Path,
    instrument: InstrumentConfig,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    async def scenario() -> str:
        async with Session(fake, tmp_path / "BINANCE.jsonl", instrument, **overrides) as session:
            return session.failure

    failure = asyncio.run(scenario())

    assert failure == f"broker:BINANCE could not start: ConfigError: {reason}"
    assert fake.requests(LEVERAGE_PATH) == []
    assert fake.requests("/fapi/v1/marginType") == []
