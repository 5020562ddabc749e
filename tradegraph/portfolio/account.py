"""A cash (spot) account at one venue: balances per asset, part of them reserved by open orders.

Risk and the simulated venue each keep one per venue and refuse an order the account cannot
pay, so an account never spends what it does not hold:

* a **buy** reserves, in the quote asset, its quantity times its price times ``1 + fee rate``
  (the higher of the venue's maker and taker rates). A limit buy is priced at its limit; a
  market buy at the last price raised by ``market_buy_buffer_pct``, since the price it will
  fill at is not known when it is placed;
* a **sell** reserves its quantity in the base asset.

``free = total - reserved``. An order is accepted only if what it reserves is at most what is
free. A fill moves the balances (buy: quote down by notional plus fee, base up by quantity; a
sell the other way) and shrinks the order's reservation to what its open quantity still needs;
a cancel, a rejection or the last fill releases the rest.

The account kind is part of the type; the margin account (collateral, net positions, shorts)
is :class:`tradegraph.portfolio.margin.MarginAccount`. A cash account never lends, so a balance
cannot go below zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tradegraph.contracts import AccountKind, Instrument, OrderSide
from tradegraph.contracts.state import StateRecord

__all__ = ["CashAccount", "Reservation", "Shortfall"]

# Amounts are float64: an order sized to exactly the free balance must not be refused for float
# noise, and a balance spent down to float noise is zero.
_REL_TOL = 1e-9


class CashAccountState(StateRecord):
    """A :class:`CashAccount`'s balances and reservations.

    Attributes:
        kind: The account's kind.
        balances: Total of each asset.
        reservations: Per order id: asset, amount per unit, quantity still reserved.
    """

    kind: AccountKind
    balances: dict[str, float]
    reservations: dict[str, tuple[str, float, float]]


@dataclass(slots=True)
class Reservation:
    """What one open order holds back.

    Attributes:
        asset: The asset reserved (quote for a buy, base for a sell).
        unit_amount: Amount reserved per unit of open quantity.
        leaves_qty: The order's open quantity.
    """

    asset: str
    unit_amount: float
    leaves_qty: float

    @property
    def amount(self) -> float:
        """What the order holds back now."""
        return self.unit_amount * self.leaves_qty


@dataclass(frozen=True, slots=True)
class Shortfall:
    """An order needs more of ``asset`` than is free."""

    asset: str
    needed: float
    free: float
    account: str = "cash"

    def describe(self, venue: str) -> str:
        """One sentence naming the asset, the amount needed and the amount free."""
        what = " of margin" if self.account == "margin" else ""
        return (
            f"needs {self.needed:.10g} {self.asset}{what} but only {self.free:.10g} "
            f"{self.asset}{what} is free in the {self.account} account at {venue}"
        )


class CashAccount:
    """Balances per asset at one venue, and the reservations of the orders open there.

    Args:
        venue: The venue the account is at.
        balances: Starting total per asset; assets not named start at 0.
        instruments: Instruments traded through the account (others are ignored).
        fee_rates: Fee rate charged on each instrument at this venue, by instrument id; a
            buy reserves it on top of its notional. Missing: the higher of the instrument's
            maker and taker rates.
        market_buy_buffer_pct: How far (%) above the reference price a market buy is valued.
    """

    kind: AccountKind = AccountKind.CASH

    def __init__(
        self,
        venue: str,
        balances: Mapping[str, float],
        instruments: Mapping[str, Instrument],
        *,
        fee_rates: Mapping[str, float] | None = None,
        market_buy_buffer_pct: float = 5.0,
    ) -> None:
        self.venue = venue
        self._instruments = {i: inst for i, inst in instruments.items() if inst.venue == venue}
        rates = {} if fee_rates is None else fee_rates
        self._fee_rates = {
            iid: max(0.0, rates.get(iid, max(inst.maker_fee, inst.taker_fee)))
            for iid, inst in self._instruments.items()
        }
        self._market_factor = 1.0 + market_buy_buffer_pct / 100.0
        self._totals: dict[str, float] = {a: float(v) for a, v in balances.items()}
        self._reservations: dict[str, Reservation] = {}

    # ------------------------------------------------------------------ read

    @property
    def balances(self) -> Mapping[str, float]:
        """Total held per asset (free plus reserved)."""
        return MappingProxyType(self._totals)

    @property
    def reservations(self) -> Mapping[str, Reservation]:
        """Reservations of open orders, by client order id (read-only; do not modify)."""
        return MappingProxyType(self._reservations)

    def total(self, asset: str) -> float:
        """Amount of ``asset`` held."""
        return self._totals.get(asset, 0.0)

    def reserved(self, asset: str) -> float:
        """Amount of ``asset`` held back by open orders."""
        return sum(r.amount for r in self._reservations.values() if r.asset == asset)

    def free(self, asset: str) -> float:
        """Amount of ``asset`` an order may still use."""
        return self.total(asset) - self.reserved(asset)

    # ------------------------------------------------------------------ pricing orders

    def unit_cost(
        self, instrument_id: str, side: OrderSide, price: float, *, market: bool
    ) -> tuple[str, float]:
        """The asset an order reserves and how much per unit of quantity.

        Args:
            instrument_id: What the order trades.
            side: Buy or sell.
            price: A limit order's limit price, or a market order's reference price.
            market: Whether ``price`` is a reference to be raised by the market-buy buffer.

        Raises:
            KeyError: If the instrument is not traded at this venue.
        """
        instrument = self._instruments[instrument_id]
        if side is OrderSide.SELL:
            return instrument.base, 1.0
        if market:
            price *= self._market_factor
        return instrument.quote, price * (1.0 + self._fee_rates[instrument_id])

    def order_cost(
        self,
        instrument_id: str,
        side: OrderSide,
        price: float,
        quantity: float,
        *,
        market: bool,
    ) -> tuple[str, float]:
        """:meth:`unit_cost` (a cash account's cost per unit does not depend on the quantity);
        the signature :class:`~tradegraph.portfolio.margin.MarginAccount` shares."""
        return self.unit_cost(instrument_id, side, price, market=market)

    def shortfall(self, asset: str, needed: float) -> Shortfall | None:
        """Why ``needed`` of ``asset`` cannot be reserved now, or ``None`` if it can."""
        free = self.free(asset)
        if needed <= free + _REL_TOL * max(needed, self.total(asset)):
            return None
        return Shortfall(asset=asset, needed=needed, free=free)

    # ------------------------------------------------------------------ order life cycle

    def reserve(self, order_id: str, asset: str, unit_amount: float, quantity: float) -> None:
        """Hold back ``unit_amount * quantity`` of ``asset`` for order ``order_id``."""
        self._reservations[order_id] = Reservation(asset, unit_amount, quantity)

    def release(self, order_id: str) -> None:
        """Free what order ``order_id`` held back (cancelled, rejected or done)."""
        self._reservations.pop(order_id, None)

    def reservation(self, order_id: str) -> float:
        """What order ``order_id`` holds back now (0 if nothing)."""
        found = self._reservations.get(order_id)
        return 0.0 if found is None else found.amount

    def apply_fill(
        self,
        order_id: str,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        price: float,
        fee: float,
        leaves_qty: float,
    ) -> None:
        """Move the balances for one fill and shrink the order's reservation to its leaves.

        ``fee`` is in the quote asset. A fill of an instrument not traded here is ignored.
        """
        instrument = self._instruments.get(instrument_id)
        if instrument is None:
            return
        notional = quantity * price
        if side is OrderSide.BUY:
            self._move(instrument.quote, -(notional + fee))
            self._move(instrument.base, quantity)
        else:
            self._move(instrument.base, -quantity)
            self._move(instrument.quote, notional - fee)
        found = self._reservations.get(order_id)
        if found is None:
            return
        if leaves_qty <= 0.0:
            del self._reservations[order_id]
        else:
            found.leaves_qty = leaves_qty

    def set_balances(self, balances: Mapping[str, float]) -> None:
        """Replace the totals of the assets named (as a venue reported them); keep the rest."""
        for asset, amount in balances.items():
            self._totals[asset] = float(amount)

    def _move(self, asset: str, delta: float) -> None:
        before = self._totals.get(asset, 0.0)
        after = before + delta
        if abs(after) <= _REL_TOL * max(abs(before), abs(delta)):
            after = 0.0
        self._totals[asset] = after

    # ------------------------------------------------------------------ state

    def snapshot(self) -> CashAccountState:
        """Balances and reservations."""
        return CashAccountState(
            kind=self.kind,
            balances=dict(self._totals),
            reservations={
                oid: (r.asset, r.unit_amount, r.leaves_qty) for oid, r in self._reservations.items()
            },
        )

    def restore(self, state: CashAccountState) -> None:
        """Replace balances and reservations with those of a :meth:`snapshot`."""
        self._totals = dict(state.balances)
        self._reservations = {
            oid: Reservation(asset, unit, leaves)
            for oid, (asset, unit, leaves) in state.reservations.items()
        }
