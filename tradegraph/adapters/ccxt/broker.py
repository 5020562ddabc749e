"""Live and dry-run brokers: the order path from the graph to a real exchange through ccxt.

Both speak the simulated venue's language (``SubmitOrder`` / ``CancelOrder`` in;
``OrderAccepted``, ``OrderRejected``, ``OrderCancelled``, ``OrderFilled`` out, with the same
meaning), so Risk, Portfolio and strategies cannot tell a live session from a backtest:

* every order is acknowledged (``OrderAccepted``) before any of its fills;
* each fill is published once (deduplicated by the venue's trade id), with ``leaves_qty`` the
  quantity still open; a fee the venue takes in the base currency comes out of ``last_qty``
  (see :func:`_booked_fill`), so positions and cash follow the account's balances;
* an order ends with exactly one of: its last fill (``leaves_qty == 0``), ``OrderCancelled``
  (after every fill the venue reported for it), or ``OrderRejected``;
* a ``CancelOrder`` for an unknown or finished order publishes nothing;
* a ``SubmitOrder`` whose client order id was seen before publishes nothing more (it can
  never create a second order).

The broker publishes nothing itself. Every public coroutine returns the messages the broker
produced since the previous return, from any source (the call itself, websocket updates,
the circuit breaker), in the order it produced them; :meth:`CcxtBroker.watch` yields them as
they come. The host publishes each batch as soon as it gets it, which keeps the order.

Recovery contract (live): an order is journaled before it is sent, with a client order id
derived from the session and the order id. A submit whose outcome is unknown (timeout,
dropped connection) is never resent blindly: after ``ambiguous_settle_s`` the order is looked
up by client order id, and only a venue that does not know it gets the same id again. If even
the lookup fails, the order stays ``pending`` in the journal and :meth:`CcxtBroker.poll`
settles it later. After a restart, :meth:`CcxtBroker.reconcile` compares the journal with the
venue (orders, fills, balances) and says whether trading may start.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import ccxt

from tradegraph.adapters.ccxt.client import (
    SecretScrubber,
    VenueError,
    create_exchange,
    load_credentials,
)
from tradegraph.adapters.ccxt.client_ids import ClientIdFactory, client_id_rule
from tradegraph.adapters.ccxt.order_journal import (
    JournalFill,
    JournalOrder,
    JournalStatus,
    OrderJournal,
)
from tradegraph.adapters.ccxt.retry import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Retrier,
    is_retryable,
    request_not_executed,
    retry_after_from_headers,
)
from tradegraph.config.models import LiveMode, LiveVenueConfig, VenueConfig, resolve_mode
from tradegraph.contracts import (
    Bar,
    CancelOrder,
    Instrument,
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderBookSnapshot,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderType,
    QuoteTick,
    SubmitOrder,
    TimeInForce,
    TradeTick,
    VenueBanned,
    VenueStatus,
    broker_id,
)
from tradegraph.errors import ConfigError
from tradegraph.execution.venue import CANCEL_REQUESTED, IOC_REMAINDER
from tradegraph.observability import get_logger

__all__ = [
    "DRY_RUN_NOT_SENT",
    "BrokerGateway",
    "CcxtBroker",
    "DryRunBroker",
    "ReconciliationReport",
    "build_broker",
]

T = TypeVar("T")

DRY_RUN_NOT_SENT = "dry-run: not sent to the venue"
"""``OrderCancelled.reason`` for a dry-run market or IOC order (it would have traded at once)."""

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_REL_TOL = 1e-9
_CANCELLED_STATUSES = frozenset({"canceled", "cancelled", "expired"})
_MAX_ORPHAN_ORDERS = 1_000
_TRADE_PAGE = 500
_MAX_TRADE_PAGES = 50
_PROBE_POLL_S = 0.02


@dataclass(frozen=True)
class ReconciliationReport:
    """What the venue and the journal agree and disagree on.

    Attributes:
        ok: Nothing unexplained: strategies may start. ``False``: halt (fail closed).
        problems: One sentence per unexplained difference.
        events: Messages to publish before anything else (fills found at the venue that the
            journal missed, orders that ended while the broker was away).
        open_orders: Orders open at the venue that the journal knows.
        recovered_fills: Fills found at the venue that the journal missed.
        balances: Venue balances (total) of the currencies this session trades.
        expected_balances: What the journal says they should be.
        mode: How the broker trades.
        ts_ns: When the venue was read (0: not known).
    """

    ok: bool
    problems: tuple[str, ...]
    events: tuple[Message, ...]
    open_orders: int
    recovered_fills: int
    balances: Mapping[str, float] = field(default_factory=dict)
    expected_balances: Mapping[str, float] = field(default_factory=dict)
    mode: LiveMode = LiveMode.LIVE
    ts_ns: int = 0

    def summary(self) -> str:
        """A few lines for the operator."""
        head = (
            f"reconciliation {'passed' if self.ok else 'FAILED: trading must not start'} "
            f"({self.mode.value}): {self.open_orders} open orders, "
            f"{self.recovered_fills} missed fills recovered"
        )
        lines = [head]
        lines += [f"  - {problem}" for problem in self.problems]
        for ccy in sorted(self.balances):
            expected = self.expected_balances.get(ccy)
            shown = "" if expected is None else f" (journal expects {expected:.10g})"
            lines.append(f"  {ccy}: {self.balances[ccy]:.10g}{shown}")
        return "\n".join(lines)


class BrokerGateway(Protocol):
    """What a broker host calls; :class:`CcxtBroker` and :class:`DryRunBroker` both are one."""

    venue: str
    component_id: str
    mode: LiveMode
    journal: OrderJournal

    async def start(self) -> list[Message]: ...

    async def submit(self, cmd: SubmitOrder) -> list[Message]: ...

    async def cancel(self, cmd: CancelOrder) -> list[Message]: ...

    async def cancel_all(self, reason: str) -> list[Message]: ...

    def refuse(self, cmd: SubmitOrder, reason: str) -> list[Message]: ...

    async def poll(self) -> list[Message]: ...

    def watch(self) -> AsyncIterator[list[Message]]: ...

    async def reconcile(
        self, journal_state: Mapping[str, Any] | None = None
    ) -> ReconciliationReport: ...

    def observe(self, msg: Message) -> None: ...

    def honour_ban(self, ban: VenueBanned) -> None: ...

    async def close(self) -> None: ...


def build_broker(
    venue: VenueConfig,
    instruments: Mapping[str, Instrument],
    *,
    session_id: str,
    environ: Mapping[str, str] | None = None,
    journal_path: str | Path | None = None,
    exchange: Any | None = None,
) -> tuple[CcxtBroker | DryRunBroker, LiveMode, str]:
    """The broker a paper-less session should use for ``venue``, and why.

    The mode comes from :func:`tradegraph.config.models.resolve_mode`: real orders only with
    ``mode: live``, ``TRADEGRAPH_ENABLE_LIVE=1`` and ``live.max_order_notional``; anything less
    is dry-run.

    Args:
        venue: The venue; ``venue.live`` must be set.
        instruments: Instruments keyed by id; those of other venues are ignored.
        session_id: Stable across restarts of one session, different between sessions.
        environ: Environment to read the gate and the credentials from (``os.environ``).
        journal_path: JSON-lines file of the order journal (loaded if it exists; written with
            ``fsync`` in live mode).
        exchange: A ccxt client to use instead of building one (tests).

    Raises:
        ConfigError: ``venue.live`` is missing, or its mode is paper (the simulated venue is
            the broker then), or live credentials are missing.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if venue.live is None:
        raise ConfigError(f"venues.{venue.name}.live is required for dry-run and live sessions")
    mode, reason = resolve_mode(venue.live, env)
    journal = (
        OrderJournal.load(journal_path, durable=mode is LiveMode.LIVE)
        if journal_path is not None
        else OrderJournal()
    )
    if mode is LiveMode.PAPER:
        raise ConfigError(
            f"venues.{venue.name}.live.mode is paper: the simulated venue is the broker"
        )
    if mode is LiveMode.DRY_RUN:
        return (
            DryRunBroker(venue, instruments, session_id=session_id, journal=journal, reason=reason),
            mode,
            reason,
        )
    broker = CcxtBroker(
        venue,
        instruments,
        session_id=session_id,
        environ=env,
        journal=journal,
        exchange=exchange,
    )
    return broker, mode, reason


