"""The portfolio component: positions, PnL accounting, equity curve and snapshots for Risk.

The account is a spot account in one quote currency. Every strategy keeps its own average-cost
position per instrument (a sub-ledger); the account's figures are the sums of those sub-ledgers,
so per-strategy attribution always adds up to the account totals, even when two strategies hold
opposite positions in the same instrument.

A live account may hold inventory no strategy of the session traded (left by an earlier session
or bought by hand). The first ``AccountBalances`` of each venue is adopted as the account's
starting state: cash becomes the venue's quote-currency balance and what the venue holds of each
instrument's base asset, beyond the strategies' own positions, goes into the account's own
sub-ledger (:data:`ACCOUNT_LEDGER`), priced at the instrument's first mark.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import (
    PORTFOLIO,
    AccountBalances,
    Bar,
    Clock,
    FundingPaid,
    Instrument,
    Message,
    OrderBookSnapshot,
    OrderFilled,
    Outbox,
    PortfolioSnapshot,
    PositionLiquidated,
    PositionSnapshot,
    QuoteTick,
    TradeTick,
)
from tradegraph.contracts.marks import mark_price
from tradegraph.contracts.state import ComponentState, StateRecord
from tradegraph.errors import ConfigError, OrderPathError

NS_PER_DAY = 86_400 * 1_000_000_000

# Below this fraction of the quantities involved a leftover position is float noise
# (0.1 + 0.2 - 0.3), not a real holding; keeping it would leave "open" positions that never close.
# Real leftovers are whole lots, many orders of magnitude above it.
_FLAT_TOLERANCE = 1e-12

# "Never happened yet" for timestamps: lower than any real nanosecond time, and still JSON-able.
_NEVER_NS = -(1 << 62)

ACCOUNT_LEDGER = "(account)"
"""Sub-ledger of the inventory the account held when it was adopted; no strategy id can clash
with it (strategy ids are letters, digits, ``_`` and ``-``)."""


def apply_fill_to_position(
    quantity: float, avg_price: float, signed_qty: float, price: float
) -> tuple[float, float, float, float]:
    """Apply one fill to an average-cost position.

    Adding to a position moves the average price; reducing it realizes
    ``(price - avg_price) * closed_qty * sign(quantity)``; going through zero realizes the closed
    part and opens the rest at ``price``. A leftover smaller than ``1e-12`` of the quantities
    involved is treated as flat.

    Args:
        quantity: Signed position before the fill (negative is short).
        avg_price: Average entry price of that position (ignored when flat).
        signed_qty: Signed fill quantity (positive buys, negative sells).
        price: Fill price.

    Returns:
        ``(new_quantity, new_avg_price, realized_pnl, closed_qty)``; ``closed_qty`` is the
        unsigned quantity of the old position that this fill closed. A flat position has
        average price 0.
    """
    new_quantity = quantity + signed_qty
    if abs(new_quantity) <= _FLAT_TOLERANCE * max(abs(quantity), abs(signed_qty)):
        new_quantity = 0.0
    if quantity == 0.0 or (quantity > 0.0) == (signed_qty > 0.0):
        if new_quantity == 0.0:
            return 0.0, 0.0, 0.0, 0.0
        new_avg = (quantity * avg_price + signed_qty * price) / new_quantity
        return new_quantity, new_avg, 0.0, 0.0
    direction = 1.0 if quantity > 0.0 else -1.0
    if new_quantity == 0.0:
        closed = abs(quantity)
        return 0.0, 0.0, (price - avg_price) * closed * direction, closed
    if (new_quantity > 0.0) == (quantity > 0.0):
        closed = abs(signed_qty)
        return new_quantity, avg_price, (price - avg_price) * closed * direction, closed
    closed = abs(quantity)
    return new_quantity, price, (price - avg_price) * closed * direction, closed


@dataclass(frozen=True, slots=True)
class PositionAttribution:
    """One strategy's position and PnL in one instrument.

    Attributes:
        strategy_id: The strategy that traded.
        instrument_id: The instrument traded.
        quantity: Signed position (negative is short).
        avg_price: Average entry price (0 when flat).
        mark_price: Latest mark of the instrument (0 before any mark or fill).
        realized_pnl: PnL realized by closing trades, before fees.
        unrealized_pnl: ``quantity * (mark_price - avg_price)``.
        fees: Fees paid (negative for net rebates).
        fill_count: Number of fills.
        funding: Net funding received on perpetual positions (negative: paid).
    """

    strategy_id: str
    instrument_id: str
    quantity: float
    avg_price: float
    mark_price: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    fill_count: int
    funding: float = 0.0

    @property
    def net_pnl(self) -> float:
        """Realized plus unrealized PnL plus funding received, less fees."""
        return self.realized_pnl + self.unrealized_pnl + self.funding - self.fees


@dataclass(frozen=True, slots=True)
class StrategyAttribution:
    """One strategy's share of the account: totals over its instruments.

    Attributes:
        strategy_id: The strategy.
        realized_pnl: Sum of realized PnL over its instruments, before fees.
        unrealized_pnl: Sum of unrealized PnL over its instruments.
        fees: Fees paid.
        fill_count: Number of fills.
        positions: Per-instrument detail, keyed by instrument id.
        funding: Net funding received (negative: paid).
        liquidations: Positions of the strategy the venue liquidated.
    """

    strategy_id: str
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    fill_count: int
    positions: Mapping[str, PositionAttribution]
    funding: float = 0.0
    liquidations: int = 0

    @property
    def net_pnl(self) -> float:
        """Realized plus unrealized PnL plus funding received, less fees."""
        return self.realized_pnl + self.unrealized_pnl + self.funding - self.fees


class _StrategyPosition:
    """Mutable average-cost position of one strategy in one instrument."""

    __slots__ = (
        "avg_price",
        "fees",
        "fill_count",
        "funding",
        "liquidations",
        "quantity",
        "realized_pnl",
    )

    def __init__(self) -> None:
        self.quantity = 0.0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.fill_count = 0
        self.funding = 0.0
        self.liquidations = 0


class _InstrumentBook:
    """Account-level state of one instrument, read on every mark.

    ``quantity``, ``cost_basis`` (sum of quantity times average price over the strategies) and
    ``realized_pnl`` are recomputed from the strategy positions after each fill, so they never
    drift from them.
    """

    __slots__ = ("cost_basis", "mark", "quantity", "realized_pnl", "strategy_positions")

    def __init__(self) -> None:
        self.quantity = 0.0
        self.cost_basis = 0.0
        self.realized_pnl = 0.0
        self.mark = 0.0
        self.strategy_positions: dict[str, _StrategyPosition] = {}

    def recompute(self) -> None:
        # One pass that gathers all three columns is less than half the cost of three generators.
        quantities: list[float] = []
        cost_bases: list[float] = []
        realized: list[float] = []
        for position in self.strategy_positions.values():
            quantities.append(position.quantity)
            cost_bases.append(position.quantity * position.avg_price)
            realized.append(position.realized_pnl)
        self.quantity = math.fsum(quantities)
        self.cost_basis = math.fsum(cost_bases)
        self.realized_pnl = math.fsum(realized)


class StrategyPositionState(StateRecord):
    """One strategy's position in one instrument, as stored."""

    strategy_id: str
    instrument_id: str
    quantity: float
    avg_price: float
    realized_pnl: float
    fees: float
    fill_count: int
    funding: float = 0.0
    liquidations: int = 0


