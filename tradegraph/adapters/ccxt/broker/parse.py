"""Reading ccxt's order, trade and error structures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ccxt

from tradegraph.contracts import Instrument

__all__ = ["CANCELLED_STATUSES", "booked_fill", "fee_of", "finite_number", "is_duplicate_order"]

CANCELLED_STATUSES = frozenset({"canceled", "cancelled", "expired"})
"""ccxt order statuses that mean the order ended without filling completely."""


def is_duplicate_order(exc: BaseException) -> bool:
    """The venue refused a create because an order with that client id exists."""
    if isinstance(exc, ccxt.DuplicateOrderId):
        return True
    return isinstance(exc, ccxt.ExchangeError) and "duplicate" in str(exc).lower()


def finite_number(value: Any) -> float | None:
    """A finite float from a ccxt field, else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fee_of(trade: Mapping[str, Any]) -> tuple[float, str]:
    """``(cost, currency)`` of a ccxt trade's fee (``(0, "")`` when none is given)."""
    fee = trade.get("fee")
    if not isinstance(fee, Mapping):
        fees = trade.get("fees")
        fee = fees[0] if isinstance(fees, list) and fees and isinstance(fees[0], Mapping) else {}
    cost = finite_number(fee.get("cost")) or 0.0
    return cost, str(fee.get("currency") or "")


def booked_fill(
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