# ---------------------------------------------------------------------------- shared parts


class _BrokerCore:
    """Journal, message production and pre-send checks shared by both brokers."""

    mode: LiveMode

    def __init__(
        self,
        venue: VenueConfig,
        live: LiveVenueConfig,
        instruments: Mapping[str, Instrument],
        *,
        session_id: str,
        journal: OrderJournal | None,
        now_ns: Callable[[], int],
    ) -> None:
        self.venue = venue.name
        self.component_id = broker_id(venue.name)
        self.live = live
        self.journal = journal if journal is not None else OrderJournal()
        self.ignored_cancels = 0
        self._now_ns = now_ns
        self._listings = {iid: i for iid, i in instruments.items() if i.venue == venue.name}
        self._ids = ClientIdFactory(session_id, client_id_rule(live.exchange))
        self._last_prices: dict[str, float] = {}
        self._emitted: list[Message] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self._log = get_logger(self.component_id, mode=self.mode.value)

    # ------------------------------------------------------------------ market data

    def observe(self, msg: Message) -> None:
        """Keep the last price of market data (for the notional cap of market orders)."""
        if type(msg) is Bar:
            self._last_prices[msg.instrument_id] = msg.close
        elif type(msg) is TradeTick:
            self._last_prices[msg.instrument_id] = msg.price
        elif type(msg) is QuoteTick:
            self._last_prices[msg.instrument_id] = msg.mid
        elif type(msg) is OrderBookSnapshot and msg.bids and msg.asks:
            self._last_prices[msg.instrument_id] = 0.5 * (msg.bids[0][0] + msg.asks[0][0])

    # ------------------------------------------------------------------ emission

    def honour_ban(self, ban: VenueBanned) -> None:
        """Another caller of the venue met a rate-limit ban (nothing to do without calls)."""
        return None

    def _emit(self, msg: Message) -> None:
        self._emitted.append(msg)
        self._wakeup.set()

    def _take(self) -> list[Message]:
        taken = self._emitted
        self._emitted = []
        return taken

    def _stamp(self) -> dict[str, int]:
        now = self._now_ns()
        return {"ts_event_ns": now, "ts_init_ns": now}

    def _fold_history(self) -> int:
        """Fold orders finished longer than the retention ago out of the journal.

        Call only after a reconciliation that found nothing wrong: their fills' balance
        changes join the baseline, so the balances expected at the venue stay what they were.
        """
        cutoff = self._now_ns() - int(self.live.journal_retention_s * 1e9)
        old = self.journal.finished_before(cutoff)
        if not old:
            return 0
        ids = {o.client_order_id for o in old}
        fills = [f for f in self.journal.fills.values() if f.client_order_id in ids]
        currencies = sorted({c for i in self._listings.values() for c in (i.base, i.quote)})
        self.journal.fold(ids, self._balance_moves(currencies, fills), cutoff)
        self._log.info("journal_folded", orders=len(ids), fills=len(fills), baseline_ns=cutoff)
        return len(ids)

    def _balance_moves(
        self, currencies: Iterable[str], fills: Iterable[JournalFill]
    ) -> dict[str, float]:
        """How ``fills`` moved each currency's balance (fees included)."""
        moved = dict.fromkeys(currencies, 0.0)
        for fill in fills:
            listing = self._listings.get(fill.instrument_id)
            if listing is None:
                continue
            sign = fill.side.sign
            moved[listing.base] = moved.get(listing.base, 0.0) + sign * fill.quantity
            moved[listing.quote] = moved.get(listing.quote, 0.0) - sign * fill.quantity * fill.price
            if fill.fee_currency:
                moved[fill.fee_currency] = moved.get(fill.fee_currency, 0.0) - fill.fee_cost
        return moved

    def _reject(self, order: JournalOrder, reason: str) -> None:
        order.status = JournalStatus.REJECTED
        order.detail = reason
        self.journal.record_order(order)
        self._log.warning("order_rejected", client_order_id=order.client_order_id, reason=reason)
        self._emit(
            OrderRejected(
                client_order_id=order.client_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
                reason=reason,
                **self._stamp(),
            )
        )

    def _ensure_accepted(self, order: JournalOrder) -> None:
        if order.accepted_emitted:
            return
        order.accepted_emitted = True
        if order.status is JournalStatus.PENDING:
            order.status = JournalStatus.OPEN
        self.journal.record_order(order)
        self._emit(
            OrderAccepted(
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
                **self._stamp(),
            )
        )

    def _finish_cancelled(self, order: JournalOrder, reason: str) -> None:
        if order.status.terminal:
            return
        order.status = JournalStatus.CANCELLED
        order.detail = reason
        self.journal.record_order(order)
        self._emit(
            OrderCancelled(
                client_order_id=order.client_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
                reason=reason,
                **self._stamp(),
            )
        )

    # ------------------------------------------------------------------ checks

    def _new_order(self, cmd: SubmitOrder, quantity: float, price: float | None) -> JournalOrder:
        listing = self._listings.get(cmd.instrument_id)
        return JournalOrder(
            client_order_id=cmd.client_order_id,
            venue_client_id=self._ids.make(cmd.client_order_id),
            strategy_id=cmd.strategy_id,
            instrument_id=cmd.instrument_id,
            symbol=listing.ccxt_symbol if listing is not None else "",
            side=cmd.side,
            order_type=cmd.order_type,
            quantity=quantity,
            limit_price=price,
            time_in_force=cmd.time_in_force,
            post_only=cmd.post_only,
            tag=cmd.tag,
            status=JournalStatus.PENDING,
            created_ns=self._now_ns(),
        )

    def _basic_problem(self, cmd: SubmitOrder) -> str | None:
        """Why ``cmd`` cannot be sent whatever the venue says, or ``None``."""
        if cmd.venue != self.venue or cmd.instrument_id not in self._listings:
            return f"unknown instrument {cmd.instrument_id!r} on venue {self.venue!r}"
        if not (math.isfinite(cmd.quantity) and cmd.quantity > 0.0):
            return f"quantity must be a finite number > 0, was {cmd.quantity!r}"
        if cmd.order_type is OrderType.LIMIT and (
            cmd.limit_price is None or not (math.isfinite(cmd.limit_price) and cmd.limit_price > 0)
        ):
            return f"a limit order needs a finite limit_price > 0, was {cmd.limit_price!r}"
        return None

    def _cap_problem(self, cmd: SubmitOrder, quantity: float, price: float | None) -> str | None:
        """Why the order breaks ``live.max_order_notional``, or ``None``."""
        cap = self.live.max_order_notional
        if cap is None:
            return None
        reference = price if price is not None else self._last_prices.get(cmd.instrument_id)
        if reference is None:
            return (
                f"no market price known for {cmd.instrument_id}, so the order cannot be "
                f"checked against live.max_order_notional {cap:g}"
            )
        notional = quantity * reference
        if notional > cap * (1.0 + _REL_TOL):
            return (
                f"order notional {notional:.2f} exceeds the venue hard cap "
                f"live.max_order_notional {cap:.2f}"
            )
        return None

    def refuse(self, cmd: SubmitOrder, reason: str) -> list[Message]:
        """Reject ``cmd`` without sending it (the kill switch tripped while it waited)."""
        if not self._duplicate(cmd):
            self._reject(self._new_order(cmd, cmd.quantity, cmd.limit_price), reason)
        return self._take()

    def _duplicate(self, cmd: SubmitOrder) -> bool:
        if cmd.client_order_id not in self.journal.orders:
            return False
        self._log.warning("duplicate_submit_ignored", client_order_id=cmd.client_order_id)
        return True

    async def _wait_closed(self) -> AsyncGenerator[list[Message], None]:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch = self._take()
            if batch:
                yield batch


