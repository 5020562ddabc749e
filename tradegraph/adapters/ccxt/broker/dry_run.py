"""The dry-run broker: orders journaled and acknowledged locally, never sent."""

from __future__ import annotations

import time
from collections.abc import (
    AsyncGenerator,
    Callable,
    Mapping,
)

from tradegraph.adapters.base import ReconciliationReport
from tradegraph.adapters.ccxt.broker.core import (
    DRY_RUN_NOT_SENT,
    BrokerCore,
)
from tradegraph.adapters.ccxt.order_journal import (
    JournalState,
    OrderJournal,
)
from tradegraph.config.models import LiveMode, VenueConfig
from tradegraph.contracts import (
    CancelOrder,
    Instrument,
    Message,
    OrderType,
    SubmitOrder,
    TimeInForce,
)
from tradegraph.errors import ConfigError
from tradegraph.execution.venue import CANCEL_REQUESTED

__all__ = ["DryRunBroker"]


class DryRunBroker(BrokerCore):
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
            self._reject(order, *problem)
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

    async def reconcile(self, journal_state: JournalState | None = None) -> ReconciliationReport:
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

    async def check(self) -> ReconciliationReport:
        """Nothing to compare with: the venue never saw these orders."""
        return ReconciliationReport(
            ok=True,
            problems=(),
            events=tuple(self._take()),
            open_orders=self.open_orders,
            recovered_fills=0,
            mode=self.mode,
        )

    async def venue_clock_offset_ms(self) -> float | None:
        """Dry-run reads no venue clock."""
        return None

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        self.journal.close()
