"""Periodic reconciliation while a live session trades: the broker gateway against the fake
exchange, through the real ccxt client, its timer on the wall clock a live host gives it.

What changes at the venue behind the session's back (a balance, an order placed by someone
else) halts trading with the reason and a ``ReconciliationDrift``; a fill the session missed
(no websockets, no polling) is applied by the next pass. No Ray.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tests.support.stubs import submit
from tradegraph.actors.gateway import GatewayBroker
from tradegraph.actors.live_clock import WallClock
from tradegraph.config.models import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    GuardLevelsConfig,
    GuardsConfig,
    RetryConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.contracts import (
    OrderAccepted,
    OrderFilled,
    OrderSide,
    ReconciliationDrift,
    ReconciliationRepaired,
    TimerFired,
)
from tradegraph.observability import configure_logging
from tradegraph.observability.guards import CLOCK_DRIFT, GuardSet
from tradegraph.testing import RecordingOutbox

API_KEY = "recon-key-7a1b2c"
SECRET = "recon-secret-3d4e5f"
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "RECON_KEY": API_KEY, "RECON_SECRET": SECRET}
PRICE = 60_000.0
INTERVAL_S = 0.3


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
        api_key=API_KEY, secret=SECRET, balances={"USDT": "5000", "BTC": "0"}
    ) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


def graph(fake: FakeExchange) -> GraphConfig:
    live = fake_live_venue(
        fake,
        key_env="RECON_KEY",
        secret_env="RECON_SECRET",
        max_order_notional=5_000.0,
        request_timeout_s=1.0,
        # No websockets and no polling to speak of: only the reconciliation learns of fills.
        use_websockets=False,
        poll_interval_s=3600.0,
        reconcile_interval_s=INTERVAL_S,
        reconcile_grace_s=0.2,
        retry=RetryConfig(max_attempts=2, base_delay_s=0.02, max_delay_s=0.1),
    )
    return GraphConfig(
        name="live-reconcile",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", live=live),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="alpha",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=("BTCUSDT.BINANCE",),
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
    )


class Running:
    """A connected gateway whose timers fire on the running loop, as in a live host."""

    def __init__(self, config: GraphConfig, journal: Path) -> None:
        self.outbox = RecordingOutbox()
        self.halts: list[str] = []
        self.clock = WallClock(self._fire)
        self.gateway = GatewayBroker(
            config,
            "BINANCE",
            session_id="reconcile-test",
            environ=ENV,
            journal_path=str(journal),
            outbox=self.outbox,
            clock=self.clock,
            halt=self.halts.append,
        )

    def _fire(self, name: str) -> None:
        now = time.time_ns()
        self.gateway.handle(TimerFired(name=name, ts_event_ns=now, ts_init_ns=now))

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.outbox.messages if isinstance(m, kind)]

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.05)


async def run_with(
    config: GraphConfig, journal: Path, scenario: Callable[[Running], Any]
) -> Running:
    running = Running(config, journal)
    try:
        assert await running.gateway.connect(lambda: None) == ""
        await scenario(running)
    finally:
        await running.gateway.close()
    return running


def test_a_balance_changed_behind_the_sessions_back_halts_trading_with_the_reason(
    fake: FakeExchange, tmp_path: Path
) -> None:
    async def scenario(run: Running) -> None:
        # Passes that find nothing wrong go on quietly.
        await run.until(lambda: run.gateway.reconciliations >= 2)
        assert run.halts == []
        fake.set_balance("USDT", "4000")  # a withdrawal nobody here made
        await run.until(lambda: bool(run.halts))

    run = asyncio.run(run_with(graph(fake), tmp_path / "BINANCE.jsonl", scenario))
    [reason] = run.halts
    assert reason.startswith("reconciliation drift at BINANCE: ")
    assert "USDT balance at the venue is 4000 but the journal expects 5000" in reason
    [drift] = run.of(ReconciliationDrift)
    assert drift.venue == "BINANCE"
    assert drift.reason == reason
    assert any("USDT balance" in p for p in drift.problems)


def test_an_order_placed_behind_the_sessions_back_halts_trading(
    fake: FakeExchange, tmp_path: Path
) -> None:
    async def scenario(run: Running) -> None:
        await run.until(lambda: run.gateway.reconciliations >= 1)
        outsider = ccxt.binance(fake.ccxt_config())
        outsider.load_markets()
        await asyncio.to_thread(
            outsider.create_order,
            "BTC/USDT",
            "limit",
            "buy",
            0.01,
            PRICE * 0.9,
            {"clientOrderId": "manual-order-1"},
        )
        await run.until(lambda: bool(run.halts))

    run = asyncio.run(run_with(graph(fake), tmp_path / "BINANCE.jsonl", scenario))
    [reason] = run.halts
    assert "client id manual-order-1" in reason
    assert "placed outside this session" in reason
    assert run.of(ReconciliationDrift)


def test_a_fill_the_session_missed_is_applied_by_the_next_pass_and_trading_goes_on(
    fake: FakeExchange, tmp_path: Path
) -> None:
    resting = submit(OrderSide.BUY, 0.01, limit_price=PRICE - 1_000.0)

    async def scenario(run: Running) -> None:
        run.gateway.handle(resting)
        await run.until(lambda: bool(run.of(OrderAccepted)))
        passes = run.gateway.reconciliations
        await run.until(lambda: run.gateway.reconciliations >= passes + 2)
        assert run.of(OrderFilled) == []  # resting, nothing missed yet
        # The market comes down through the order: it fills at the venue, and no stream or
        # poll of the session hears of it.
        fake.set_price("BTCUSDT", str(PRICE - 1_500.0))
        await run.until(lambda: bool(run.of(OrderFilled)))
        await run.until(lambda: run.gateway.reconciliations >= passes + 4)

    run = asyncio.run(run_with(graph(fake), tmp_path / "BINANCE.jsonl", scenario))
    [filled] = run.of(OrderFilled)
    assert filled.client_order_id == resting.client_order_id
    assert filled.leaves_qty == 0.0
    assert filled.last_px == pytest.approx(PRICE - 1_000.0)
    [repaired] = run.of(ReconciliationRepaired)
    assert repaired.recovered_fills == 1
    # The balances the fill moved are explained by it: no drift, no halt.
    assert run.halts == []
    assert run.of(ReconciliationDrift) == []


def test_clock_drift_from_the_exchange_is_measured_and_judged_by_its_guard(
    fake: FakeExchange, tmp_path: Path
) -> None:
    offsets: list[float | None] = []

    async def scenario(run: Running) -> None:
        offsets.append(await run.gateway.clock_offset_ms())
        fake.set_clock_skew(-3_000)  # the exchange's clock runs 3 s behind ours
        offsets.append(await run.gateway.clock_offset_ms())

    asyncio.run(run_with(graph(fake), tmp_path / "BINANCE.jsonl", scenario))
    level, skewed = offsets
    assert level is not None
    assert skewed is not None
    assert abs(level) < 500.0
    assert skewed == pytest.approx(3_000.0, abs=500.0)

    guards = GuardSet(
        GuardsConfig(clock_drift_ms=GuardLevelsConfig(warn=250, halt=1_000)), "broker:BINANCE"
    )
    [breached], halt = guards.judge({CLOCK_DRIFT: abs(skewed)}, time.time_ns())
    assert breached.level == "halt"
    assert halt.startswith("guard clock_drift_ms on broker:BINANCE: clock drift from the exchange")
    assert "reached its halt level 1000 ms" in halt