class PortfolioState(ComponentState):
    """All of a :class:`Portfolio`'s state. The history files of a live session keep the
    equity curve and fills outside it (``actors/state_store.PortfolioHistory``)."""

    cash: float
    equity: float
    fees: float
    realized_pnl: float
    peak_equity: float
    day_start_equity: float
    next_day_ns: int
    day_started: bool
    next_snapshot_ns: int
    snapshot_band: tuple[float, float]
    last_curve_ts_ns: int
    curve_ts_ns: list[int]
    curve_equity: list[float]
    marks: dict[str, float]
    strategy_positions: list[StrategyPositionState]
    fills: list[OrderFilled]
    adopted_venues: list[str] | None = None
    """``None`` in a state written before balances were adopted: every venue counts as adopted."""
    funding: float = 0.0
    liquidations: int = 0


class Portfolio:
    """Positions, PnL, equity and drawdown of a spot account; sends ``PortfolioSnapshot`` to Risk.

    Marks follow :mod:`tradegraph.contracts.marks` (bar close, trade price, quote or book mid).
    Each mark updates equity incrementally and records a point of the equity curve at the
    mark's event time (several marks at one timestamp leave one point). After every fill, equity is recomputed
    exactly from cash and positions, a curve point is recorded at the clock's time, and a
    snapshot goes to Risk; on marks, snapshots go out at most once per
    ``config.snapshot_interval_s`` of event time (0 means on every mark).

    The snapshot's ``drawdown`` is absolute (``peak_equity - equity``, in the quote currency);
    :attr:`drawdown_fraction` gives it as a fraction of the peak. ``day_start_equity`` is the
    starting cash on the first UTC day and afterwards the equity at the first event of each UTC
    day, valued after that event's mark but before that event's fill.

    Fills are deduplicated by ``fill_id``. A fill leaves the mark alone unless the instrument has
    never been marked, in which case the fill price becomes its mark.
    """

    State: ClassVar[type[PortfolioState]] = PortfolioState

    component_id = PORTFOLIO

    def __init__(
        self,
        config: PortfolioConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        for key, instrument in instruments.items():
            if key != instrument.instrument_id:
                raise ConfigError(
                    f"instruments: key {key!r} does not match instrument id "
                    f"{instrument.instrument_id!r}"
                )
            if instrument.contract_size != 1.0:
                raise ConfigError(
                    f"instruments: {instrument.symbol} has contract_size "
                    f"{instrument.contract_size:g}; the portfolio counts quantities in base "
                    "units, so give quantities per base unit (contract_size 1)"
                )
            if instrument.quote != config.currency:
                raise ConfigError(
                    f"portfolio.currency is {config.currency!r} but instrument {key} quotes in "
                    f"{instrument.quote!r}; the spot account needs every instrument to quote in "
                    f"its currency (set portfolio.currency or remove the instrument)"
                )
        self._config = config
        self._clock = clock
        self._outbox = outbox
        self._snapshot_interval_ns = round(config.snapshot_interval_s * 1e9)
        self._snapshot_move = config.snapshot_equity_move_pct / 100.0
        self._books: dict[str, _InstrumentBook] = {key: _InstrumentBook() for key in instruments}
        self._instruments = dict(instruments)
        self._reset_state()

    def _reset_state(self) -> None:
        starting_cash = self._config.starting_cash
        self._cash = starting_cash
        self._equity = starting_cash
        self._fees = 0.0
        self._funding = 0.0
        self._liquidations = 0
        self._realized_pnl = 0.0
        self._peak_equity = starting_cash
        self._day_start_equity = starting_cash
        self._next_day_ns = _NEVER_NS
        self._day_started = False
        self._next_snapshot_ns = _NEVER_NS
        # Equity outside [low, high] (a move of snapshot_equity_move_pct since the last
        # snapshot) sends a snapshot at once, so Risk sees losses promptly in fast markets.
        self._snapshot_low = -math.inf
        self._snapshot_high = math.inf
        # The earlier of the two, so a mark tests one number on the hot path.
        self._next_due_ns = _NEVER_NS
        self._last_curve_ts_ns = _NEVER_NS
        self._curve_ts = array("q")
        self._curve_equity = array("d")
        self._fills: list[OrderFilled] = []
        self._fill_ids: set[str] = set()
        # Insertion order is first-fill order, which keeps attribution output deterministic.
        self._strategy_positions: dict[tuple[str, str], _StrategyPosition] = {}
        # Instruments with at least one fill or adopted inventory, sorted: the positions a
        # snapshot lists.
        self._traded_instruments: list[str] = []
        # Venues whose balances were adopted; adopted inventory not yet priced by a mark.
        self._adopted_venues: set[str] = set()
        self._unpriced_inventory: set[str] = set()
        for book in self._books.values():
            book.quantity = 0.0
            book.cost_basis = 0.0
            book.realized_pnl = 0.0
            book.mark = 0.0
            book.strategy_positions = {}

    # ------------------------------------------------------------------ component protocol

    def start(self) -> None:
        """Nothing to do: the portfolio starts flat with its starting cash."""

    def stop(self) -> None:
        """Nothing to do: the equity curve already holds the last valuation."""

    def handle(self, msg: Message) -> None:
        """Apply a mark (:func:`~tradegraph.contracts.marks.mark_price`) or a fill; ignore the rest."""
        if type(msg) is Bar:
            # The mark rule (contracts/marks.py), inline for the hot path: a bar marks at its close.
            instrument_id = msg.instrument_id
            price = msg.close
        elif type(msg) is OrderFilled:
            self._apply_fill(msg)
            return
        elif type(msg) is AccountBalances:
            self._adopt_balances(msg)
            return
        elif type(msg) is FundingPaid:
            self._apply_funding(msg)
            return
        elif type(msg) is PositionLiquidated:
            self._count_liquidation(msg)
            return
        else:
            mark = mark_price(msg)
            if mark is None:
                return
            assert isinstance(msg, TradeTick | QuoteTick | OrderBookSnapshot)
            instrument_id = msg.instrument_id
            price = mark
        # The mark is applied here rather than in a helper because it runs on every bar.
        book = self._books.get(instrument_id)
        if book is None:
            # Nothing can be held in an instrument the account does not know (its fills are
            # refused), so its price cannot change the valuation.
            return
        ts_ns = msg.ts_event_ns
        old_mark = book.mark
        if old_mark == 0.0 and instrument_id in self._unpriced_inventory:
            self._price_inventory(instrument_id, price)
        book.mark = price
        equity = self._equity + book.quantity * (price - old_mark)
        self._equity = equity
        if equity > self._peak_equity:
            self._peak_equity = equity
        if ts_ns > self._last_curve_ts_ns:
            self._curve_ts.append(ts_ns)
            self._curve_equity.append(equity)
            self._last_curve_ts_ns = ts_ns
        else:
            self._curve_equity[-1] = equity
        if ts_ns >= self._next_due_ns:
            self._on_mark_due(ts_ns)
        elif equity < self._snapshot_low or equity > self._snapshot_high:
            self._publish_snapshot()
            self._next_snapshot_ns = ts_ns + self._snapshot_interval_ns
            self._next_due_ns = min(self._next_day_ns, self._next_snapshot_ns)

    # ------------------------------------------------------------------ marks and snapshots

    def _on_mark_due(self, ts_ns: int) -> None:
        rolled = ts_ns >= self._next_day_ns
        if rolled:
            self._roll_day(ts_ns)
        if rolled or ts_ns >= self._next_snapshot_ns:
            self._publish_snapshot()
            self._next_snapshot_ns = ts_ns + self._snapshot_interval_ns
        self._next_due_ns = min(self._next_day_ns, self._next_snapshot_ns)

    # ------------------------------------------------------------------ order path

    def _apply_fill(self, fill: OrderFilled) -> None:
        fill_id = fill.fill_id
        if fill_id in self._fill_ids:
            return
        instrument_id = fill.instrument_id
        book = self._books.get(instrument_id)
        if book is None:
            raise OrderPathError(
                f"fill {fill_id} for strategy {fill.strategy_id} is in instrument "
                f"{instrument_id!r}, which the portfolio does not know; known: "
                f"{sorted(self._books)}"
            )
        price = fill.last_px
        fee = fill.fee
        # A chained comparison is false for NaN, so it also refuses every non-finite value.
        if not 0.0 < fill.last_qty < math.inf:
            raise OrderPathError(
                f"fill {fill_id} has last_qty {fill.last_qty!r}; it must be a finite number > 0"
            )
        if not 0.0 < price < math.inf:
            raise OrderPathError(
                f"fill {fill_id} has last_px {price!r}; it must be a finite number > 0"
            )
        if not math.isfinite(fee):
            raise OrderPathError(f"fill {fill_id} has a non-finite fee {fee!r}")

        now_ns = self._clock.now_ns()
        if now_ns >= self._next_day_ns:
            self._roll_day(now_ns)

        self._fill_ids.add(fill_id)
        self._fills.append(fill)
        signed_qty = fill.signed_qty
        strategy_id = fill.strategy_id
        key = (strategy_id, instrument_id)
        position = self._strategy_positions.get(key)
        if position is None:
            position = _StrategyPosition()
            self._strategy_positions[key] = position
            book.strategy_positions[strategy_id] = position
            if instrument_id not in self._traded_instruments:
                self._traded_instruments = sorted([*self._traded_instruments, instrument_id])
        position.quantity, position.avg_price, realized, _ = apply_fill_to_position(
            position.quantity, position.avg_price, signed_qty, price
        )
        position.realized_pnl += realized
        position.fees += fee
        position.fill_count += 1

        self._cash -= signed_qty * price + fee
        self._fees += fee
        self._realized_pnl += realized
        if book.mark == 0.0:
            if instrument_id in self._unpriced_inventory:
                self._price_inventory(instrument_id, price)
            book.mark = price
        book.recompute()

        # Exact revaluation so the incremental per-mark updates never accumulate drift.
        equity = self._cash + math.fsum([b.quantity * b.mark for b in self._books.values()])
        self._equity = equity
        if equity > self._peak_equity:
            self._peak_equity = equity
        if now_ns > self._last_curve_ts_ns:
            self._curve_ts.append(now_ns)
            self._curve_equity.append(equity)
            self._last_curve_ts_ns = now_ns
        else:
            self._curve_equity[-1] = equity
        self._publish_snapshot()
        self._next_snapshot_ns = now_ns + self._snapshot_interval_ns
        self._next_due_ns = min(self._next_day_ns, self._next_snapshot_ns)

    def _apply_funding(self, event: FundingPaid) -> None:
        """Book a funding payment: cash (and so equity) moves by it, attributed to the
        strategy whose position paid or received it."""
        amount = event.amount
        if not math.isfinite(amount):
            raise OrderPathError(f"funding payment on {event.instrument_id} is {amount!r}")
        key = (event.strategy_id, event.instrument_id)
        position = self._strategy_positions.get(key)
        if position is None:
            # Funding is only paid on a position, which a fill opened: nothing to attribute to.
            raise OrderPathError(
                f"funding of {amount:.10g} for strategy {event.strategy_id} on "
                f"{event.instrument_id}, where the portfolio holds no position of it"
            )
        position.funding -= amount
        self._funding -= amount
        self._cash -= amount
        equity = self._equity - amount
        self._equity = equity
        if equity > self._peak_equity:
            self._peak_equity = equity
        ts_ns = event.ts_event_ns
        if ts_ns > self._last_curve_ts_ns:
            self._curve_ts.append(ts_ns)
            self._curve_equity.append(equity)
            self._last_curve_ts_ns = ts_ns
        else:
            self._curve_equity[-1] = equity

    def _count_liquidation(self, event: PositionLiquidated) -> None:
        # The closing fill, booked before this event, moved positions and cash.
        self._liquidations += 1
        position = self._strategy_positions.get((event.strategy_id, event.instrument_id))
        if position is not None:
            position.liquidations += 1

    # ------------------------------------------------------------------ adopted inventory

    def _adopt_balances(self, report: AccountBalances) -> None:
        """Take the first balances of a venue as the account's state there (later ones, and
        those of a venue whose state was restored, change nothing: fills keep it current).

        Cash becomes the quote balance (replacing ``starting_cash`` on the first venue adopted
        and the cash moves of fills already booked there); the base balance of each of the
        venue's instruments, less what the strategies hold, becomes the account's inventory.
        Its cost basis is the instrument's mark (the first mark, if none has arrived yet), so
        adoption itself is no PnL: peak and day-start equity move with it.
        """
        venue = report.venue
        if venue in self._adopted_venues:
            return
        first = not self._adopted_venues
        self._adopted_venues.add(venue)
        balances = report.balances
        booked = math.fsum(
            -(fill.signed_qty * fill.last_px + fill.fee)
            for fill in self._fills
            if fill.venue == venue
        )
        cash = self._cash - (self._config.starting_cash if first else 0.0) - booked
        self._cash = cash + balances.get(self._config.currency, 0.0)
        adopted_bases: set[str] = set()
        for instrument_id in sorted(self._instruments):
            instrument = self._instruments[instrument_id]
            if instrument.venue != venue or instrument.base in adopted_bases:
                continue
            adopted_bases.add(instrument.base)
            book = self._books[instrument_id]
            held = balances.get(instrument.base, 0.0)
            strategies = math.fsum(
                p.quantity for sid, p in book.strategy_positions.items() if sid != ACCOUNT_LEDGER
            )
            inventory = held - strategies
            if abs(inventory) <= _FLAT_TOLERANCE * max(abs(held), abs(strategies)):
                continue
            position = _StrategyPosition()
            position.quantity = inventory
            position.avg_price = book.mark
            self._strategy_positions[(ACCOUNT_LEDGER, instrument_id)] = position
            book.strategy_positions[ACCOUNT_LEDGER] = position
            book.recompute()
            if instrument_id not in self._traded_instruments:
                self._traded_instruments = sorted([*self._traded_instruments, instrument_id])
            if book.mark == 0.0:
                self._unpriced_inventory.add(instrument_id)
        equity = self._cash + math.fsum([b.quantity * b.mark for b in self._books.values()])
        moved = equity - self._equity
        self._equity = equity
        self._peak_equity += moved
        self._day_start_equity += moved
        now_ns = self._clock.now_ns()
        if now_ns > self._last_curve_ts_ns:
            self._curve_ts.append(now_ns)
            self._curve_equity.append(equity)
            self._last_curve_ts_ns = now_ns
        elif self._curve_equity:
            self._curve_equity[-1] = equity
        self._publish_snapshot()

    def _price_inventory(self, instrument_id: str, price: float) -> None:
        """Give adopted inventory its cost basis at its first mark; the equity that mark adds
        is the inventory's value, not a gain."""
        self._unpriced_inventory.discard(instrument_id)
        book = self._books[instrument_id]
        position = book.strategy_positions[ACCOUNT_LEDGER]
        position.avg_price = price
        book.recompute()
        value = position.quantity * price
        self._peak_equity += value
        self._day_start_equity += value

    def _roll_day(self, ts_ns: int) -> None:
        if self._day_started:
            self._day_start_equity = self._equity
        self._day_started = True
        self._next_day_ns = (ts_ns // NS_PER_DAY + 1) * NS_PER_DAY

    def _publish_snapshot(self) -> None:
        self._outbox.publish(self.build_snapshot())
        move = self._snapshot_move
        if move > 0.0:
            self._snapshot_low = self._equity * (1.0 - move)
            self._snapshot_high = self._equity * (1.0 + move)

    # ------------------------------------------------------------------ public read API

    @property
    def starting_cash(self) -> float:
        """Cash the account started with."""
        return self._config.starting_cash

    @property
    def cash(self) -> float:
        """Quote-currency cash: starting cash, less purchases and fees, plus sales."""
        return self._cash

    @property
    def equity(self) -> float:
        """Cash plus every position at its mark."""
        return self._equity

    @property
    def fees(self) -> float:
        """Fees paid so far (negative when rebates exceed fees)."""
        return self._fees

    @property
    def funding(self) -> float:
        """Net funding received on perpetual positions (negative: paid)."""
        return self._funding

    @property
    def liquidations(self) -> int:
        """Positions the venues liquidated."""
        return self._liquidations

    @property
    def realized_pnl(self) -> float:
        """PnL realized by closing trades, before fees."""
        return self._realized_pnl

    @property
    def unrealized_pnl(self) -> float:
        """Sum over positions of ``quantity * (mark - avg_price)``."""
        return math.fsum(b.quantity * b.mark - b.cost_basis for b in self._books.values())

    @property
    def peak_equity(self) -> float:
        """Highest equity seen, starting from the starting cash."""
        return self._peak_equity

    @property
    def drawdown(self) -> float:
        """``peak_equity - equity`` in the quote currency (never negative)."""
        return max(0.0, self._peak_equity - self._equity)

    @property
    def drawdown_fraction(self) -> float:
        """Drawdown as a fraction of peak equity (0.1 is 10% below the peak)."""
        return self.drawdown / self._peak_equity if self._peak_equity > 0.0 else 0.0

    @property
    def day_start_equity(self) -> float:
        """Equity at the first event of the current UTC day (starting cash on the first day)."""
        return self._day_start_equity

    @property
    def gross_exposure(self) -> float:
        """Sum of ``abs(quantity) * mark`` over instruments."""
        return math.fsum(abs(b.quantity) * b.mark for b in self._books.values())

    @property
    def net_exposure(self) -> float:
        """Sum of ``quantity * mark`` over instruments."""
        return math.fsum(b.quantity * b.mark for b in self._books.values())

    @property
    def fills(self) -> list[OrderFilled]:
        """Every fill applied, in arrival order (duplicates excluded), as a new list."""
        return list(self._fills)

    def mark(self, instrument_id: str) -> float:
        """Latest mark of ``instrument_id`` (0 before any mark or fill)."""
        return self._books[instrument_id].mark

    def equity_curve(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The equity curve as copies: ``(ts_ns int64, equity float64)``, timestamps increasing."""
        ts = np.frombuffer(self._curve_ts, dtype=np.int64).copy()
        equity = np.frombuffer(self._curve_equity, dtype=np.float64).copy()
        return ts, equity

    def positions(self) -> dict[str, PositionSnapshot]:
        """Account-level position per instrument ever filled, keyed by instrument id, sorted.

        The average price is the cost basis over the net quantity; it is 0 when the account is
        flat (strategies may still hold offsetting positions; their unrealized PnL is kept).
        """
        now_ns = self._clock.now_ns()
        return {
            instrument_id: self._position_snapshot(instrument_id, now_ns)
            for instrument_id in self._traded_instruments
        }

    def _position_snapshot(self, instrument_id: str, ts_ns: int) -> PositionSnapshot:
        book = self._books[instrument_id]
        quantity = book.quantity
        # Every field is computed here from validated fills and marks, so validation is skipped:
        # with a short snapshot interval this runs on every mark.
        return PositionSnapshot.trusted(
            ts_event_ns=ts_ns,
            ts_init_ns=ts_ns,
            instrument_id=instrument_id,
            quantity=quantity,
            avg_price=book.cost_basis / quantity if quantity != 0.0 else 0.0,
            mark_price=book.mark,
            realized_pnl=book.realized_pnl,
            unrealized_pnl=quantity * book.mark - book.cost_basis,
        )

    def strategy_attribution(self) -> dict[str, StrategyAttribution]:
        """Per-strategy positions and PnL, keyed by strategy id in first-fill order.

        The realized PnL, unrealized PnL, fees and fill counts of all strategies sum to the
        account's, less the unrealized PnL of adopted inventory (:data:`ACCOUNT_LEDGER`), which
        belongs to the account and is left out.
        """
        details: dict[str, dict[str, PositionAttribution]] = {}
        for (strategy_id, instrument_id), position in self._strategy_positions.items():
            if strategy_id == ACCOUNT_LEDGER:
                continue
            mark = self._books[instrument_id].mark
            details.setdefault(strategy_id, {})[instrument_id] = PositionAttribution(
                strategy_id=strategy_id,
                instrument_id=instrument_id,
                quantity=position.quantity,
                avg_price=position.avg_price,
                mark_price=mark,
                realized_pnl=position.realized_pnl,
                unrealized_pnl=position.quantity * (mark - position.avg_price),
                fees=position.fees,
                fill_count=position.fill_count,
                funding=position.funding,
            )
        liquidations: dict[str, int] = {}
        for (strategy_id, _), position in self._strategy_positions.items():
            liquidations[strategy_id] = liquidations.get(strategy_id, 0) + position.liquidations
        return {
            strategy_id: StrategyAttribution(
                strategy_id=strategy_id,
                realized_pnl=math.fsum(p.realized_pnl for p in positions.values()),
                unrealized_pnl=math.fsum(p.unrealized_pnl for p in positions.values()),
                fees=math.fsum(p.fees for p in positions.values()),
                fill_count=sum(p.fill_count for p in positions.values()),
                positions=positions,
                funding=math.fsum(p.funding for p in positions.values()),
                liquidations=liquidations.get(strategy_id, 0),
            )
            for strategy_id, positions in details.items()
        }

    def build_snapshot(self) -> PortfolioSnapshot:
        """The account's state now, as sent to Risk."""
        now_ns = self._clock.now_ns()
        positions = []
        gross_exposure = net_exposure = unrealized_pnl = 0.0
        for instrument_id in self._traded_instruments:
            position = self._position_snapshot(instrument_id, now_ns)
            value = position.quantity * position.mark_price
            gross_exposure += abs(value)
            net_exposure += value
            unrealized_pnl += position.unrealized_pnl
            positions.append(position)
        return PortfolioSnapshot.trusted(
            ts_event_ns=now_ns,
            ts_init_ns=now_ns,
            cash=self._cash,
            equity=self._equity,
            gross_exposure=gross_exposure,
            net_exposure=net_exposure,
            realized_pnl=self._realized_pnl,
            unrealized_pnl=unrealized_pnl,
            fees=self._fees,
            peak_equity=self._peak_equity,
            drawdown=max(0.0, self._peak_equity - self._equity),
            day_start_equity=self._day_start_equity,
            positions=tuple(positions),
        )

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> PortfolioState:
        """The whole state (the equity curve as two lists)."""
        return PortfolioState(
            cash=self._cash,
            equity=self._equity,
            fees=self._fees,
            realized_pnl=self._realized_pnl,
            peak_equity=self._peak_equity,
            day_start_equity=self._day_start_equity,
            next_day_ns=self._next_day_ns,
            day_started=self._day_started,
            next_snapshot_ns=self._next_snapshot_ns,
            snapshot_band=(self._snapshot_low, self._snapshot_high),
            last_curve_ts_ns=self._last_curve_ts_ns,
            curve_ts_ns=self._curve_ts.tolist(),
            curve_equity=self._curve_equity.tolist(),
            marks={key: book.mark for key, book in self._books.items()},
            strategy_positions=[
                StrategyPositionState(
                    strategy_id=strategy_id,
                    instrument_id=instrument_id,
                    quantity=p.quantity,
                    avg_price=p.avg_price,
                    realized_pnl=p.realized_pnl,
                    fees=p.fees,
                    fill_count=p.fill_count,
                    funding=p.funding,
                    liquidations=p.liquidations,
                )
                for (strategy_id, instrument_id), p in self._strategy_positions.items()
            ],
            fills=list(self._fills),
            adopted_venues=sorted(self._adopted_venues),
            funding=self._funding,
            liquidations=self._liquidations,
        )

    def restore(self, state: PortfolioState) -> None:
        """Replace the whole state with one produced by :meth:`snapshot`.

        Raises:
            ConfigError: The state names an instrument this portfolio was not built with.
        """
        unknown = (set(state.marks) | {p.instrument_id for p in state.strategy_positions}) - set(
            self._books
        )
        if unknown:
            raise ConfigError(
                f"portfolio state holds instruments {sorted(unknown)} that are not configured; "
                f"configured: {sorted(self._books)}"
            )
        self._reset_state()
        self._cash = state.cash
        self._equity = state.equity
        self._fees = state.fees
        self._funding = state.funding
        self._liquidations = state.liquidations
        self._realized_pnl = state.realized_pnl
        self._peak_equity = state.peak_equity
        self._day_start_equity = state.day_start_equity
        self._next_day_ns = state.next_day_ns
        self._day_started = state.day_started
        self._next_snapshot_ns = state.next_snapshot_ns
        self._snapshot_low, self._snapshot_high = state.snapshot_band
        self._next_due_ns = min(self._next_day_ns, self._next_snapshot_ns)
        self._last_curve_ts_ns = state.last_curve_ts_ns
        self._curve_ts = array("q", state.curve_ts_ns)
        self._curve_equity = array("d", state.curve_equity)
        for key, mark in state.marks.items():
            self._books[key].mark = mark
        for item in state.strategy_positions:
            position = _StrategyPosition()
            position.quantity = item.quantity
            position.avg_price = item.avg_price
            position.realized_pnl = item.realized_pnl
            position.fees = item.fees
            position.fill_count = item.fill_count
            position.funding = item.funding
            position.liquidations = item.liquidations
            self._strategy_positions[(item.strategy_id, item.instrument_id)] = position
            self._books[item.instrument_id].strategy_positions[item.strategy_id] = position
        for book in self._books.values():
            book.recompute()
        self._traded_instruments = sorted(
            key for key, book in self._books.items() if book.strategy_positions
        )
        self._fills = list(state.fills)
        self._fill_ids = {fill.fill_id for fill in self._fills}
        # A state written before balances were adopted is authoritative at every venue.
        every_venue = sorted({i.venue for i in self._instruments.values()})
        adopted = state.adopted_venues
        self._adopted_venues = set(every_venue if adopted is None else adopted)
        self._unpriced_inventory = {
            key
            for key, book in self._books.items()
            if book.mark == 0.0 and ACCOUNT_LEDGER in book.strategy_positions
        }
