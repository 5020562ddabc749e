"""The live broker's periodic reconciliation (``check``) and its race rule, on the ccxt stub.

An order sent or changed less than ``reconcile_grace_s`` ago is not judged; a balance that
moved by a fill the broker had not yet heard of is explained by looking again; what stays
unexplained once the grace has passed is a problem.
"""

from __future__ import annotations

import ccxt

from tests.unit.adapters.test_ccxt_broker import (
    kinds,
    make_broker,
    run,
    started,
    submit,
)
from tradegraph.adapters.base import ReconciliationReport
from tradegraph.contracts import OrderFilled, OrderSide


def test_an_order_lost_at_the_venue_is_judged_only_after_the_grace_window() -> None:
    async def scenario() -> tuple[ReconciliationReport, ReconciliationReport]:
        broker, stub, clock = make_broker(use_websockets=False, reconcile_grace_s=5.0)
        await started(broker)
        assert (await broker.reconcile()).ok
        order = submit(OrderSide.BUY, 0.1, limit_price=90.0)
        await broker.submit(order)
        del stub.orders[
            broker.journal.orders[order.client_order_id].venue_client_id
        ]  # the venue no longer knows it
        within = await broker.check()
        clock.now_s += 6.0
        after = await broker.check()
        return within, after

    within, after = run(scenario)

    assert within.ok
    assert not after.ok
    [problem] = after.problems
    assert "is open in the journal but unknown at the venue" in problem


def test_a_fill_the_broker_missed_is_applied_and_its_balances_explained() -> None:
    async def scenario() -> tuple[ReconciliationReport, list[str]]:
        broker, stub, clock = make_broker(use_websockets=False, reconcile_grace_s=1.0)
        await started(broker)
        assert (await broker.reconcile()).ok
        order = submit(OrderSide.BUY, 0.1, limit_price=90.0)
        await broker.submit(order)
        clock.now_s += 2.0
        stub.fill(
            broker.journal.orders[order.client_order_id].venue_client_id, 0.1, 90.0
        )  # no stream, no poll tells the broker
        report = await broker.check()
        return report, kinds(list(report.events))

    report, events = run(scenario)

    assert report.ok, report.problems
    assert report.recovered_fills == 1
    assert events == ["OrderFilled"]


def test_a_fill_within_the_grace_window_moves_balances_without_a_false_drift() -> None:
    async def scenario() -> ReconciliationReport:
        broker, stub, _ = make_broker(use_websockets=False, reconcile_grace_s=5.0)
        await started(broker)
        assert (await broker.reconcile()).ok
        order = submit(OrderSide.BUY, 0.1, limit_price=90.0)
        await broker.submit(order)
        # The venue fills the order just sent: its balances move before any update comes.
        stub.fill(broker.journal.orders[order.client_order_id].venue_client_id, 0.1, 90.0)
        return await broker.check()

    report = run(scenario)

    assert report.ok, report.problems
    assert [type(m) for m in report.events] == [OrderFilled]


def test_a_balance_nothing_explains_is_drift_and_an_unreadable_venue_is_no_verdict() -> None:
    async def scenario() -> tuple[ReconciliationReport, ReconciliationReport]:
        broker, stub, _ = make_broker(use_websockets=False)
        await started(broker)
        assert (await broker.reconcile()).ok
        stub.balances["USDT"] -= 250.0
        drift = await broker.check()
        stub.faults["fetch_open_orders"] = [ccxt.AuthenticationError("binance denied")]
        skipped = await broker.check()
        return drift, skipped

    drift, skipped = run(scenario)

    assert not drift.ok
    [problem] = drift.problems
    assert problem.startswith("USDT balance at the venue is 99750 but the journal expects 100000")
    assert skipped.ok
    assert skipped.skipped.startswith("the venue could not be read")
