"""A margin account at one venue: collateral in a settle asset, net positions, margin.

Risk and the simulated venue each keep one per venue whose ``account.kind`` is ``margin``, and
refuse an order whose initial margin the account cannot post:

* **Wallet balance** (``total``): collateral per settle asset. Fills move it by the realized
  PnL of what they close and by their fee; funding payments and liquidation fees move it too.
  Buying or selling does not spend notional: a position is held on margin.
* **Positions**: one net position per instrument (shorts are negative), at an average entry
  price, in contracts of ``contract_size`` base units.
* **Equity** (margin balance) = wallet + unrealized PnL, ``qty * contract_size * (mark - entry)``
  summed over the positions settled in the asset, at the marks the owner keeps current.
* **Initial margin** of a position or order of notional ``n``: ``n * initial_rate``, where
  ``initial_rate`` is ``1 / leverage`` (``venues[].account.leverage``, 1 when not given),
  raised to the instrument's tier rate when ``margin_tiers`` are given.
* **Maintenance margin**: ``n * maintenance_rate - maintenance_amount`` of the instrument's tier,
  else ``n * venues[].account.maintenance_margin_rate`` (0.5 % by default, Binance's first
  tier for BTCUSDT perpetuals).
* **Free margin** = equity - initial margin of the positions - what open orders reserve.
* **Margin ratio** = maintenance margin / equity; at 1 or above the account is liquidated.

An order reserves, in the settle asset, the initial margin of the part that opens or adds to
the net position, less the initial margin the part that closes it frees (a flip from long to
short needs only the difference), plus its fee at the higher of the maker and taker rates; a market order is valued at the last price raised by
``market_buy_buffer_pct`` whichever its side, since a short is as exposed to a rise as a buy.
Reservations shrink with fills and go on cancel, as in :mod:`tradegraph.portfolio.account`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from tradegraph.contracts import AccountKind, Instrument, OrderSide
from tradegraph.contracts.state import StateRecord
from tradegraph.portfolio.account import CashAccount, CashAccountState, Reservation, Shortfall

__all__ = [
    "DEFAULT_MAINTENANCE_RATE",
    "Account",
    "AccountState",
    "MarginAccount",
    "MarginAccountState",
    "restore_account",
]

DEFAULT_MAINTENANCE_RATE = 0.005
"""Maintenance margin as a fraction of notional when an instrument has no margin tiers."""

_REL_TOL = 1e-9
_FLAT_TOLERANCE = 1e-12


class MarginAccountState(StateRecord):
    """A :class:`MarginAccount`'s balances, positions and reservations.

    Attributes:
        kind: ``margin``.
        balances: Wallet balance per settle asset.
        positions: Per instrument: signed quantity and average entry price.
        reservations: Per order id: asset, amount per unit, quantity still reserved.
    """

    kind: AccountKind
    balances: dict[str, float]
    positions: dict[str, tuple[float, float]]
    reservations: dict[str, tuple[str, float, float]]


class MarginAccount:
    """Collateral, net positions and margin at one venue.

    Args:
        venue: The venue the account is at.
        balances: Starting wallet balance per asset.
        instruments: Instruments traded through the account (others are ignored).
        marks: The owner's latest price per instrument id; the account reads it (never
            writes it), so keeping it current costs the owner nothing extra. Also settable
            with :meth:`use_marks`; a position without a mark is valued at its entry.
        fee_rates: Fee rate per instrument id; missing: the higher of maker and taker.
        market_buy_buffer_pct: How far (%) from the reference price a market order is valued.
        leverage: Leverage per instrument id; missing: 1.
        maintenance_margin_rate: Maintenance rate of instruments without margin tiers.
    """

    kind: AccountKind = AccountKind.MARGIN

    def __init__(
        self,
        venue: str,
        balances: Mapping[str, float],
        instruments: Mapping[str, Instrument],
        marks: Mapping[str, float] | None = None,
        *,
        fee_rates: Mapping[str, float] | None = None,
        market_buy_buffer_pct: float = 5.0,
        leverage: Mapping[str, float] | None = None,
        maintenance_margin_rate: float = DEFAULT_MAINTENANCE_RATE,
    ) -> None:
        self.venue = venue
        self._instruments = {i: inst for i, inst in instruments.items() if inst.venue == venue}
        rates = {} if fee_rates is None else fee_rates
        self._fee_rates = {
            iid: max(0.0, rates.get(iid, max(inst.maker_fee, inst.taker_fee)))
            for iid, inst in self._instruments.items()
        }
        lev = {} if leverage is None else leverage
        self._leverage = {iid: float(lev.get(iid, 1.0)) for iid in self._instruments}
        # The settle asset of each instrument (a property of the instrument; read on every
        # order and fill, so looked up once).
        self._settle = {iid: inst.settle_asset for iid, inst in self._instruments.items()}
        # Initial margin rate of the instruments without tiers: 1 / leverage at any notional
        # (looked up on every order, so computed once).
        self._flat_rates = {
            iid: 1.0 / self._leverage[iid]
            for iid, inst in self._instruments.items()
            if not inst.margin_tiers
        }
        self._maintenance_rate = maintenance_margin_rate
        self._market_factor = 1.0 + market_buy_buffer_pct / 100.0
        self._marks: Mapping[str, float] = {} if marks is None else marks
        self._totals: dict[str, float] = {a: float(v) for a, v in balances.items()}
        # Net position per instrument: [signed quantity, average entry price].
        self._positions: dict[str, list[float]] = {}
        self._reservations: dict[str, Reservation] = {}
        # Per instrument: the band of prices inside which the account is surely above
        # maintenance (see safe_band); cleared whenever the wallet or a position changes.
        self.bands: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------------ read

    @property
    def balances(self) -> Mapping[str, float]:
        """Wallet balance per asset."""
        return MappingProxyType(self._totals)

    @property
    def reservations(self) -> Mapping[str, Reservation]:
        """Reservations of open orders, by client order id (read-only; do not modify)."""
        return MappingProxyType(self._reservations)

    def use_marks(self, marks: Mapping[str, float]) -> None:
        """Read marks from ``marks`` from now on (the owner's own price table)."""
        self._marks = marks

    def instrument(self, instrument_id: str) -> Instrument | None:
        return self._instruments.get(instrument_id)

    def leverage(self, instrument_id: str) -> float:
        return self._leverage[instrument_id]

    def position(self, instrument_id: str) -> float:
        """Net signed quantity held in ``instrument_id`` (contracts; negative is short)."""
        found = self._positions.get(instrument_id)
        return 0.0 if found is None else found[0]

    def entry_price(self, instrument_id: str) -> float:
        found = self._positions.get(instrument_id)
        return 0.0 if found is None else found[1]

    def open_positions(self) -> dict[str, tuple[float, float]]:
        """Every open position: instrument id -> (signed quantity, average entry price)."""
        return {iid: (p[0], p[1]) for iid, p in self._positions.items()}

    def total(self, asset: str) -> float:
        """Wallet balance of ``asset``."""
        return self._totals.get(asset, 0.0)

    def reserved(self, asset: str) -> float:
        """Margin and fees held back by open orders, in ``asset``."""
        if not self._reservations:
            return 0
        return sum(r.amount for r in self._reservations.values() if r.asset == asset)

    def initial_rate(self, instrument_id: str, notional: float) -> float:
        """Initial margin per unit of notional: ``1 / leverage``, at least the tier's rate."""
        flat = self._flat_rates.get(instrument_id)
        if flat is not None:
            return flat
        instrument = self._instruments[instrument_id]
        rate = 1.0 / self._leverage[instrument_id]
        tier = instrument.margin_tier(notional)
        return rate if tier is None else max(rate, tier.initial_rate)

    def maintenance_margin_of(self, instrument_id: str, notional: float) -> float:
        """Maintenance margin of a position of ``notional`` (>= 0) in ``instrument_id``."""
        tier = self._instruments[instrument_id].margin_tier(notional)
        if tier is None:
            return notional * self._maintenance_rate
        return max(0.0, notional * tier.maintenance_rate - tier.maintenance_amount)

    def _mark(self, instrument_id: str, override: tuple[str, float] | None) -> float:
        if override is not None and override[0] == instrument_id:
            return override[1]
        mark = self._marks.get(instrument_id)
        if mark is None:
            return self._positions[instrument_id][1]
        return mark

    def unrealized_pnl(self, asset: str, override: tuple[str, float] | None = None) -> float:
        """Unrealized PnL of the positions settled in ``asset`` at the marks (or ``override``,
        an ``(instrument_id, price)`` that replaces one mark)."""
        total = 0.0
        for iid, (qty, entry) in self._positions.items():
            if self._settle[iid] == asset:
                instrument = self._instruments[iid]
                total += qty * instrument.contract_size * (self._mark(iid, override) - entry)
        return total

    def equity(self, asset: str, override: tuple[str, float] | None = None) -> float:
        """Margin balance: wallet plus unrealized PnL."""
        return self.total(asset) + self.unrealized_pnl(asset, override)

    def position_margin(self, asset: str) -> float:
        """Initial margin of the open positions settled in ``asset``, at the marks."""
        total = 0.0
        for iid, (qty, _) in self._positions.items():
            if self._settle[iid] == asset:
                instrument = self._instruments[iid]
                notional = abs(qty) * instrument.contract_size * self._mark(iid, None)
                total += notional * self.initial_rate(iid, notional)
        return total

    def maintenance_margin(self, asset: str, override: tuple[str, float] | None = None) -> float:
        """Maintenance margin of the open positions settled in ``asset``."""
        total = 0.0
        for iid, (qty, _) in self._positions.items():
            if self._settle[iid] == asset:
                instrument = self._instruments[iid]
                notional = abs(qty) * instrument.contract_size * self._mark(iid, override)
                total += self.maintenance_margin_of(iid, notional)
        return total

    def free(self, asset: str) -> float:
        """Free margin: equity less the positions' initial margin and the orders' reservations."""
        # One pass over the positions for both their unrealized PnL and their margin; the
        # sums are taken in the same order as unrealized_pnl and position_margin take them.
        unrealized = 0.0
        margin = 0.0
        marks = self._marks
        for iid, (qty, entry) in self._positions.items():
            if self._settle[iid] == asset:
                instrument = self._instruments[iid]
                mark = marks.get(iid)
                if mark is None:
                    mark = entry
                size = qty * instrument.contract_size
                unrealized += size * (mark - entry)
                notional = abs(qty) * instrument.contract_size * mark
                margin += notional * self.initial_rate(iid, notional)
        return self._totals.get(asset, 0.0) + unrealized - margin - self.reserved(asset)

    def margin_ratio(self, asset: str) -> float:
        """Maintenance margin over equity (``inf`` when equity is not above 0)."""
        equity = self.equity(asset)
        maintenance = self.maintenance_margin(asset)
        if equity <= 0.0:
            return math.inf if maintenance > 0.0 or equity < 0.0 else 0.0
        return maintenance / equity

    def safe_band(self, instrument_id: str) -> tuple[float, float]:
        """``(low, high)``: while the instrument's adverse price stays strictly inside, the
        account is surely not below maintenance; outside, :meth:`below_maintenance` decides.

        Flat in the instrument: the whole line. One open position in the account, without
        margin tiers: the liquidation price has a closed form, ``(q cs e - W) / (q cs (1 - m))``
        below a long, ``(W + |q| cs e) / (|q| cs (1 + m))`` above a short (wallet ``W``, entry
        ``e``, maintenance rate ``m``), widened by a hair so that rounding can only send a
        price to the exact test, never skip one. Otherwise an empty band: every price gets the
        exact test. Cached in :attr:`bands` until the wallet or a position changes; this is
        what keeps the per-bar test cheap.
        """
        band = (-math.inf, math.inf)
        position = self._positions.get(instrument_id)
        instrument = self._instruments.get(instrument_id)
        if position is not None and instrument is not None:
            band = (math.inf, -math.inf)
            if len(self._positions) == 1 and not instrument.margin_tiers:
                qty, entry = position
                size = abs(qty) * instrument.contract_size
                wallet = self.total(self._settle[instrument_id])
                rate = self._maintenance_rate
                if qty > 0.0:
                    price = (size * entry - wallet) / (size * (1.0 - rate))
                    band = (price + 1e-9 * abs(price) + 1e-12, math.inf)
                else:
                    price = (wallet + size * entry) / (size * (1.0 + rate))
                    band = (-math.inf, price - 1e-9 * abs(price) - 1e-12)
        self.bands[instrument_id] = band
        return band

    def below_maintenance(self, instrument_id: str, price: float) -> tuple[float, float] | None:
        """``(equity, maintenance margin)`` when, with ``instrument_id`` marked at ``price``,
        the account's equity in its settle asset is below its maintenance margin (the
        liquidation rule); ``None`` otherwise, and when nothing is held in the instrument."""
        if instrument_id not in self._positions:
            return None
        asset = self._settle[instrument_id]
        override = (instrument_id, price)
        equity = self.equity(asset, override)
        maintenance = self.maintenance_margin(asset, override)
        return (equity, maintenance) if equity < maintenance else None

    # ------------------------------------------------------------------ pricing orders

    def order_cost(
        self,
        instrument_id: str,
        side: OrderSide,
        price: float,
        quantity: float,
        *,
        market: bool,
    ) -> tuple[str, float]:
        """The asset an order reserves and how much per unit of its quantity: the initial
        margin of the part that opens or adds to the position, plus the fee on all of it.

        Raises:
            KeyError: If the instrument is not traded at this venue.
        """
        instrument = self._instruments[instrument_id]
        if market:
            price *= self._market_factor
        unit_notional = price * instrument.contract_size
        held = self.position(instrument_id)
        reduces = held != 0.0 and (held > 0.0) != (side is OrderSide.BUY)
        closes = min(quantity, abs(held)) if reduces else 0.0
        opening = quantity - closes
        after = opening if reduces else abs(held) + opening
        rate = self.initial_rate(instrument_id, after * unit_notional)
        released = 0.0
        if closes > 0.0:
            # The part that closes frees its share of the position's initial margin.
            mark = self._mark(instrument_id, None)
            held_notional = abs(held) * instrument.contract_size * mark
            released = (
                held_notional * self.initial_rate(instrument_id, held_notional) * closes / abs(held)
            )
        fee = quantity * unit_notional * self._fee_rates[instrument_id]
        needed = fee + max(0.0, opening * unit_notional * rate - released)
        return self._settle[instrument_id], (needed / quantity if quantity > 0.0 else 0.0)

    def shortfall(self, asset: str, needed: float) -> Shortfall | None:
        """Why ``needed`` of ``asset`` cannot be reserved now, or ``None`` if it can."""
        free = self.free(asset)
        if needed <= free + _REL_TOL * max(needed, abs(self.total(asset))):
            return None
        return Shortfall(asset=asset, needed=needed, free=free, account="margin")

    # ------------------------------------------------------------------ order life cycle

    def reserve(self, order_id: str, asset: str, unit_amount: float, quantity: float) -> None:
        """Hold back ``unit_amount * quantity`` of ``asset`` for order ``order_id``."""
        self._reservations[order_id] = Reservation(asset, unit_amount, quantity)

    def release(self, order_id: str) -> None:
        """Free what order ``order_id`` held back."""
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
    ) -> float:
        """Book one fill: the net position moves, the wallet takes the realized PnL of what
        the fill closed and pays ``fee``; the order's reservation shrinks to its leaves.

        Returns:
            The realized PnL (before the fee); 0 for an instrument not traded here.
        """
        instrument = self._instruments.get(instrument_id)
        if instrument is None:
            return 0.0
        signed = quantity if side is OrderSide.BUY else -quantity
        found = self._positions.get(instrument_id)
        held, entry = (0.0, 0.0) if found is None else (found[0], found[1])
        self.bands.clear()
        new_qty, new_entry, realized_per_cs = _net_position(held, entry, signed, price)
        realized = realized_per_cs * instrument.contract_size
        if new_qty == 0.0:
            self._positions.pop(instrument_id, None)
        else:
            self._positions[instrument_id] = [new_qty, new_entry]
        self._move(self._settle[instrument_id], realized - fee)
        reservation = self._reservations.get(order_id)
        if reservation is not None:
            if leaves_qty <= 0.0:
                del self._reservations[order_id]
            else:
                reservation.leaves_qty = leaves_qty
        return realized

    def apply_funding(self, instrument_id: str, amount: float) -> None:
        """Pay ``amount`` of funding on ``instrument_id`` (negative: receive it)."""
        instrument = self._instruments.get(instrument_id)
        if instrument is not None:
            self.bands.clear()
            self._move(self._settle[instrument_id], -amount)

    def set_balances(self, balances: Mapping[str, float]) -> None:
        """Replace the wallet balances of the assets named; keep the rest."""
        self.bands.clear()
        for asset, amount in balances.items():
            self._totals[asset] = float(amount)

    def _move(self, asset: str, delta: float) -> None:
        before = self._totals.get(asset, 0.0)
        after = before + delta
        if abs(after) <= _REL_TOL * max(abs(before), abs(delta)):
            after = 0.0
        self._totals[asset] = after

    # ------------------------------------------------------------------ state

    def snapshot(self) -> MarginAccountState:
        """Balances, positions and reservations."""
        return MarginAccountState(
            kind=self.kind,
            balances=dict(self._totals),
            positions={iid: (p[0], p[1]) for iid, p in self._positions.items()},
            reservations={
                oid: (r.asset, r.unit_amount, r.leaves_qty) for oid, r in self._reservations.items()
            },
        )

    def restore(self, state: MarginAccountState) -> None:
        """Replace everything with a :meth:`snapshot`."""
        self.bands.clear()
        self._totals = dict(state.balances)
        self._positions = {iid: [qty, entry] for iid, (qty, entry) in state.positions.items()}
        self._reservations = {
            oid: Reservation(asset, unit, leaves)
            for oid, (asset, unit, leaves) in state.reservations.items()
        }