# ---------------------------------------------------------------------------- dry run


class DryRunBroker(_BrokerCore):
    """Orders journaled and acknowledged locally, never sent.

    A limit GTC order rests (``OrderAccepted``) until cancelled; a market or IOC order, which
    would have traded at once, is accepted and then cancelled with :data:`DRY_RUN_NOT_SENT`.
    Nothing ever fills. Orders breaking ``live.max_order_notional`` (when set) are rejected as
    the live broker would.

    Args:
        venue: The venue; ``venue.live`` must be set.
        instruments: Instruments keyed by id; those of other venues are ignored.
        session_id: See :class:`CcxtBroker`.
        journal: Where orders are journaled.
        reason: Why the session runs dry-run (logged at start).
        now_ns: Wall clock in ns.
    """

    mode = LiveMode.DRY_RUN

    def __init__(
        self,
        venue: VenueConfig,
        instruments: Mapping[str, Instrument],
        *,
        session_id: str,
        journal: OrderJournal | None = None,
        reason: str = "",
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if venue.live is None:
            raise ConfigError(f"venues.{venue.name}.live is required for a dry-run session")
        super().__init__(
            venue, venue.live, instruments, session_id=session_id, journal=journal, now_ns=now_ns
        )
        self.reason = reason or "mode is dry-run"
        self._count = sum(1 for o in self.journal.orders.values() if o.venue_order_id)

    async def start(self) -> list[Message]:
        """Log that nothing will be sent."""
        self._log.warning("dry_run", reason=self.reason)
        return self._take()

    async def submit(self, cmd: SubmitOrder) -> list[Message]:
        """Journal and acknowledge ``cmd`` without sending it."""
        if self._duplicate(cmd):
            return self._take()
        problem = self._basic_problem(cmd) or self._cap_problem(cmd, cmd.quantity, cmd.limit_price)
        order = self._new_order(cmd, cmd.quantity, cmd.limit_price)
        if problem is not None:
            self._reject(order, problem)
            return self._take()
        self._count += 1
        order.venue_order_id = f"DRY-{self._count:08d}"
        self.journal.record_order(order)
        self._log.info(
            "dry_run_order",
            client_order_id=order.client_order_id,
            venue_client_id=order.venue_client_id,
            symbol=order.symbol,
            side=order.side.value,
            quantity=order.quantity,
            order_type=order.order_type.value,
            limit_price=order.limit_price,
        )
        self._ensure_accepted(order)
        if order.order_type is OrderType.MARKET or order.time_in_force is TimeInForce.IOC:
            self._finish_cancelled(order, DRY_RUN_NOT_SENT)
        return self._take()

    async def cancel(self, cmd: CancelOrder) -> list[Message]:
        """Cancel a resting dry-run order."""
        order = self.journal.orders.get(cmd.client_order_id)
        if order is None or order.status.terminal:
            self.ignored_cancels += 1
            return self._take()
        self._finish_cancelled(order, cmd.reason or CANCEL_REQUESTED)
        return self._take()

    async def cancel_all(self, reason: str) -> list[Message]:
        """Cancel every resting dry-run order."""
        for order in list(self.journal.active_orders()):
            self._finish_cancelled(order, reason)
        return self._take()

    async def poll(self) -> list[Message]:
        return self._take()

    async def watch(self) -> AsyncGenerator[list[Message], None]:
        """Yields nothing until :meth:`close` (dry-run orders never change by themselves)."""
        async for batch in self._wait_closed():
            yield batch

    async def reconcile(
        self, journal_state: Mapping[str, Any] | None = None
    ) -> ReconciliationReport:
        """Nothing to compare with: the venue never saw these orders."""
        if journal_state is not None:
            self.journal.restore(journal_state)
        self._fold_history()
        return ReconciliationReport(
            ok=True,
            problems=(),
            events=tuple(self._take()),
            open_orders=sum(1 for _ in self.journal.active_orders()),
            recovered_fills=0,
            mode=self.mode,
        )

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        self.journal.close()


# ---------------------------------------------------------------------------- live


class _Lookup(Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


class CcxtBroker(_BrokerCore):
    """Real orders on an exchange through a ccxt async client.

    Args:
        venue: The venue; ``venue.live`` must resolve to live mode (see
            :func:`~tradegraph.config.models.resolve_mode`).
        instruments: Instruments keyed by id; those of other venues are ignored. Each must be
            listed at the exchange as ``base/quote``.
        session_id: Stable across restarts of one session, different between sessions (client
            order ids derive from it).
        environ: Where the gate and the credentials are read (``os.environ``).
        journal: The order journal (a fresh in-memory one if not given).
        exchange: A ccxt async client to use instead of building one from the configuration.
        now_ns: Wall clock in ns (message timestamps).
        monotonic: Seconds from a monotonic clock (circuit breaker).
        sleep: Awaitable sleep (backoff and settle waits).
        rand: Uniform random numbers in ``[0, 1)`` (jitter).

    Raises:
        ConfigError: Not live mode, or credentials missing.
    """

    mode = LiveMode.LIVE

    def __init__(
        self,
        venue: VenueConfig,
        instruments: Mapping[str, Instrument],
        *,
        session_id: str,
        environ: Mapping[str, str] | None = None,
        journal: OrderJournal | None = None,
        exchange: Any | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        live = venue.live
        if live is None:
            raise ConfigError(f"venues.{venue.name}.live is required for a live session")
        env: Mapping[str, str] = os.environ if environ is None else environ
        mode, reason = resolve_mode(live, env)
        if mode is not LiveMode.LIVE:
            raise ConfigError(f"CcxtBroker sends real orders only in live mode: {reason}")
        credentials = load_credentials(live, env)
        if credentials is None:
            raise ConfigError(
                "live mode needs live.api_key_env and live.api_secret_env naming the "
                "environment variables that hold the API key and secret"
            )
        super().__init__(
            venue, live, instruments, session_id=session_id, journal=journal, now_ns=now_ns
        )
        self._scrubber = SecretScrubber.for_credentials(credentials)
        self._exchange: Any = (
            exchange
            if exchange is not None
            else create_exchange(live, credentials, self._scrubber, websockets=live.use_websockets)
        )
        del credentials
        self._backoff = Backoff(live.retry, sleep=sleep, rand=rand)
        self.breaker = CircuitBreaker.from_config(
            live.circuit_breaker,
            monotonic=monotonic,
            on_change=self._on_circuit_change,
            on_ban=self._on_ban,
        )
        self._retrier = Retrier(
            live.retry,
            self.breaker,
            backoff=self._backoff,
            retry_after=self._retry_after,
            describe=self._scrubber.describe,
            component=self.component_id,
        )
        self._in_submit: set[str] = set()
        self._orphan_trades: dict[str, list[Mapping[str, Any]]] = {}
        self._poll_now = asyncio.Event()
        self._ws_healthy = False
        self.malformed_updates = 0

    def __repr__(self) -> str:
        return f"CcxtBroker(venue={self.venue!r}, exchange={self.live.exchange!r})"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[Message]:
        """Load the venue's markets and synchronise with its clock.

        Raises:
            ConfigError: An instrument is not listed at the venue.
            VenueError: The venue cannot be reached.
        """
        exchange = self._exchange
        await self._call("load_markets", lambda: exchange.load_markets())
        missing = [
            f"{iid} ({inst.ccxt_symbol})"
            for iid, inst in self._listings.items()
            if inst.ccxt_symbol not in exchange.markets
        ]
        if missing:
            raise ConfigError(f"not listed at {self.live.exchange}: {', '.join(missing)}")
        await self._sync_clock()
        self._log.info(
            "broker_started", exchange=self.live.exchange, instruments=len(self._listings)
        )
        return self._take()

    async def close(self) -> None:
        """Stop :meth:`watch` and close the client. Open orders stay at the venue."""
        self._closed = True
        self._wakeup.set()
        self._poll_now.set()
        try:
            await self._exchange.close()
        except Exception as exc:  # closing must not fail the shutdown
            self._log.warning("close_failed", error=self._scrubber.describe(exc))
        self.journal.close()

    # ------------------------------------------------------------------ commands

    async def submit(self, cmd: SubmitOrder) -> list[Message]:
        """Place ``cmd`` at the venue (at most once) and return the resulting messages."""
        if self._duplicate(cmd):
            return self._take()
        problem = self._basic_problem(cmd)
        quantity, price = cmd.quantity, cmd.limit_price
        if problem is None:
            problem, quantity, price = self._venue_precision(cmd)
        if problem is None:
            problem = self._cap_problem(cmd, quantity, price)
        order = self._new_order(cmd, quantity, price)
        if problem is not None:
            self._reject(order, problem)
            return self._take()
        self.journal.record_order(order)
        self._in_submit.add(order.client_order_id)
        try:
            await self._place(order)
            if order.cancel_reason is not None and not order.status.terminal:
                await self._send_cancel(order)
        finally:
            self._in_submit.discard(order.client_order_id)
        return self._take()

    async def cancel(self, cmd: CancelOrder) -> list[Message]:
        """Cancel an open order; an unknown or finished one is ignored, as the sim venue does."""
        order = self.journal.orders.get(cmd.client_order_id)
        if order is None or order.status.terminal:
            self.ignored_cancels += 1
            return self._take()
        order.cancel_reason = cmd.reason or CANCEL_REQUESTED
        self.journal.record_order(order)
        if order.client_order_id not in self._in_submit:
            await self._send_cancel(order)
        # else: submit() sends the cancel as soon as the order's fate is known.
        return self._take()

    async def cancel_all(self, reason: str) -> list[Message]:
        """Cancel every active order of the session: the kill switch's road to the venue.

        One ``cancel_all_orders`` per symbol where the venue has it (Binance spot: ``DELETE
        /api/v3/openOrders``, which also takes an order whose submit answer has not come back
        yet), else one cancel per order. It may run while a submit waits for the venue; that
        submit cancels its order itself once the order's fate is known.

        During a rate-limit ban nothing is sent (a request would lengthen the ban): the call
        waits for the ban to end, then sends at once. Cancels that fail are retried by
        :meth:`poll` (each order keeps its ``cancel_reason``).

        ``cancel_all_orders`` cancels every open order on the symbol, this session's or not:
        give a live session an account (or sub-account) of its own.
        """
        active = list(self.journal.active_orders())
        for order in active:
            if order.cancel_reason is None:
                order.cancel_reason = reason
                self.journal.record_order(order)
        has = getattr(self._exchange, "has", {}) or {}
        for symbol in sorted({o.symbol for o in active}):
            orders = [o for o in active if o.symbol == symbol]
            await self._wait_out_ban()
            if not has.get("cancelAllOrders"):
                for order in orders:
                    if order.client_order_id not in self._in_submit and not order.status.terminal:
                        await self._send_cancel(order)
                continue
            try:
                infos = await self._call(
                    "cancel_all_orders", partial(self._exchange.cancel_all_orders, symbol)
                )
            except (VenueError, CircuitOpenError) as exc:
                self._poll_now.set()
                self._log.error("cancel_all_failed", symbol=symbol, error=str(exc))
                continue
            answered: set[str] = set()
            for info in infos or ():
                if not isinstance(info, Mapping):
                    continue
                known = self.journal.by_venue_order_id(str(info.get("id") or ""))
                if known is None or known.status.terminal:
                    continue
                answered.add(known.client_order_id)
                if info.get("status"):
                    await self._absorb(known, info, cancel_reason=known.cancel_reason)
                else:
                    await self._refresh(known)
            if any(o.client_order_id not in answered and not o.status.terminal for o in orders):
                self._poll_now.set()  # filled or gone meanwhile, or still being submitted
        return self._take()

    async def _wait_out_ban(self) -> None:
        """Sleep until the venue's rate-limit ban is over, and until another call's probe of
        the venue has its answer (no wait without a ban)."""
        logged = False
        while not self._closed:
            wait_s = self.breaker.ban_remaining_s()
            if wait_s <= 0.0 and not (self.breaker.probing and self.breaker.bans_in_a_row):
                return
            if not logged:
                self._log.warning("cancel_waits_for_ban", ban_s=round(wait_s, 3))
                logged = True
            await self._backoff.sleep(wait_s if wait_s > 0.0 else _PROBE_POLL_S)

    # ------------------------------------------------------------------ updates

    async def poll(self) -> list[Message]:
        """Bring every active order up to date from the venue over REST.

        Settles orders whose submit outcome was unknown, retries cancels that failed, and
        publishes fills and terminal states the websockets missed.
        """
        await self._poll_once()
        return self._take()

    async def watch(self) -> AsyncGenerator[list[Message], None]:
        """Yield batches of messages as order updates and fills arrive, until :meth:`close`.

        Uses ``watch_orders`` and ``watch_my_trades`` when the client has them (and
        ``live.use_websockets``), plus a REST :meth:`poll` every ``safety_poll_interval_s``;
        while the websockets fail, or without them, the poll runs every ``poll_interval_s``.
        """
        has = getattr(self._exchange, "has", {}) or {}
        websockets = bool(
            self.live.use_websockets and has.get("watchOrders") and has.get("watchMyTrades")
        )
        tasks: list[asyncio.Task[None]] = []
        if websockets:
            tasks.append(
                asyncio.create_task(
                    self._watch_loop("watch_orders", self._exchange.watch_orders, self._on_orders)
                )
            )
            tasks.append(
                asyncio.create_task(
                    self._watch_loop(
                        "watch_my_trades", self._exchange.watch_my_trades, self._on_trades
                    )
                )
            )
        tasks.append(asyncio.create_task(self._poll_loop(websockets)))
        try:
            async for batch in self._wait_closed():
                yield batch
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ reconciliation

    async def reconcile(
        self, journal_state: Mapping[str, Any] | None = None
    ) -> ReconciliationReport:
        """Compare the journal with the venue: orders, fills, balances.

        Orders the journal has are looked up by client order id and brought up to date (their
        missed fills and terminal states become ``events``); an order still ``pending`` that
        the venue does not know is rejected (it never arrived). Unexplained, and reported as
        problems (``ok=False``): an open order at the venue on our symbols that the journal
        does not have; a fill since the balance baseline on an order the journal does not
        have; an order the journal holds open that the venue does not know; a balance of a
        traded currency that differs from the baseline plus the journal's fills. The first
        reconciliation of a journal (no baseline yet) records the venue balances as the
        baseline, if nothing else is wrong.

        Args:
            journal_state: A journal :meth:`~OrderJournal.snapshot` to restore first (when the
                host keeps the journal rather than a file).
        """
        if journal_state is not None:
            self.journal.restore(journal_state)
        problems: list[str] = []
        fills_before = len(self.journal.fills)
        try:
            await self._reconcile_orders(problems)
            if self.journal.baseline_balances is not None:
                await self._reconcile_fills(problems)
            balances, expected = await self._reconcile_balances(problems)
        except (VenueError, CircuitOpenError) as exc:
            problems.append(f"the venue could not be read: {exc}")
            balances, expected = {}, {}
        open_orders = sum(1 for o in self.journal.orders.values() if o.status is JournalStatus.OPEN)
        report = ReconciliationReport(
            ok=not problems,
            problems=tuple(problems),
            events=tuple(self._take()),
            open_orders=open_orders,
            recovered_fills=len(self.journal.fills) - fills_before,
            balances=balances,
            expected_balances=expected,
            mode=self.mode,
            ts_ns=self._now_ns(),
        )
        log = self._log.info if report.ok else self._log.error
        log("reconciled", ok=report.ok, problems=list(report.problems), summary=report.summary())
        if report.ok and self.journal.baseline_balances is not None:
            self._fold_history()
        return report

    async def _reconcile_orders(self, problems: list[str]) -> None:
        for order in list(self.journal.active_orders()):
            outcome = await self._refresh(order)
            if outcome is _Lookup.NOT_FOUND:
                if order.status is JournalStatus.PENDING:
                    self._reject(order, "never reached the venue (not found after a restart)")
                else:
                    problems.append(
                        f"order {order.client_order_id} (venue client id "
                        f"{order.venue_client_id}) is open in the journal but unknown at the venue"
                    )
            elif outcome is _Lookup.UNKNOWN:
                problems.append(f"order {order.client_order_id} could not be looked up")
        # An earlier session's order still working at the venue has no owner here: nothing
        # would count it in the limits, cancel it on a kill, or book its fills (fail closed).
        orphans = [
            o
            for o in self.journal.active_orders()
            if o.status is JournalStatus.OPEN and not self._ids.is_ours(o.venue_client_id)
        ]
        if orphans:
            listed = "; ".join(
                f"{o.client_order_id} ({o.symbol} {o.side.value} {o.leaves_qty:g} @ "
                f"{o.limit_price}, venue client id {o.venue_client_id})"
                for o in orphans
            )
            problems.append(
                f"{len(orphans)} order(s) of an earlier session are still open at the venue "
                f"and no strategy of this session owns them: {listed}; resume that session "
                "(--resume) or cancel them at the venue"
            )
        exchange = self._exchange
        for symbol in self._symbols():
            infos = await self._call(
                "fetch_open_orders", partial(exchange.fetch_open_orders, symbol)
            )
            for info in infos or []:
                client_id = info.get("clientOrderId")
                known = self.journal.by_venue_client_id(str(client_id)) if client_id else None
                if known is None:
                    origin = (
                        "by this session but is missing from its journal"
                        if self._ids.is_ours(client_id)
                        else "outside this session"
                    )
                    problems.append(
                        f"{symbol}: open order {info.get('id')} (client id {client_id}, "
                        f"{info.get('side')} {info.get('amount')} @ {info.get('price')}) was "
                        f"placed {origin}"
                    )
                elif known.status.terminal:
                    problems.append(
                        f"{symbol}: order {known.client_order_id} is {known.status.value} in "
                        "the journal but open at the venue"
                    )

    async def _reconcile_fills(self, problems: list[str]) -> None:
        since_ms = self.journal.baseline_ns // _NS_PER_MS
        for symbol in self._symbols():
            for trade in await self._fetch_trades(symbol, since_ms):
                order = self.journal.by_venue_order_id(str(trade.get("order") or ""))
                if order is None:
                    problems.append(
                        f"{symbol}: fill {trade.get('id')} of order {trade.get('order')} "
                        f"({trade.get('side')} {trade.get('amount')} @ {trade.get('price')}) "
                        "is not in the journal: someone else traded on this account"
                    )
                    continue
                self._apply_trade(order, trade)

    async def _reconcile_balances(
        self, problems: list[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        exchange = self._exchange
        balance = await self._call("fetch_balance", lambda: exchange.fetch_balance())
        totals = balance.get("total") or {}
        currencies = sorted({c for i in self._listings.values() for c in (i.base, i.quote)})
        actual = {ccy: _number(totals.get(ccy)) or 0.0 for ccy in currencies}
        moved = self._balance_moves(currencies, self.journal.fills.values())
        baseline = self.journal.baseline_balances
        if baseline is None:
            if not problems:
                # What the account held before any fill the journal knows of.
                start = {ccy: actual[ccy] - moved[ccy] for ccy in currencies}
                created = [o.created_ns for o in self.journal.orders.values() if o.created_ns]
                self.journal.set_baseline(start, min(created, default=self._now_ns()))
            return actual, dict(actual)
        expected = {ccy: float(baseline.get(ccy, 0.0)) + moved[ccy] for ccy in currencies}
        for ccy in currencies:
            diff = actual[ccy] - expected[ccy]
            slack = self.live.balance_tolerance + _REL_TOL * max(
                abs(actual[ccy]), abs(expected[ccy])
            )
            if abs(diff) > slack:
                problems.append(
                    f"{ccy} balance at the venue is {actual[ccy]:.10g} but the journal expects "
                    f"{expected[ccy]:.10g} (baseline {baseline.get(ccy, 0.0):.10g} plus its "
                    f"fills); the difference {diff:+.10g} is not explained by any fill"
                )
        return actual, {ccy: expected[ccy] for ccy in currencies}

    # ------------------------------------------------------------------ placing

    def _venue_precision(self, cmd: SubmitOrder) -> tuple[str | None, float, float | None]:
        """Quantity and price at the venue's precision, or why the order cannot be placed."""
        exchange = self._exchange
        listing = self._listings[cmd.instrument_id]
        symbol = listing.ccxt_symbol
        market = exchange.markets.get(symbol) if exchange.markets else None
        if market is None:
            return f"{symbol} is not listed at {self.live.exchange}", cmd.quantity, None
        try:
            quantity = float(exchange.amount_to_precision(symbol, cmd.quantity))
            price = (
                None
                if cmd.limit_price is None
                else float(exchange.price_to_precision(symbol, cmd.limit_price))
            )
        except (ccxt.BaseError, ValueError, TypeError) as exc:
            return (
                f"quantity {cmd.quantity:g} or price {cmd.limit_price} does not fit the venue's "
                f"precision for {symbol}: {self._scrubber.describe(exc)}",
                cmd.quantity,
                cmd.limit_price,
            )
        limits = market.get("limits") or {}
        min_amount = _number((limits.get("amount") or {}).get("min"))
        if quantity <= 0.0 or (min_amount is not None and quantity < min_amount * (1 - _REL_TOL)):
            return (
                f"quantity {quantity:g} is below the venue's minimum {min_amount} for {symbol}",
                quantity,
                price,
            )
        min_cost = _number((limits.get("cost") or {}).get("min"))
        reference = price if price is not None else self._last_prices.get(cmd.instrument_id)
        if min_cost is not None and reference is not None:
            notional = quantity * reference
            if notional < min_cost * (1 - _REL_TOL):
                return (
                    f"order notional {notional:.2f} is below the venue's minimum {min_cost:g} "
                    f"for {symbol}",
                    quantity,
                    price,
                )
        return None, quantity, price

    def _order_params(self, order: JournalOrder) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": order.venue_client_id}
        if order.order_type is OrderType.LIMIT:
            if order.post_only:
                # A maker-only order takes no time in force (Binance: LIMIT_MAKER).
                params["postOnly"] = True
            else:
                params["timeInForce"] = "IOC" if order.time_in_force is TimeInForce.IOC else "GTC"
        return params

    async def _place(self, order: JournalOrder) -> None:
        """Send ``order`` until it is placed, refused, or its fate is left to :meth:`poll`."""
        exchange = self._exchange
        params = self._order_params(order)
        attempt = 0
        unsettled = False  # a send went out whose outcome nobody could establish
        while True:
            try:
                self._retrier.check_circuit("create_order")
            except CircuitOpenError as exc:
                if unsettled:
                    self._leave_pending(order, str(exc))
                else:
                    self._reject(order, str(exc))
                return
            order.last_sent_ns = self._now_ns()
            self.journal.record_order(order)
            try:
                info = await exchange.create_order(
                    order.symbol,
                    order.order_type.value,
                    order.side.value,
                    order.quantity,
                    order.limit_price,
                    params,
                )
            except ccxt.BaseError as exc:
                self._retrier.record(exc)
                error = exc
            else:
                self._retrier.record(None)
                await self._absorb(order, info)
                return
            if _is_duplicate(error):
                # The venue already holds an order with this client id: it is ours.
                self._log.warning(
                    "duplicate_client_order_id",
                    client_order_id=order.client_order_id,
                    venue_client_id=order.venue_client_id,
                )
                outcome = await self._refresh(order)
                if outcome is _Lookup.FOUND:
                    return
                unsettled = True
            elif not is_retryable(error):
                self._reject(order, self._scrubber.describe(error))
                return
            elif request_not_executed(error):
                if isinstance(error, ccxt.InvalidNonce):
                    await self._sync_clock()
            else:
                self._log.warning(
                    "submit_outcome_unknown",
                    client_order_id=order.client_order_id,
                    venue_client_id=order.venue_client_id,
                    error=self._scrubber.describe(error),
                    settle_s=self.live.ambiguous_settle_s,
                )
                await self._backoff.sleep(self.live.ambiguous_settle_s)
                outcome = await self._refresh(order)
                self._log.info(
                    "submit_outcome_looked_up",
                    client_order_id=order.client_order_id,
                    outcome=outcome.value,
                )
                if outcome is _Lookup.FOUND:
                    return
                unsettled = outcome is _Lookup.UNKNOWN
            attempt += 1
            if attempt >= self.live.retry.max_attempts:
                reason = f"not placed after {attempt} attempts: {self._scrubber.describe(error)}"
                if unsettled:
                    self._leave_pending(order, reason)
                else:
                    self._reject(order, reason)
                return
            await self._retrier.pause("create_order", attempt - 1, error)
            # (a ban longer than max_ban_wait_s is not waited out: the circuit refuses the
            # next try at once, and the order is rejected as never sent.)

    def _leave_pending(self, order: JournalOrder, why: str) -> None:
        order.detail = why
        self.journal.record_order(order)
        self._poll_now.set()
        self._log.error(
            "order_outcome_unknown",
            client_order_id=order.client_order_id,
            venue_client_id=order.venue_client_id,
            detail=why,
        )

    async def _send_cancel(self, order: JournalOrder) -> None:
        reason = order.cancel_reason or CANCEL_REQUESTED
        try:
            info = await self._order_call("cancel_order", order)
        except ccxt.OrderNotFound:
            # Filled, already cancelled, or not at the venue yet: ask what it is.
            await self._refresh(order)
            return
        except (ccxt.BaseError, CircuitOpenError) as exc:
            self._poll_now.set()
            self._log.error(
                "cancel_failed",
                client_order_id=order.client_order_id,
                error=self._scrubber.describe(exc),
            )
            return
        if isinstance(info, Mapping) and not info.get("status"):
            # Some venues acknowledge a cancel without the order's state: look it up.
            await self._refresh(order)
            return
        await self._absorb(order, info, cancel_reason=reason)

    async def _order_call(self, method: str, order: JournalOrder) -> Any:
        """``exchange.<method>(venue order id, symbol, client id)`` for ``order``, through the
        retrier (``cancel_order``, ``fetch_order``)."""
        call = getattr(self._exchange, method)
        return await self._retrier.call(
            method,
            lambda: call(
                order.venue_order_id or None,
                order.symbol,
                {"clientOrderId": order.venue_client_id},
            ),
            on_retryable=self._on_retryable,
        )

    # ------------------------------------------------------------------ venue state

    async def _refresh(self, order: JournalOrder) -> _Lookup:
        """Look ``order`` up by client order id and absorb what the venue says."""
        try:
            info = await self._order_call("fetch_order", order)
        except ccxt.OrderNotFound:
            return _Lookup.NOT_FOUND
        except (ccxt.BaseError, CircuitOpenError) as exc:
            self._log.warning(
                "order_lookup_failed",
                client_order_id=order.client_order_id,
                error=self._scrubber.describe(exc),
            )
            return _Lookup.UNKNOWN
        if not info:
            return _Lookup.NOT_FOUND
        await self._absorb(order, info)
        return _Lookup.FOUND

    async def _absorb(
        self, order: JournalOrder, info: Mapping[str, Any], *, cancel_reason: str | None = None
    ) -> None:
        """Bring ``order`` in line with the venue's view of it (a ccxt order structure)."""
        venue_order_id = info.get("id")
        if venue_order_id and not order.venue_order_id:
            order.venue_order_id = str(venue_order_id)
            self.journal.record_order(order)
        status = info.get("status")
        if status == "rejected":
            if not order.status.terminal:
                raw = info.get("info")
                reason = raw.get("rejectReason") if isinstance(raw, Mapping) else None
                self._reject(order, str(reason or "rejected by the venue"))
            return
        if order.status is JournalStatus.REJECTED:
            return
        self._ensure_accepted(order)
        for trade in info.get("trades") or ():
            self._apply_trade(order, trade)
        self._adopt_orphans(order)
        filled = _number(info.get("filled"))
        tolerance = self._tolerance(order)
        if filled is not None and filled > order.filled_qty + tolerance:
            await self._fetch_order_trades(order)
        complete = filled is None or filled <= order.filled_qty + tolerance
        if status in _CANCELLED_STATUSES:
            if complete:
                self._finish_cancelled(order, self._cancel_reason(order, status, cancel_reason))
            else:
                self._poll_now.set()  # its last fills are not visible yet
        elif status == "closed" and not complete:
            self._poll_now.set()

    def _cancel_reason(self, order: JournalOrder, status: str, given: str | None) -> str:
        if given is not None or order.cancel_reason is not None:
            return given or order.cancel_reason or CANCEL_REQUESTED
        if order.time_in_force is TimeInForce.IOC or order.order_type is OrderType.MARKET:
            return IOC_REMAINDER
        return f"{status} at the venue"

    def _apply_trade(self, order: JournalOrder, trade: Mapping[str, Any]) -> None:
        """Publish one venue trade of ``order`` as an ``OrderFilled``, once."""
        trade_id = trade.get("id")
        quantity = _number(trade.get("amount"))
        price = _number(trade.get("price"))
        if not trade_id or quantity is None or price is None or quantity <= 0 or price <= 0:
            self.malformed_updates += 1
            self._log.warning(
                "malformed_fill_skipped",
                client_order_id=order.client_order_id,
                trade_id=trade_id,
                amount=trade.get("amount"),
                price=trade.get("price"),
            )
            self._poll_now.set()
            return
        listing = self._listings[order.instrument_id]
        market_id = self._market_id(order.symbol)
        fill_id = f"{self.venue}-{market_id}-{trade_id}"
        if fill_id in self.journal.fills:
            return
        fee_cost, fee_currency = _fee(trade)
        last_qty, fee = _booked_fill(quantity, price, fee_cost, fee_currency, listing)
        timestamp = _number(trade.get("timestamp"))
        ts_event = round(timestamp * _NS_PER_MS) if timestamp is not None else self._now_ns()
        self._ensure_accepted(order)
        order.filled_qty = round(order.filled_qty + quantity, 12)
        if order.filled_qty > order.quantity + self._tolerance(order):
            self._log.error(
                "overfill",
                client_order_id=order.client_order_id,
                filled=order.filled_qty,
                quantity=order.quantity,
            )
        leaves = order.leaves_qty
        if leaves <= self._tolerance(order):
            leaves = 0.0
            order.status = JournalStatus.FILLED
        self.journal.record_fill(
            JournalFill(
                fill_id=fill_id,
                client_order_id=order.client_order_id,
                instrument_id=order.instrument_id,
                side=order.side,
                quantity=quantity,
                price=price,
                fee=fee,
                fee_cost=fee_cost,
                fee_currency=fee_currency,
                ts_ns=ts_event,
            )
        )
        self.journal.record_order(order)
        liquidity = (
            LiquiditySide.MAKER if trade.get("takerOrMaker") == "maker" else LiquiditySide.TAKER
        )
        self._emit(
            OrderFilled(
                fill_id=fill_id,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
                side=order.side,
                last_qty=last_qty,
                last_px=price,
                fee=fee,
                liquidity=liquidity,
                leaves_qty=leaves,
                tag=order.tag,
                ts_event_ns=ts_event,
                ts_init_ns=self._now_ns(),
            )
        )

    def _adopt_orphans(self, order: JournalOrder) -> None:
        """Apply trades that arrived before the order's venue id was known."""
        if order.venue_order_id:
            for trade in self._orphan_trades.pop(order.venue_order_id, ()):
                self._apply_trade(order, trade)

    async def _fetch_order_trades(self, order: JournalOrder) -> None:
        since_ms = order.created_ns // _NS_PER_MS - 60_000
        try:
            trades = await self._fetch_trades(order.symbol, since_ms)
        except (VenueError, CircuitOpenError) as exc:
            self._poll_now.set()
            self._log.warning(
                "order_trades_unavailable", client_order_id=order.client_order_id, error=str(exc)
            )
            return
        for trade in trades:
            if str(trade.get("order")) == order.venue_order_id:
                self._apply_trade(order, trade)

    async def _fetch_trades(self, symbol: str, since_ms: int) -> list[Mapping[str, Any]]:
        """Our trades on ``symbol`` since ``since_ms``, page by page."""
        exchange = self._exchange
        seen: set[str] = set()
        out: list[Mapping[str, Any]] = []
        since = since_ms
        for _ in range(_MAX_TRADE_PAGES):
            page = await self._call(
                "fetch_my_trades",
                partial(exchange.fetch_my_trades, symbol, since, _TRADE_PAGE),
            )
            fresh = [t for t in page or [] if str(t.get("id")) not in seen]
            for trade in fresh:
                seen.add(str(trade.get("id")))
                out.append(trade)
            if len(page or []) < _TRADE_PAGE or not fresh:
                break
            since = max(int(_number(t.get("timestamp")) or since) for t in fresh)
        return out

    async def _poll_once(self) -> None:
        exchange = self._exchange
        active = [
            o for o in self.journal.active_orders() if o.client_order_id not in self._in_submit
        ]
        by_symbol: dict[str, list[JournalOrder]] = {}
        for order in active:
            by_symbol.setdefault(order.symbol, []).append(order)
        settle_ns = round(self.live.ambiguous_settle_s * _NS_PER_S)
        for symbol, orders in by_symbol.items():
            try:
                infos = await self._call(
                    "fetch_open_orders", partial(exchange.fetch_open_orders, symbol)
                )
            except (VenueError, CircuitOpenError) as exc:
                self._log.warning("poll_failed", symbol=symbol, error=str(exc))
                continue
            open_by_client_id = {str(i.get("clientOrderId")): i for i in infos or []}
            for order in orders:
                if order.status.terminal or order.client_order_id in self._in_submit:
                    continue
                info = open_by_client_id.get(order.venue_client_id)
                if info is not None:
                    await self._absorb(order, info)
                elif order.status is JournalStatus.PENDING and (
                    self._now_ns() - order.last_sent_ns < settle_ns
                ):
                    continue  # a send may still be on its way
                else:
                    outcome = await self._refresh(order)
                    if outcome is _Lookup.NOT_FOUND and order.status is JournalStatus.PENDING:
                        self._reject(order, "never reached the venue (not found by client id)")
                    elif outcome is _Lookup.NOT_FOUND:
                        self._log.error(
                            "open_order_unknown_at_venue", client_order_id=order.client_order_id
                        )
                if order.cancel_reason is not None and not order.status.terminal:
                    await self._send_cancel(order)

    # ------------------------------------------------------------------ websockets

    async def _watch_loop(
        self,
        name: str,
        fn: Callable[[], Awaitable[Any]],
        handler: Callable[[Any], Awaitable[None]],
    ) -> None:
        failures = 0
        while not self._closed:
            try:
                items = await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any stream failure: back off, reconnect, poll meanwhile
                failures += 1
                self._ws_healthy = False
                self._poll_now.set()
                self._log.warning(
                    "stream_failed",
                    stream=name,
                    failures=failures,
                    error=self._scrubber.describe(exc),
                )
                await self._backoff.wait(min(failures - 1, 8))
                continue
            if failures:
                self._poll_now.set()  # what happened while the stream was down
            failures = 0
            self._ws_healthy = True
            try:
                await handler(items)
            except (VenueError, CircuitOpenError) as exc:
                self._log.warning("stream_update_failed", stream=name, error=str(exc))

    async def _poll_loop(self, websockets: bool) -> None:
        while not self._closed:
            interval = (
                self.live.safety_poll_interval_s
                if websockets and self._ws_healthy
                else self.live.poll_interval_s
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), timeout=interval)
            self._poll_now.clear()
            if self._closed:
                return
            try:
                await self._probe()
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a poll that fails is tried again next period
                self._log.warning("poll_failed", error=self._scrubber.describe(exc))

    async def _probe(self) -> None:
        """While the circuit is open, ask the venue something cheap once it lets a call through
        (the cool-down or ban is over), so an idle session learns that the venue is back."""
        symbols = self._symbols()
        if self.breaker.state is CircuitState.CLOSED or not symbols:
            return
        exchange = self._exchange
        with contextlib.suppress(VenueError, CircuitOpenError):
            await self._call("fetch_open_orders", partial(exchange.fetch_open_orders, symbols[0]))

    async def _on_orders(self, infos: Any) -> None:
        for info in infos or ():
            if not isinstance(info, Mapping):
                self.malformed_updates += 1
                continue
            client_id = info.get("clientOrderId")
            order = self.journal.by_venue_client_id(str(client_id)) if client_id else None
            if order is None and info.get("id"):
                order = self.journal.by_venue_order_id(str(info["id"]))
            if order is None:
                continue  # not ours (another session or a manual order)
            if order.status is JournalStatus.REJECTED:
                continue
            await self._absorb(order, info)

    async def _on_trades(self, trades: Any) -> None:
        for trade in trades or ():
            if not isinstance(trade, Mapping):
                self.malformed_updates += 1
                continue
            venue_order_id = str(trade.get("order") or "")
            order = self.journal.by_venue_order_id(venue_order_id) if venue_order_id else None
            if order is not None:
                self._apply_trade(order, trade)
            elif venue_order_id and len(self._orphan_trades) < _MAX_ORPHAN_ORDERS:
                # Possibly an order whose create_order answer has not come back yet.
                self._orphan_trades.setdefault(venue_order_id, []).append(trade)

    # ------------------------------------------------------------------ helpers

    async def _call(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A retried venue call whose ccxt errors come out as scrubbed ``VenueError``."""
        try:
            return await self._retrier.call(operation, fn, on_retryable=self._on_retryable)
        except ccxt.BaseError as exc:
            raise VenueError.from_ccxt(exc, self._scrubber, operation) from None

    async def _on_retryable(self, exc: BaseException) -> None:
        if isinstance(exc, ccxt.InvalidNonce):
            await self._sync_clock()

    async def _sync_clock(self) -> None:
        """Measure the offset to the venue's clock (ccxt signs requests with it)."""
        exchange = self._exchange
        if not (getattr(exchange, "has", {}) or {}).get("fetchTime"):
            return
        try:
            offset_ms = await exchange.load_time_difference()
        except ccxt.BaseError as exc:
            self._log.warning("clock_sync_failed", error=self._scrubber.describe(exc))
            return
        self._log.info("clock_synced", offset_ms=offset_ms)

    def _retry_after(self, exc: BaseException) -> float | None:
        headers = getattr(self._exchange, "last_response_headers", None)
        return retry_after_from_headers(headers, self._now_ns() / _NS_PER_S)

    def _on_circuit_change(self, state: CircuitState, detail: str) -> None:
        if state is CircuitState.HALF_OPEN:
            self._log.info("circuit_half_open", detail=detail)
            return
        available = state is CircuitState.CLOSED
        log = self._log.info if available else self._log.error
        log("venue_status", available=available, detail=detail)
        self._emit(
            VenueStatus(venue=self.venue, available=available, detail=detail, **self._stamp())
        )

    def _on_ban(self, seconds: float, detail: str) -> None:
        """Tell the venue's other callers (market data) of the ban a call of ours met."""
        now = self._now_ns()
        self._emit(
            VenueBanned(
                venue=self.venue,
                until_ns=now + round(seconds * _NS_PER_S),
                source=self.component_id,
                detail=detail,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def honour_ban(self, ban: VenueBanned) -> None:
        """Send the venue nothing until the ban another caller met is over (Risk learns of
        it from the circuit's ``VenueStatus``)."""
        if ban.venue != self.venue or ban.source == self.component_id:
            return
        seconds = (ban.until_ns - self._now_ns()) / _NS_PER_S
        self._log.warning("ban_shared", source=ban.source, ban_s=round(seconds, 3))
        self.breaker.honour_ban(seconds, f"met by {ban.source}: {ban.detail}")

    def _symbols(self) -> list[str]:
        return sorted({listing.ccxt_symbol for listing in self._listings.values()})

    def _market_id(self, symbol: str) -> str:
        markets = self._exchange.markets or {}
        market = markets.get(symbol) or {}
        return str(market.get("id") or symbol.replace("/", ""))

    def _tolerance(self, order: JournalOrder) -> float:
        listing = self._listings.get(order.instrument_id)
        lot = listing.lot_size if listing is not None else 1e-8
        return lot * 1e-6


# ---------------------------------------------------------------------------- parsing


def _is_duplicate(exc: BaseException) -> bool:
    """The venue refused a create because an order with that client id exists."""
    if isinstance(exc, ccxt.DuplicateOrderId):
        return True
    return isinstance(exc, ccxt.ExchangeError) and "duplicate" in str(exc).lower()


def _number(value: Any) -> float | None:
    """A finite float from a ccxt field, else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fee(trade: Mapping[str, Any]) -> tuple[float, str]:
    """``(cost, currency)`` of a ccxt trade's fee (``(0, "")`` when none is given)."""
    fee = trade.get("fee")
    if not isinstance(fee, Mapping):
        fees = trade.get("fees")
        fee = fees[0] if isinstance(fees, list) and fees and isinstance(fees[0], Mapping) else {}
    cost = _number(fee.get("cost")) or 0.0
    return cost, str(fee.get("currency") or "")


def _booked_fill(
    quantity: float, price: float, fee_cost: float, currency: str, listing: Instrument
) -> tuple[float, float]:
    """``(last_qty, fee)`` of an ``OrderFilled`` for a venue trade, so that the portfolio's
    position and cash follow the account's balances exactly.

    A fee in the quote currency is the fee. A fee in the base currency (Binance charges buyers
    in the bought asset) never reached the account: it is taken out of ``last_qty`` and valued
    at the fill price as the fee, so ``last_qty * price + fee`` is still what the quote balance
    paid. A fee in a third currency (a venue token) cannot be valued here: it is estimated at
    the instrument's taker rate (the token's balance is not reconciled).
    """
    if not currency or currency == listing.quote:
        return quantity, fee_cost
    if currency == listing.base:
        net = round(quantity - fee_cost, 12)
        if net > 0.0:
            return net, fee_cost * price
        return quantity, fee_cost * price
    return quantity, quantity * price * listing.taker_fee
