"""The live broker: real orders on an exchange through a ccxt async client.

Recovery contract: see :mod:`tradegraph.adapters.ccxt.broker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Mapping,
)
from enum import Enum
from functools import partial
from typing import Any, TypeVar

import ccxt

from tradegraph.adapters.base import ReconciliationReport
from tradegraph.adapters.ccxt.broker.core import (
    NS_PER_MS,
    NS_PER_S,
    REL_TOL,
    BrokerCore,
    Refusal,
)
from tradegraph.adapters.ccxt.broker.parse import (
    CANCELLED_STATUSES,
    booked_fill,
    fee_of,
    finite_number,
    is_duplicate_order,
)
from tradegraph.adapters.ccxt.broker.reconcile import (
    check_balances,
    foreign_fill_problem,
    open_order_problem,
    orphans_problem,
)
from tradegraph.adapters.ccxt.client import (
    SecretScrubber,
    VenueError,
    create_exchange,
    load_credentials,
)
from tradegraph.adapters.ccxt.order_journal import (
    JournalFill,
    JournalOrder,
    JournalState,
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
from tradegraph.config.models import LiveMode, VenueConfig, resolve_mode
from tradegraph.contracts import (
    CancelOrder,
    Instrument,
    LiquiditySide,
    Message,
    OrderFilled,
    OrderType,
    SubmitOrder,
    TimeInForce,
    VenueBanned,
    VenueReason,
    VenueStatus,
)
from tradegraph.errors import ConfigError
from tradegraph.execution.venue import CANCEL_REQUESTED, IOC_REMAINDER

_CCXT_TIME_IN_FORCE = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.GTD: "GTC",
}

__all__ = ["CcxtBroker"]

T = TypeVar("T")

_MAX_ORPHAN_ORDERS = 1_000
_TRADE_PAGE = 500
_MAX_TRADE_PAGES = 50
_PROBE_POLL_S = 0.02


class _Lookup(Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


class CcxtBroker(BrokerCore):
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
        # When each order last changed through us (a fill booked, a cancel sent), wall ns:
        # a periodic reconciliation leaves recently changed orders for its next pass.
        self._changed_ns: dict[str, int] = {}
        # Fills at the venue from this time on (ms) are compared at the next periodic pass.
        self._fills_checked_ms: int | None = None
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
        await self._set_up_perpetuals()
        self._log.info(
            "broker_started", exchange=self.live.exchange, instruments=len(self._listings)
        )
        return self._take()

    async def _set_up_perpetuals(self) -> None:
        """Set the margin mode (``live.margin_mode``) and the leverage (``live.leverage``, else
        ``live.default_leverage``) of every perpetual instrument, before anything trades.

        Raises:
            ConfigError: A perpetual is not a swap market at the venue, its contract size
                differs from the instrument's, or ``live.leverage`` names no perpetual here.
            VenueError: The venue refused a setting or could not be reached.
        """
        perpetuals = self._perpetuals()
        unknown = sorted(set(self.live.leverage) - {i.symbol for i in perpetuals.values()})
        if unknown:
            raise ConfigError(
                f"live.leverage names {', '.join(unknown)}, which is no perpetual instrument of "
                f"venue {self.venue}"
            )
        exchange = self._exchange
        for iid, inst in sorted(perpetuals.items()):
            symbol = inst.ccxt_symbol
            market = exchange.markets[symbol]
            if not market.get("swap"):
                raise ConfigError(
                    f"{iid} is a perpetual but {symbol} at {self.live.exchange} is not a swap "
                    "market (a USDⓈ-M venue is ccxt's binanceusdm)"
                )
            size = finite_number(market.get("contractSize")) or 1.0
            if abs(size - inst.contract_size) > REL_TOL * max(size, inst.contract_size):
                raise ConfigError(
                    f"{iid}: contract_size is {inst.contract_size:g} but one {symbol} contract "
                    f"at {self.live.exchange} is {size:g}"
                )
            mode = self.live.margin_mode
            try:
                await self._call("set_margin_mode", partial(exchange.set_margin_mode, mode, symbol))
            except VenueError as exc:
                if exc.kind != "MarginModeAlreadySet":
                    raise
            leverage = self.live.leverage.get(inst.symbol, self.live.default_leverage)
            await self._call("set_leverage", partial(exchange.set_leverage, leverage, symbol))
            self._log.info(
                "perpetual_set_up", instrument_id=iid, margin_mode=mode, leverage=leverage
            )

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
            self._reject(order, *problem)
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

    async def reconcile(self, journal_state: JournalState | None = None) -> ReconciliationReport:
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
        funding: dict[str, float] = {}
        try:
            await self._reconcile_orders(problems)
            if self.journal.baseline_balances is not None:
                await self._reconcile_fills(problems)
            balances, expected = await self._reconcile_balances(problems)
            funding = await self._recent_funding()
        except (VenueError, CircuitOpenError) as exc:
            problems.append(f"the venue could not be read: {exc}")
            balances, expected = {}, {}
        perpetuals = self._perpetuals()
        positions = {k: balances.pop(k) for k in list(balances) if k in perpetuals}
        expected_positions = {k: expected.pop(k) for k in list(expected) if k in perpetuals}
        open_orders = sum(1 for o in self.journal.orders.values() if o.status is JournalStatus.OPEN)
        report = ReconciliationReport(
            ok=not problems,
            problems=tuple(problems),
            events=tuple(self._take()),
            open_orders=open_orders,
            recovered_fills=len(self.journal.fills) - fills_before,
            balances=balances,
            expected_balances=expected,
            positions=positions,
            expected_positions=expected_positions,
            funding=funding,
            mode=self.mode,
            ts_ns=self._now_ns(),
        )
        self._fills_checked_ms = report.ts_ns // NS_PER_MS
        log = self._log.info if report.ok else self._log.error
        log("reconciled", ok=report.ok, problems=list(report.problems), summary=report.summary())
        if report.ok and self.journal.baseline_balances is not None:
            self._fold_history()
        return report

    async def check(self) -> ReconciliationReport:
        """A periodic reconciliation while the session trades (``live.reconcile_interval_s``).

        The same comparison as :meth:`reconcile`, made safe against the session's own traffic
        (the race rule): an order whose submit is in flight, or that was sent, filled or
        cancelled through us less than ``live.reconcile_grace_s`` ago, is *settling* and not
        judged this pass (the venue's answer may be on its way); a venue fill on an order the
        journal does not know is not judged while a submit is in flight, nor within the grace
        window of its time (its order's id may not be known yet); and a balance difference is
        judged only after every active order has been brought up to date once more and the
        balances read again. The gateway runs this pass in its submit lane, between submits.

        What the venue explains is applied (a fill no update brought, an order that ended
        unseen) and comes back in ``events``; anything else is a problem (``ok=False``), and
        the caller halts trading. A venue that cannot be read is no verdict: ``skipped`` says
        why (the circuit breaker reports a venue that stays down).
        """
        problems: list[str] = []
        fills_before = len(self.journal.fills)
        now = self._now_ns()
        grace_ns = round(self.live.reconcile_grace_s * NS_PER_S)
        try:
            await self._check_orders(problems, now, grace_ns)
            await self._check_fills(problems, now, grace_ns)
            balances, expected = await self._check_balances(problems)
        except (VenueError, CircuitOpenError) as exc:
            self._log.warning("reconcile_skipped", error=str(exc))
            return ReconciliationReport(
                ok=True,
                problems=(),
                events=tuple(self._take()),
                open_orders=self.open_orders,
                recovered_fills=len(self.journal.fills) - fills_before,
                mode=self.mode,
                ts_ns=self._now_ns(),
                skipped=f"the venue could not be read: {exc}",
            )
        report = ReconciliationReport(
            ok=not problems,
            problems=tuple(problems),
            events=tuple(self._take()),
            open_orders=self.open_orders,
            recovered_fills=len(self.journal.fills) - fills_before,
            balances=balances,
            expected_balances=expected,
            mode=self.mode,
            ts_ns=self._now_ns(),
        )
        log = self._log.info if report.ok else self._log.error
        log(
            "reconciled_while_running",
            ok=report.ok,
            problems=list(report.problems),
            recovered_fills=report.recovered_fills,
        )
        return report

    def _settling(self, order: JournalOrder, now_ns: int, grace_ns: int) -> bool:
        """Whether ``order`` may still change by the session's own doing (the race rule)."""
        if order.client_order_id in self._in_submit:
            return True
        changed = max(order.last_sent_ns, self._changed_ns.get(order.client_order_id, 0))
        return now_ns - changed < grace_ns

    async def _check_orders(self, problems: list[str], now_ns: int, grace_ns: int) -> None:
        """One open-orders read per symbol: an order open there is brought up to date from
        it (a partial fill no update brought); one the journal holds active that is no longer
        listed is looked up (filled or cancelled unseen); one the journal cannot explain is a
        problem. Settling orders are left for the next pass."""
        exchange = self._exchange
        for symbol in self._symbols():
            infos = await self._call(
                "fetch_open_orders", partial(exchange.fetch_open_orders, symbol)
            )
            listed: set[str] = set()
            for info in infos or []:
                client_id = info.get("clientOrderId")
                known = self.journal.by_venue_client_id(str(client_id)) if client_id else None
                if known is not None:
                    listed.add(known.client_order_id)
                    if self._settling(known, now_ns, grace_ns):
                        continue
                    if not known.status.terminal:
                        await self._absorb(known, info)
                        continue
                problem = open_order_problem(symbol, info, known, self._ids.is_ours)
                if problem is not None:
                    problems.append(problem)
            for order in [o for o in self.journal.active_orders() if o.symbol == symbol]:
                if order.client_order_id in listed or self._settling(order, now_ns, grace_ns):
                    continue
                outcome = await self._refresh(order)
                if outcome is _Lookup.NOT_FOUND and order.status is JournalStatus.OPEN:
                    problems.append(
                        f"order {order.client_order_id} (venue client id "
                        f"{order.venue_client_id}) is open in the journal but unknown at the venue"
                    )
                # A pending order the venue does not know: poll() settles it (never received).

    async def _check_fills(self, problems: list[str], now_ns: int, grace_ns: int) -> None:
        now_ms = now_ns // NS_PER_MS
        grace_ms = grace_ns // NS_PER_MS
        since_ms = self._fills_checked_ms
        if since_ms is None:
            since_ms = now_ms - round(self.live.reconcile_interval_s or 0.0) * 1_000
        # Venue timestamps may lag ours: a minute of overlap (fills are deduplicated).
        since_ms -= 60_000
        if self.journal.baseline_balances is not None:
            since_ms = max(since_ms, self.journal.baseline_ns // NS_PER_MS)
        deferred: list[int] = []
        for symbol in self._symbols():
            for trade in await self._fetch_trades(symbol, since_ms):
                order = self.journal.by_venue_order_id(str(trade.get("order") or ""))
                if order is not None:
                    self._apply_trade(order, trade)
                    continue
                at_ms = int(finite_number(trade.get("timestamp")) or now_ms)
                if self._in_submit or now_ms - at_ms < grace_ms:
                    deferred.append(at_ms)
                    continue
                problems.append(foreign_fill_problem(symbol, trade))
        self._fills_checked_ms = min(deferred, default=now_ms - grace_ms)

    async def _check_balances(
        self, problems: list[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        if self.journal.baseline_balances is None:
            return {}, {}
        found: list[str] = []
        balances, expected = await self._reconcile_balances(found)
        if found:
            # The venue may be ahead of us: an order filled after we looked at it. Bring
            # every active order up to date and look again; what stays is unexplained.
            await self._poll_once()
            found = []
            balances, expected = await self._reconcile_balances(found)
        problems.extend(found)
        return balances, expected

    async def _reconcile_orders(self, problems: list[str]) -> None:
        for order in list(self.journal.active_orders()):
            outcome = await self._refresh(order)
            if outcome is _Lookup.NOT_FOUND:
                if order.status is JournalStatus.PENDING:
                    self._reject(
                        order,
                        VenueReason.NOT_RECEIVED,
                        "never reached the venue (not found after a restart)",
                    )
                else:
                    problems.append(
                        f"order {order.client_order_id} (venue client id "
                        f"{order.venue_client_id}) is open in the journal but unknown at the venue"
                    )
            elif outcome is _Lookup.UNKNOWN:
                problems.append(f"order {order.client_order_id} could not be looked up")
        orphans = orphans_problem(self.journal, self._ids.is_ours)
        if orphans is not None:
            problems.append(orphans)
        exchange = self._exchange
        for symbol in self._symbols():
            infos = await self._call(
                "fetch_open_orders", partial(exchange.fetch_open_orders, symbol)
            )
            for info in infos or []:
                client_id = info.get("clientOrderId")
                known = self.journal.by_venue_client_id(str(client_id)) if client_id else None
                problem = open_order_problem(symbol, info, known, self._ids.is_ours)
                if problem is not None:
                    problems.append(problem)

    async def _reconcile_fills(self, problems: list[str]) -> None:
        since_ms = self.journal.baseline_ns // NS_PER_MS
        for symbol in self._symbols():
            for trade in await self._fetch_trades(symbol, since_ms):
                order = self.journal.by_venue_order_id(str(trade.get("order") or ""))
                if order is None:
                    problems.append(foreign_fill_problem(symbol, trade))
                    continue
                self._apply_trade(order, trade)

    async def _reconcile_balances(
        self, problems: list[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        exchange = self._exchange
        balance = await self._call("fetch_balance", lambda: exchange.fetch_balance())
        totals = balance.get("total") or {}
        keys = self._ledger_keys()
        perpetuals = self._perpetuals()
        actual = {k: finite_number(totals.get(k)) or 0.0 for k in keys if k not in perpetuals}
        if perpetuals:
            actual.update(await self._venue_positions())
        moved = self._balance_moves(keys, self.journal.fills.values())
        expected = check_balances(
            self.journal,
            actual,
            moved,
            tolerance=self.live.balance_tolerance,
            problems=problems,
            now_ns=self._now_ns,
            positions=perpetuals,
        )
        # The settlement asset of perpetuals is reported, not reconciled: realized profit and
        # funding move it, which the journal's fills alone do not say.
        for settle in sorted({i.settle or i.quote for i in perpetuals.values()} - set(actual)):
            actual[settle] = finite_number(totals.get(settle)) or 0.0
        return actual, expected

    async def _venue_positions(self) -> dict[str, float]:
        """Net position (base units; short negative) of each perpetual, by instrument id."""
        exchange = self._exchange
        perpetuals = self._perpetuals()
        by_symbol = {i.ccxt_symbol: iid for iid, i in perpetuals.items()}
        rows = await self._call(
            "fetch_positions", partial(exchange.fetch_positions, sorted(by_symbol))
        )
        net = dict.fromkeys(perpetuals, 0.0)
        for row in rows or ():
            iid = by_symbol.get(str(row.get("symbol")))
            if iid is None:
                continue
            contracts = finite_number(row.get("contracts")) or 0.0
            size = finite_number(row.get("contractSize")) or perpetuals[iid].contract_size
            sign = -1.0 if row.get("side") == "short" else 1.0
            net[iid] += sign * contracts * size
        return net

    async def _recent_funding(self) -> dict[str, float]:
        """Funding the account got (negative: paid) per perpetual since the journal's baseline,
        or over ``live.reconcile_lookback_s``; empty when the venue does not say."""
        exchange = self._exchange
        has = getattr(exchange, "has", {}) or {}
        perpetuals = self._perpetuals()
        if not perpetuals or not has.get("fetchFundingHistory"):
            return {}
        since_ns = self.journal.baseline_ns or (
            self._now_ns() - int(self.live.reconcile_lookback_s * NS_PER_S)
        )
        out: dict[str, float] = {}
        for iid, inst in sorted(perpetuals.items()):
            rows = await self._call(
                "fetch_funding_history",
                partial(exchange.fetch_funding_history, inst.ccxt_symbol, since_ns // NS_PER_MS),
            )
            out[iid] = sum(finite_number(r.get("amount")) or 0.0 for r in rows or ())
            self._log.info(
                "funding_reconciled", instrument_id=iid, events=len(rows or ()), amount=out[iid]
            )
        return out

    # ------------------------------------------------------------------ placing

    def _venue_precision(self, cmd: SubmitOrder) -> tuple[Refusal | None, float, float | None]:
        """Quantity and price at the venue's precision, or why the order cannot be placed."""
        exchange = self._exchange
        listing = self._listings[cmd.instrument_id]
        symbol = listing.ccxt_symbol
        market = exchange.markets.get(symbol) if exchange.markets else None
        if market is None:
            missing = (
                VenueReason.UNKNOWN_INSTRUMENT,
                f"{symbol} is not listed at {self.live.exchange}",
            )
            return missing, cmd.quantity, None
        try:
            quantity = float(exchange.amount_to_precision(symbol, cmd.quantity))
            price = (
                None
                if cmd.limit_price is None
                else float(exchange.price_to_precision(symbol, cmd.limit_price))
            )
        except (ccxt.BaseError, ValueError, TypeError) as exc:
            return (
                (
                    VenueReason.INVALID_ORDER,
                    f"quantity {cmd.quantity:g} or price {cmd.limit_price} does not fit the venue's "
                    f"precision for {symbol}: {self._scrubber.describe(exc)}",
                ),
                cmd.quantity,
                cmd.limit_price,
            )
        limits = market.get("limits") or {}
        min_amount = finite_number((limits.get("amount") or {}).get("min"))
        if quantity <= 0.0 or (min_amount is not None and quantity < min_amount * (1 - REL_TOL)):
            return (
                (
                    VenueReason.BELOW_VENUE_MINIMUM,
                    f"quantity {quantity:g} is below the venue's minimum {min_amount} for {symbol}",
                ),
                quantity,
                price,
            )
        min_cost = finite_number((limits.get("cost") or {}).get("min"))
        reference = price if price is not None else self._last_prices.get(cmd.instrument_id)
        if min_cost is not None and reference is not None:
            notional = quantity * reference
            if notional < min_cost * (1 - REL_TOL):
                return (
                    (
                        VenueReason.BELOW_VENUE_MINIMUM,
                        f"order notional {notional:.2f} is below the venue's minimum "
                        f"{min_cost:g} for {symbol}",
                    ),
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
                # GTD rests as GTC: Risk cancels it when it expires.
                params["timeInForce"] = _CCXT_TIME_IN_FORCE[order.time_in_force]
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
                    self._reject(order, VenueReason.VENUE_UNAVAILABLE, str(exc))
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
            if is_duplicate_order(error):
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
                code = (
                    VenueReason.INSUFFICIENT_BALANCE
                    if isinstance(error, ccxt.InsufficientFunds)
                    else VenueReason.VENUE_REJECTED
                )
                self._reject(order, code, self._scrubber.describe(error))
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
                    self._reject(order, VenueReason.VENUE_UNAVAILABLE, reason)
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
        self._changed_ns[order.client_order_id] = self._now_ns()
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
                self._reject(
                    order, VenueReason.VENUE_REJECTED, str(reason or "rejected by the venue")
                )
            return
        if order.status is JournalStatus.REJECTED:
            return
        self._ensure_accepted(order)
        for trade in info.get("trades") or ():
            self._apply_trade(order, trade)
        self._adopt_orphans(order)
        filled = finite_number(info.get("filled"))
        tolerance = self._tolerance(order)
        if filled is not None and filled > order.filled_qty + tolerance:
            await self._fetch_order_trades(order)
        complete = filled is None or filled <= order.filled_qty + tolerance
        if status in CANCELLED_STATUSES:
            if complete:
                self._finish_cancelled(order, self._cancel_reason(order, status, cancel_reason))
            else:
                self._poll_now.set()  # its last fills are not visible yet
        elif status == "closed" and not complete:
            self._poll_now.set()

    def _cancel_reason(self, order: JournalOrder, status: str, given: str | None) -> str:
        if given is not None or order.cancel_reason is not None:
            return given or order.cancel_reason or CANCEL_REQUESTED
        if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) or (
            order.order_type is OrderType.MARKET
        ):
            return IOC_REMAINDER
        return f"{status} at the venue"

    def _apply_trade(self, order: JournalOrder, trade: Mapping[str, Any]) -> None:
        """Publish one venue trade of ``order`` as an ``OrderFilled``, once."""
        trade_id = trade.get("id")
        quantity = finite_number(trade.get("amount"))
        price = finite_number(trade.get("price"))
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
        fee_cost, fee_currency = fee_of(trade)
        last_qty, fee = booked_fill(quantity, price, fee_cost, fee_currency, listing)
        timestamp = finite_number(trade.get("timestamp"))
        ts_event = round(timestamp * NS_PER_MS) if timestamp is not None else self._now_ns()
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
        self._changed_ns[order.client_order_id] = self._now_ns()
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
        since_ms = order.created_ns // NS_PER_MS - 60_000
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
            since = max(int(finite_number(t.get("timestamp")) or since) for t in fresh)
        return out

    async def _poll_once(self) -> None:
        exchange = self._exchange
        active = [
            o for o in self.journal.active_orders() if o.client_order_id not in self._in_submit
        ]
        by_symbol: dict[str, list[JournalOrder]] = {}
        for order in active:
            by_symbol.setdefault(order.symbol, []).append(order)
        settle_ns = round(self.live.ambiguous_settle_s * NS_PER_S)
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
                        self._reject(
                            order,
                            VenueReason.NOT_RECEIVED,
                            "never reached the venue (not found by client id)",
                        )
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

    async def venue_clock_offset_ms(self) -> float | None:
        """Our clock minus the venue's (ccxt ``fetch_time``), in ms, taken at the middle of
        the round trip; ``None`` when the venue has no clock to read.

        Raises:
            VenueError: The venue could not be read.
        """
        exchange = self._exchange
        if not (getattr(exchange, "has", {}) or {}).get("fetchTime"):
            return None
        sent_ns = self._now_ns()
        venue_ms = await self._call("fetch_time", lambda: exchange.fetch_time())
        back_ns = self._now_ns()
        value = finite_number(venue_ms)
        if value is None:
            return None
        return (sent_ns + back_ns) / 2 / NS_PER_MS - value

    def _retry_after(self, exc: BaseException) -> float | None:
        headers = getattr(self._exchange, "last_response_headers", None)
        return retry_after_from_headers(headers, self._now_ns() / NS_PER_S)

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
                until_ns=now + round(seconds * NS_PER_S),
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
        seconds = (ban.until_ns - self._now_ns()) / NS_PER_S
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
