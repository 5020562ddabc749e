"""A simulated venue: matches orders against bars, trade ticks or quotes.

The venue sees market data before any strategy does (the router delivers it here first), so on
each update it first fills working orders against that update and only then keeps it as the
reference price for orders that arrive afterwards. Nothing can fill against data that was not
yet known when the order was sent.

Matching rules, by the kind of the latest market data for the instrument:

* **Bars.** A market order fills at the next bar's open (``fill_at: next_open``) or, with
  ``fill_at: close``, on acceptance at the close of the bar that produced the signal. A limit
  order that is marketable against the last close on arrival takes liquidity at
  ``min(limit, close)`` (buy) / ``max(limit, close)`` (sell). A resting buy limit fills as maker
  at its limit price once a later bar trades strictly below it (``low < limit``), even if that
  bar opened below it; sells mirror this with ``high > limit``.
* **Trade ticks.** A market order fills at the next trade's price. A resting buy limit fills at
  its limit price when a trade prints strictly below it (sells: above). Marketability on
  arrival is judged against the last trade price.
* **Quotes.** A market order fills at the touch (ask for a buy, bid for a sell), on arrival if
  a quote is known, else on the next quote. A resting buy limit fills at its limit price when
  the ask drops strictly below it (sells: the bid rises above it). Marketability on arrival is
  judged against the touch.

One order fills at most ``max_volume_share`` of an update's volume (bar volume, trade size, or
size at the touch); the rest keeps working on later updates. Fill quantities are floored to the
instrument's lot. Taker fills pay slippage (see :mod:`tradegraph.execution.fill_models`); maker
fills never do. IOC orders get one chance to fill (on arrival for a limit order, at the first
fill opportunity for a market order) and the rest is cancelled. FOK orders get the same one
chance but fill only in full: if the volume cap or the account would cut the fill, the whole
order is cancelled unfilled. Remainders of marketable GTC limit orders rest in the book and
from then on fill as maker. A GTD order rests like a GTC one; Risk cancels it when it expires.

The venue trades market and limit orders only; stops, take-profits, trailing stops and
contingent orders are held by Risk until they trigger (:mod:`tradegraph.execution.emulator`)
and reach the venue as the plain order they become. A conditional type that arrives anyway is
rejected as an invalid order.

With ``latency_ms > 0`` submits and cancels reach the venue that much later: they are held
under a clock timer and acted on when it fires. Validation happens when a command reaches the
venue. The venue does not enforce ``reduce_only`` (it keeps no positions; Risk does).

With a cash account (``account``), the venue refuses what the account cannot pay, as a spot
exchange does: a submit whose reservation (see :mod:`tradegraph.portfolio.account`; a market
buy valued at the touch raised by the account's buffer) exceeds the free balance is rejected
with ``insufficient_balance: ...``. A fill that would cost more than the order's reservation
plus the free balance (a market buy filling far above its valuation) is cut to the lots the
account can pay, and the rest of the order is cancelled with the same code; so is the rest of
an order whose fill left the open orders reserving more than the account holds.

With a margin account (:class:`~tradegraph.portfolio.margin.MarginAccount`), a submit whose
initial margin plus fee exceeds free margin is rejected with ``insufficient_margin: ...``; a
sell with no position opens a short. The venue keeps each strategy's net position per
instrument and, on every bar, trade or quote of an instrument held:

* **Funding.** Each funding event of the instrument's series (``data.funding``) due at or before
  the update's time is applied to the positions held then, at the event's ``mark_price``, or,
  without one, at the mark proxy: the last close, trade price or quote mid known at the funding
  time (the update's own when it closes exactly then, else the one before it). Each strategy
  pays ``quantity * contract_size * mark * rate`` (``FundingPaid``; negative: it receives).
  Every event is also announced as a ``FundingRate`` to the instrument's subscribers, held
  or not, so a strategy can trade on the rate.
* **Liquidation.** The account is tested with the instrument marked at the update's adverse
  extreme for the net position (a bar's low for a long, its high for a short; a trade's price;
  a quote's bid for a long, ask for a short). If equity is then below maintenance margin, the
  venue cancels the instrument's open orders and closes every strategy's position in it at
  that adverse price, charging ``liquidation_fee`` of the notional (at most what the account's
  equity still holds, as an exchange takes it from the remaining margin): an ``OrderFilled`` tagged
  ``liquidation`` (client order id ``{venue}-L########``) then a ``PositionLiquidated`` for each.
  Closing at the adverse extreme rather than at the bankruptcy price is deliberately
  conservative: the loss is never smaller than an exchange would book.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from tradegraph.config.models import FillAt, VenueConfig
from tradegraph.contracts import (
    AccountKind,
    Bar,
    CancelOrder,
    Clock,
    FundingPaid,
    FundingRate,
    Instrument,
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    Outbox,
    PositionLiquidated,
    QuoteTick,
    SubmitOrder,
    TimeInForce,
    TimerFired,
    TradeTick,
    VenueReason,
    broker_id,
)
from tradegraph.contracts.state import ComponentState, StateRecord
from tradegraph.execution.fill_models import (
    SlippageModel,
    apply_slippage,
    build_slippage_model,
    fee_rate,
    fill_fee,
)
from tradegraph.execution.funding import FundingSeries
from tradegraph.portfolio.account import CashAccount
from tradegraph.portfolio.margin import Account, AccountState, MarginAccount, restore_account

__all__ = [
    "CANCEL_REQUESTED",
    "FOK_UNFILLED",
    "IOC_REMAINDER",
    "LIQUIDATION_TAG",
    "NATIVE_ORDER_TYPES",
    "POST_ONLY_WOULD_TAKE",
    "SimulatedVenue",
    "WorkingOrder",
]

IOC_REMAINDER = "ioc remainder"
"""``OrderCancelled.reason`` for the unfilled part of an IOC order."""

FOK_UNFILLED = "fok could not fill in full"
"""``OrderCancelled.reason`` for a fill-or-kill order that could not fill entirely at once."""

NATIVE_ORDER_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
"""Order types the simulated venue trades itself; Risk emulates every other type."""

_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)

POST_ONLY_WOULD_TAKE = "post-only order would take liquidity"
"""``OrderRejected.reason`` for a post-only order that is marketable on arrival."""

CANCEL_REQUESTED = "cancel requested"
"""``OrderCancelled.reason`` when the ``CancelOrder`` gave none."""

LIQUIDATION_TAG = "liquidation"
"""``OrderFilled.tag`` of the fills that close a liquidated position."""

_ACCEPT_TIMER = "accept:"
_CANCEL_TIMER = "cancel:"
_NS_PER_MS = 1_000_000
# Leaves are re-rounded after each fill so that float subtraction noise never leaves a
# phantom remainder; 12 decimals is far below any lot size and far above float noise.
_QTY_DECIMALS = 12

_Reference = Bar | TradeTick | QuoteTick


@dataclass(slots=True)
class WorkingOrder:
    """An order the venue has accepted and that is still open.

    Attributes:
        client_order_id: The id Risk gave the order.
        venue_order_id: The venue's id, ``"{venue}-{n:08d}"``.
        strategy_id: Owner of the order.
        instrument_id: What it trades.
        side: Buy or sell.
        quantity: Original quantity.
        order_type: Market or limit.
        limit_price: Limit price, ``None`` for a market order.
        time_in_force: GTC, IOC, FOK or GTD.
        post_only: Whether the order may only add liquidity.
        tag: Free text carried onto fills.
        accepted_ns: Sim time of acceptance.
        filled_qty: Quantity filled so far.
        leaves_qty: Quantity still open; ``filled_qty + leaves_qty == quantity``.
    """

    client_order_id: str
    venue_order_id: str
    strategy_id: str
    instrument_id: str
    side: OrderSide
    quantity: float
    order_type: OrderType
    limit_price: float | None
    time_in_force: TimeInForce
    post_only: bool
    tag: str
    accepted_ns: int
    filled_qty: float
    leaves_qty: float

    def to_state(self) -> WorkingOrderState:
        """The order as a state record."""
        return WorkingOrderState(
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            strategy_id=self.strategy_id,
            instrument_id=self.instrument_id,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
            time_in_force=self.time_in_force,
            post_only=self.post_only,
            tag=self.tag,
            accepted_ns=self.accepted_ns,
            filled_qty=self.filled_qty,
            leaves_qty=self.leaves_qty,
        )

    @classmethod
    def from_state(cls, state: WorkingOrderState) -> WorkingOrder:
        """Inverse of :meth:`to_state`."""
        return cls(**dict(state))


class WorkingOrderState(StateRecord):
    """A :class:`WorkingOrder` as stored."""

    client_order_id: str
    venue_order_id: str
    strategy_id: str
    instrument_id: str
    side: OrderSide
    quantity: float
    order_type: OrderType
    limit_price: float | None
    time_in_force: TimeInForce
    post_only: bool
    tag: str
    accepted_ns: int
    filled_qty: float
    leaves_qty: float


class InFlightCommand(StateRecord):
    """A command sent to the venue that has not arrived yet, and the timer that delivers it."""

    timer: str
    due_ns: int
    command: SubmitOrder | CancelOrder


class VenueState(ComponentState):
    """All of a :class:`SimulatedVenue`'s state.

    Attributes:
        orders: Working orders.
        in_flight: Commands still travelling (only with latency).
        last_data: The latest bar, trade or quote of each instrument.
        seen_client_order_ids: Every client order id the venue has been sent.
        order_count: Orders accepted (numbers venue order ids).
        fill_count: Fills made (numbers fill ids).
        timer_count: Timers set for repeated commands of one order.
        ignored_cancels: Cancels of unknown or finished orders.
        account: The account, if the venue keeps one.
        marks: Latest mark per instrument (margin accounts only).
        strategy_positions: Each strategy's net position per instrument (margin accounts).
        funding_next: Index of the next funding event due, per instrument.
        liquidations: Positions liquidated so far.
    """

    orders: list[WorkingOrderState]
    in_flight: list[InFlightCommand]
    last_data: list[Bar | TradeTick | QuoteTick]
    seen_client_order_ids: list[str]
    order_count: int
    fill_count: int
    timer_count: int
    ignored_cancels: int
    account: AccountState | None
    marks: dict[str, float] = {}
    strategy_positions: dict[str, dict[str, float]] = {}
    funding_next: dict[str, int] = {}
    liquidations: int = 0


@dataclass(frozen=True, slots=True)
class _Listing:
    """An instrument as this venue trades it, with its fee rates resolved once."""

    instrument: Instrument
    maker_rate: float
    taker_rate: float


class SimulatedVenue:
    """The broker component of a backtest or paper session: a matching engine for one venue.

    Receives ``SubmitOrder``, ``CancelOrder``, market data (``Bar``, ``TradeTick``,
    ``QuoteTick``) and ``TimerFired``; publishes ``OrderAccepted``, ``OrderRejected``,
    ``OrderCancelled`` and ``OrderFilled``. See the module docstring for the matching rules.

    Args:
        config: The venue's configuration (name, fill timing, slippage, latency, volume cap,
            fee overrides).
        instruments: Instruments keyed by ``instrument_id``; those of other venues are ignored.
        clock: Source of time and timers.
        outbox: Where events go.
        account: The account orders are paid from (cash or margin); ``None``: balances are
            not checked.
        funding: Funding events per perpetual instrument id, as ``(ts_ns, rate, mark_price)``
            columns (NaN mark: use the venue's own); only used with a margin account.

    Attributes:
        component_id: ``"broker:{venue}"``.
        venue: The venue name orders must carry.
        ignored_cancels: Cancels for unknown or already finished orders (nothing is emitted
            for them).
    """

    State: ClassVar[type[VenueState]] = VenueState

    def __init__(
        self,
        config: VenueConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
        *,
        account: Account | None = None,
        funding: Mapping[str, FundingSeries] | None = None,
    ) -> None:
        self.component_id = broker_id(config.name)
        self._account = account
        # The kind-specific paths test one attribute each; a cash venue never enters the margin
        # code and pays one failed test per market-data message for it.
        self._cash: CashAccount | None = account if isinstance(account, CashAccount) else None
        self._margin: MarginAccount | None = account if isinstance(account, MarginAccount) else None
        self._marks: dict[str, float] = {}
        self._strategy_positions: dict[str, dict[str, float]] = {}
        self._funding: dict[str, FundingSeries] = dict(funding or {})
        self._funding_next: dict[str, int] = {}
        self._liquidation_count = 0
        # (client order id, asset, amount per unit) of the submit the balance check just priced.
        self._priced: tuple[str, str, float] | None = None
        if self._margin is not None:
            self._margin.use_marks(self._marks)
        # The margin account's safe bands (the same dict, cleared in place by the account), or
        # ``None`` without a margin account: the per-bar test reads one attribute either way.
        self._bands: dict[str, tuple[float, float]] | None = (
            None if self._margin is None else self._margin.bands
        )
        self._funded = frozenset(self._funding)
        self.venue = config.name
        self._config = config
        self._clock = clock
        self._outbox = outbox
        self._fill_at_close = config.fill_at is FillAt.CLOSE
        self._latency_ns = round(config.latency_ms * _NS_PER_MS)
        self._volume_share = config.max_volume_share
        self._slippage: SlippageModel = build_slippage_model(config.slippage)
        self._listings: dict[str, _Listing] = {
            iid: _Listing(
                instrument=inst,
                maker_rate=fee_rate(inst, LiquiditySide.MAKER, config),
                taker_rate=fee_rate(inst, LiquiditySide.TAKER, config),
            )
            for iid, inst in instruments.items()
            if inst.venue == config.name
        }
        # Open orders in acceptance order, which is also matching priority.
        self._orders: dict[str, WorkingOrder] = {}
        # The same orders by instrument; an instrument with no open order has no entry, so a
        # bar for it costs one failed dict lookup.
        self._books: dict[str, dict[str, WorkingOrder]] = {}
        # Latest market-data message per instrument: the reference for orders that arrive.
        self._last_data: dict[str, _Reference] = {}
        # Commands still travelling to the venue, by timer name: (due time, command).
        self._in_flight: dict[str, tuple[int, SubmitOrder | CancelOrder]] = {}
        self._seen_client_ids: set[str] = set()
        self._order_count = 0
        self._fill_count = 0
        self._timer_count = 0
        self.ignored_cancels = 0

    # ----------------------------------------------------------------------------- protocol

    def handle(self, msg: Message) -> None:
        """Process one message; anything this venue does not trade on is ignored."""
        if type(msg) is Bar:
            iid = msg.instrument_id
            book = self._books.get(iid)
            if book is not None:
                self._match_bar(book, msg)
            bands = self._bands
            if bands is not None:
                if iid in self._funded:
                    self._margin_update(self._margin, iid, msg, msg.close)  # type: ignore[arg-type]
                else:
                    # The per-bar path of a margin venue, inline: a new mark, and the
                    # liquidation test only when a wick leaves the account's safe band.
                    self._marks[iid] = msg.close
                    band = bands.get(iid)
                    if band is None:
                        band = self._margin.safe_band(iid)  # type: ignore[union-attr]
                    if not band[0] < msg.low <= msg.high < band[1]:
                        self._margin_check(self._margin, iid, msg)  # type: ignore[arg-type]
            self._last_data[iid] = msg
            return
        if type(msg) is TradeTick:
            iid = msg.instrument_id
            book = self._books.get(iid)
            if book is not None:
                self._match_trade(book, msg)
            if self._margin is not None:
                self._margin_update(self._margin, iid, msg, msg.price)
            self._last_data[iid] = msg
            return
        if type(msg) is QuoteTick:
            iid = msg.instrument_id
            book = self._books.get(iid)
            if book is not None:
                self._match_quote(book, msg)
            if self._margin is not None:
                self._margin_update(self._margin, iid, msg, msg.mid)
            self._last_data[iid] = msg
            return
        if type(msg) is SubmitOrder:
            if self._latency_ns > 0:
                self._send_in_flight(msg, _ACCEPT_TIMER)
            else:
                self._arrive_submit(msg)
        elif type(msg) is CancelOrder:
            if self._latency_ns > 0:
                self._send_in_flight(msg, _CANCEL_TIMER)
            else:
                self._arrive_cancel(msg)
        elif type(msg) is TimerFired:
            self._on_timer(msg)

    def start(self) -> None:
        """Nothing to do: the venue is ready once built."""

    def stop(self) -> None:
        """Nothing to do: open orders stay as they are, so a snapshot still shows them."""

    @property
    def open_orders(self) -> Mapping[str, WorkingOrder]:
        """Accepted orders that are neither filled nor cancelled, by client order id (read-only)."""
        return MappingProxyType(self._orders)

    @property
    def account(self) -> Account | None:
        """The account orders are paid from, if balances are checked (do not modify)."""
        return self._account

    @property
    def liquidation_count(self) -> int:
        """Strategy positions this venue has liquidated."""
        return self._liquidation_count

    @property
    def strategy_positions(self) -> Mapping[str, Mapping[str, float]]:
        """Each strategy's net position per instrument (margin accounts only; read-only)."""
        return MappingProxyType(self._strategy_positions)

    @property
    def in_flight_count(self) -> int:
        """Submits and cancels sent but not yet arrived (only with latency)."""
        return len(self._in_flight)

    def snapshot(self) -> VenueState:
        """Everything the venue knows."""
        return VenueState(**self._state_fields())

    def _state_fields(self) -> dict[str, Any]:
        return {
            "orders": [order.to_state() for order in self._orders.values()],
            "in_flight": [
                InFlightCommand(timer=name, due_ns=due_ns, command=cmd)
                for name, (due_ns, cmd) in self._in_flight.items()
            ],
            "last_data": list(self._last_data.values()),
            "seen_client_order_ids": sorted(self._seen_client_ids),
            "order_count": self._order_count,
            "fill_count": self._fill_count,
            "timer_count": self._timer_count,
            "ignored_cancels": self.ignored_cancels,
            "account": None if self._account is None else self._account.snapshot(),
            "marks": dict(self._marks),
            "strategy_positions": {k: dict(v) for k, v in self._strategy_positions.items()},
            "funding_next": dict(self._funding_next),
            "liquidations": self._liquidation_count,
        }

    def restore(self, state: VenueState) -> None:
        """Replace all state with a :meth:`snapshot`; re-arms timers of commands in flight."""
        self._orders = {}
        self._books = {}
        for order in state.orders:
            self._add_working(WorkingOrder.from_state(order))
        self._last_data = {data.instrument_id: data for data in state.last_data}
        for name in self._in_flight:
            self._clock.cancel_timer(name)
        self._in_flight = {}
        now = self._clock.now_ns()
        for travelling in state.in_flight:
            self._in_flight[travelling.timer] = (travelling.due_ns, travelling.command)
            # Setting a timer replaces one of the same name, so this is harmless when the
            # clock kept its timers and necessary when it did not.
            self._clock.set_timer(travelling.timer, max(travelling.due_ns, now))
        self._seen_client_ids = set(state.seen_client_order_ids)
        self._order_count = state.order_count
        self._fill_count = state.fill_count
        self._timer_count = state.timer_count
        self.ignored_cancels = state.ignored_cancels
        if self._account is not None and state.account is not None:
            restore_account(self._account, state.account)
        self._marks.clear()
        self._marks.update(state.marks)
        self._strategy_positions = {k: dict(v) for k, v in state.strategy_positions.items()}
        self._funding_next = dict(state.funding_next)
        self._liquidation_count = state.liquidations

    # ----------------------------------------------------------------------------- commands

    def _send_in_flight(self, cmd: SubmitOrder | CancelOrder, prefix: str) -> None:
        """Hold ``cmd`` until it reaches the venue, ``latency_ms`` from now."""
        name = prefix + cmd.client_order_id
        if name in self._in_flight:
            # A second command for the same order while the first is still travelling.
            self._timer_count += 1
            name = f"{name}#{self._timer_count}"
        due_ns = self._clock.now_ns() + self._latency_ns
        self._in_flight[name] = (due_ns, cmd)
        self._clock.set_timer(name, due_ns)

    def _on_timer(self, msg: TimerFired) -> None:
        entry = self._in_flight.pop(msg.name, None)
        if entry is not None:
            self._arrive(entry[1])

    def _arrive(self, cmd: SubmitOrder | CancelOrder) -> None:
        if isinstance(cmd, SubmitOrder):
            self._arrive_submit(cmd)
        else:
            self._arrive_cancel(cmd)

    def _arrive_submit(self, cmd: SubmitOrder) -> None:
        cid = cmd.client_order_id
        if cid in self._seen_client_ids:
            self._reject(cmd, VenueReason.DUPLICATE_ORDER, f"duplicate client_order_id {cid!r}")
            return
        self._seen_client_ids.add(cid)
        refusal = self._validate(cmd)
        if refusal is not None:
            self._reject(cmd, *refusal)
            return
        listing = self._listings[cmd.instrument_id]
        reference = self._last_data.get(cmd.instrument_id)
        if self._account is not None:
            problem = self._check_balance(self._account, cmd, reference)
            if problem is not None:
                code = (
                    VenueReason.INSUFFICIENT_MARGIN
                    if self._account.kind is AccountKind.MARGIN
                    else VenueReason.INSUFFICIENT_BALANCE
                )
                self._reject(cmd, code, problem)
                return
        if cmd.order_type is OrderType.LIMIT:
            self._arrive_limit(cmd, listing, reference)
        else:
            self._arrive_market(cmd, listing, reference)

    def _check_balance(
        self, account: Account, cmd: SubmitOrder, reference: _Reference | None
    ) -> str | None:
        """Why the account cannot pay for ``cmd`` (as an ``OrderRejected.reason``), or ``None``.

        Nothing is reserved here: :meth:`_accept` reserves what this priced once the order is
        on the book.
        """
        code = (
            VenueReason.INSUFFICIENT_MARGIN
            if account.kind is AccountKind.MARGIN
            else VenueReason.INSUFFICIENT_BALANCE
        )
        price = cmd.limit_price
        if price is None:
            touch = _touch(reference, cmd.side is OrderSide.BUY)
            if touch is None:
                return (
                    f"{code.value}: no market price yet to value "
                    f"a market {cmd.side.value} of {cmd.instrument_id} against the account"
                )
            price = touch[0]
        asset, unit_amount = account.order_cost(
            cmd.instrument_id, cmd.side, price, cmd.quantity, market=cmd.limit_price is None
        )
        shortfall = account.shortfall(asset, unit_amount * cmd.quantity)
        if shortfall is None:
            # Priced now, against the same reference and account: _accept reserves this.
            self._priced = (cmd.client_order_id, asset, unit_amount)
            return None
        return (
            f"{code.value}: {cmd.side.value} {cmd.quantity:.10g} "
            f"{cmd.instrument_id} {shortfall.describe(self.venue)}"
        )

    def _validate(self, cmd: SubmitOrder) -> tuple[VenueReason, str] | None:
        """Why ``cmd`` cannot be accepted whatever the market does, or ``None``."""
        if cmd.venue != self.venue or cmd.instrument_id not in self._listings:
            return (
                VenueReason.UNKNOWN_INSTRUMENT,
                f"unknown instrument {cmd.instrument_id!r} on venue {self.venue!r}",
            )
        invalid = VenueReason.INVALID_ORDER
        if cmd.order_type not in NATIVE_ORDER_TYPES:
            return invalid, (
                f"the simulated venue trades market and limit orders, not {cmd.order_type.value}"
            )
        if not (math.isfinite(cmd.quantity) and cmd.quantity > 0.0):
            return invalid, f"quantity must be a finite number > 0, was {cmd.quantity!r}"
        if cmd.order_type is OrderType.LIMIT:
            limit = cmd.limit_price
            if limit is None or not (math.isfinite(limit) and limit > 0.0):
                return invalid, f"a limit order needs a finite limit_price > 0, was {limit!r}"
        else:
            if cmd.limit_price is not None:
                return invalid, "a market order takes no limit_price"
            if cmd.post_only:
                return invalid, "post_only applies to limit orders only"
        if cmd.post_only and cmd.time_in_force is TimeInForce.IOC:
            return invalid, "post_only and IOC contradict each other"
        if cmd.post_only and cmd.time_in_force is TimeInForce.FOK:
            return invalid, "post_only and FOK contradict each other"
        return None

    def _arrive_limit(
        self, cmd: SubmitOrder, listing: _Listing, reference: _Reference | None
    ) -> None:
        limit = cmd.limit_price
        assert limit is not None  # checked by _validate
        is_buy = cmd.side is OrderSide.BUY
        touch = _touch(reference, is_buy)
        marketable = touch is not None and (limit >= touch[0] if is_buy else limit <= touch[0])
        if marketable and cmd.post_only:
            self._reject(cmd, VenueReason.POST_ONLY_WOULD_TAKE, POST_ONLY_WOULD_TAKE)
            return
        order = self._accept(cmd)
        if touch is not None and marketable:
            price = min(limit, touch[0]) if is_buy else max(limit, touch[0])
            self._fill(order, listing, price, touch[1], LiquiditySide.TAKER)
        if order.leaves_qty > 0.0 and order.time_in_force in _IMMEDIATE:
            self._end_immediate(order)

    def _arrive_market(
        self, cmd: SubmitOrder, listing: _Listing, reference: _Reference | None
    ) -> None:
        order = self._accept(cmd)
        # Only a quote (standing liquidity) or, with fill_at=close, the signal bar is a price
        # the order can take at once; otherwise it waits for the next update.
        if type(reference) is QuoteTick or (type(reference) is Bar and self._fill_at_close):
            touch = _touch(reference, cmd.side is OrderSide.BUY)
            assert touch is not None
            self._fill_market(order, listing, touch[0], touch[1])

    def _arrive_cancel(self, cmd: CancelOrder) -> None:
        cid = cmd.client_order_id
        reason = cmd.reason or CANCEL_REQUESTED
        order = self._orders.get(cid)
        if order is not None:
            self._cancel(order, reason)
            return
        for name, (_, pending) in self._in_flight.items():
            if isinstance(pending, SubmitOrder) and pending.client_order_id == cid:
                # The order is still on its way: it will never reach the book.
                del self._in_flight[name]
                self._clock.cancel_timer(name)
                self._seen_client_ids.add(cid)
                self._publish_cancelled(
                    cid, pending.strategy_id, pending.instrument_id, reason=reason
                )
                return
        self.ignored_cancels += 1

    # ----------------------------------------------------------------------------- matching

    def _match_bar(self, book: dict[str, WorkingOrder], bar: Bar) -> None:
        listing = self._listings[bar.instrument_id]
        bar_open_ns = bar.ts_event_ns - bar.interval_ns
        for order in list(book.values()):
            if order.accepted_ns > bar_open_ns:
                # The bar began before the order reached the venue (it came between bars, by
                # a timer or after latency): its prices may predate the order, so it waits for
                # the first bar that opens after it.
                continue
            if order.order_type is OrderType.MARKET:
                self._fill_market(order, listing, bar.open, bar.volume)
                continue
            limit = order.limit_price
            assert limit is not None
            # Strictly through: touching the limit is no evidence that the queue ahead of
            # the order was consumed.
            if bar.low < limit if order.side is OrderSide.BUY else bar.high > limit:
                self._fill(order, listing, limit, bar.volume, LiquiditySide.MAKER)

    def _match_trade(self, book: dict[str, WorkingOrder], trade: TradeTick) -> None:
        listing = self._listings[trade.instrument_id]
        for order in list(book.values()):
            if order.order_type is OrderType.MARKET:
                self._fill_market(order, listing, trade.price, trade.size)
                continue
            limit = order.limit_price
            assert limit is not None
            if trade.price < limit if order.side is OrderSide.BUY else trade.price > limit:
                self._fill(order, listing, limit, trade.size, LiquiditySide.MAKER)

    def _match_quote(self, book: dict[str, WorkingOrder], quote: QuoteTick) -> None:
        listing = self._listings[quote.instrument_id]
        for order in list(book.values()):
            is_buy = order.side is OrderSide.BUY
            if order.order_type is OrderType.MARKET:
                if is_buy:
                    self._fill_market(order, listing, quote.ask_price, quote.ask_size)
                else:
                    self._fill_market(order, listing, quote.bid_price, quote.bid_size)
                continue
            limit = order.limit_price
            assert limit is not None
            if is_buy and quote.ask_price < limit:
                self._fill(order, listing, limit, quote.ask_size, LiquiditySide.MAKER)
            elif not is_buy and quote.bid_price > limit:
                self._fill(order, listing, limit, quote.bid_size, LiquiditySide.MAKER)

    def _fill_market(
        self, order: WorkingOrder, listing: _Listing, price: float, volume: float
    ) -> None:
        """One fill opportunity for a market order; an IOC or FOK order gets no other."""
        self._fill(order, listing, price, volume, LiquiditySide.TAKER)
        if order.leaves_qty > 0.0 and order.time_in_force in _IMMEDIATE:
            self._end_immediate(order)

    def _end_immediate(self, order: WorkingOrder) -> None:
        """Cancel what an IOC or FOK order left after its one chance (unless already ended)."""
        if order.client_order_id in self._orders:
            fok = order.time_in_force is TimeInForce.FOK
            self._cancel(order, FOK_UNFILLED if fok else IOC_REMAINDER)

    def _fill(
        self,
        order: WorkingOrder,
        listing: _Listing,
        price: float,
        volume: float,
        liquidity: LiquiditySide,
    ) -> None:
        """Fill as much of ``order`` as the volume cap allows, at ``price`` before slippage."""
        leaves = order.leaves_qty
        capacity = self._volume_share * volume
        if capacity >= leaves:
            quantity = leaves
        else:
            if order.time_in_force is TimeInForce.FOK:
                self._cancel(order, FOK_UNFILLED)
                return
            quantity = min(listing.instrument.round_quantity(capacity), leaves)
            if quantity <= 0.0:
                return
        if liquidity is LiquiditySide.TAKER:
            bps = self._slippage.slippage_bps(quantity, volume)
            price = apply_slippage(price, order.side, bps, listing.instrument)
            limit = order.limit_price
            if limit is not None:
                # Slippage never pushes a limit order past its limit.
                price = min(price, limit) if order.side is OrderSide.BUY else max(price, limit)
            rate = listing.taker_rate
        else:
            rate = listing.maker_rate
        short_of_balance = False
        account = self._cash
        if account is not None:
            affordable = self._affordable(account, order, listing, quantity, price, rate)
            if affordable < quantity:
                if order.time_in_force is TimeInForce.FOK:
                    self._cancel(order, FOK_UNFILLED)
                    return
                short_of_balance = True
                quantity = affordable
                if quantity <= 0.0:
                    self._cancel(
                        order,
                        self._unpaid_reason(account, order, listing),
                        VenueReason.INSUFFICIENT_BALANCE,
                    )
                    return
        leaves = 0.0 if quantity >= leaves else round(leaves - quantity, _QTY_DECIMALS)
        order.leaves_qty = leaves
        order.filled_qty = round(order.quantity - leaves, _QTY_DECIMALS)
        self._fill_count += 1
        now = self._clock.now_ns()
        self._outbox.publish(
            OrderFilled.trusted(
                ts_event_ns=now,
                ts_init_ns=now,
                fill_id=f"{self.venue}-F{self._fill_count:08d}",
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
                side=order.side,
                last_qty=quantity,
                last_px=price,
                fee=fill_fee(quantity, price, rate),
                liquidity=liquidity,
                leaves_qty=leaves,
                tag=order.tag,
            )
        )
        if account is not None:
            account.apply_fill(
                order.client_order_id,
                order.instrument_id,
                order.side,
                quantity,
                price,
                fill_fee(quantity, price, rate),
                leaves,
            )
        elif self._margin is not None:
            self._margin.apply_fill(
                order.client_order_id,
                order.instrument_id,
                order.side,
                quantity,
                price,
                fill_fee(quantity, price, rate),
                leaves,
            )
            self._move_position(
                order.strategy_id,
                order.instrument_id,
                quantity if order.side is OrderSide.BUY else -quantity,
                listing.instrument,
            )
        if leaves <= 0.0:
            self._remove_working(order)
        elif account is not None and (
            short_of_balance or self._overcommitted(account, order, listing)
        ):
            self._cancel(
                order,
                self._unpaid_reason(account, order, listing),
                VenueReason.INSUFFICIENT_BALANCE,
            )

    @staticmethod
    def _overcommitted(account: CashAccount, order: WorkingOrder, listing: _Listing) -> bool:
        """Whether the open orders now reserve more than the account holds: a market buy that
        filled above its valuation spent some of what its rest had reserved. Its rest is then
        cancelled, which brings the reservations back within the balance."""
        instrument = listing.instrument
        asset = instrument.quote if order.side is OrderSide.BUY else instrument.base
        return account.shortfall(asset, 0.0) is not None

    @staticmethod
    def _affordable(
        account: CashAccount,
        order: WorkingOrder,
        listing: _Listing,
        quantity: float,
        price: float,
        rate: float,
    ) -> float:
        """The part of a ``quantity`` fill at ``price`` the account can pay, floored to the lot.

        What the order reserved is its own to spend; beyond that only the free balance is.
        """
        instrument = listing.instrument
        oid = order.client_order_id
        if order.side is OrderSide.BUY:
            asset = instrument.quote
            unit_cost = price * (1.0 + rate)
        else:
            asset = instrument.base
            unit_cost = 1.0
        available = account.free(asset) + account.reservation(oid)
        if account.shortfall(asset, quantity * unit_cost - account.reservation(oid)) is None:
            return quantity
        if unit_cost <= 0.0:
            return quantity
        return min(quantity, instrument.round_quantity(max(available, 0.0) / unit_cost))

    def _unpaid_reason(
        self, account: CashAccount | None, order: WorkingOrder, listing: _Listing
    ) -> str:
        asset = listing.instrument.quote if order.side is OrderSide.BUY else listing.instrument.base
        free = (
            0.0
            if account is None
            else account.free(asset) + account.reservation(order.client_order_id)
        )
        return (
            f"{VenueReason.INSUFFICIENT_BALANCE.value}: the account at {self.venue} cannot pay "
            f"for the rest ({order.leaves_qty:.10g}) of {order.side.value} "
            f"{order.instrument_id}; {free:.10g} {asset} available"
        )

    # ----------------------------------------------------------------------------- margin

    def _move_position(
        self, strategy_id: str, instrument_id: str, signed_qty: float, instrument: Instrument
    ) -> None:
        held = self._strategy_positions.get(instrument_id)
        if held is None:
            held = self._strategy_positions[instrument_id] = {}
        after = round(held.get(strategy_id, 0.0) + signed_qty, _QTY_DECIMALS)
        if abs(after) < instrument.lot_size * 1e-6:
            held.pop(strategy_id, None)
            if not held:
                del self._strategy_positions[instrument_id]
        else:
            held[strategy_id] = after

    def _margin_update(
        self, account: MarginAccount, instrument_id: str, msg: _Reference, mark: float
    ) -> None:
        """A new mark for ``instrument_id``: funding that fell due, then the liquidation test."""
        before = self._marks.get(instrument_id)
        self._marks[instrument_id] = mark
        series = self._funding.get(instrument_id)
        if series is not None:
            self._apply_funding(account, instrument_id, series, msg.ts_event_ns, before, mark)
        self._margin_check(account, instrument_id, msg)

    def _margin_check(self, account: MarginAccount, instrument_id: str, msg: _Reference) -> None:
        """Liquidate the instrument's positions if the maintenance rule says so."""
        held = account.position(instrument_id)
        if held == 0.0:
            return
        adverse = _adverse_price(msg, held > 0.0)
        low, high = account.bands.get(instrument_id) or account.safe_band(instrument_id)
        if low < adverse < high:
            return
        breach = account.below_maintenance(instrument_id, adverse)
        if breach is not None:
            self._liquidate(account, instrument_id, adverse, *breach)

    def _apply_funding(
        self,
        account: MarginAccount,
        instrument_id: str,
        series: FundingSeries,
        now_ns: int,
        before: float | None,
        mark: float,
    ) -> None:
        index = self._funding_next.get(instrument_id, 0)
        end = len(series)
        if index >= end or series.ts_ns[index] > now_ns:
            return
        instrument = self._listings[instrument_id].instrument
        while index < end and series.ts_ns[index] <= now_ns:
            at_ns = series.ts_ns[index]
            price = series.mark_at(index)
            if price is None:
                # The mark proxy: the latest price known at the funding time.
                price = mark if at_ns == now_ns or before is None else before
            rate = series.rate[index]
            # The rate is announced whether anyone holds the perpetual or not: strategies that
            # trade on funding (a carry) learn it here.
            self._outbox.publish(
                FundingRate(
                    ts_event_ns=at_ns,
                    ts_init_ns=now_ns,
                    instrument_id=instrument_id,
                    rate=rate,
                    mark_price=price,
                )
            )
            held = self._strategy_positions.get(instrument_id, {})
            for strategy_id, quantity in list(held.items()):
                amount = quantity * instrument.contract_size * price * rate
                account.apply_funding(instrument_id, amount)
                self._outbox.publish(
                    FundingPaid(
                        ts_event_ns=now_ns,
                        ts_init_ns=now_ns,
                        strategy_id=strategy_id,
                        instrument_id=instrument_id,
                        venue=self.venue,
                        amount=amount,
                        rate=rate,
                        mark_price=price,
                        position=quantity,
                    )
                )
            index += 1
        self._funding_next[instrument_id] = index

    def _liquidate(
        self,
        account: MarginAccount,
        instrument_id: str,
        price: float,
        equity: float,
        maintenance: float,
    ) -> None:
        """Cancel the instrument's open orders and close every strategy's position in it."""
        instrument = self._listings[instrument_id].instrument
        asset = instrument.settle_asset
        reason = (
            f"equity {equity:.10g} {asset} below maintenance margin {maintenance:.10g} {asset} "
            f"with {instrument_id} at {price:.10g}"
        )
        book = self._books.get(instrument_id)
        if book is not None:
            for order in list(book.values()):
                self._cancel(order, f"position liquidated: {reason}")
        now = self._clock.now_ns()
        for strategy_id, quantity in list(self._strategy_positions.get(instrument_id, {}).items()):
            side = OrderSide.SELL if quantity > 0.0 else OrderSide.BUY
            size = abs(quantity)
            # The fee comes out of what the closed position leaves of the account's equity,
            # as on an exchange, and never makes a loss larger than the account.
            left = account.equity(asset, (instrument_id, price))
            fee = min(
                size * instrument.contract_size * price * instrument.liquidation_fee,
                max(0.0, left),
            )
            self._fill_count += 1
            self._liquidation_count += 1
            order_id = f"{self.venue}-L{self._liquidation_count:08d}"
            self._outbox.publish(
                OrderFilled.trusted(
                    ts_event_ns=now,
                    ts_init_ns=now,
                    fill_id=f"{self.venue}-F{self._fill_count:08d}",
                    client_order_id=order_id,
                    venue_order_id=order_id,
                    strategy_id=strategy_id,
                    instrument_id=instrument_id,
                    venue=self.venue,
                    side=side,
                    last_qty=size,
                    last_px=price,
                    fee=fee,
                    liquidity=LiquiditySide.TAKER,
                    leaves_qty=0.0,
                    tag=LIQUIDATION_TAG,
                )
            )
            account.apply_fill(order_id, instrument_id, side, size, price, fee, 0.0)
            self._move_position(strategy_id, instrument_id, -quantity, instrument)
            self._outbox.publish(
                PositionLiquidated(
                    ts_event_ns=now,
                    ts_init_ns=now,
                    strategy_id=strategy_id,
                    instrument_id=instrument_id,
                    venue=self.venue,
                    quantity=quantity,
                    price=price,
                    fee=fee,
                    reason=reason,
                )
            )

    # ----------------------------------------------------------------------------- state

    def _accept(self, cmd: SubmitOrder) -> WorkingOrder:
        self._order_count += 1
        now = self._clock.now_ns()
        order = WorkingOrder(
            client_order_id=cmd.client_order_id,
            venue_order_id=f"{self.venue}-{self._order_count:08d}",
            strategy_id=cmd.strategy_id,
            instrument_id=cmd.instrument_id,
            side=cmd.side,
            quantity=cmd.quantity,
            order_type=cmd.order_type,
            limit_price=cmd.limit_price,
            time_in_force=cmd.time_in_force,
            post_only=cmd.post_only,
            tag=cmd.tag,
            accepted_ns=now,
            filled_qty=0.0,
            leaves_qty=cmd.quantity,
        )
        self._add_working(order)
        account = self._account
        if account is not None:
            priced = self._priced
            self._priced = None
            if priced is not None and priced[0] == cmd.client_order_id:
                _, asset, unit_amount = priced
            else:
                price = cmd.limit_price
                if price is None:
                    touch = _touch(
                        self._last_data.get(cmd.instrument_id), cmd.side is OrderSide.BUY
                    )
                    assert touch is not None  # a market order without a price was rejected
                    price = touch[0]
                asset, unit_amount = account.order_cost(
                    cmd.instrument_id, cmd.side, price, cmd.quantity, market=cmd.limit_price is None
                )
            account.reserve(cmd.client_order_id, asset, unit_amount, cmd.quantity)
        self._outbox.publish(
            OrderAccepted.trusted(
                ts_event_ns=now,
                ts_init_ns=now,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=self.venue,
            )
        )
        return order

    def _cancel(self, order: WorkingOrder, reason: str, code: VenueReason | None = None) -> None:
        self._remove_working(order)
        self._publish_cancelled(
            order.client_order_id, order.strategy_id, order.instrument_id, reason=reason, code=code
        )

    def _add_working(self, order: WorkingOrder) -> None:
        self._orders[order.client_order_id] = order
        book = self._books.get(order.instrument_id)
        if book is None:
            book = self._books[order.instrument_id] = {}
        book[order.client_order_id] = order

    def _remove_working(self, order: WorkingOrder) -> None:
        if self._account is not None:
            self._account.release(order.client_order_id)
        del self._orders[order.client_order_id]
        book = self._books[order.instrument_id]
        del book[order.client_order_id]
        if not book:
            del self._books[order.instrument_id]

    def _reject(self, cmd: SubmitOrder, code: VenueReason, reason: str) -> None:
        now = self._clock.now_ns()
        self._outbox.publish(
            OrderRejected.trusted(
                ts_event_ns=now,
                ts_init_ns=now,
                client_order_id=cmd.client_order_id,
                strategy_id=cmd.strategy_id,
                instrument_id=cmd.instrument_id,
                venue=self.venue,
                reason=reason,
                code=code,
            )
        )

    def _publish_cancelled(
        self,
        client_order_id: str,
        strategy_id: str,
        instrument_id: str,
        *,
        reason: str,
        code: VenueReason | None = None,
    ) -> None:
        now = self._clock.now_ns()
        self._outbox.publish(
            OrderCancelled.trusted(
                ts_event_ns=now,
                ts_init_ns=now,
                client_order_id=client_order_id,
                strategy_id=strategy_id,
                instrument_id=instrument_id,
                venue=self.venue,
                reason=reason,
                code=code,
            )
        )


def _touch(reference: _Reference | None, is_buy: bool) -> tuple[float, float] | None:
    """The price an order would take now and the volume available there, if any is known."""
    if reference is None:
        return None
    if type(reference) is Bar:
        return reference.close, reference.volume
    if type(reference) is TradeTick:
        return reference.price, reference.size
    assert type(reference) is QuoteTick
    if is_buy:
        return reference.ask_price, reference.ask_size
    return reference.bid_price, reference.bid_size


def _adverse_price(reference: _Reference, is_long: bool) -> float:
    """The worst price ``reference`` shows for a position: a bar's low (long) or high (short),
    a trade's price, a quote's bid (long) or ask (short)."""
    if type(reference) is Bar:
        return reference.low if is_long else reference.high
    if type(reference) is TradeTick:
        return reference.price
    assert type(reference) is QuoteTick
    return reference.bid_price if is_long else reference.ask_price
