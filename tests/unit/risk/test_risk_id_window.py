"""Risk's dedupe bookkeeping stays bounded: open orders plus a window of finished ids."""

from __future__ import annotations

from tests.unit.risk.test_risk_engine import INSTRUMENTS, NO_LIMITS, Harness, priced
from tradegraph.contracts import OrderIntent, OrderSide, SubmitOrder
from tradegraph.engine.clock import SimClock
from tradegraph.risk import RiskEngine
from tradegraph.risk.engine import DEDUPE_WINDOW
from tradegraph.testing import RecordingOutbox


def redelivered(h: Harness, intent_id: str) -> OrderIntent:
    """An intent arriving again under ``intent_id``."""
    return h.intent(OrderSide.BUY, 0.1).model_copy(update={"intent_id": intent_id})


def trade_many(h: Harness, count: int) -> None:
    for _ in range(count):
        order = h.submit(h.intent(OrderSide.BUY, 0.1))
        h.send(h.fill(order, 0.1, 100.0))


def test_finished_order_ids_are_kept_only_for_a_bounded_window() -> None:
    h = priced()
    resting = h.submit(h.intent(OrderSide.BUY, 0.1, limit_price=50.0))
    first_intent = h.intent(OrderSide.BUY, 0.1)
    h.send(h.fill(h.submit(first_intent), 0.1, 100.0))
    trade_many(h, 3 * DEDUPE_WINDOW)
    recent = h.submit(h.intent(OrderSide.BUY, 0.1))
    recent_fill = h.fill(recent, 0.1, 100.0)
    h.send(recent_fill)

    state = h.engine.snapshot()

    assert len(state.submitted_ids) <= DEDUPE_WINDOW
    assert len(state.fill_keys) <= DEDUPE_WINDOW
    assert first_intent.intent_id not in state.submitted_ids
    # The open order is known however long ago it was sent: no second order for it.
    assert h.send(redelivered(h, resting.client_order_id)) == []
    # Recent ids are still recognised: no second order, no second fill.
    assert h.send(redelivered(h, recent.client_order_id)) == []
    positions = h.engine.snapshot().positions
    assert h.send(recent_fill) == []
    assert h.engine.snapshot().positions == positions


def test_snapshot_size_stays_the_same_as_trading_goes_on() -> None:
    h = priced()
    trade_many(h, DEDUPE_WINDOW)
    size_after_n = len(h.engine.snapshot().model_dump_json())

    trade_many(h, 3 * DEDUPE_WINDOW)
    size_after_4n = len(h.engine.snapshot().model_dump_json())

    assert size_after_4n < 1.05 * size_after_n


def test_restored_engine_keeps_the_window_and_its_order() -> None:
    h = priced()
    trade_many(h, DEDUPE_WINDOW + 5)
    state = RiskEngine.State.model_validate_json(h.engine.snapshot().model_dump_json())
    outbox = RecordingOutbox()
    restored = RiskEngine(NO_LIMITS, INSTRUMENTS, SimClock(h.clock.now_ns()), outbox)

    restored.restore(state)
    restored.handle(redelivered(h, state.submitted_ids[-1]))

    assert restored.snapshot() == state
    assert not any(isinstance(m, SubmitOrder) for m in outbox.messages)
