"""Live balances feed Risk's cash-account check: the broker gateway against the fake exchange.

The real ccxt client reads the fake Binance's balances at reconciliation; the gateway publishes
them as ``AccountBalances``; the Risk component the graph builds then refuses an order those
balances cannot pay, although the configured starting cash would have paid it. No Ray.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tradegraph.actors.gateway import GatewayBroker
from tradegraph.config.models import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    PortfolioConfig,
    RetryConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.contracts import (
    RISK,
    AccountBalances,
    OrderIntent,
    OrderSide,
    RiskReason,
    RiskRejected,
    SubmitOrder,
    TradeTick,
)
from tradegraph.engine.assembly import build_component
from tradegraph.engine.clock import SimClock
from tradegraph.observability import configure_logging
from tradegraph.testing import RecordingOutbox

API_KEY = "bal-key-1c2d3e"
SECRET = "bal-secret-9f8e7d"
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "BAL_KEY": API_KEY, "BAL_SECRET": SECRET}
PRICE = 60_000.0


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("this test must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(autouse=True)
def _log_to_current_stderr() -> None:
    configure_logging()


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(
        api_key=API_KEY, secret=SECRET, balances={"USDT": "500", "BTC": "0"}
    ) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


def live_graph(fake: FakeExchange) -> GraphConfig:
    live = fake_live_venue(
        fake,
        key_env="BAL_KEY",
        secret_env="BAL_SECRET",
        max_order_notional=5_000.0,
        request_timeout_s=1.0,
        use_websockets=False,
        retry=RetryConfig(max_attempts=2, base_delay_s=0.02, max_delay_s=0.1),
    )
    return GraphConfig(
        name="live-balances",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", live=live),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="buyer",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=("BTCUSDT.BINANCE",),
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        # Far more than the exchange account holds: only the reported balances refuse.
        portfolio=PortfolioConfig(starting_cash=1_000_000.0),
    )


async def reconciled_balances(config: GraphConfig, journal: Path) -> list[AccountBalances]:
    outbox = RecordingOutbox()
    gateway = GatewayBroker(
        config,
        "BINANCE",
        session_id="balances-test",
        environ=ENV,
        journal_path=str(journal),
        outbox=outbox,
    )
    try:
        failure = await gateway.connect(lambda: None)
        assert failure == ""
    finally:
        await gateway.close()
    return [m for m in outbox.messages if isinstance(m, AccountBalances)]


def buy(n: int, quantity: float) -> OrderIntent:
    return OrderIntent(
        intent_id=f"buyer-{n}",
        strategy_id="buyer",
        instrument_id="BTCUSDT.BINANCE",
        side=OrderSide.BUY,
        quantity=quantity,
        ts_event_ns=2,
        ts_init_ns=2,
    )


def test_balances_read_at_reconciliation_refuse_what_the_exchange_account_cannot_pay(
    fake: FakeExchange, tmp_path: Path
) -> None:
    config = live_graph(fake)
    [reported] = asyncio.run(reconciled_balances(config, tmp_path / "BINANCE.jsonl"))
    assert reported.venue == "BINANCE"
    assert reported.balances == {"BTC": 0.0, "USDT": 500.0}

    without, with_reported = RecordingOutbox(), RecordingOutbox()
    for outbox, reports in ((without, []), (with_reported, [reported])):
        risk = build_component(config, RISK, SimClock(1), outbox)
        risk.handle(
            TradeTick(
                instrument_id="BTCUSDT.BINANCE",
                price=PRICE,
                size=1.0,
                aggressor_side="buy",
                trade_id="t1",
                ts_event_ns=1,
                ts_init_ns=1,
            )
        )
        for report in reports:
            risk.handle(report)
        risk.handle(buy(1, 0.01))  # 600 USDT plus fee at the buffered price

    [passed] = without.messages  # the configured starting cash pays it
    assert isinstance(passed, SubmitOrder)
    [refused] = with_reported.messages
    assert isinstance(refused, RiskRejected)
    assert refused.reason is RiskReason.INSUFFICIENT_BALANCE
    assert "only 500 USDT" in refused.detail