def _net_position(
    quantity: float, entry: float, signed_qty: float, price: float
) -> tuple[float, float, float]:
    """``(new quantity, new entry, realized PnL per unit of contract size)`` after a fill.

    The same average-cost rule as the portfolio's: adding moves the entry; reducing realizes
    ``(price - entry) * closed * sign``; crossing zero opens the rest at ``price``.
    """
    new_qty = quantity + signed_qty
    if abs(new_qty) <= _FLAT_TOLERANCE * max(abs(quantity), abs(signed_qty)):
        new_qty = 0.0
    if quantity == 0.0 or (quantity > 0.0) == (signed_qty > 0.0):
        if new_qty == 0.0:
            return 0.0, 0.0, 0.0
        return new_qty, (quantity * entry + signed_qty * price) / new_qty, 0.0
    direction = 1.0 if quantity > 0.0 else -1.0
    if new_qty == 0.0:
        return 0.0, 0.0, (price - entry) * abs(quantity) * direction
    if (new_qty > 0.0) == (quantity > 0.0):
        return new_qty, entry, (price - entry) * abs(signed_qty) * direction
    return new_qty, price, (price - entry) * abs(quantity) * direction


Account = CashAccount | MarginAccount
"""Either kind of account; Risk and the simulated venue keep one per venue."""

AccountState = MarginAccountState | CashAccountState
"""The state of either kind (a margin state has ``positions``; a cash state does not)."""


def restore_account(account: Account, state: AccountState) -> None:
    """Restore ``account`` from ``state`` when the kinds match (a state of the other kind, from
    a config that changed the account's kind, is left unused)."""
    if isinstance(account, CashAccount):
        if isinstance(state, CashAccountState):
            account.restore(state)
    elif isinstance(state, MarginAccountState):
        account.restore(state)
