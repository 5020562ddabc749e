"""Each host writes what it publishes, operators' commands and its halts to its own audit chain,
before what it publishes is sent on (no Ray: a transport whose peers take everything)."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.stubs import intent
from tests.support.transports import TakingTransport
from tradegraph.actors.live_host import LiveHost
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import RISK, Message, OrderIntent, OrderSide, TripKillSwitch
from tradegraph.observability import configure_logging
from tradegraph.observability.audit import verify_chain

PAPER = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(PAPER, ["session.state_dir=null"])


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class WitnessTransport(TakingTransport):
    """Peers that take everything, and look at the audit file whenever a batch goes out."""

    def __init__(self, audit_file: Path) -> None:
        super().__init__()
        self.audit_file = audit_file
        self.written_before_send: list[set[str]] = []

    def push(self, destination: str, *args: Any) -> Any:
        text = self.audit_file.read_text(encoding="utf-8") if self.audit_file.exists() else ""
        self.written_before_send.append(
            {r["type"] for r in map(json.loads, text.splitlines()) if "type" in r}
        )
        return super().push(destination, *args)


def test_risk_audits_an_intents_decision_before_sending_it_and_operator_commands(
    config: GraphConfig, tmp_path: Path
) -> None:
    audit_file = tmp_path / "risk.audit.ndjson"
    transport = WitnessTransport(audit_file)
    wish: OrderIntent = intent(
        OrderSide.BUY, 1000.0, intent_id="sma_btc-000001", strategy_id="sma_btc", ts_ns=5
    )

    async def scenario() -> None:
        host = LiveHost(config, RISK, "unit", transport=transport, audit_dir=str(tmp_path))
        await host.push("strategy:sma_btc", 1, 1, [wish])
        await host.request(TripKillSwitch(reason="drill", ts_event_ns=6, ts_init_ns=6))
        await host.stop()

    asyncio.run(scenario())

    found = records(audit_file)
    events = [(r["event"], r.get("type")) for r in found]
    assert events[0] == ("opened", None)
    assert ("published", "RiskRejected") in events
    assert ("operator", "TripKillSwitch") in events
    assert ("published", "KillSwitchChanged") in events
    assert events[-1] == ("closed", None)
    refused = next(r for r in found if r.get("type") == "RiskRejected")
    assert refused["decision"] == "refused"
    assert refused["msg"]["intent_id"] == "sma_btc-000001"
    assert found[0]["session_id"] == "unit"
    assert len(found[0]["config_sha256"]) == 64
    # The decision reached the audit file before it reached its receivers.
    assert transport.written_before_send
    assert "RiskRejected" in transport.written_before_send[0]
    assert verify_chain(audit_file).ok


def test_a_host_without_an_audit_dir_writes_nothing(config: GraphConfig, tmp_path: Path) -> None:
    async def scenario() -> None:
        host = LiveHost(config, RISK, "unit", transport=TakingTransport())
        await host.request(TripKillSwitch(reason="drill", ts_event_ns=6, ts_init_ns=6))
        await host.stop()

    asyncio.run(scenario())

    assert not list(tmp_path.iterdir())


def test_a_host_reports_and_acknowledges_a_torn_last_line_left_by_a_crash(
    config: GraphConfig, tmp_path: Path
) -> None:
    audit_file = tmp_path / "risk.audit.ndjson"
    logged = io.StringIO()
    configure_logging("INFO", logged)

    async def run_once(reason: str) -> None:
        host = LiveHost(config, RISK, "unit", transport=TakingTransport(), audit_dir=str(tmp_path))
        await host.request(TripKillSwitch(reason=reason, ts_event_ns=6, ts_init_ns=6))
        await host.stop()

    asyncio.run(run_once("first"))
    lines_before = len(audit_file.read_bytes().splitlines())
    with audit_file.open("ab") as fh:
        fh.write(b'{"n":99,"prev":"dead')  # the machine died mid-line

    asyncio.run(run_once("second"))

    torn_events = [
        e
        for e in map(json.loads, logged.getvalue().splitlines())
        if e["event"] == "audit_torn_line"
    ]
    assert [(e["component"], e["line"]) for e in torn_events] == [("risk", lines_before + 1)]
    found = [json.loads(line) for line in audit_file.read_bytes().splitlines()[lines_before + 1 :]]
    assert found[0]["event"] == "torn_line"
    assert found[0]["torn_line"] == lines_before + 1
    report = verify_chain(audit_file)
    assert report.ok, report.failure
    assert any("torn by a crash" in note for note in report.notes)


def test_an_audit_trail_that_cannot_be_written_halts_trading_with_the_reason(
    config: GraphConfig, tmp_path: Path
) -> None:
    transport = TakingTransport()
    wish = intent(OrderSide.BUY, 1000.0, intent_id="sma_btc-000001", strategy_id="sma_btc")

    async def scenario() -> LiveHost:
        host = LiveHost(config, RISK, "unit", transport=transport, audit_dir=str(tmp_path))
        chain = host._audit
        assert chain is not None
        os.close(chain._fd)
        chain._fd = os.open(chain.path, os.O_RDONLY)  # as good as a full disk
        await host.push("strategy:sma_btc", 1, 1, [wish])
        return host

    host = asyncio.run(scenario())

    status = host.status()
    assert "audit trail" in status.halted
    assert "not written" in status.halted
    assert status.details["kill_switch_tripped"] is True


class ReconciliationDrifted(Message):
    """A control message this module has never heard of (as a new one would be)."""

    venue: str
    detail: str


def test_any_control_message_a_host_publishes_is_audited_without_being_named(
    config: GraphConfig, tmp_path: Path
) -> None:
    drift = ReconciliationDrifted(venue="BINANCE", detail="0.1 BTC", ts_event_ns=1, ts_init_ns=1)

    async def scenario() -> None:
        host = LiveHost(config, RISK, "unit", transport=TakingTransport(), audit_dir=str(tmp_path))
        host.emit(drift)
        host.flush()
        await host.stop()

    asyncio.run(scenario())

    found = records(tmp_path / "risk.audit.ndjson")
    drifted = [r for r in found if r.get("type") == "ReconciliationDrifted"]
    assert [r["msg"]["detail"] for r in drifted] == ["0.1 BTC"]
    assert drifted[0]["event"] == "published"
