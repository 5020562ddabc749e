"""The session's own components (control sink, broker gateway) keep typed, versioned state that
survives a host's snapshot and recovery like every core's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.graphs import btc_instrument
from tradegraph.actors.gateway import GatewayBroker, GatewayState
from tradegraph.actors.inbox import Inbox
from tradegraph.actors.live_clock import DataClock
from tradegraph.actors.live_host import ControlSink, ControlState
from tradegraph.actors.recovery import Recovery
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig
from tradegraph.config.models import (
    LiveMode,
    LiveVenueConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.contracts import CONTROL, KillSwitchChanged, TripKillSwitch
from tradegraph.contracts.state import ComponentState, StateVersionError
from tradegraph.testing import RecordingOutbox


def _halted_control() -> ControlSink:
    control = ControlSink("s")
    for tripped in (True, False):
        control.handle(KillSwitchChanged(tripped=tripped, reason="x", ts_event_ns=1, ts_init_ns=1))
    control.handle(TripKillSwitch(reason="venue down", ts_event_ns=2, ts_init_ns=2))
    return control


def test_control_state_is_typed_and_survives_json() -> None:
    control = _halted_control()

    stored = control.snapshot().model_dump_json()
    restored = ControlSink("s")
    restored.restore(ControlSink.State.model_validate_json(stored))

    assert isinstance(control.snapshot(), ControlState)
    assert restored.counts == {"KillSwitchChanged": 2, "TripKillSwitch": 1}
    assert restored.halt_reason == "venue down"
    assert restored.snapshot() == control.snapshot()


def test_control_state_comes_back_through_recovery(tmp_path: Path) -> None:
    control = _halted_control()
    recovery = Recovery(str(tmp_path / CONTROL), CONTROL, snapshot_interval_s=3600.0)
    inbox, clock = Inbox(CONTROL), DataClock(5)
    recovery.maybe_snapshot(lambda: recovery.capture(control, inbox, clock, None), force=True)

    restored = ControlSink("s")
    again = Recovery(str(tmp_path / CONTROL), CONTROL, snapshot_interval_s=3600.0)
    recovered, _ = again.restore(restored, Inbox(CONTROL), DataClock(0), lambda _m, _p: None)

    assert recovered
    assert restored.snapshot() == control.snapshot()


def test_control_state_of_another_schema_version_is_refused() -> None:
    stored = _halted_control().snapshot().model_dump(mode="json")

    with pytest.raises(StateVersionError, match=r"ControlState: .*schema_version 3"):
        ControlState.model_validate({**stored, "schema_version": 3})


def _gateway(tmp_path: Path) -> GatewayBroker:
    config = GraphConfig(
        name="state",
        instruments=(btc_instrument(),),
        venues=(
            VenueConfig(
                name="BINANCE", live=LiveVenueConfig(mode=LiveMode.DRY_RUN, exchange="binance")
            ),
        ),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(StrategyConfig(id="s", class_path="x:y", instruments=("BTCUSDT.BINANCE",)),),
    )
    return GatewayBroker(
        config,
        "BINANCE",
        session_id="state",
        environ={},
        journal_path=str(tmp_path / "orders" / f"{'BINANCE'}.jsonl"),
        outbox=RecordingOutbox(),
    )


def test_gateway_state_holds_only_its_version_and_survives_json(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)

    state = gateway.snapshot()
    stored = state.model_dump_json()
    gateway.restore(GatewayBroker.State.model_validate_json(stored))

    assert isinstance(state, ComponentState)
    assert state.model_dump(mode="json") == {"schema_version": GatewayState.current_version()}
    # What a gateway wrote before its state was typed (an empty dict) still reads.
    assert GatewayBroker.State.model_validate({}) == state


def test_gateway_state_of_another_schema_version_is_refused() -> None:
    with pytest.raises(StateVersionError, match=r"GatewayState: .*schema_version 2"):
        GatewayState.model_validate({"schema_version": 2})
