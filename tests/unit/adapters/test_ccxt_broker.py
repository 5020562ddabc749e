"""CcxtBroker against a scripted ccxt client: at most one order per intent, every fill once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt
import pytest

from tests.support import stubs
from tests.support.stubs import bar, btcusdt, cancel
from tests.unit.adapters.ccxt_stub import StubExchange
from tradegraph.adapters.ccxt.broker import CcxtBroker, DryRunBroker, build_broker
from tradegraph.adapters.ccxt.order_journal import JournalStatus, OrderJournal
from tradegraph.config.models import (
    CircuitBreakerConfig,
    LiveMode,
    LiveVenueConfig,
    RetryConfig,
    VenueConfig,
)
from tradegraph.contracts import (
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    SubmitOrder,
    TimeInForce,
    VenueBanned,
    VenueReason,
    VenueStatus,
)
from tradegraph.errors import ConfigError
from tradegraph.execution.venue import CANCEL_REQUESTED, IOC_REMAINDER

T = TypeVar("T")

BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=5.0)
BTC_ID = BTC.instrument_id
INSTRUMENTS = {BTC_ID: BTC}
ENV = {"TRADEGRAPH_ENABLE_LIVE": "1", "K": "key-abc-123", "S": "secret-xyz-789"}


def live_config(**overrides: Any) -> LiveVenueConfig:
    values: dict[str, Any] = {
        "mode": LiveMode.LIVE,
        "exchange": "binance",
        "api_key_env": "K",
        "api_secret_env": "S",
        "max_order_notional": 50_000.0,
        "ambiguous_settle_s": 0.5,
        "retry": RetryConfig(max_attempts=4, base_delay_s=0.01, max_delay_s=0.1),
        "circuit_breaker": CircuitBreakerConfig(failure_threshold=3, cooldown_s=30.0),
    }
    values.update(overrides)
    return LiveVenueConfig(**values)


class Clock:
    """Wall and monotonic time that only sleeping moves."""

    def __init__(self) -> None:
        self.now_s = 1_700_000_000.0
        self.sleeps: list[float] = []

    def now_ns(self) -> int:
        return round(self.now_s * 1e9)

    def monotonic(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


def make_broker(
    stub: StubExchange | None = None,
    *,
    clock: Clock | None = None,
    journal: OrderJournal | None = None,
    **overrides: Any,
) -> tuple[CcxtBroker, StubExchange, Clock]:
    stub = stub or StubExchange()
    clock = clock or Clock()
    venue = VenueConfig(name="BINANCE", live=live_config(**overrides))
    broker = CcxtBroker(
        venue,
        INSTRUMENTS,
        session_id="session-1",
        environ=ENV,
        journal=journal,
        exchange=stub,
        now_ns=clock.now_ns,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rand=lambda: 0.5,
    )
    return broker, stub, clock


_counter = 0


def submit(
    side: OrderSide = OrderSide.BUY,
    quantity: float = 0.1,
    limit_price: float | None = None,
    *,
    tif: TimeInForce = TimeInForce.GTC,
) -> SubmitOrder:
    """The next order of strategy "sma" (sma-000001, sma-000002, ...), as risk sends it."""
    global _counter
    _counter += 1
    return stubs.submit(
        side,
        quantity,
        client_order_id=f"sma-{_counter:06d}",
        strategy_id="sma",
        limit_price=limit_price,
        time_in_force=tif,
        tag="t",
        ts_ns=1,
    )


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(_call(factory))


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def kinds(messages: list[Message]) -> list[str]:
    return [type(m).__name__ for m in messages]


async def started(broker: CcxtBroker) -> CcxtBroker:
    await broker.start()
    broker.observe(bar(100.0, ts_ns=1, volume=10.0))
    return broker


# ------------------------------------------------------------------ construction


def test_broker_refuses_to_exist_without_the_live_gate() -> None:
    venue = VenueConfig(name="BINANCE", live=live_config())

    with pytest.raises(ConfigError, match="TRADEGRAPH_ENABLE_LIVE=1 is not set"):
        CcxtBroker(venue, INSTRUMENTS, session_id="s", environ={"K": "k", "S": "s"})


def test_live_mode_without_credentials_is_a_config_error_naming_the_variable() -> None:
    venue = VenueConfig(name="BINANCE", live=live_config())

    with pytest.raises(ConfigError, match="names the environment variable K, which is not set"):
        CcxtBroker(venue, INSTRUMENTS, session_id="s", environ={"TRADEGRAPH_ENABLE_LIVE": "1"})


def test_build_broker_runs_dry_run_and_says_why_without_the_gate() -> None:
    venue = VenueConfig(name="BINANCE", live=live_config())

    broker, mode, reason = build_broker(venue, INSTRUMENTS, session_id="s", environ={})

    assert isinstance(broker, DryRunBroker)
    assert mode is LiveMode.DRY_RUN
    assert "TRADEGRAPH_ENABLE_LIVE=1 is not set" in reason


def test_build_broker_sends_real_orders_only_with_every_condition() -> None:
    venue = VenueConfig(name="BINANCE", live=live_config())

    broker, mode, _ = build_broker(
        venue, INSTRUMENTS, session_id="s", environ=ENV, exchange=StubExchange()
    )

    assert isinstance(broker, CcxtBroker)
    assert mode is LiveMode.LIVE


def test_broker_repr_shows_no_credentials() -> None:
    broker, _, _ = make_broker()

    assert "key-abc-123" not in repr(broker)
    assert "secret-xyz-789" not in repr(broker)


# ------------------------------------------------------------------ happy path


def test_market_order_is_accepted_then_filled_once() -> None:
    async def scenario() -> tuple[list[Message], StubExchange, CcxtBroker]:
        broker, stub, _ = make_broker()
        await started(broker)
        out = await broker.submit(submit(quantity=0.1234))
        return out, stub, broker

    out, stub, broker = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderFilled"]
    accepted, fill = out
    assert isinstance(accepted, OrderAccepted)
    assert isinstance(fill, OrderFilled)
    assert accepted.venue_order_id == fill.venue_order_id == "1001"
    assert (fill.last_qty, fill.last_px, fill.leaves_qty) == (0.123, 100.0, 0.0)
    assert fill.fee == pytest.approx(0.123 * 100.0 * 0.001)
    assert fill.liquidity is LiquiditySide.TAKER
    assert fill.fill_id == "BINANCE-BTCUSDT-1"
    assert len(stub.create_calls) == 1
    [order] = broker.journal.orders.values()
    assert order.status is JournalStatus.FILLED


def test_limit_order_rests_and_cancel_reports_the_reason() -> None:
    async def scenario() -> tuple[list[Message], list[Message]]:
        broker, _, _ = make_broker()
        await started(broker)
        cmd = submit(limit_price=99.0)
        placed = await broker.submit(cmd)
        cancelled = await broker.cancel(cancel(cmd, "kill switch: test"))
        return placed, cancelled

    placed, cancelled = run(scenario)

    assert kinds(placed) == ["OrderAccepted"]
    [done] = cancelled
    assert isinstance(done, OrderCancelled)
    assert done.reason == "kill switch: test"


def test_ioc_limit_remainder_is_cancelled_as_the_sim_venue_does() -> None:
    async def scenario() -> list[Message]:
        broker, _, _ = make_broker()
        await started(broker)
        return await broker.submit(submit(limit_price=99.0, tif=TimeInForce.IOC))

    out = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderCancelled"]
    assert isinstance(out[1], OrderCancelled)
    assert out[1].reason == IOC_REMAINDER


def test_cancel_of_unknown_order_publishes_nothing() -> None:
    async def scenario() -> tuple[list[Message], int]:
        broker, _, _ = make_broker()
        await started(broker)
        out = await broker.cancel(cancel(submit()))
        return out, broker.ignored_cancels

    out, ignored = run(scenario)

    assert out == []
    assert ignored == 1


def test_redelivered_submit_never_creates_a_second_order() -> None:
    async def scenario() -> tuple[list[Message], list[Message], StubExchange]:
        broker, stub, _ = make_broker()
        await started(broker)
        cmd = submit()
        first = await broker.submit(cmd)
        again = await broker.submit(cmd)
        return first, again, stub

    first, again, stub = run(scenario)

    assert kinds(first) == ["OrderAccepted", "OrderFilled"]
    assert again == []
    assert len(stub.create_calls) == 1


# ------------------------------------------------------------------ pre-send checks


def test_order_above_the_hard_notional_cap_is_rejected_before_sending() -> None:
    async def scenario() -> tuple[list[Message], StubExchange]:
        broker, stub, _ = make_broker(max_order_notional=1_000.0)
        await started(broker)
        return await broker.submit(submit(quantity=20.0)), stub

    out, stub = run(scenario)

    [rejected] = out
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == (
        "max_order_notional: order notional 2000.00 exceeds the venue hard cap "
        "live.max_order_notional 1000.00"
    )
    assert stub.create_calls == []


def test_market_order_without_any_known_price_is_rejected() -> None:
    async def scenario() -> list[Message]:
        broker, _, _ = make_broker()
        await broker.start()
        return await broker.submit(submit())

    [rejected] = run(scenario)

    assert isinstance(rejected, OrderRejected)
    assert rejected.reason.startswith(f"{VenueReason.NO_PRICE}: no market price known")
    assert rejected.code is VenueReason.NO_PRICE


def test_order_below_venue_minimums_is_rejected_before_sending() -> None:
    async def scenario() -> tuple[list[Message], list[Message]]:
        broker, _, _ = make_broker()
        await started(broker)
        tiny = await broker.submit(submit(quantity=0.0004))
        small = await broker.submit(submit(quantity=0.01, limit_price=100.0))
        return tiny, small

    tiny, small = run(scenario)

    assert isinstance(tiny[0], OrderRejected)
    assert tiny[0].reason.startswith(f"{VenueReason.INVALID_ORDER}: ")
    assert tiny[0].code is VenueReason.INVALID_ORDER
    assert "precision" in tiny[0].reason
    assert isinstance(small[0], OrderRejected)
    assert small[0].reason == (
        "below_venue_minimum: order notional 1.00 is below the venue's minimum 5 for BTC/USDT"
    )


def test_venue_refusal_becomes_a_rejection_without_retry() -> None:
    async def scenario() -> tuple[list[Message], StubExchange]:
        broker, stub, _ = make_broker()
        stub.faults["create_order"] = [
            ccxt.InsufficientFunds("binance Account has insufficient balance")
        ]
        await started(broker)
        return await broker.submit(submit()), stub

    out, stub = run(scenario)

    [rejected] = out
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == (
        "insufficient_balance: InsufficientFunds: binance Account has insufficient balance"
    )
    assert len(stub.create_calls) == 1


# ------------------------------------------------------------------ ambiguity and faults


def test_timeout_after_the_venue_accepted_resolves_by_lookup_not_resubmission() -> None:
    async def scenario() -> tuple[list[Message], StubExchange, Clock]:
        broker, stub, clock = make_broker()
        stub.faults["create_order"] = [("after", ccxt.RequestTimeout("binance POST timed out"))]
        await started(broker)
        return await broker.submit(submit()), stub, clock

    out, stub, clock = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderFilled"]
    assert len(stub.create_calls) == 1
    assert len(stub.orders) == 1
    assert clock.sleeps == [0.5]  # the settle wait before trusting the lookup


def test_timeout_before_the_venue_saw_the_order_resends_the_same_client_id() -> None:
    async def scenario() -> tuple[list[Message], StubExchange]:
        broker, stub, _ = make_broker()
        stub.faults["create_order"] = [ccxt.RequestTimeout("binance POST timed out")]
        await started(broker)
        return await broker.submit(submit()), stub

    out, stub = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderFilled"]
    assert len(stub.create_calls) == 2
    assert stub.create_calls[0] == stub.create_calls[1]
    assert len(stub.orders) == 1


def test_rate_limit_backs_off_for_retry_after_and_resends() -> None:
    async def scenario() -> tuple[list[Message], StubExchange, Clock]:
        broker, stub, clock = make_broker()
        stub.faults["create_order"] = [ccxt.DDoSProtection("binance 429 Too Many Requests")]
        stub.last_response_headers = {"Retry-After": "3"}
        await started(broker)
        return await broker.submit(submit()), stub, clock

    out, stub, clock = run(scenario)

    # The ban is reported at once (Risk refuses new orders), and lifted by the resend.
    assert kinds(out) == [
        "VenueStatus",
        "VenueBanned",
        "VenueStatus",
        "OrderAccepted",
        "OrderFilled",
    ]
    assert [m.available for m in out if isinstance(m, VenueStatus)] == [False, True]
    assert clock.sleeps == [3.0]  # no lookup: a 429 proves nothing was placed
    assert stub.calls["fetch_order"] == 0
    assert len(stub.orders) == 1


def test_418_without_retry_after_bans_exponentially_from_the_floor() -> None:
    async def scenario() -> tuple[list[Message], Clock]:
        broker, stub, clock = make_broker(
            retry=RetryConfig(max_attempts=4, base_delay_s=0.01, max_delay_s=0.1, ban_floor_s=5.0)
        )
        stub.faults["create_order"] = [ccxt.DDoSProtection("binance 418 I'm a teapot")] * 2
        await started(broker)
        return await broker.submit(submit()), clock

    out, clock = run(scenario)

    assert kinds(out)[-2:] == ["OrderAccepted", "OrderFilled"]
    assert clock.sleeps == [5.0, 10.0]  # never a sub-second retry into a ban


def test_a_long_ban_rejects_the_submit_and_no_call_reaches_the_venue_until_it_ends() -> None:
    async def scenario() -> tuple[
        list[Message], list[Message], dict[str, int], Clock, list[Message]
    ]:
        broker, stub, clock = make_broker()
        await started(broker)
        resting = submit(limit_price=99.0)
        await broker.submit(resting)
        stub.faults["create_order"] = [ccxt.DDoSProtection("binance 418 banned")]
        stub.last_response_headers = {"Retry-After": "600"}
        banned = await broker.submit(submit())
        stub.last_response_headers = {}
        calls_at_ban = dict(stub.calls)
        await broker.poll()
        clock.now_s += 599.0
        refused = await broker.submit(submit())
        await broker.poll()
        calls_in_ban = {k: v - calls_at_ban.get(k, 0) for k, v in stub.calls.items()}
        clock.now_s += 1.0
        back = await broker.poll()
        return banned, refused, calls_in_ban, clock, back

    banned, refused, calls_in_ban, clock, back = run(scenario)

    assert kinds(banned) == ["VenueStatus", "VenueBanned", "OrderRejected"]
    assert isinstance(banned[0], VenueStatus)
    assert not banned[0].available
    assert "Retry-After: 600s" in banned[0].detail
    # Market data, in another actor, learns when the ban ends.
    assert isinstance(banned[1], VenueBanned)
    assert banned[1].source == "broker:BINANCE"
    assert banned[1].until_ns == banned[1].ts_event_ns + 600 * 10**9
    assert clock.sleeps == []  # a 600 s ban is not waited out inside a call
    assert isinstance(refused[0], OrderRejected)
    assert "banned" in refused[0].reason
    assert not any(calls_in_ban.values()), calls_in_ban  # nothing sent during the ban
    assert isinstance(back[0], VenueStatus)
    assert back[0].available


def test_a_ban_market_data_met_stops_every_call_until_it_ends() -> None:
    async def scenario() -> tuple[list[Message], dict[str, int], list[Message]]:
        broker, stub, clock = make_broker()
        await started(broker)
        await broker.submit(submit(limit_price=99.0))
        calls_at_ban = dict(stub.calls)
        broker.honour_ban(
            VenueBanned(
                venue="BINANCE",
                until_ns=clock.now_ns() + 60 * 10**9,
                source="md",
                detail="418",
                ts_event_ns=clock.now_ns(),
                ts_init_ns=clock.now_ns(),
            )
        )
        refused = await broker.submit(submit())
        await broker.poll()
        clock.now_s += 59.0
        await broker.poll()
        calls_in_ban = {k: v - calls_at_ban.get(k, 0) for k, v in stub.calls.items()}
        clock.now_s += 1.0
        back = await broker.poll()
        return refused, calls_in_ban, back

    refused, calls_in_ban, back = run(scenario)

    assert kinds(refused) == ["VenueStatus", "OrderRejected"]  # no VenueBanned echoed to md
    assert isinstance(refused[0], VenueStatus)
    assert not refused[0].available
    assert "met by md" in refused[0].detail
    assert not any(calls_in_ban.values()), calls_in_ban
    assert isinstance(back[0], VenueStatus)
    assert back[0].available


def test_duplicate_client_id_resolves_to_the_existing_order() -> None:
    async def scenario() -> tuple[list[Message], list[Message], StubExchange]:
        stub = StubExchange()
        broker, _, _ = make_broker(stub)
        await started(broker)
        cmd = submit(limit_price=99.0)
        first = await broker.submit(cmd)
        # Another broker of the same session (after a crash that lost the journal line).
        twin, _, _ = make_broker(stub)
        await started(twin)
        second = await twin.submit(cmd)
        return first, second, stub

    first, second, stub = run(scenario)

    assert kinds(first) == ["OrderAccepted"]
    assert kinds(second) == ["OrderAccepted"]
    assert first[0].venue_order_id == second[0].venue_order_id  # type: ignore[attr-defined]
    assert len(stub.orders) == 1


def test_clock_skew_resyncs_time_and_resends() -> None:
    async def scenario() -> tuple[list[Message], StubExchange]:
        broker, stub, _ = make_broker()
        stub.faults["create_order"] = [ccxt.InvalidNonce('binance {"code":-1021}')]
        await started(broker)
        syncs_before = stub.time_syncs
        out = await broker.submit(submit())
        stub.time_syncs -= syncs_before
        return out, stub

    out, stub = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderFilled"]
    assert stub.time_syncs == 1
    assert len(stub.orders) == 1


def test_unknown_outcome_stays_pending_and_poll_settles_it() -> None:
    async def scenario() -> tuple[list[Message], list[Message], StubExchange, CcxtBroker]:
        broker, stub, _ = make_broker(
            retry=RetryConfig(max_attempts=2, base_delay_s=0.01),
            circuit_breaker=CircuitBreakerConfig(failure_threshold=10),
        )
        await started(broker)
        # Accepted but the answer is lost; the resend is lost too; no lookup gets through.
        stub.faults["create_order"] = [
            ("after", ccxt.RequestTimeout("t")),
            ccxt.RequestTimeout("t"),
        ]
        stub.faults["fetch_order"] = [ccxt.ExchangeNotAvailable("down")] * 4
        first = await broker.submit(submit(limit_price=99.0))
        later = await broker.poll()
        return first, later, stub, broker

    first, later, stub, broker = run(scenario)

    assert first == []
    assert kinds(later) == ["OrderAccepted"]
    assert len(stub.orders) == 1
    [order] = broker.journal.orders.values()
    assert order.status is JournalStatus.OPEN


def test_order_that_never_arrived_is_rejected_by_poll_after_the_settle_time() -> None:
    async def scenario() -> tuple[list[Message], list[Message], StubExchange]:
        broker, stub, clock = make_broker(
            retry=RetryConfig(max_attempts=2, base_delay_s=0.01),
            circuit_breaker=CircuitBreakerConfig(failure_threshold=10),
        )
        await started(broker)
        stub.faults["create_order"] = [ccxt.RequestTimeout("t")] * 2
        stub.faults["fetch_order"] = [ccxt.ExchangeNotAvailable("down")] * 4
        first = await broker.submit(submit(limit_price=99.0))
        clock.now_s += 1.0
        later = await broker.poll()
        return first, later, stub

    first, later, stub = run(scenario)

    assert first == []
    [rejected] = later
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == "not_received: never reached the venue (not found by client id)"
    assert stub.orders == {}


def test_circuit_opens_after_repeated_failures_and_closes_when_the_venue_answers() -> None:
    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        broker, stub, clock = make_broker(
            retry=RetryConfig(max_attempts=3, base_delay_s=0.01),
            circuit_breaker=CircuitBreakerConfig(failure_threshold=3, cooldown_s=5.0),
        )
        await started(broker)
        stub.faults["create_order"] = [ccxt.InvalidNonce("-1021 outside recvWindow")] * 3
        down = await broker.submit(submit())
        refused = await broker.submit(submit())
        clock.now_s += 5.0
        back = await broker.submit(submit())
        return down, refused, back

    down, refused, back = run(scenario)

    assert kinds(down) == ["VenueStatus", "OrderRejected"]
    assert isinstance(down[0], VenueStatus)
    assert not down[0].available
    assert isinstance(refused[0], OrderRejected)
    assert "circuit breaker is open" in refused[0].reason
    assert kinds(back) == ["VenueStatus", "OrderAccepted", "OrderFilled"]
    assert isinstance(back[0], VenueStatus)
    assert back[0].available


# ------------------------------------------------------------------ streams


def test_fill_streamed_before_the_create_answer_keeps_accepted_first_and_counts_once() -> None:
    async def scenario() -> list[Message]:
        broker, stub, _ = make_broker()
        await started(broker)
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        order = stub.order_by_client_id(broker.journal.orders[cmd.client_order_id].venue_client_id)
        trade = stub.fill(order["clientOrderId"], 0.04)
        out: list[Message] = []
        stream = broker.watch()
        stub.trade_updates.put_nowait([trade])
        stub.trade_updates.put_nowait([trade])  # delivered twice
        stub.order_updates.put_nowait([stub._view(order)])
        out += await anext(stream)
        await asyncio.sleep(0)
        out += await broker.poll()
        await broker.close()
        await stream.aclose()
        return out

    out = run(scenario)

    fills = [m for m in out if isinstance(m, OrderFilled)]
    assert len(fills) == 1
    assert (fills[0].last_qty, fills[0].leaves_qty) == (0.04, 0.06)
    assert fills[0].liquidity is LiquiditySide.MAKER


def test_trade_for_an_order_whose_id_is_not_known_yet_waits_for_it() -> None:
    async def scenario() -> list[Message]:
        broker, _, _ = make_broker()
        await started(broker)
        # The stream reports a fill of venue order 1001 before create_order has answered.
        early = {"id": "77", "order": "1001", "amount": 0.1, "price": 99.0, "timestamp": 5}
        await broker._on_trades([early])
        streamed = broker._take()
        return streamed + await broker.submit(submit(limit_price=99.0))

    out = run(scenario)

    assert kinds(out) == ["OrderAccepted", "OrderFilled"]


def test_cancel_confirmed_with_fills_not_yet_seen_publishes_the_fills_first() -> None:
    async def scenario() -> list[Message]:
        broker, stub, _ = make_broker()
        await started(broker)
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        stub.fill(broker.journal.orders[cmd.client_order_id].venue_client_id, 0.03)
        return await broker.cancel(cancel(cmd))

    out = run(scenario)

    assert kinds(out) == ["OrderFilled", "OrderCancelled"]
    assert isinstance(out[1], OrderCancelled)
    assert out[1].reason == CANCEL_REQUESTED


def test_malformed_trade_is_skipped_and_counted() -> None:
    async def scenario() -> tuple[list[Message], int]:
        broker, _stub, _ = make_broker()
        await started(broker)
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        order = broker.journal.orders[cmd.client_order_id]
        bad = {"id": "9", "order": order.venue_order_id, "amount": float("nan"), "price": 99.0}
        await broker._on_trades([bad, "garbage"])
        return broker._take(), broker.malformed_updates

    out, malformed = run(scenario)

    assert out == []
    assert malformed == 2


# ------------------------------------------------------------------ reconciliation


def test_first_reconciliation_takes_the_balance_baseline() -> None:
    async def scenario() -> tuple[bool, dict[str, float] | None]:
        broker, _, _ = make_broker()
        await started(broker)
        report = await broker.reconcile()
        return report.ok, broker.journal.baseline_balances

    ok, baseline = run(scenario)

    assert ok
    assert baseline == {"BTC": 1.0, "USDT": 100_000.0}


def test_reconciliation_recovers_a_fill_made_while_the_broker_was_away() -> None:
    async def scenario() -> tuple[Any, StubExchange]:
        stub = StubExchange()
        broker, _, _ = make_broker(stub)
        await started(broker)
        await broker.reconcile()
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        state = broker.journal.snapshot()
        venue_client_id = broker.journal.orders[cmd.client_order_id].venue_client_id
        stub.fill(venue_client_id, 0.1, 99.0)  # while nobody listens
        restarted, _, _ = make_broker(stub)
        await restarted.start()
        return await restarted.reconcile(state), stub

    report, _stub = run(scenario)

    assert report.ok, report.summary()
    assert report.recovered_fills == 1
    [fill] = report.events
    assert isinstance(fill, OrderFilled)
    assert (fill.last_qty, fill.last_px, fill.leaves_qty) == (0.1, 99.0, 0.0)
    assert report.balances == pytest.approx(report.expected_balances)


def test_reconciliation_fails_closed_on_an_order_placed_outside_the_session() -> None:
    async def scenario() -> Any:
        stub = StubExchange()
        broker, _, _ = make_broker(stub)
        await started(broker)
        await stub.create_order("BTC/USDT", "limit", "buy", 0.1, 90.0, {"clientOrderId": "web_1"})
        return await broker.reconcile()

    report = run(scenario)

    assert not report.ok
    assert report.problems == (
        "BTC/USDT: open order 1001 (client id web_1, buy 0.1 @ 90.0) was placed outside "
        "this session",
    )
    assert "FAILED: trading must not start" in report.summary()


def test_reconciliation_fails_closed_on_an_unexplained_balance_change() -> None:
    async def scenario() -> Any:
        stub = StubExchange()
        broker, _, _ = make_broker(stub)
        await started(broker)
        await broker.reconcile()
        stub.balances["BTC"] -= 0.5  # a withdrawal
        return await broker.reconcile()

    report = run(scenario)

    assert not report.ok
    assert report.problems == (
        "BTC balance at the venue is 0.5 but the journal expects 1 (baseline 1 plus its "
        "fills); the difference -0.5 is not explained by any fill",
    )


def test_reconciliation_fails_closed_on_a_fill_nobody_in_the_session_made() -> None:
    async def scenario() -> Any:
        stub = StubExchange()
        broker, _, clock = make_broker(stub)
        await started(broker)
        stub.now_ms = clock.now_ns() // 1_000_000
        await broker.reconcile()
        await stub.create_order("BTC/USDT", "market", "buy", 0.1, None, {"clientOrderId": "web_2"})
        return await broker.reconcile()

    report = run(scenario)

    assert not report.ok
    assert any("is not in the journal: someone else traded" in p for p in report.problems)


def test_reconciliation_rejects_a_pending_order_the_venue_never_saw() -> None:
    async def scenario() -> Any:
        broker, stub, _ = make_broker(
            retry=RetryConfig(max_attempts=2, base_delay_s=0.01),
            circuit_breaker=CircuitBreakerConfig(failure_threshold=10),
        )
        await started(broker)
        stub.faults["create_order"] = [ccxt.RequestTimeout("t")] * 2
        stub.faults["fetch_order"] = [ccxt.ExchangeNotAvailable("down")] * 4
        await broker.submit(submit(limit_price=99.0))
        stub.faults.clear()
        return await broker.reconcile()

    report = run(scenario)

    assert report.ok, report.summary()
    [rejected] = report.events
    assert isinstance(rejected, OrderRejected)


def test_fee_taken_in_the_base_currency_comes_out_of_the_booked_quantity() -> None:
    async def scenario() -> list[Message]:
        broker, _, _ = make_broker()
        await started(broker)
        cmd = submit(limit_price=99.0)
        await broker.submit(cmd)
        order = broker.journal.orders[cmd.client_order_id]
        trade = {
            "id": "5",
            "order": order.venue_order_id,
            "amount": 0.1,
            "price": 99.0,
            "timestamp": 10,
            "takerOrMaker": "maker",
            "fee": {"cost": 0.0001, "currency": "BTC"},
        }
        await broker._on_trades([trade])
        return broker._take()

    [fill] = run(scenario)

    assert isinstance(fill, OrderFilled)
    assert fill.last_qty == pytest.approx(0.0999)
    assert fill.fee == pytest.approx(0.0001 * 99.0)
    assert fill.last_qty * fill.last_px + fill.fee == pytest.approx(0.1 * 99.0)
    assert fill.leaves_qty == 0.0


def test_a_clean_reconciliation_folds_old_finished_orders_into_the_baseline() -> None:
    async def scenario() -> tuple[Any, Any, CcxtBroker, StubExchange]:
        stub = StubExchange()
        broker, _, clock = make_broker(stub, journal_retention_s=3600.0)
        await started(broker)
        await broker.reconcile()
        await broker.submit(submit(quantity=0.2))  # a market buy: filled at once
        await broker.submit(submit(limit_price=90.0))  # rests
        assert len(broker.journal.fills) == 1
        clock.now_s += 7200.0
        stub.now_ms = clock.now_ns() // 1_000_000
        folding = await broker.reconcile()
        after = await broker.reconcile()
        return folding, after, broker, stub

    folding, after, broker, stub = run(scenario)

    assert folding.ok, folding.summary()
    assert after.ok, after.summary()
    # Only the resting order is left; the filled one and its fill are in the baseline now.
    assert [o.status for o in broker.journal.orders.values()] == [JournalStatus.OPEN]
    assert broker.journal.fills == {}
    assert broker.journal.baseline_balances == pytest.approx(
        {c: stub.balances[c] for c in ("BTC", "USDT")}
    )
    assert after.expected_balances == pytest.approx(after.balances)


def test_baseline_taken_after_fills_excludes_them_so_they_are_not_counted_twice() -> None:
    async def scenario() -> tuple[Any, dict[str, float] | None]:
        broker, _, _ = make_broker()
        await started(broker)
        await broker.submit(submit(quantity=0.2))  # fills before any reconciliation
        first = await broker.reconcile()
        second = await broker.reconcile()
        assert first.ok, first.summary()
        return second, broker.journal.baseline_balances

    second, baseline = run(scenario)

    assert second.ok, second.summary()
    assert baseline == pytest.approx({"BTC": 1.0, "USDT": 100_000.0})
