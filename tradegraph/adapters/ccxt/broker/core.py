"""What every ccxt broker shares: the journal, message production and pre-send checks.

A second broker (another venue family, or another ccxt mode) subclasses :class:`BrokerCore`
and adds only how it talks to its venue.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import (
    AsyncGenerator,
    Callable,
    Iterable,
    Mapping,
)

from tradegraph.adapters.ccxt.client_ids import ClientIdFactory, client_id_rule
from tradegraph.adapters.ccxt.order_journal import (
    JournalFill,
    JournalOrder,
    JournalState,
    JournalStatus,
    OrderJournal,
)
from tradegraph.config.models import LiveMode, LiveVenueConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    Instrument,
    InstrumentKind,
    Message,
    OrderAccepted,
    OrderBookSnapshot,
    OrderCancelled,
    OrderRejected,
    OrderType,
    QuoteTick,
    SubmitOrder,
    TradeTick,
    VenueBanned,
    VenueReason,
    broker_id,
)
from tradegraph.observability import get_logger

__all__ = ["DRY_RUN_NOT_SENT", "NS_PER_MS", "NS_PER_S", "REL_TOL", "BrokerCore", "Refusal"]

DRY_RUN_NOT_SENT = "dry-run: not sent to the venue"
"""``OrderCancelled.reason`` for a dry-run market or IOC order (it would have traded at once)."""

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
REL_TOL = 1e-9

Refusal = tuple[VenueReason, str]
"""Why an order cannot be placed: a stable code and free-text detail (``OrderRejected.reason``
is ``"{code}: {detail}"``)."""


class BrokerCore:
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

    # ------------------------------------------------------------------ state

    @property
    def open_orders(self) -> int:
        """Orders not finished (pending or open)."""
        return sum(1 for _ in self.journal.active_orders())

    def snapshot(self) -> JournalState:
        """The broker's state: its order journal."""
        return self.journal.snapshot()

    def restore(self, state: JournalState) -> None:
        """Replace the journal with a :meth:`snapshot` (the venue is compared on reconcile)."""
        self.journal.restore(state)

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
        self.journal.fold(ids, self._balance_moves(self._ledger_keys(), fills), cutoff)
        self._log.info("journal_folded", orders=len(ids), fills=len(fills), baseline_ns=cutoff)
        return len(ids)

    def _perpetuals(self) -> dict[str, Instrument]:
        """The perpetual instruments of this venue, by instrument id."""
        return {iid: i for iid, i in self._listings.items() if i.kind is InstrumentKind.PERPETUAL}

    def _ledger_keys(self) -> list[str]:
        """What the journal's baseline keeps: the currencies of spot instruments, and the net
        position of each perpetual (keyed by instrument id)."""
        spot = {
            c
            for i in self._listings.values()
            if i.kind is InstrumentKind.SPOT
            for c in (i.base, i.quote)
        }
        return sorted(spot) + sorted(self._perpetuals())

    def _balance_moves(
        self, currencies: Iterable[str], fills: Iterable[JournalFill]
    ) -> dict[str, float]:
        """How ``fills`` moved each currency's balance (fees included) and, for a perpetual,
        its net position (keyed by instrument id, in base units: contracts times the
        contract size; no notional changes hands)."""
        moved = dict.fromkeys(currencies, 0.0)
        for fill in fills:
            listing = self._listings.get(fill.instrument_id)
            if listing is None:
                continue
            sign = fill.side.sign
            if listing.kind is InstrumentKind.PERPETUAL:
                key = listing.instrument_id
                moved[key] = moved.get(key, 0.0) + sign * fill.quantity * listing.contract_size
                if fill.fee_currency:
                    moved[fill.fee_currency] = moved.get(fill.fee_currency, 0.0) - fill.fee_cost
                continue
            moved[listing.base] = moved.get(listing.base, 0.0) + sign * fill.quantity
            moved[listing.quote] = moved.get(listing.quote, 0.0) - sign * fill.quantity * fill.price
            if fill.fee_currency:
                moved[fill.fee_currency] = moved.get(fill.fee_currency, 0.0) - fill.fee_cost
        return moved

    def _reject(self, order: JournalOrder, code: VenueReason, detail: str) -> None:
        reason = f"{code.value}: {detail}"
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
                code=code,
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

    def _basic_problem(self, cmd: SubmitOrder) -> Refusal | None:
        """Why ``cmd`` cannot be sent whatever the venue says, or ``None``."""
        if cmd.venue != self.venue or cmd.instrument_id not in self._listings:
            return (
                VenueReason.UNKNOWN_INSTRUMENT,
                f"unknown instrument {cmd.instrument_id!r} on venue {self.venue!r}",
            )
        if not (math.isfinite(cmd.quantity) and cmd.quantity > 0.0):
            return (
                VenueReason.INVALID_ORDER,
                f"quantity must be a finite number > 0, was {cmd.quantity!r}",
            )
        if cmd.order_type is OrderType.LIMIT and (
            cmd.limit_price is None or not (math.isfinite(cmd.limit_price) and cmd.limit_price > 0)
        ):
            return (
                VenueReason.INVALID_ORDER,
                f"a limit order needs a finite limit_price > 0, was {cmd.limit_price!r}",
            )
        return None

    def _cap_problem(
        self, cmd: SubmitOrder, quantity: float, price: float | None
    ) -> Refusal | None:
        """Why the order breaks ``live.max_order_notional``, or ``None``."""
        cap = self.live.max_order_notional
        if cap is None:
            return None
        reference = price if price is not None else self._last_prices.get(cmd.instrument_id)
        if reference is None:
            return (
                VenueReason.NO_PRICE,
                f"no market price known for {cmd.instrument_id}, so the order cannot be "
                f"checked against live.max_order_notional {cap:g}",
            )
        notional = quantity * reference
        if notional > cap * (1.0 + REL_TOL):
            return (
                VenueReason.MAX_ORDER_NOTIONAL,
                f"order notional {notional:.2f} exceeds the venue hard cap "
                f"live.max_order_notional {cap:.2f}",
            )
        return None

    def refuse(self, cmd: SubmitOrder, reason: str) -> list[Message]:
        """Reject ``cmd`` without sending it (the kill switch tripped while it waited), as
        :attr:`~tradegraph.contracts.VenueReason.NOT_SENT` with ``reason`` as the detail."""
        if not self._duplicate(cmd):
            order = self._new_order(cmd, cmd.quantity, cmd.limit_price)
            self._reject(order, VenueReason.NOT_SENT, reason)
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
