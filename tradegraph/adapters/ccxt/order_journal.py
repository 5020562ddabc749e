"""The order journal of a live or dry-run broker: what we sent, what the venue said, what filled.

An order is written to the journal *before* it is sent, so after a crash the broker knows about
every order that might exist at the venue, and looks each one up by its client order id.
Fills are kept by fill id, which makes every fill count once however many times (websocket,
REST poll, reconciliation) it is reported.

The journal's state is a frozen, versioned model (:meth:`OrderJournal.snapshot` returns a
:class:`JournalState`, :meth:`OrderJournal.restore` takes one; each record converts with
``to_state()`` / ``from_state()``). With a
``path`` it is also an append-only JSON-lines file: each change appends the full new state of
one record, and :meth:`OrderJournal.load` replays the file (the last line of a record wins), so
a torn last line loses at most that one change. Secrets never enter it.

The file stays small: once most of its lines are superseded it is rewritten with only the
current records (atomically, beside it, then renamed over it). The records stay few: finished
orders older than a retention period are folded into the balance baseline
(:meth:`OrderJournal.fold`) by a reconciliation that found nothing wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from tradegraph.contracts import OrderSide, OrderType, TimeInForce
from tradegraph.contracts.state import ComponentState, StateRecord

__all__ = [
    "JournalFill",
    "JournalFillState",
    "JournalOrder",
    "JournalOrderState",
    "JournalState",
    "JournalStatus",
    "OrderJournal",
    "highest_order_numbers",
]

_VERSION = 1
# The file is rewritten once it has this many lines and more than this many per current record.
_REWRITE_MIN_LINES = 1_000
_REWRITE_LINES_PER_RECORD = 4


class JournalStatus(StrEnum):
    """Where an order stands, as far as the broker knows.

    ``pending``: journaled, sent or about to be, venue outcome not known yet. ``open``: the
    venue has it. The rest are terminal.
    """

    PENDING = "pending"
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in (JournalStatus.FILLED, JournalStatus.CANCELLED, JournalStatus.REJECTED)


class JournalOrderState(StateRecord):
    """A :class:`JournalOrder` as a frozen record (its fields, same names and meaning)."""

    client_order_id: str
    venue_client_id: str
    strategy_id: str
    instrument_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: float
    limit_price: float | None
    time_in_force: TimeInForce
    post_only: bool
    tag: str
    status: JournalStatus
    venue_order_id: str = ""
    filled_qty: float = 0.0
    accepted_emitted: bool = False
    cancel_reason: str | None = None
    created_ns: int = 0
    last_sent_ns: int = 0
    detail: str = ""


class JournalFillState(StateRecord):
    """A :class:`JournalFill` as a frozen record (its fields, same names and meaning)."""

    fill_id: str
    client_order_id: str
    instrument_id: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    fee_cost: float
    fee_currency: str
    ts_ns: int


class JournalState(ComponentState):
    """Everything an :class:`OrderJournal` holds (not where it is written).

    ``schema_version`` changes when a field changes meaning; reading state of another version
    fails with :class:`~tradegraph.contracts.state.StateVersionError`.
    """

    schema_version: int = _VERSION
    orders: tuple[JournalOrderState, ...] = ()
    fills: tuple[JournalFillState, ...] = ()
    baseline_balances: dict[str, float] | None = None
    baseline_ns: int = 0


@dataclass
class JournalOrder:
    """One order as the broker tracks it.

    Attributes:
        client_order_id: Our id (``SubmitOrder.client_order_id``).
        venue_client_id: The client order id the venue sees (see ``client_ids``).
        strategy_id: Owner.
        instrument_id: Our instrument id.
        symbol: The ccxt symbol it trades at the venue.
        side: Buy or sell.
        order_type: Market or limit.
        quantity: Quantity sent (after the venue's precision).
        limit_price: Limit price sent; ``None`` for a market order.
        time_in_force: GTC or IOC.
        post_only: Maker only.
        tag: Carried onto fills.
        status: See :class:`JournalStatus`.
        venue_order_id: The venue's id once known.
        filled_qty: Sum of the fills counted so far.
        accepted_emitted: ``OrderAccepted`` has been published.
        cancel_reason: A cancel was requested, for this reason (reported on ``OrderCancelled``).
        created_ns: When it was journaled (wall clock, ns).
        last_sent_ns: When a submit for it last left (wall clock, ns).
        detail: Last status explanation (rejection reason, ...).
    """

    client_order_id: str
    venue_client_id: str
    strategy_id: str
    instrument_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: float
    limit_price: float | None
    time_in_force: TimeInForce
    post_only: bool
    tag: str
    status: JournalStatus
    venue_order_id: str = ""
    filled_qty: float = 0.0
    accepted_emitted: bool = False
    cancel_reason: str | None = None
    created_ns: int = 0
    last_sent_ns: int = 0
    detail: str = ""

    @property
    def leaves_qty(self) -> float:
        return max(0.0, round(self.quantity - self.filled_qty, 12))

    def to_state(self) -> JournalOrderState:
        return JournalOrderState(**asdict(self))

    @classmethod
    def from_state(cls, state: JournalOrderState) -> JournalOrder:
        return cls(**dict(state))


@dataclass(frozen=True)
class JournalFill:
    """One fill as reported by the venue.

    Attributes:
        fill_id: ``{venue}-{market id}-{venue trade id}``: unique per venue.
        client_order_id: Our order id.
        instrument_id: Our instrument id.
        side: Buy or sell.
        quantity: Filled quantity (base currency).
        price: Fill price.
        fee: Fee in the quote currency (as published on ``OrderFilled``).
        fee_cost: Fee as the venue charged it, in ``fee_currency``.
        fee_currency: Currency the venue charged the fee in ("" if none).
        ts_ns: Venue time of the fill.
    """

    fill_id: str
    client_order_id: str
    instrument_id: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    fee_cost: float
    fee_currency: str
    ts_ns: int

    def to_state(self) -> JournalFillState:
        return JournalFillState(**asdict(self))

    @classmethod
    def from_state(cls, state: JournalFillState) -> JournalFill:
        return cls(**dict(state))


@dataclass
class OrderJournal:
    """Orders, fills and the balance baseline of one broker session.

    Attributes:
        orders: By our client order id.
        fills: By fill id.
        baseline_balances: Venue balances (total, by currency) when the session first
            reconciled; expected balances are this plus the fills since.
        baseline_ns: When the baseline was taken (wall clock, ns); fills before it are not ours
            to explain.
        path: JSON-lines file that every change is appended to, if any.
        durable: ``fsync`` after each write (slower, survives power loss).
        skipped_lines: Lines of the file that could not be read when it was loaded.
    """

    orders: dict[str, JournalOrder] = field(default_factory=dict)
    fills: dict[str, JournalFill] = field(default_factory=dict)
    baseline_balances: dict[str, float] | None = None
    baseline_ns: int = 0
    path: Path | None = None
    durable: bool = False
    skipped_lines: list[str] = field(default_factory=list)
    _file: TextIO | None = field(default=None, repr=False)
    _lines: int = field(default=0, repr=False)

    # ------------------------------------------------------------------ changes

    def record_order(self, order: JournalOrder) -> None:
        """Add or replace an order's record (call after every change to it)."""
        self.orders[order.client_order_id] = order
        self._append({"kind": "order", "order": order.to_state().model_dump(mode="json")})

    def record_fill(self, fill: JournalFill) -> bool:
        """Add a fill; ``False`` (and no change) if its id is already known."""
        if fill.fill_id in self.fills:
            return False
        self.fills[fill.fill_id] = fill
        self._append({"kind": "fill", "fill": fill.to_state().model_dump(mode="json")})
        return True

    def set_baseline(self, balances: Mapping[str, float], ts_ns: int) -> None:
        self.baseline_balances = dict(balances)
        self.baseline_ns = ts_ns
        self._append({"kind": "baseline", "balances": self.baseline_balances, "ts_ns": ts_ns})

    # ------------------------------------------------------------------ queries

    def by_venue_order_id(self, venue_order_id: str) -> JournalOrder | None:
        for order in self.orders.values():
            if order.venue_order_id == venue_order_id:
                return order
        return None

    def by_venue_client_id(self, venue_client_id: str) -> JournalOrder | None:
        for order in self.orders.values():
            if order.venue_client_id == venue_client_id:
                return order
        return None

    def active_orders(self) -> Iterator[JournalOrder]:
        """Orders not in a terminal state (pending or open)."""
        return (o for o in list(self.orders.values()) if not o.status.terminal)

    def fills_of(self, client_order_id: str) -> list[JournalFill]:
        return [f for f in self.fills.values() if f.client_order_id == client_order_id]

    def finished_before(self, ts_ns: int) -> list[JournalOrder]:
        """Terminal orders whose last trace (journaled, sent, filled) is older than ``ts_ns``."""
        last = {o.client_order_id: max(o.created_ns, o.last_sent_ns) for o in self.orders.values()}
        for f in self.fills.values():
            if f.client_order_id in last:
                last[f.client_order_id] = max(last[f.client_order_id], f.ts_ns)
        return [
            o for o in self.orders.values() if o.status.terminal and last[o.client_order_id] < ts_ns
        ]

    def fold(
        self, client_order_ids: Collection[str], moved: Mapping[str, float], baseline_ns: int
    ) -> list[JournalFill]:
        """Forget finished orders and their fills; their balance changes join the baseline.

        Args:
            client_order_ids: Terminal orders, all of whose fills are older than
                ``baseline_ns``.
            moved: How those fills moved each currency (fees included); added to the baseline
                balances, so the balances expected at the venue do not change.
            baseline_ns: The baseline's new time: venue fills before it are not looked for
                again. It only moves forward.

        Returns:
            The fills forgotten.

        Raises:
            ValueError: an order is unknown or not terminal, or has a fill at or after
                ``baseline_ns``.
        """
        ids = set(client_order_ids)
        for cid in ids:
            order = self.orders.get(cid)
            if order is None or not order.status.terminal:
                raise ValueError(f"order {cid} is not a finished order of this journal")
        folded = [f for f in self.fills.values() if f.client_order_id in ids]
        late = [f.fill_id for f in folded if f.ts_ns >= baseline_ns]
        if late:
            raise ValueError(f"fills {late} are not older than the new baseline")
        self.orders = {k: o for k, o in self.orders.items() if k not in ids}
        self.fills = {k: f for k, f in self.fills.items() if f.client_order_id not in ids}
        if self.baseline_balances is not None:
            for ccy, amount in moved.items():
                self.baseline_balances[ccy] = self.baseline_balances.get(ccy, 0.0) + amount
            self.baseline_ns = max(self.baseline_ns, baseline_ns)
        if self.path is not None:
            self._rewrite()
        return folded

    # ------------------------------------------------------------------ state

    def snapshot(self) -> JournalState:
        """All state as a frozen, versioned model."""
        return JournalState(
            orders=tuple(o.to_state() for o in self.orders.values()),
            fills=tuple(f.to_state() for f in self.fills.values()),
            baseline_balances=None
            if self.baseline_balances is None
            else dict(self.baseline_balances),
            baseline_ns=self.baseline_ns,
        )

    def restore(self, state: JournalState) -> None:
        """Replace all state with a :meth:`snapshot` (the file, if any, gets the new state)."""
        self.orders = {}
        self.fills = {}
        for raw_order in state.orders:
            order = JournalOrder.from_state(raw_order)
            self.orders[order.client_order_id] = order
        for raw_fill in state.fills:
            fill = JournalFill.from_state(raw_fill)
            self.fills[fill.fill_id] = fill
        baseline = state.baseline_balances
        self.baseline_balances = None if baseline is None else dict(baseline)
        self.baseline_ns = state.baseline_ns
        if self.path is not None:
            self._rewrite()

    @classmethod
    def load(cls, path: str | Path, *, durable: bool = False) -> OrderJournal:
        """The journal kept in ``path`` (empty if the file does not exist yet)."""
        journal = cls(path=Path(path), durable=durable)
        if journal.path is None or not journal.path.exists():
            return journal
        lines = journal.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            journal._lines += 1
            try:
                journal._apply(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                # A line cut short by a crash: the change it held never completed. Whatever it
                # described is found again when the broker reconciles with the venue.
                journal.skipped_lines.append(f"{path}:{number}: {exc}")
        return journal

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # ------------------------------------------------------------------ file

    def _apply(self, entry: Mapping[str, Any]) -> None:
        kind = entry["kind"]
        if kind == "order":
            order = JournalOrder.from_state(JournalOrderState.model_validate(entry["order"]))
            self.orders[order.client_order_id] = order
        elif kind == "fill":
            fill = JournalFill.from_state(JournalFillState.model_validate(entry["fill"]))
            self.fills[fill.fill_id] = fill
        elif kind == "baseline":
            self.baseline_balances = {k: float(v) for k, v in entry["balances"].items()}
            self.baseline_ns = int(entry["ts_ns"])
        else:
            raise ValueError(f"unknown entry kind {kind!r}")

    def _append(self, entry: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = self.path.exists() and not self.path.read_bytes().endswith(b"\n")
            self._file = self.path.open("a", encoding="utf-8")
            if torn and self.path.stat().st_size > 0:
                # A crash cut the last line short; start ours on a line of its own.
                self._file.write("\n")
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        self._lines += 1
        records = len(self.orders) + len(self.fills) + 1
        if self._lines >= max(_REWRITE_MIN_LINES, _REWRITE_LINES_PER_RECORD * records):
            self._rewrite()

    def _rewrite(self) -> None:
        assert self.path is not None
        self.close()
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        lines = 0
        with tmp.open("w", encoding="utf-8") as fh:
            if self.baseline_balances is not None:
                entry = {"kind": "baseline", "balances": self.baseline_balances}
                fh.write(json.dumps({**entry, "ts_ns": self.baseline_ns}) + "\n")
                lines += 1
            for order in self.orders.values():
                fh.write(
                    json.dumps({"kind": "order", "order": order.to_state().model_dump(mode="json")})
                    + "\n"
                )
            for fill in self.fills.values():
                fh.write(
                    json.dumps({"kind": "fill", "fill": fill.to_state().model_dump(mode="json")})
                    + "\n"
                )
            lines += len(self.orders) + len(self.fills)
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        tmp.replace(self.path)
        self._lines = lines


def highest_order_numbers(directory: str | Path) -> dict[str, int]:
    """The highest order number each strategy used in the order journals in ``directory``.

    Order ids are ``{strategy id}-{number}`` and each session counts from 1, while a venue's
    journal outlives sessions: a new session numbers its orders above these, so it never
    reuses an id the journal already holds.
    """
    highest: dict[str, int] = {}
    folder = Path(directory)
    if not folder.is_dir():
        return highest
    for path in sorted(folder.glob("*.jsonl")):
        for order in OrderJournal.load(path).orders.values():
            head, _, number = order.client_order_id.rpartition("-")
            if head == order.strategy_id and number.isdigit():
                highest[head] = max(highest.get(head, 0), int(number))
    return highest
