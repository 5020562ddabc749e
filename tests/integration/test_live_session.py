"""Live sessions of the actor graph against the fake Binance exchange, through the real ccxt."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tradegraph.actors.live_host import HostStatus
from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.actors.session import LiveSession, operator_command
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
    LiveMode,
    RetryConfig,
    SessionConfig,
)
from tradegraph.contracts import KillSwitchMode
from tradegraph.observability.audit import verify_tree

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

API_KEY = "session-key-5d1c7e9a3b"
SECRET = "session-secret-8f2b6d0c4e"
PRICE = 60_000.0


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_BINANCE_KEY", API_KEY)
    monkeypatch.setenv("TG_TEST_BINANCE_SECRET", SECRET)


def live_config(
    fake: FakeExchange, tmp_path: Path, namespace: str, mode: LiveMode, *buy_on_trades: int
) -> GraphConfig:
    live = fake_live_venue(
        fake,
        key_env="TG_TEST_BINANCE_KEY",
        secret_env="TG_TEST_BINANCE_SECRET",
        mode=mode,
        max_order_notional=5_000.0,
        request_timeout_s=1.0,
        ambiguous_settle_s=0.1,
        poll_interval_s=0.2,
        safety_poll_interval_s=0.5,
        stale_after_s=30.0,
        retry=RetryConfig(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    )
    strategies = tuple(
        StrategyConfig(
            id=f"buyer{i}",
            class_path="tests.support.graphs:ScriptedStrategy",
            instruments=("BTCUSDT.BINANCE",),
            params={"buy_on_trade": n, "quantity": 0.01},
        )
        for i, n in enumerate(buy_on_trades)
    )
    return GraphConfig(
        name="live-test",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", live=live),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=strategies,
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=float(sum(fake.balances()["USDT"]))),
        session=SessionConfig(
            market_data="ccxt",
            clock="wall",
            namespace=namespace,
            state_dir=str(tmp_path / "state"),
            hang_timeout_s=10.0,
        ),
    )


def trade_until(fake: FakeExchange, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Print outside trades on the fake's tape until ``predicate`` holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        fake.trade("BTCUSDT", PRICE, "0.001")
        time.sleep(0.1)


def published_by(session: LiveSession, cid: str) -> list[str]:
    messages = ray.get(session.hosts[cid].published_orders.remote(), timeout=10)
    return [type(m).__name__ for m in messages]


def fills_of(session: LiveSession) -> int:
    return int(session.status("portfolio").details["fills"])


def assert_position_matches_the_venue(portfolio: HostStatus, fake: FakeExchange) -> None:
    """Position and cash the portfolio holds equal the fake account's balances (the BTC the
    account held before the session included)."""
    details = portfolio.details
    balances = fake.balances()
    btc = float(sum(balances["BTC"]))
    usdt = float(sum(balances["USDT"]))
    assert details["positions"]["BTCUSDT.BINANCE"] == pytest.approx(btc, abs=1e-9)
    assert details["cash"] == pytest.approx(usdt, abs=1e-6)


def test_live_session_trades_through_ccxt_and_books_match_the_venue(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    session = started(live_config(fake, tmp_path, "live-real", LiveMode.LIVE, 3, 40))
    assert session.venue_modes()[0][1] == "live"

    trade_until(fake, lambda: fills_of(session) >= 1)
    assert_position_matches_the_venue(session.status("portfolio"), fake)
    broker_pid = session.status("broker:BINANCE").pid
    os.kill(broker_pid, signal.SIGKILL)
    trade_until(fake, lambda: fills_of(session) >= 2)
    broker = session.status("broker:BINANCE")
    outcome = session.stop("test")

    assert broker.pid != broker_pid
    assert broker.recovered
    assert broker.details["failure"] == ""
    assert outcome.halted == ""
    assert len(fake.orders()) == 2
    assert_position_matches_the_venue(outcome.statuses["portfolio"], fake)
    # The audit trail: the venue's events as the broker met them, across its restart.
    assert all(report.ok for report in verify_tree(tmp_path / "state" / "audit"))
    broker_chain = [
        json.loads(line)
        for line in (Path(session.audit_dir or "") / "broker-BINANCE.audit.ndjson")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    assert sum(r["event"] == "opened" for r in broker_chain) == 2
    audited_fills = {
        r["msg"]["client_order_id"] for r in broker_chain if r.get("type") == "OrderFilled"
    }
    # The exchange knows each order by our id behind the session's tag.
    venue_ids = [o.client_order_id for o in fake.orders()]
    assert len(audited_fills) == len(venue_ids)
    assert all(any(v.endswith(ours) for v in venue_ids) for ours in audited_fills)
    node: Any = ray._private.worker._global_node  # the Ray this test session started
    logs = Path(node.get_logs_dir_path())
    written = [*(tmp_path / "state").rglob("*"), *logs.rglob("*")]
    leaked = [p for p in written if p.is_file() and _mentions_secret(p)]
    assert leaked == []


def test_fresh_live_session_adopts_the_inventory_the_account_already_holds(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    # portfolio.starting_cash says 100000 USDT; the account holds 1 BTC and 1000 USDT.
    config = live_config(fake, tmp_path, "live-adopt", LiveMode.LIVE, 3)
    fake.set_balance("BTC", "1")
    fake.set_balance("USDT", "1000")
    session = started(config)

    # The fill reaches the portfolio, Risk and the strategy in batches of their own.
    trade_until(
        fake,
        lambda: (
            fills_of(session) >= 1
            and bool(session.status("strategy:buyer0").details["positions"])
            and session.status("risk").details["positions"].get("BTCUSDT.BINANCE", 0.0) > 1.0
        ),
    )
    portfolio = session.status("portfolio")
    risk = session.status("risk").details
    buyer = session.status("strategy:buyer0").details
    session.stop("test")

    btc = float(sum(fake.balances()["BTC"]))
    assert btc == pytest.approx(1.01, abs=1e-4)  # the fee is paid in BTC
    assert_position_matches_the_venue(portfolio, fake)
    # Valued at the mark (the last trade or quote mid), within a cent of the trade price.
    assert portfolio.details["equity"] == pytest.approx(
        portfolio.details["cash"] + btc * PRICE, abs=0.05
    )
    assert buyer["positions"] == {"BTCUSDT.BINANCE": pytest.approx(0.01, abs=1e-4)}
    assert risk["positions"] == {"BTCUSDT.BINANCE": pytest.approx(btc)}
    assert risk["gross_exposure"] == pytest.approx(btc * PRICE, abs=0.05)


def _mentions_secret(path: Path) -> bool:
    text = path.read_bytes()
    return API_KEY.encode() in text or SECRET.encode() in text


def test_live_mode_without_the_gate_runs_dry_run_and_sends_nothing(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.delenv("TRADEGRAPH_ENABLE_LIVE", raising=False)
    session = started(live_config(fake, tmp_path, "live-dry", LiveMode.LIVE, 3))
    venue, mode, reason = session.venue_modes()[0]

    trade_until(fake, lambda: "OrderCancelled" in published_by(session, "broker:BINANCE"))
    outcome = session.stop("test")

    assert (venue, mode) == ("BINANCE", "dry-run")
    assert "TRADEGRAPH_ENABLE_LIVE=1 is not set" in reason
    assert fake.orders() == []
    assert outcome.portfolio is not None
    assert outcome.portfolio.fills == []
    assert outcome.result is not None
    assert outcome.result.orders == 1


def test_unexplained_venue_state_stops_the_session_before_strategies_start(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    config = live_config(fake, tmp_path, "live-refused", LiveMode.LIVE, 3)
    first = LiveSession(config)
    first.start()
    trade_until(fake, lambda: fills_of(first) >= 1)
    first.stop("test")
    # Between sessions the account's BTC changes with no fill to explain it.
    free_btc = fake.balances()["BTC"][0]
    fake.set_balance("BTC", free_btc + Decimal("0.5"))
    second = LiveSession(config, resume=False)

    with pytest.raises(ActorGraphError, match=r"(?s)reconciliation failed.*BTC balance"):
        second.start()

    assert second.hosts == {}
    assert len(fake.orders()) == 1


def test_a_balance_changed_mid_session_is_caught_by_the_periodic_reconciliation_and_halts(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    config = live_config(fake, tmp_path, "live-drift", LiveMode.LIVE, 10_000)
    venue = config.venues[0]
    assert venue.live is not None
    live = venue.live.model_copy(update={"reconcile_interval_s": 0.5, "reconcile_grace_s": 0.2})
    config = config.model_copy(update={"venues": (venue.model_copy(update={"live": live}),)})
    session = started(config)
    deadline = time.monotonic() + 30.0
    while int(session.status("broker:BINANCE").details["reconciliations"]) < 2:
        assert time.monotonic() < deadline, "no periodic reconciliation ran"
        time.sleep(0.2)
    assert session.status("risk").details["kill_switch_tripped"] is False

    fake.set_balance("USDT", "123")  # a withdrawal the session never made
    ended_by = session.run(30.0)
    outcome = session.stop(ended_by)

    assert ended_by == "halted"
    risk = outcome.statuses["risk"].details
    assert risk["kill_switch_tripped"] is True
    assert (
        "reconciliation drift at BINANCE: USDT balance at the venue is 123"
        in (risk["kill_switch_reason"])
    )
    assert "reconciliation drift at BINANCE" in outcome.halted
    assert outcome.statuses["control"].details["counts"].get("ReconciliationDrift") == 1


def test_wrong_live_trades_never_reach_the_strategy_and_later_good_ones_still_do(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.delenv("TRADEGRAPH_ENABLE_LIVE", raising=False)
    # The strategy orders on its 3rd trade: had any wrong frame reached it, it would order
    # before the 2nd good trade.
    session = started(live_config(fake, tmp_path, "live-guard", LiveMode.LIVE, 3))
    fake.subscribed("btcusdt@trade").result(timeout=30)

    def dropped() -> dict[str, int]:
        return dict(session.status("md").details["dropped"])

    trade_until(fake, lambda: session.status("md").details["published"] >= 1)
    fake.send_bad_trade("BTCUSDT", "0.000001", trade_id=10**12)
    fake.send_bad_trade("BTCUSDT", "1000000000000", trade_id=10**12 + 1)
    year_ahead_ms = fake.now_ms() + 365 * 86_400_000
    fake.send_bad_trade("BTCUSDT", str(PRICE), time_ms=year_ahead_ms, trade_id=10**12 + 2)
    deadline = time.monotonic() + 30
    while sum(dropped().values()) < 3:
        assert time.monotonic() < deadline, dropped()
        time.sleep(0.1)
    time.sleep(1.0)  # time enough for an order, had a wrong frame got through
    orders_after_bad_frames = published_by(session, "broker:BINANCE")

    trade_until(fake, lambda: "OrderCancelled" in published_by(session, "broker:BINANCE"))
    outcome = session.stop("test")

    assert orders_after_bad_frames == []
    assert dropped_of(outcome.statuses["md"]) == {"price_out_of_band": 2, "ahead_of_clock": 1}
    assert outcome.result is not None
    assert outcome.result.orders == 1


def dropped_of(status: HostStatus) -> dict[str, int]:
    return dict(status.details["dropped"])


def bidder_config(
    fake: FakeExchange,
    tmp_path: Path,
    namespace: str,
    *,
    buy_on_trades: tuple[int, ...] = (),
    bid_on_trades: tuple[int, ...] = (),
) -> GraphConfig:
    """One strategy, ``bidder``, buying at market and resting limit bids on chosen trades."""
    config = live_config(fake, tmp_path, namespace, LiveMode.LIVE, 1)
    bidder = StrategyConfig(
        id="bidder",
        class_path="tests.support.graphs:TradeBidder",
        instruments=("BTCUSDT.BINANCE",),
        params={"buy_on_trades": buy_on_trades, "bid_on_trades": bid_on_trades},
    )
    return config.model_copy(update={"strategies": (bidder,)})


def open_at_venue(fake: FakeExchange) -> list[str]:
    """Client order ids of the orders working at the fake."""
    return [o.client_order_id for o in fake.orders() if o.is_live]


def test_restarted_live_session_resumes_its_ids_open_orders_and_positions(
    fake: FakeExchange, tmp_path: Path, credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    btc0 = float(sum(fake.balances()["BTC"]))
    config = bidder_config(fake, tmp_path, "live-resume", buy_on_trades=(2,), bid_on_trades=(4, 14))
    first = LiveSession(config)
    second = third = LiveSession(config, resume=True)
    try:
        first.start()
        trade_until(fake, lambda: fills_of(first) >= 1 and len(open_at_venue(fake)) == 1)
        first.kill()  # the driver dies: nothing is cancelled, no last snapshot is written
        bid = open_at_venue(fake)

        second = LiveSession(config, resume=True)
        second.start()
        risk = second.status("risk").details
        bidder = second.status("strategy:bidder").details
        btc_resumed = float(sum(fake.balances()["BTC"]))
        assert_position_matches_the_venue(second.status("portfolio"), fake)
        trade_until(fake, lambda: len(open_at_venue(fake)) == 2)
        operator_command("kill", "test", namespace="live-resume")
        trade_until(fake, lambda: open_at_venue(fake) == [])
        outcome = second.stop("test")

        # A new session on the same account numbers its orders after the journaled ones.
        third = LiveSession(config, resume=False)
        third.start()
        trade_until(fake, lambda: len(fake.orders()) == 4)
        third.stop("test")
    finally:
        first.kill()
        second.kill()
        third.kill()

    assert second.session_id == first.session_id
    assert risk["open_orders"] == 1
    assert bidder["open_orders"] == 1
    assert bidder["positions"]["BTCUSDT.BINANCE"] == pytest.approx(btc_resumed - btc0, abs=1e-9)
    client_ids = [o.client_order_id for o in fake.orders()]
    numbers = [c[-len("bidder-000001") :] for c in client_ids]
    # The fresh third session may bid again before it stops (on a loaded machine the tape
    # runs ahead of the check): whatever it sends is numbered on, never reused.
    assert numbers == [f"bidder-{n:06d}" for n in range(1, len(numbers) + 1)]
    assert len(numbers) >= 4
    assert len(set(client_ids)) == len(client_ids)
    assert bid[0] == client_ids[1]
    assert [o.status for o in fake.orders()][:4] == ["FILLED", "CANCELED", "CANCELED", "FILLED"]
    assert outcome.result is not None
    assert outcome.result.orders == 3
    # The resumed session chained on its audit trail; the fresh one began its own.
    assert second.audit_dir == first.audit_dir != third.audit_dir
    assert all(report.ok for report in verify_tree(tmp_path / "state" / "audit"))
    resumed = Path(first.audit_dir or "")
    session_events = [
        json.loads(line)["event"]
        for line in (resumed / "session.audit.ndjson").read_text(encoding="utf-8").splitlines()
    ]
    assert session_events.count("session_started") == 2
    assert session_events[-2:] == ["session_stopped", "closed"]
    risk_records = [
        json.loads(line)
        for line in (resumed / "risk.audit.ndjson").read_text(encoding="utf-8").splitlines()
    ]
    assert any(r["event"] == "operator" and r["msg"]["reason"] == "test" for r in risk_records)


def test_a_flatten_kill_cancels_at_the_venue_then_sells_the_position_there(
    fake: FakeExchange,
    tmp_path: Path,
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[GraphConfig], LiveSession],
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    btc0 = float(sum(fake.balances()["BTC"]))
    config = bidder_config(fake, tmp_path, "live-flatten", buy_on_trades=(2,), bid_on_trades=(4,))
    session = started(config)
    trade_until(fake, lambda: fills_of(session) >= 1 and len(open_at_venue(fake)) == 1)

    killed = operator_command(
        "kill", "flatten test", mode=KillSwitchMode.FLATTEN, namespace="live-flatten"
    )
    trade_until(fake, lambda: fills_of(session) >= 2 and open_at_venue(fake) == [])
    risk = session.status("risk").details
    bidder = session.status("strategy:bidder").details
    outcome = session.stop("test")

    assert killed.details["kill_switch_mode"] == "flatten"
    bought, bid, sold = fake.orders()
    assert (bought.side, bought.status) == ("BUY", "FILLED")
    assert (bid.side, bid.status) == ("BUY", "CANCELED")
    assert (sold.side, sold.type, sold.status) == ("SELL", "MARKET", "FILLED")
    assert sold.client_order_id.endswith("bidder-flat0001")
    # The buy's fee was paid in BTC: the strategy held (and now sold) what it received.
    held = bought.executed_qty - sum(f.commission for f in bought.fills)
    assert sold.orig_qty == sold.executed_qty == held == Decimal("0.00999")
    assert risk["positions"] == {"BTCUSDT.BINANCE": pytest.approx(btc0)}
    assert bidder["positions"] == {}
    assert risk["open_orders"] == 0
    assert outcome.result is not None
    [closed] = outcome.result.kill_switch_closed()
    assert (closed["strategy_id"], closed["side"]) == ("bidder", "sell")
    assert closed["quantity"] == pytest.approx(float(held))


def test_new_session_refuses_open_orders_of_an_earlier_one(
    fake: FakeExchange, tmp_path: Path, credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    config = bidder_config(fake, tmp_path, "live-orphans", bid_on_trades=(2,))
    first = LiveSession(config)
    try:
        first.start()
        trade_until(fake, lambda: len(open_at_venue(fake)) == 1)
    finally:
        first.kill()
    second = LiveSession(config, resume=False)

    with pytest.raises(
        ActorGraphError,
        match=r"(?s)1 order\(s\) of an earlier session are still open.*bidder-000001",
    ):
        second.start()

    assert second.hosts == {}
    assert len(fake.orders()) == 1
    assert fake.orders()[0].is_live
