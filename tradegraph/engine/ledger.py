"""The order ledger: one row per order, kept up to date as order-path messages pass by.

It holds what the orders report needs without keeping every message alive, so a long backtest's
memory grows by one small row per order instead of by every intent, command and event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from tradegraph.contracts import (
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    RiskRejected,
    SubmitOrder,
)


@dataclass(slots=True)
class OrderRow:
    ts_submit_ns: int
    client_order_id: str
    strategy_id: str
    instrument_id: str
    side: str
    order_type: str
    quantity: float
    limit_price: float | None
    status: str = "intent"
    filled_qty: float = 0.0
    filled_notional: float = 0.0
    reason: str = ""

    @property
    def avg_fill_price(self) -> float | None:
        return self.filled_notional / self.filled_qty if self.filled_qty > 0 else None


def _row(msg: OrderIntent | SubmitOrder, client_order_id: str) -> OrderRow:
    """A new row for the order ``msg`` asks for."""
    return OrderRow(
        ts_submit_ns=msg.ts_event_ns,
        client_order_id=client_order_id,
        strategy_id=msg.strategy_id,
        instrument_id=msg.instrument_id,
        side=msg.side.value,
        order_type=msg.order_type.value,
        quantity=msg.quantity,
        limit_price=msg.limit_price,
    )


_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("ts_submit_ns", pa.int64()),
    ("client_order_id", pa.string()),
    ("strategy_id", pa.string()),
    ("instrument_id", pa.string()),
    ("side", pa.string()),
    ("order_type", pa.string()),
    ("quantity", pa.float64()),
    ("limit_price", pa.float64()),
    ("status", pa.string()),
    ("filled_qty", pa.float64()),
    ("avg_fill_price", pa.float64()),
    ("reason", pa.string()),
)


class OrderLedger:
    """Folds order-path messages into per-order rows and counts messages by type.

    Status runs ``intent`` -> ``submitted`` -> ``accepted`` -> ``partially_filled`` ->
    ``filled``, or ends in ``risk_rejected``, ``rejected`` or ``cancelled``.
    """

    def __init__(self) -> None:
        self.rows: dict[str, OrderRow] = {}
        self.counts: Counter[str] = Counter()

    def record(self, msg: Message) -> None:
        kind = type(msg)
        self.counts[kind.__name__] += 1
        if kind is OrderIntent:
            assert isinstance(msg, OrderIntent)
            self.rows[msg.intent_id] = _row(msg, msg.intent_id)
            return
        if kind is SubmitOrder:
            assert isinstance(msg, SubmitOrder)
            row = self.rows.get(msg.client_order_id)
            if row is None:
                row = _row(msg, msg.client_order_id)
                self.rows[msg.client_order_id] = row
            # Risk rounds quantity and price: the venue sees these, so the report shows them.
            row.quantity = msg.quantity
            row.limit_price = msg.limit_price
            row.ts_submit_ns = msg.ts_event_ns
            row.status = "submitted"
            return
        if kind is RiskRejected:
            assert isinstance(msg, RiskRejected)
            row = self.rows.get(msg.intent_id)
            if row is not None:
                row.status = "risk_rejected"
                row.reason = f"{msg.reason.value}: {msg.detail}"
            return
        if kind is OrderFilled:
            assert isinstance(msg, OrderFilled)
            row = self.rows.get(msg.client_order_id)
            if row is not None:
                row.filled_qty += msg.last_qty
                row.filled_notional += msg.last_qty * msg.last_px
                row.status = "filled" if msg.leaves_qty <= 0.0 else "partially_filled"
            return
        if kind is OrderAccepted:
            assert isinstance(msg, OrderAccepted)
            row = self.rows.get(msg.client_order_id)
            if row is not None and row.status == "submitted":
                row.status = "accepted"
            return
        if kind is OrderRejected or kind is OrderCancelled:
            assert isinstance(msg, OrderRejected | OrderCancelled)
            row = self.rows.get(msg.client_order_id)
            if row is not None:
                row.status = "rejected" if kind is OrderRejected else "cancelled"
                row.reason = msg.reason

    @property
    def intents(self) -> int:
        return self.counts["OrderIntent"]

    @property
    def orders(self) -> int:
        return self.counts["SubmitOrder"]

    @property
    def risk_rejections(self) -> int:
        return self.counts["RiskRejected"]

    def status_counts(self) -> Counter[str]:
        return Counter(row.status for row in self.rows.values())

    def to_table(self) -> pa.Table:
        rows = sorted(self.rows.values(), key=lambda r: (r.ts_submit_ns, r.client_order_id))
        data: dict[str, list[object]] = {name: [] for name, _ in _COLUMNS}
        for r in rows:
            for name, _ in _COLUMNS:
                data[name].append(getattr(r, name))
        return pa.table({name: pa.array(data[name], dtype) for name, dtype in _COLUMNS})
