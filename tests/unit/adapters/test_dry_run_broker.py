"""DryRunBroker: orders journaled and acknowledged locally, never sent anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.support.stubs import bar, cancel
from tests.unit.adapters.test_ccxt_broker import BTC_ID, INSTRUMENTS, kinds, submit
from tradegraph.adapters.ccxt.broker import DRY_RUN_NOT_SENT, DryRunBroker
from tradegraph.adapters.ccxt.order_journal import JournalStatus, OrderJournal
from tradegraph.config.models import LiveMode, LiveVenueConfig, VenueConfig
from tradegraph.contracts import Message, OrderAccepted, OrderCancelled, OrderRejected

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def dry_broker(journal: OrderJournal | None = None, **live: Any) -> DryRunBroker:
    config = LiveVenueConfig(mode=LiveMode.DRY_RUN, **live)
    broker = DryRunBroker(
        VenueConfig(name="BINANCE", live=config),
        INSTRUMENTS,
        session_id="dry-1",
        journal=journal,
        reason="mode is dry-run",
        now_ns=lambda: 7,
    )
    broker.observe(bar(100.0, ts_ns=1, volume=10.0))
    return broker


def test_limit_order_is_acknowledged_and_rests_until_cancelled() -> None:
    async def scenario() -> tuple[list[Message], list[Message], DryRunBroker]:
        broker = dry_broker()
        cmd = submit(limit_price=99.0)
        placed = await broker.submit(cmd)
        cancelled = await broker.cancel(cancel(cmd, "requested by strategy sma"))
        return placed, cancelled, broker

    placed, cancelled, broker = run(scenario)

    [accepted] = placed
    assert isinstance(accepted, OrderAccepted)
    assert accepted.venue_order_id == "DRY-00000001"
    [done] = cancelled
    assert isinstance(done, OrderCancelled)
    assert done.reason == "requested by strategy sma"
    [order] = broker.journal.orders.values()
    assert order.status is JournalStatus.CANCELLED
    assert order.venue_client_id.startswith(broker._ids.session_tag)


def test_market_order_is_acknowledged_then_cancelled_as_never_sent() -> None:
    async def scenario() -> list[Message]:
        return await dry_broker().submit(submit())

    out = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderCancelled"]
    assert isinstance(out[1], OrderCancelled)
    assert out[1].reason == DRY_RUN_NOT_SENT


def test_dry_run_applies_the_hard_cap_like_live() -> None:
    async def scenario() -> list[Message]:
        return await dry_broker(max_order_notional=1_000.0).submit(submit(quantity=11.0))

    [rejected] = run(scenario)

    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == (
        "max_order_notional: order notional 1100.00 exceeds the venue hard cap "
        "live.max_order_notional 1000.00"
    )


def test_redelivered_submit_and_unknown_cancel_publish_nothing() -> None:
    async def scenario() -> tuple[list[Message], list[Message], int]:
        broker = dry_broker()
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        again = await broker.submit(cmd)
        stray = await broker.cancel(cancel(submit()))
        return again, stray, broker.ignored_cancels

    again, stray, ignored = run(scenario)

    assert again == []
    assert stray == []
    assert ignored == 1


def test_dry_run_journal_survives_a_restart_and_reconciles_ok(tmp_path: Any) -> None:
    path = tmp_path / "journal.jsonl"

    async def scenario() -> tuple[Any, DryRunBroker]:
        first = dry_broker(OrderJournal.load(path))
        await first.submit(submit(limit_price=99.0))
        await first.close()
        second = dry_broker(OrderJournal.load(path))
        return await second.reconcile(), second

    report, second = run(scenario)

    assert report.ok
    assert report.open_orders == 1
    assert report.mode is LiveMode.DRY_RUN
    [order] = second.journal.orders.values()
    assert order.instrument_id == BTC_ID
    assert order.status is JournalStatus.OPEN


def test_watch_yields_nothing_and_ends_on_close() -> None:
    async def scenario() -> list[list[Message]]:
        broker = dry_broker()
        batches: list[list[Message]] = []

        async def consume() -> None:
            async for batch in broker.watch():
                batches.append(batch)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await broker.close()
        await asyncio.wait_for(task, 1.0)
        return batches

    assert run(scenario) == []
