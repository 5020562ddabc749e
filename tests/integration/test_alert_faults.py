"""Faults of a paper session raise their alerts: a killed actor comes back and says so, a dead
broker halts trading and the halt's reason reaches the webhook (real actors, real processes
killed, a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_live_session import API_KEY, PRICE, SECRET, live_config
from tests.integration.test_paper_session import paper_config, resting_config, wait_until
from tests.support.fake_exchange import FakeExchange
from tests.support.webhook import WebhookReceiver, webhook_receiver
from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.actors.session import LiveSession
from tradegraph.config.models import (
    AlertChannelConfig,
    AlertRuleConfig,
    AlertsConfig,
    GraphConfig,
    LiveMode,
)
from tradegraph.errors import ConfigError

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def with_alerts(config: GraphConfig, hook: WebhookReceiver, *rules: dict[str, Any]) -> GraphConfig:
    alerts = AlertsConfig.model_validate(
        {"channels": [{"name": "ops", "url": hook.url()}], "rules": rules}
    )
    return config.model_copy(update={"alerts": alerts})


def test_a_killed_actor_comes_back_and_an_alert_says_so(
    tmp_path: Path, hook: WebhookReceiver, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = with_alerts(
        paper_config(tmp_path, "alert-restart", "session.speed=600"),
        hook,
        {"event": "actor_restarted", "severity": "error"},
    )
    session = started(config)
    wait_until(lambda: session.status("strategy:sma_btc").messages_in > 0)

    os.kill(session.status("strategy:sma_btc").pid, signal.SIGKILL)
    session.run(3.0, until_replay_done=False)  # health checks reach the restarted actor
    alert = hook.wait_for("component_id='strategy:sma_btc'", timeout_s=60)
    session.stop()

    assert alert.body["title"] == "[ERROR] tradegraph paper-demo: actor restarted"
    assert "recovered=True" in alert.body["message"]


def test_a_dead_broker_halts_trading_and_the_reason_reaches_the_webhook(
    tmp_path: Path, hook: WebhookReceiver, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = with_alerts(
        resting_config(
            tmp_path, "alert-halt", "session.max_restarts=0", "session.hang_timeout_s=2"
        ),
        hook,
        {"event": "trading_halted", "severity": "critical"},
        {"event": "kill_switch_tripped", "severity": "critical"},
    )
    session = started(config)
    wait_until(lambda: session.status("broker:BINANCE").details["open_orders"] == 1)

    os.kill(session.status("broker:BINANCE").pid, signal.SIGKILL)
    ended_by = session.run(20.0)
    halted = hook.wait_for("trading halted", timeout_s=30)
    outcome = session.stop(ended_by)

    assert ended_by == "halted"
    assert halted.body["title"] == "[CRITICAL] tradegraph paper-demo: trading halted"
    assert "broker:BINANCE" in halted.body["message"]
    trips = [r for r in hook.received() if r.body["title"].endswith("kill switch tripped")]
    assert trips, hook.received()
    assert "broker:BINANCE" in trips[0].body["message"]
    assert outcome.statuses["control"].details["alerts"]["sent"] >= 2
    assert outcome.statuses["control"].details["alerts"]["failed"] == 0


def test_a_secret_missing_from_the_environment_stops_the_session_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_TEST_UNSET_TOKEN", raising=False)
    alerts = AlertsConfig(
        channels=(AlertChannelConfig(name="ops", url="json://h/${TG_TEST_UNSET_TOKEN}"),),
        rules=(AlertRuleConfig(event="fill"),),
    )
    config = paper_config(tmp_path, "alert-env").model_copy(update={"alerts": alerts})

    with pytest.raises(ConfigError, match="TG_TEST_UNSET_TOKEN is not set"):
        LiveSession(config)


def test_a_live_session_refused_by_reconciliation_still_sends_its_alert(
    hook: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_TEST_BINANCE_KEY", API_KEY)
    monkeypatch.setenv("TG_TEST_BINANCE_SECRET", SECRET)
    monkeypatch.setenv("TRADEGRAPH_ENABLE_LIVE", "1")
    with FakeExchange(api_key=API_KEY, secret=SECRET) as fake:
        fake.set_price("BTCUSDT", str(PRICE))
        config = with_alerts(
            live_config(fake, tmp_path, "alert-refused", LiveMode.LIVE, 3),
            hook,
            {"event": "reconciliation_failed", "severity": "critical"},
        )
        # The account holds BTC the order journal of the last session cannot explain.
        fake.set_balance("BTC", "123")
        journal = tmp_path / "state" / "orders" / "BINANCE.jsonl"
        journal.parent.mkdir(parents=True)
        journal.write_text('{"kind":"baseline","balances":{"BTC":1.0,"USDT":100000.0},"ts_ns":1}\n')
        session = LiveSession(config, resume=False)

        with pytest.raises(ActorGraphError, match="reconciliation failed"):
            session.start()

    alert = hook.wait_for("reconciliation failed", timeout_s=10)
    assert (
        alert.body["title"] == f"[CRITICAL] tradegraph {session.session_id}: reconciliation failed"
    )
    assert "BTC" in alert.body["message"]
    assert session.hosts == {}
