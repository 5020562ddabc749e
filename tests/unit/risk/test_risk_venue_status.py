"""Risk refuses new orders for a venue whose gateway reports it unreachable (circuit open)."""

from __future__ import annotations

from tests.unit.risk.test_risk_engine import INSTRUMENTS, NO_LIMITS, Harness, priced
from tradegraph.contracts import RiskReason, VenueStatus
from tradegraph.engine.clock import SimClock
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox


def test_unavailable_venue_refuses_orders_until_available_again() -> None:
    h = priced()
    h.send(VenueStatus(venue="BINANCE", available=False, detail="circuit open", **h.ts()))

    rejected = h.refusal(h.intent())
    h.send(VenueStatus(venue="BINANCE", available=True, **h.ts()))
    order = h.submit(h.intent())

    assert rejected.reason is RiskReason.VENUE_UNAVAILABLE
    assert rejected.detail == (
        "venue BINANCE is unreachable (circuit open); "
        "orders wait until its gateway reports it available again"
    )
    assert order.venue == "BINANCE"


def test_another_venue_being_down_does_not_block_orders() -> None:
    h = priced()

    out = h.send(VenueStatus(venue="KRAKEN", available=False, **h.ts()))
    order = h.submit(h.intent())

    assert out == []
    assert order.venue == "BINANCE"


def test_unavailable_venue_survives_snapshot_and_restore() -> None:
    h = priced()
    h.send(VenueStatus(venue="BINANCE", available=False, detail="circuit open", **h.ts()))
    restored = RiskEngine(NO_LIMITS, INSTRUMENTS, SimClock(h.clock.now_ns()), RecordingOutbox())

    restored.restore(h.engine.snapshot())

    assert dict(restored.unavailable_venues) == {"BINANCE": "circuit open"}


def test_snapshot_without_venue_status_restores_with_every_venue_available() -> None:
    h = priced()
    stored = h.engine.snapshot().model_dump(mode="json")
    del stored["unavailable_venues"]
    restored = Harness()

    restored.engine.restore(RiskEngine.State.model_validate(stored))

    assert dict(restored.engine.unavailable_venues) == {}
