"""Pre-trade risk: the only road from a strategy to a venue.

:class:`RiskEngine` turns each ``OrderIntent`` into a ``SubmitOrder`` rounded to the
instrument's tick and lot, or into a ``RiskRejected`` that says which limit refused it and by
how much. It keeps what the checks need: the last price of every instrument, the open orders,
net positions built from fills, the latest portfolio snapshot, and the kill switch.

Recovery contract: every state change comes from ``handle``; ``snapshot()`` captures all of it
as plain data and ``restore()`` on a fresh engine gives one that behaves identically. Fills are
deduplicated by ``(venue, fill_id)`` and intents by ``intent_id``, so a message delivered twice
changes nothing the second time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from tradegraph.config.limits import apply_limit_changes, limit_values
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    FLATTEN_TAG,
    RISK,
    AccountBalances,
    AccountKind,
    Bar,
    CancelIntent,
    CancelOrder,
    ChangeLimits,
    Clock,
    FeedStatus,
    FundingPaid,
    Instrument,
    KillSwitchChanged,
    KillSwitchMode,
    KillSwitchSource,
    LimitChange,
    LimitsChanged,
    Message,
    OrderAccepted,
    OrderBookSnapshot,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    Outbox,
    PortfolioSnapshot,
    PositionLiquidated,
    QuoteTick,
    ResetKillSwitch,
    RiskReason,
    RiskRejected,
    StrategyError,
    SubmitOrder,
    TimerFired,
    TradeTick,
    TripKillSwitch,
    VenueStatus,
)
from tradegraph.contracts.marks import mark_price
from tradegraph.contracts.state import ComponentState, StateRecord
from tradegraph.errors import ConfigError
from tradegraph.execution.emulator import (
    Action,
    Cancellation,
    EmulatorState,
    OrderEmulator,
    Release,
)
from tradegraph.portfolio.margin import Account, AccountState, MarginAccount, restore_account
from tradegraph.risk.token_bucket import TokenBucket, TokenBucketState

# Limits are compared with a relative slack so that float noise (0.1 * 3) on an order sized
# exactly at a limit does not refuse it.
_REL_TOL = 1e-9
# A position smaller than this share of a lot is float residue from netting fills, not a holding.
_FLAT_LOTS = 1e-6
# Timers Risk sets to end good-till-date orders are named this prefix plus the order id.
GTD_TIMER_PREFIX = "gtd:"


class OpenOrderStatus(StrEnum):
    """Where an order Risk has sent stands at the venue."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"


class OpenOrderState(StateRecord):
    """An :class:`OpenOrder` as stored."""

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    side: OrderSide
    order_type: OrderType
    quantity: float
    leaves_qty: float
    limit_price: float | None
    status: OpenOrderStatus
    cancel_pending: bool


class RiskState(ComponentState):
    """All of a :class:`RiskEngine`'s state (see its attributes for what each part means)."""

    last_prices: dict[str, float]
    stale_feeds: dict[str, str]
    unavailable_venues: dict[str, str] = {}
    kill_switch_tripped: bool
    kill_switch_reason: str
    kill_switch_mode: KillSwitchMode = KillSwitchMode.HALT
    flatten_pending: bool = False
    """A ``flatten`` trip has cancelled open orders and closes positions once they are gone."""
    flatten_orders: int = 0
    """Closing orders a ``flatten`` trip has sent (numbers their ids)."""
    account_limit_breached: bool
    stopped_strategies: dict[str, str]
    open_orders: list[OpenOrderState]
    submitted_ids: list[str]
    positions: dict[str, float]
    strategy_positions: dict[str, dict[str, float]]
    fill_keys: list[str]
    rejection_counts: dict[RiskReason, int]
    portfolio: PortfolioSnapshot | None
    order_rate: TokenBucketState | None
    accounts: dict[str, AccountState]
    adopted_venues: list[str] | None = None
    """``None`` in a state written before balances were adopted: every venue counts as adopted."""
    limit_changes: list[LimitChange] = []
    """Limits changed while running (``ChangeLimits``), laid over the configured ones."""
    limits_refused: str = ""
    emulator: EmulatorState | None = None
    """Held conditional and contingent orders; ``None`` in a state written before emulation."""
    liquidations: int = 0


@dataclass(slots=True)
class OpenOrder:
    """An order Risk has submitted that has not reached a terminal state.

    Risk updates the record in place as the venue reports on the order (acceptance, partial
    fills, a cancel on its way): replacing a frozen record cost several times more than the
    rest of handling such an event. Read it through :attr:`RiskEngine.open_orders`; do not
    modify it.

    Attributes:
        client_order_id: The order's id (the intent id it came from).
        strategy_id: The strategy that owns it.
        instrument_id: What it trades.
        venue: Where it was sent.
        side: Buy or sell.
        order_type: Market or limit.
        quantity: Quantity submitted, after rounding to the lot.
        leaves_qty: Quantity still open.
        limit_price: Limit price after rounding to the tick; ``None`` for a market order.
        status: Submitted, or accepted by the venue.
        cancel_pending: Risk has sent a ``CancelOrder`` for it.
    """

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    side: OrderSide
    order_type: OrderType
    quantity: float
    leaves_qty: float
    limit_price: float | None
    status: OpenOrderStatus
    cancel_pending: bool = False

    def to_state(self) -> OpenOrderState:
        """The order as a state record."""
        return OpenOrderState(
            client_order_id=self.client_order_id,
            strategy_id=self.strategy_id,
            instrument_id=self.instrument_id,
            venue=self.venue,
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            leaves_qty=self.leaves_qty,
            limit_price=self.limit_price,
            status=self.status,
            cancel_pending=self.cancel_pending,
        )

    @classmethod
    def from_state(cls, state: OpenOrderState) -> OpenOrder:
        """Rebuild an order from :meth:`to_state` output."""
        return cls(**dict(state))


class _RefusedError(Exception):
    """Raised inside the intent checks; becomes a ``RiskRejected``."""

    def __init__(self, reason: RiskReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _exceeds(value: float, limit: float) -> bool:
    return value > limit * (1.0 + _REL_TOL)


def _num(value: float) -> str:
    """Short, exact-looking text for a quantity or price a user typed."""
    return f"{value:.10g}"


DEDUPE_WINDOW = 10_000
"""Finished order ids and fill keys Risk remembers to recognise a redelivery (open orders are
always known). Links deliver exactly once; this guards the rare resend, not a whole history."""


class RecentIds:
    """The last ``capacity`` ids added, oldest forgotten first."""

    def __init__(self, capacity: int = DEDUPE_WINDOW, ids: Iterable[str] = ()) -> None:
        self._capacity = capacity
        self._ids: dict[str, None] = {}
        for item in ids:
            self.add(item)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> None:
        if item in self._ids:
            return
        self._ids[item] = None
        if len(self._ids) > self._capacity:
            del self._ids[next(iter(self._ids))]

    def to_state(self) -> list[str]:
        """The ids, oldest first."""
        return list(self._ids)


class RiskEngine:
    """Pre-trade checks, exposure limits and the kill switch, between strategies and venues.

    An ``OrderIntent`` is checked in this order; the first failure refuses it with that code:
    strategy stopped, kill switch, stale feed, unknown instrument, venue unreachable, no price
    yet, order rate, reduce-only, lot rounding and minimum quantity, tick rounding and price
    band, minimum and maximum order notional, the exposure limits (position, gross exposure,
    daily loss, drawdown), and last the venue's cash account. Exposure limits are waived for an
    order that only reduces the instrument's net position: it is on the other side of the
    position, and it plus the open orders already on its side do not exceed the position's
    size. The account check is never waived: a buy
    needs its notional plus fee free in the quote asset (a market buy valued at the last
    price raised by the account's ``market_buy_buffer_pct``), a sell its quantity free in the
    base asset, after what Risk's open orders already reserve (``INSUFFICIENT_BALANCE``).

    The kill switch trips in a mode (``risk.kill_switch_mode``, per source in
    ``risk.kill_switch_modes``, or the ``TripKillSwitch``'s own): ``halt`` refuses every
    intent (``KILL_SWITCH``); ``reduce_only`` refuses those that would not shrink their
    strategy's position (``REDUCE_ONLY_MODE``); ``flatten`` cancels every open order, then
    closes every strategy's position with reduce-only market orders, then refuses as ``halt``.

    Conditional and contingent intents (stops, take-profits, trailing stops, OCO groups,
    children of another order; see :mod:`tradegraph.execution.emulator`) are held by Risk's
    order emulator after a first check (strategy stopped, kill switch, unknown instrument, a
    parent that has already ended) and released on the market data Risk sees; a released order
    passes every check above as a fresh market or limit intent of the same id. Held orders
    reserve nothing. A cancel, the kill switch or a strategy's stop ends them with an
    ``OrderCancelled`` from Risk. Good-till-date orders, held or at a venue, end at their
    ``expire_at_ns`` through a clock timer (``gtd:<id>``).

    Args:
        config: Limits; a ``None`` limit is off.
        instruments: Tradable instruments keyed by ``instrument_id``.
        clock: Source of time for timestamps and the order-rate bucket.
        outbox: Where ``SubmitOrder``, ``CancelOrder``, ``RiskRejected`` and
            ``KillSwitchChanged`` go.
        accounts: The cash account of each venue, by venue name. An order for a venue with no
            account is not checked against balances. ``AccountBalances`` from a live broker
            replace an account's balances. The first ones of each venue also set the net
            position of the venue's instruments to the base asset held there, so inventory
            the account already had counts in the exposure limits (strategies' own positions
            stay what they traded); a restored state is kept as it is.

    Raises:
        ConfigError: If ``config.max_position_quantity`` names an unknown instrument or holds a
            limit that is not a finite number above zero.
    """

    State: ClassVar[type[RiskState]] = RiskState

    component_id: str = RISK

    def __init__(
        self,
        config: RiskConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
        *,
        accounts: Mapping[str, Account] | None = None,
    ) -> None:
        self._configured = config
        self._config = config
        # Limits changed while running, by field, over the configured ones (kept in the state).
        self._limit_changes: dict[str, LimitChange] = {}
        self._limits_refused = ""
        self._accounts: dict[str, Account] = {} if accounts is None else dict(accounts)
        self._instruments: dict[str, Instrument] = dict(instruments)
        self._clock = clock
        self._outbox = outbox
        self._check_config()

        self._last_prices: dict[str, float] = {}
        for account in self._accounts.values():
            if isinstance(account, MarginAccount):
                account.use_marks(self._last_prices)
        self._liquidations = 0
        self._stale_feeds: dict[str, str] = {}
        self._unavailable_venues: dict[str, str] = {}
        self._kill_switch_tripped = False
        self._kill_switch_reason = ""
        self._kill_switch_mode = KillSwitchMode.HALT
        self._flatten_pending = False
        self._flatten_orders = 0
        self._account_limit_breached = False
        self._stopped_strategies: dict[str, str] = {}
        self._open_orders: dict[str, OpenOrder] = {}
        # Open orders' ids are in _open_orders; these two remember a window of finished ones.
        self._submitted_ids = RecentIds()
        self._positions: dict[str, float] = {}
        self._strategy_positions: dict[str, dict[str, float]] = {}
        self._adopted_venues: set[str] = set()
        self._fill_keys = RecentIds()
        self._rejection_counts: dict[RiskReason, int] = {}
        self._portfolio: PortfolioSnapshot | None = None
        self._order_rate: TokenBucket | None = None
        # Conditional and contingent orders (tradegraph.execution.emulator); `_watched` is the
        # emulator's own per-instrument dict, empty when nothing is armed, so market data for
        # a graph without such orders costs one truth test.
        self._emulator = OrderEmulator()
        self._watched = self._emulator.watched
        self._held = self._emulator.orders
        self._parents = self._emulator.parents
        self._expiries = self._emulator.expiries
        if config.max_orders_per_s is not None:
            self._order_rate = TokenBucket(
                config.max_orders_per_s, float(config.order_burst), clock.now_ns()
            )

        self._handlers: dict[type[Message], Callable[[Any], None]] = {
            TradeTick: self._on_market_data,
            QuoteTick: self._on_market_data,
            OrderBookSnapshot: self._on_market_data,
            OrderIntent: self._on_order_intent,
            CancelIntent: self._on_cancel_intent,
            OrderAccepted: self._on_order_accepted,
            OrderRejected: self._on_order_done,
            OrderCancelled: self._on_order_done,
            OrderFilled: self._on_order_filled,
            PortfolioSnapshot: self._on_portfolio_snapshot,
            TripKillSwitch: self._on_trip_kill_switch,
            ResetKillSwitch: self._on_reset_kill_switch,
            ChangeLimits: self._on_change_limits,
            StrategyError: self._on_strategy_error,
            FeedStatus: self._on_feed_status,
            VenueStatus: self._on_venue_status,
            AccountBalances: self._on_account_balances,
            TimerFired: self._on_timer,
            FundingPaid: self._on_funding_paid,
            PositionLiquidated: self._on_position_liquidated,
        }

    # ------------------------------------------------------------------ component interface

    def handle(self, msg: Message) -> None:
        """Process one message. Types Risk does not act on are ignored."""
        if type(msg) is Bar:
            # The mark rule (contracts/marks.py), inline for the hot path: a bar marks at its close.
            self._last_prices[msg.instrument_id] = msg.close
            if self._watched and msg.instrument_id in self._watched:
                self._apply(self._emulator.on_bar(msg))
            return
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(msg)

    def start(self) -> None:
        """Nothing to do: Risk holds no timers or connections."""

    def stop(self) -> None:
        """Nothing to do: Risk holds no timers or connections."""

    # ------------------------------------------------------------------ read-only views

    @property
    def kill_switch_tripped(self) -> bool:
        """Whether new orders are refused because the kill switch is tripped."""
        return self._kill_switch_tripped

    @property
    def kill_switch_reason(self) -> str:
        """Why the kill switch was last tripped or reset."""
        return self._kill_switch_reason

    @property
    def kill_switch_mode(self) -> KillSwitchMode:
        """The mode of the kill switch's last trip."""
        return self._kill_switch_mode

    @property
    def open_orders(self) -> Mapping[str, OpenOrder]:
        """Orders not yet cancelled, rejected or fully filled, by client order id."""
        return MappingProxyType(self._open_orders)

    @property
    def positions(self) -> Mapping[str, float]:
        """Net position of each instrument across all strategies, from fills."""
        return MappingProxyType(self._positions)

    @property
    def strategy_positions(self) -> Mapping[str, Mapping[str, float]]:
        """Net position of each strategy in each instrument, from fills."""
        return MappingProxyType(
            {sid: MappingProxyType(pos) for sid, pos in self._strategy_positions.items()}
        )

    @property
    def rejection_counts(self) -> Mapping[RiskReason, int]:
        """How many intents were refused, per reason."""
        return MappingProxyType(self._rejection_counts)

    @property
    def last_prices(self) -> Mapping[str, float]:
        """Latest mark of each instrument, by the rule of :mod:`tradegraph.contracts.marks`."""
        return MappingProxyType(self._last_prices)

    @property
    def stopped_strategies(self) -> Mapping[str, str]:
        """Strategies stopped after an error, with the error they raised."""
        return MappingProxyType(self._stopped_strategies)

    @property
    def stale_feeds(self) -> Mapping[str, str]:
        """Instruments whose market data is stale, with the feed's explanation."""
        return MappingProxyType(self._stale_feeds)

    @property
    def accounts(self) -> Mapping[str, Account]:
        """The account of each venue Risk checks balances at (read-only; do not modify)."""
        return MappingProxyType(self._accounts)

    @property
    def liquidations(self) -> int:
        """Positions the venues have liquidated."""
        return self._liquidations

    @property
    def unavailable_venues(self) -> Mapping[str, str]:
        """Venues whose gateway reported it cannot reach the exchange, with its explanation."""
        return MappingProxyType(self._unavailable_venues)

    # ------------------------------------------------------------------ market data

    def _on_market_data(self, msg: TradeTick | QuoteTick | OrderBookSnapshot) -> None:
        price = mark_price(msg)
        if price is not None:
            self._last_prices[msg.instrument_id] = price
        if self._watched and msg.instrument_id in self._watched:
            if type(msg) is TradeTick:
                self._apply(self._emulator.on_trade(msg))
            elif type(msg) is QuoteTick:
                self._apply(self._emulator.on_quote(msg))

    def _on_feed_status(self, status: FeedStatus) -> None:
        if status.stale:
            self._stale_feeds[status.instrument_id] = status.detail
        else:
            self._stale_feeds.pop(status.instrument_id, None)

    def _on_venue_status(self, status: VenueStatus) -> None:
        if status.available:
            self._unavailable_venues.pop(status.venue, None)
        else:
            self._unavailable_venues[status.venue] = status.detail

    # ------------------------------------------------------------------ intents

    def _on_order_intent(self, intent: OrderIntent) -> None:
        intent_id = intent.intent_id
        if (
            intent_id in self._submitted_ids
            or intent_id in self._open_orders
            or intent_id in self._held
        ):
            # A redelivered intent: its order already exists, and a second one must never be sent.
            return
        if intent.is_emulated:
            self._hold(intent)
        else:
            self._submit(intent)

    def _submit(self, intent: OrderIntent, *, closing: bool = False) -> None:
        """Check ``intent`` (a market or limit order) and send it, or refuse it.

        ``closing``: an order of a ``flatten`` trip, which no stopped strategy, kill switch,
        order rate or exposure limit holds back (every other check applies).
        """
        intent_id = intent.intent_id
        try:
            venue, quantity, limit_price = self._check_intent(intent, closing=closing)
            reservation = self._check_balance(intent, venue, quantity, limit_price)
        except _RefusedError as refusal:
            self._reject(intent_id, intent.strategy_id, intent.instrument_id, refusal)
            if intent_id in self._parents:
                self._parent_ended(intent_id, f"refused by risk ({refusal.reason.value})")
            return
        if intent.expire_at_ns is not None:
            self._track_expiry(intent)
        if reservation is not None:
            account, asset, unit_amount = reservation
            account.reserve(intent_id, asset, unit_amount, quantity)
        if self._order_rate is not None and not closing:
            self._order_rate.take()
        self._submitted_ids.add(intent_id)
        self._open_orders[intent_id] = OpenOrder(
            client_order_id=intent_id,
            strategy_id=intent.strategy_id,
            instrument_id=intent.instrument_id,
            venue=venue,
            side=intent.side,
            order_type=intent.order_type,
            quantity=quantity,
            leaves_qty=quantity,
            limit_price=limit_price,
            status=OpenOrderStatus.SUBMITTED,
        )
        now = self._clock.now_ns()
        # Every field comes from the validated intent or from the checks just passed, so the
        # command is built without validating it again.
        self._outbox.publish(
            SubmitOrder.trusted(
                ts_event_ns=now,
                ts_init_ns=now,
                client_order_id=intent_id,
                strategy_id=intent.strategy_id,
                instrument_id=intent.instrument_id,
                venue=venue,
                side=intent.side,
                quantity=quantity,
                order_type=intent.order_type,
                limit_price=limit_price,
                time_in_force=intent.time_in_force,
                post_only=intent.post_only,
                reduce_only=intent.reduce_only,
                tag=intent.tag,
            )
        )

    # ------------------------------------------------------------------ emulated orders

    def _hold(self, intent: OrderIntent) -> None:
        """Hold a conditional or contingent order until it triggers (see the emulator)."""
        strategy_id = intent.strategy_id
        try:
            if strategy_id in self._stopped_strategies:
                raise _RefusedError(
                    RiskReason.STRATEGY_STOPPED, f"strategy {strategy_id} was stopped"
                )
            if self._kill_switch_tripped:
                raise _RefusedError(
                    RiskReason.KILL_SWITCH,
                    f"kill switch is tripped ({self._kill_switch_reason}); "
                    "no new orders until it is reset",
                )
            instrument = self._instruments.get(intent.instrument_id)
            if instrument is None:
                raise _RefusedError(
                    RiskReason.UNKNOWN_INSTRUMENT,
                    f"unknown instrument {intent.instrument_id}; known: {sorted(self._instruments)}",
                )
            parent = intent.parent_id
            if parent and parent in self._submitted_ids and parent not in self._open_orders:
                raise _RefusedError(
                    RiskReason.UNKNOWN_ORDER,
                    f"parent order {parent} of {intent.intent_id} has already ended; "
                    "send children before their parent",
                )
        except _RefusedError as refusal:
            self._reject(intent.intent_id, strategy_id, intent.instrument_id, refusal)
            return
        now = self._clock.now_ns()
        self._emulator.hold(intent, instrument.venue, now, self._last_prices)
        if intent.expire_at_ns is not None:
            self._track_expiry(intent)

    def _track_expiry(self, intent: OrderIntent) -> None:
        """End a good-till-date order at its expiry, through a timer of the graph's clock."""
        assert intent.expire_at_ns is not None
        self._emulator.track_expiry(intent)
        # Never in the past: a timer due now fires next, before any later market data.
        due_ns = max(intent.expire_at_ns, self._clock.now_ns())
        self._clock.set_timer(GTD_TIMER_PREFIX + intent.intent_id, due_ns)

    def _apply(self, actions: list[Action]) -> None:
        """Send what triggered through the checks; report held orders that ended."""
        for action in actions:
            if type(action) is Release:
                self._submit(action.intent)
            else:
                assert isinstance(action, Cancellation)
                self._publish_emulated_cancel(
                    action.order.intent, action.order.venue, action.reason
                )

    def _publish_emulated_cancel(self, intent: OrderIntent, venue: str, reason: str) -> None:
        # Remembered like a finished order, so a redelivered intent is not held again.
        self._submitted_ids.add(intent.intent_id)
        now = self._clock.now_ns()
        self._outbox.publish(
            OrderCancelled(
                client_order_id=intent.intent_id,
                strategy_id=intent.strategy_id,
                instrument_id=intent.instrument_id,
                venue=venue,
                reason=reason,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        if intent.intent_id in self._parents:
            self._parent_ended(intent.intent_id, reason)

    def _parent_ended(self, parent_id: str, reason: str) -> None:
        now = self._clock.now_ns()
        ended = self._emulator.parent_ended(parent_id, reason, now, self._last_prices)
        self._apply(list(ended))

    def _on_timer(self, timer: TimerFired) -> None:
        if not timer.name.startswith(GTD_TIMER_PREFIX):
            return
        cid = timer.name[len(GTD_TIMER_PREFIX) :]
        if cid not in self._expiries:
            return
        reason = "expired: good till date"
        held = self._emulator.expire(cid)
        if held is not None:
            self._publish_emulated_cancel(held.intent, held.venue, reason)
            return
        order = self._open_orders.get(cid)
        if order is not None and not order.cancel_pending:
            self._send_cancel(order, reason)

    @property
    def emulator(self) -> OrderEmulator:
        """Conditional and contingent orders held until they trigger (read-only; do not modify)."""
        return self._emulator

    def _check_intent(
        self, intent: OrderIntent, *, closing: bool = False
    ) -> tuple[str, float, float | None]:
        """Run every check on ``intent``; raise ``_RefusedError`` on the first that fails.

        Returns:
            ``(venue, quantity, limit_price)`` of the order to send: the quantity rounded down
            to the lot, the limit price (``None`` for a market order) rounded to the tick.
        """
        strategy_id = intent.strategy_id
        inst_id = intent.instrument_id
        stopped_error = None if closing else self._stopped_strategies.get(strategy_id)
        if stopped_error is not None:
            raise _RefusedError(
                RiskReason.STRATEGY_STOPPED,
                f"strategy {strategy_id} was stopped after {stopped_error}; "
                "it places no more orders",
            )
        if self._kill_switch_tripped and not closing:
            if self._kill_switch_mode is not KillSwitchMode.REDUCE_ONLY:
                raise _RefusedError(
                    RiskReason.KILL_SWITCH,
                    f"kill switch is tripped ({self._kill_switch_reason}); "
                    "no new orders until it is reset",
                )
            if not intent.reduce_only:  # a reduce-only intent is clipped to shrink below
                self._check_shrinks(intent)
        if inst_id in self._stale_feeds:
            why = self._stale_feeds[inst_id]
            raise _RefusedError(
                RiskReason.FEED_STALE,
                f"market data for {inst_id} is stale{f' ({why})' if why else ''}; "
                "orders wait until it is fresh again",
            )
        instrument = self._instruments.get(inst_id)
        if instrument is None:
            raise _RefusedError(
                RiskReason.UNKNOWN_INSTRUMENT,
                f"unknown instrument {inst_id}; known: {sorted(self._instruments)}",
            )
        if self._unavailable_venues and instrument.venue in self._unavailable_venues:
            why = self._unavailable_venues[instrument.venue]
            raise _RefusedError(
                RiskReason.VENUE_UNAVAILABLE,
                f"venue {instrument.venue} is unreachable{f' ({why})' if why else ''}; "
                "orders wait until its gateway reports it available again",
            )
        last_price = self._last_prices.get(inst_id)
        if last_price is None:
            raise _RefusedError(
                RiskReason.NO_PRICE,
                f"no market price for {inst_id} yet; orders wait for its first bar, trade or quote",
            )
        if self._order_rate is not None and not closing:
            available = self._order_rate.refill(self._clock.now_ns())
            if available < 1.0 - _REL_TOL:
                raise _RefusedError(
                    RiskReason.ORDER_RATE,
                    f"order rate above risk.max_orders_per_s {_num(self._order_rate.rate_per_s)} "
                    f"(burst risk.order_burst {self._config.order_burst})",
                )

        is_buy = intent.side is OrderSide.BUY
        quantity = intent.quantity
        if intent.reduce_only:
            quantity = self._clip_reduce_only(intent, instrument)
        rounded_qty = instrument.round_quantity(quantity)
        if rounded_qty <= 0.0:
            raise _RefusedError(
                RiskReason.QUANTITY_BELOW_LOT,
                f"quantity {_num(quantity)} rounds down to 0 at lot size "
                f"{_num(instrument.lot_size)} of {inst_id}",
            )
        if rounded_qty < instrument.min_quantity * (1.0 - _REL_TOL):
            raise _RefusedError(
                RiskReason.INVALID_QUANTITY,
                f"quantity {_num(rounded_qty)} is below min_quantity "
                f"{_num(instrument.min_quantity)} of {inst_id}",
            )

        limit_price: float | None = None
        if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
            limit_price = instrument.round_price_passive(intent.limit_price, is_buy)
            self._check_price_band(instrument, intent.limit_price, limit_price, last_price)

        notional = rounded_qty * (last_price if limit_price is None else limit_price)
        quote = instrument.quote
        if notional < instrument.min_notional * (1.0 - _REL_TOL):
            raise _RefusedError(
                RiskReason.BELOW_MIN_NOTIONAL,
                f"order notional {notional:.2f} {quote} is below min_notional "
                f"{instrument.min_notional:.2f} {quote} of {inst_id}",
            )
        max_order_notional = self._config.max_order_notional
        if max_order_notional is not None and _exceeds(notional, max_order_notional):
            raise _RefusedError(
                RiskReason.MAX_ORDER_NOTIONAL,
                f"order notional {notional:.2f} {quote} exceeds risk.max_order_notional "
                f"{max_order_notional:.2f}",
            )
        if not closing:
            # Closing every strategy's position flattens the net one, whatever one order does.
            self._check_exposure(
                intent.side, inst_id, instrument, rounded_qty, notional, last_price
            )
        return instrument.venue, rounded_qty, limit_price

    def _check_shrinks(self, intent: OrderIntent) -> None:
        """In ``reduce_only`` mode: refuse ``intent`` unless it shrinks its strategy's position.

        It must be on the other side of the position, and it plus the strategy's open orders
        on its side must not exceed the position's size.
        """
        strategy_id = intent.strategy_id
        inst_id = intent.instrument_id
        instrument = self._instruments.get(inst_id)
        if instrument is None:
            return  # refused as an unknown instrument next
        position = self._strategy_positions.get(strategy_id, {}).get(inst_id, 0.0)
        side = intent.side
        pending = sum(
            o.leaves_qty
            for o in self._open_orders.values()
            if o.strategy_id == strategy_id and o.instrument_id == inst_id and o.side is side
        )
        if not self._only_reduces(position, side, pending + intent.quantity, instrument):
            raise _RefusedError(
                RiskReason.REDUCE_ONLY_MODE,
                f"kill switch is tripped in reduce_only mode ({self._kill_switch_reason}): "
                f"{side.value} {_num(intent.quantity)} {inst_id} would not shrink strategy "
                f"{strategy_id}'s position {_num(position)} (open {side.value} orders "
                f"{_num(pending)})",
            )

    def _check_balance(
        self, intent: OrderIntent, venue: str, quantity: float, limit_price: float | None
    ) -> tuple[Account, str, float] | None:
        """The reservation the order needs, if its venue has an account; refuse if unpaid.

        Returns:
            ``(account, asset, amount per unit of quantity)``, or ``None`` without an account.
        """
        account = self._accounts.get(venue)
        if account is None:
            return None
        market = limit_price is None
        price = self._last_prices[intent.instrument_id] if limit_price is None else limit_price
        asset, unit_amount = account.order_cost(
            intent.instrument_id, intent.side, price, quantity, market=market
        )
        shortfall = account.shortfall(asset, unit_amount * quantity)
        if shortfall is not None:
            margin = account.kind is AccountKind.MARGIN
            if margin:
                priced = " (market order valued with the account's buffer)" if market else ""
            else:
                priced = " (market buy valued with the account's buffer)" if market else ""
            raise _RefusedError(
                RiskReason.INSUFFICIENT_MARGIN if margin else RiskReason.INSUFFICIENT_BALANCE,
                f"{intent.side.value} {_num(quantity)} {intent.instrument_id}{priced} "
                + shortfall.describe(venue),
            )
        return account, asset, unit_amount

    def _clip_reduce_only(self, intent: OrderIntent, instrument: Instrument) -> float:
        """Quantity a reduce-only intent may trade: at most what the strategy can still close.

        What the strategy already has open on the same side counts as closing, so two
        reduce-only orders cannot together flip the position.
        """
        strategy_id = intent.strategy_id
        inst_id = instrument.instrument_id
        position = self._strategy_positions.get(strategy_id, {}).get(inst_id, 0.0)
        side = intent.side
        if position == 0.0 or (position > 0.0) == (side is OrderSide.BUY):
            held = "is flat" if position == 0.0 else f"holds {_num(position)}"
            raise _RefusedError(
                RiskReason.INVALID_QUANTITY,
                f"reduce_only {side.value} {_num(intent.quantity)} {inst_id} would increase the "
                f"position: strategy {strategy_id} {held}",
            )
        pending = sum(
            o.leaves_qty
            for o in self._open_orders.values()
            if o.strategy_id == strategy_id and o.instrument_id == inst_id and o.side is side
        )
        available = abs(position) - pending
        if available <= instrument.lot_size * _FLAT_LOTS:
            raise _RefusedError(
                RiskReason.INVALID_QUANTITY,
                f"reduce_only {side.value} {_num(intent.quantity)} {inst_id} has nothing left "
                f"to reduce: strategy {strategy_id} holds {_num(position)} and already has "
                f"{_num(pending)} in open {side.value} orders",
            )
        return min(intent.quantity, available)

    def _check_price_band(
        self, instrument: Instrument, asked: float, rounded: float, last_price: float
    ) -> None:
        if rounded <= 0.0:
            # No contract reason names an invalid price; a zero price is as far outside any
            # band as a price can be, so it is refused under PRICE_BAND.
            raise _RefusedError(
                RiskReason.PRICE_BAND,
                f"limit price {_num(asked)} rounds to 0 at tick size "
                f"{_num(instrument.tick_size)} of {instrument.instrument_id}",
            )
        band_pct = self._config.price_band_pct
        if band_pct is None:
            return
        distance_pct = abs(rounded - last_price) / last_price * 100.0
        if _exceeds(distance_pct, band_pct):
            decimals = instrument.price_decimals
            raise _RefusedError(
                RiskReason.PRICE_BAND,
                f"limit price {rounded:.{decimals}f} is {distance_pct:.2f}% from last price "
                f"{last_price:.{decimals}f}, beyond risk.price_band_pct {band_pct:.2f}%",
            )

    def _check_exposure(
        self,
        side: OrderSide,
        inst_id: str,
        instrument: Instrument,
        quantity: float,
        notional: float,
        last_price: float,
    ) -> None:
        position = self._positions.get(inst_id, 0.0)
        same_side_open = 0.0
        for order in self._open_orders.values():
            if order.instrument_id == inst_id and order.side is side:
                same_side_open += order.leaves_qty
        if self._only_reduces(position, side, same_side_open + quantity, instrument):
            return

        projected = position + side.sign * (same_side_open + quantity)
        max_qty = self._config.max_position_quantity.get(inst_id)
        if max_qty is not None and _exceeds(abs(projected), max_qty):
            raise _RefusedError(
                RiskReason.MAX_POSITION,
                f"projected position {_num(projected)} {inst_id} (position {_num(position)}, "
                f"open {side.value} {_num(same_side_open)}, this order {_num(quantity)}) "
                f"exceeds risk.max_position_quantity[{inst_id}] {_num(max_qty)}",
            )
        max_pos_notional = self._config.max_position_notional
        projected_notional = abs(projected) * last_price
        if max_pos_notional is not None and _exceeds(projected_notional, max_pos_notional):
            raise _RefusedError(
                RiskReason.MAX_POSITION,
                f"projected position notional {projected_notional:.2f} {instrument.quote} "
                f"({_num(projected)} {inst_id} at {_num(last_price)}) exceeds "
                f"risk.max_position_notional {max_pos_notional:.2f}",
            )
        max_gross = self._config.max_gross_exposure
        if max_gross is not None:
            current = self.gross_exposure()
            projected_gross = current + notional
            if _exceeds(projected_gross, max_gross):
                raise _RefusedError(
                    RiskReason.MAX_GROSS_EXPOSURE,
                    f"projected gross exposure {projected_gross:.2f} (current {current:.2f} "
                    f"+ order {notional:.2f}) exceeds risk.max_gross_exposure {max_gross:.2f}",
                )
        breach = self._account_breach()
        if breach is not None:
            raise _RefusedError(*breach)

    @staticmethod
    def _only_reduces(
        position: float, side: OrderSide, quantity_on_side: float, instrument: Instrument
    ) -> bool:
        if position == 0.0 or (position > 0.0) == (side is OrderSide.BUY):
            return False
        return quantity_on_side <= abs(position) + instrument.lot_size * _FLAT_LOTS

    def gross_exposure(self) -> float:
        """Sum of |position| at last price and the notional of every open order."""
        prices = self._last_prices
        total = 0.0
        for inst_id, quantity in self._positions.items():
            total += abs(quantity) * prices.get(inst_id, 0.0)
        for order in self._open_orders.values():
            price = order.limit_price
            if price is None:
                price = prices.get(order.instrument_id, 0.0)
            total += order.leaves_qty * price
        return total

    def _account_breach(self) -> tuple[RiskReason, str] | None:
        """The daily-loss or drawdown limit the latest portfolio snapshot breaches, if any."""
        snapshot = self._portfolio
        if snapshot is None:
            return None
        loss_limit = self._config.daily_loss_limit
        if loss_limit is not None and snapshot.daily_pnl <= -loss_limit:
            return (
                RiskReason.DAILY_LOSS_LIMIT,
                f"daily pnl {snapshot.daily_pnl:.2f} is at or below -risk.daily_loss_limit "
                f"({-loss_limit:.2f})",
            )
        max_dd_pct = self._config.max_drawdown_pct
        if max_dd_pct is not None:
            fraction = _drawdown_fraction(snapshot)
            if fraction >= max_dd_pct / 100.0:
                return (
                    RiskReason.MAX_DRAWDOWN,
                    f"drawdown {snapshot.drawdown:.2f} is {fraction * 100.0:.2f}% of peak "
                    f"equity {snapshot.peak_equity:.2f}, at or above risk.max_drawdown_pct "
                    f"{max_dd_pct:.2f}%",
                )
        return None

    def _on_cancel_intent(self, intent: CancelIntent) -> None:
        held = self._emulator.orders.get(intent.client_order_id)
        if held is not None and held.intent.strategy_id == intent.strategy_id:
            self._emulator.cancel(intent.client_order_id)
            self._publish_emulated_cancel(
                held.intent, held.venue, f"requested by strategy {intent.strategy_id}"
            )
            return
        order = self._open_orders.get(intent.client_order_id)
        if order is None or order.strategy_id != intent.strategy_id:
            self._reject(
                intent.client_order_id,
                intent.strategy_id,
                "" if order is None else order.instrument_id,
                _RefusedError(
                    RiskReason.UNKNOWN_ORDER,
                    f"strategy {intent.strategy_id} has no open order {intent.client_order_id}",
                ),
            )
            return
        self._send_cancel(order, f"requested by strategy {intent.strategy_id}")

    def _reject(
        self, intent_id: str, strategy_id: str, instrument_id: str, refusal: _RefusedError
    ) -> None:
        counts = self._rejection_counts
        counts[refusal.reason] = counts.get(refusal.reason, 0) + 1
        now = self._clock.now_ns()
        self._outbox.publish(
            RiskRejected(
                intent_id=intent_id,
                strategy_id=strategy_id,
                instrument_id=instrument_id,
                reason=refusal.reason,
                detail=refusal.detail,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def _send_cancel(self, order: OpenOrder, reason: str) -> None:
        order.cancel_pending = True
        now = self._clock.now_ns()
        self._outbox.publish(
            CancelOrder(
                client_order_id=order.client_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=order.venue,
                reason=reason,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def _cancel_open_orders(self, reason: str, strategy_id: str | None = None) -> None:
        """Cancel every open order (of one strategy, if given) not already being cancelled."""
        for order in list(self._open_orders.values()):
            if order.cancel_pending:
                continue
            if strategy_id is not None and order.strategy_id != strategy_id:
                continue
            self._send_cancel(order, reason)
        for held in self._emulator.cancel_all(strategy_id):
            self._publish_emulated_cancel(held.intent, held.venue, reason)

    # ------------------------------------------------------------------ order events

    def _on_order_accepted(self, event: OrderAccepted) -> None:
        order = self._open_orders.get(event.client_order_id)
        if order is not None and order.status is OpenOrderStatus.SUBMITTED:
            order.status = OpenOrderStatus.ACCEPTED

    def _on_order_done(self, event: OrderRejected | OrderCancelled) -> None:
        order = self._open_orders.pop(event.client_order_id, None)
        if order is not None:
            account = self._accounts.get(order.venue)
            if account is not None:
                account.release(order.client_order_id)
            if self._expiries:
                self._expiries.pop(event.client_order_id, None)
            if event.client_order_id in self._parents:
                self._parent_ended(event.client_order_id, event.reason)
            if self._flatten_pending and not self._open_orders:
                self._flatten()

    def _on_order_filled(self, fill: OrderFilled) -> None:
        fill_key = f"{fill.venue}:{fill.fill_id}"
        if fill_key in self._fill_keys:
            return
        self._fill_keys.add(fill_key)

        inst_id = fill.instrument_id
        instrument = self._instruments.get(inst_id)
        flat_below = 0.0 if instrument is None else instrument.lot_size * _FLAT_LOTS
        signed_qty = fill.signed_qty
        self._positions[inst_id] = _net(self._positions.get(inst_id, 0.0), signed_qty, flat_below)
        by_instrument = self._strategy_positions.get(fill.strategy_id)
        if by_instrument is None:
            by_instrument = self._strategy_positions[fill.strategy_id] = {}
        by_instrument[inst_id] = _net(by_instrument.get(inst_id, 0.0), signed_qty, flat_below)
        # A position must be valued for exposure even if no market data has arrived for it.
        self._last_prices.setdefault(inst_id, fill.last_px)

        order = self._open_orders.get(fill.client_order_id)
        done = fill.leaves_qty <= flat_below
        account = self._accounts.get(fill.venue)
        if account is not None:
            account.apply_fill(
                fill.client_order_id,
                inst_id,
                fill.side,
                fill.last_qty,
                fill.last_px,
                fill.fee,
                0.0 if done else fill.leaves_qty,
            )
        if order is None:
            return
        if done:
            del self._open_orders[fill.client_order_id]
            if self._expiries:
                self._expiries.pop(fill.client_order_id, None)
            if self._flatten_pending and not self._open_orders:
                self._flatten()
        else:
            order.leaves_qty = fill.leaves_qty
        if self._parents and fill.client_order_id in self._parents:
            self._emulator.parent_filled(
                fill.client_order_id,
                fill.last_qty,
                done,
                self._clock.now_ns(),
                self._last_prices,
            )

    def _on_account_balances(self, report: AccountBalances) -> None:
        account = self._accounts.get(report.venue)
        if account is not None:
            account.set_balances(report.balances)
        if report.venue in self._adopted_venues:
            return
        # The balances include every fill booked so far: they are the account's net position.
        self._adopted_venues.add(report.venue)
        adopted_bases: set[str] = set()
        for inst_id in sorted(self._instruments):
            instrument = self._instruments[inst_id]
            if instrument.venue != report.venue or instrument.base in adopted_bases:
                continue
            adopted_bases.add(instrument.base)
            held = report.balances.get(instrument.base, 0.0)
            flat_below = instrument.lot_size * _FLAT_LOTS
            self._positions[inst_id] = _net(0.0, held, flat_below)

    def _on_funding_paid(self, event: FundingPaid) -> None:
        account = self._accounts.get(event.venue)
        if isinstance(account, MarginAccount):
            account.apply_funding(event.instrument_id, event.amount)

    def _on_position_liquidated(self, event: PositionLiquidated) -> None:
        # The closing fill came first and moved positions and the account; this counts it.
        self._liquidations += 1

    # ------------------------------------------------------------------ control

    def _on_portfolio_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._portfolio = snapshot
        breach = self._account_breach()
        newly_breached = breach is not None and not self._account_limit_breached
        self._account_limit_breached = breach is not None
        # Trip when a breach begins, not on every snapshot during it: an operator who resets the
        # switch mid-breach can then flatten, while the per-order checks still refuse new risk.
        if newly_breached and self._config.trip_on_limit_breach and breach is not None:
            reason, detail = breach
            source = (
                KillSwitchSource.DAILY_LOSS
                if reason is RiskReason.DAILY_LOSS_LIMIT
                else KillSwitchSource.DRAWDOWN
            )
            self._trip(f"{reason.value} breached: {detail}", self._mode_for(source))

    def _on_trip_kill_switch(self, command: TripKillSwitch) -> None:
        mode = command.mode
        self._trip(
            command.reason, self._mode_for(KillSwitchSource.OPERATOR) if mode is None else mode
        )

    def _mode_for(self, source: KillSwitchSource) -> KillSwitchMode:
        config = self._config
        return config.kill_switch_modes.get(source, config.kill_switch_mode)

    def _trip(self, reason: str, mode: KillSwitchMode) -> None:
        """Trip the kill switch in ``mode``, or move a tripped one to a mode that goes further.

        ``halt`` and ``flatten`` cancel every open order; ``reduce_only`` those that would
        grow a position. ``flatten`` then closes every strategy's position (:meth:`_flatten`)
        once no order is open, also when a ``flatten`` trip comes again.
        """
        if not self._kill_switch_tripped or mode.rank > self._kill_switch_mode.rank:
            self._kill_switch_tripped = True
            self._kill_switch_reason = reason
            self._kill_switch_mode = mode
            now = self._clock.now_ns()
            self._outbox.publish(
                KillSwitchChanged(
                    tripped=True, reason=reason, mode=mode, ts_event_ns=now, ts_init_ns=now
                )
            )
        current = self._kill_switch_mode
        if current is KillSwitchMode.REDUCE_ONLY:
            self._cancel_growing_orders(f"reduce-only mode: {self._kill_switch_reason}")
            return
        self._cancel_open_orders(f"kill switch: {self._kill_switch_reason}")
        if mode is KillSwitchMode.FLATTEN and current is KillSwitchMode.FLATTEN:
            self._flatten_pending = True
            if not self._open_orders:
                self._flatten()

    def _cancel_growing_orders(self, reason: str) -> None:
        """Cancel every open order that would not shrink its strategy's position.

        Orders on the closing side count in the order they were sent until they add up to more
        than the position: that one and later ones are cancelled.
        """
        claimed: dict[tuple[str, str, OrderSide], float] = {}
        for order in list(self._open_orders.values()):
            if order.cancel_pending:
                continue
            key = (order.strategy_id, order.instrument_id, order.side)
            total = claimed.get(key, 0.0) + order.leaves_qty
            position = self._strategy_positions.get(order.strategy_id, {}).get(
                order.instrument_id, 0.0
            )
            instrument = self._instruments[order.instrument_id]
            if self._only_reduces(position, order.side, total, instrument):
                claimed[key] = total
            else:
                self._send_cancel(order, reason)

    def _flatten(self) -> None:
        """Close every strategy's position with a reduce-only market order through the checks.

        The orders carry ``FLATTEN_TAG`` and the strategy's id, so their fills are booked to
        it. An order the checks refuse (a stale feed, say) is refused to its strategy as any
        other: the position stays open, and another ``flatten`` trip tries again.
        """
        self._flatten_pending = False
        now = self._clock.now_ns()
        for strategy_id in sorted(self._strategy_positions):
            by_instrument = self._strategy_positions[strategy_id]
            for inst_id in sorted(by_instrument):
                position = by_instrument[inst_id]
                if position == 0.0:
                    continue
                self._flatten_orders += 1
                intent = OrderIntent(
                    intent_id=f"{strategy_id}-flat{self._flatten_orders:04d}",
                    strategy_id=strategy_id,
                    instrument_id=inst_id,
                    side=OrderSide.SELL if position > 0.0 else OrderSide.BUY,
                    quantity=abs(position),
                    reduce_only=True,
                    tag=FLATTEN_TAG,
                    ts_event_ns=now,
                    ts_init_ns=now,
                )
                self._submit(intent, closing=True)

    def _on_reset_kill_switch(self, command: ResetKillSwitch) -> None:
        if not self._kill_switch_tripped:
            return
        self._kill_switch_tripped = False
        self._flatten_pending = False
        self._kill_switch_reason = command.reason or "reset"
        now = self._clock.now_ns()
        self._outbox.publish(
            KillSwitchChanged(
                tripped=False,
                reason=self._kill_switch_reason,
                mode=self._kill_switch_mode,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    @property
    def limits(self) -> RiskConfig:
        """The limits in force: the configured ones with the changes made while running."""
        return self._config

    @property
    def limits_refused(self) -> str:
        """Why the last ``ChangeLimits`` was refused (nothing changed then), or ``""``."""
        return self._limits_refused

    def _on_change_limits(self, command: ChangeLimits) -> None:
        """Apply new limits from the next order on; a change the configuration's own model
        refuses changes nothing (``limits_refused`` says why)."""
        changes = {**self._limit_changes, **{c.field: c for c in command.changes}}
        try:
            config = apply_limit_changes(self._configured, changes.values())
        except ConfigError as exc:
            self._limits_refused = str(exc)
            return
        previous = limit_values(self._config, (c.field for c in command.changes))
        self._limits_refused = ""
        self._limit_changes = changes
        self._set_limits(config)
        now = self._clock.now_ns()
        self._outbox.publish(
            LimitsChanged(
                changes=command.changes,
                previous=previous,
                reason=command.reason,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def _set_limits(self, config: RiskConfig) -> None:
        rate_changed = (config.max_orders_per_s, config.order_burst) != (
            self._config.max_orders_per_s,
            self._config.order_burst,
        )
        self._config = config
        if rate_changed:
            # A new rate starts with a full bucket of the new size.
            self._order_rate = (
                None
                if config.max_orders_per_s is None
                else TokenBucket(
                    config.max_orders_per_s, float(config.order_burst), self._clock.now_ns()
                )
            )

    def _on_strategy_error(self, error: StrategyError) -> None:
        self._stopped_strategies.setdefault(error.strategy_id, f"{error.error_type}: {error.error}")
        self._cancel_open_orders(f"strategy {error.strategy_id} stopped", error.strategy_id)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> RiskState:
        """Return all state."""
        return RiskState(
            last_prices=dict(self._last_prices),
            stale_feeds=dict(self._stale_feeds),
            unavailable_venues=dict(self._unavailable_venues),
            kill_switch_tripped=self._kill_switch_tripped,
            kill_switch_reason=self._kill_switch_reason,
            kill_switch_mode=self._kill_switch_mode,
            flatten_pending=self._flatten_pending,
            flatten_orders=self._flatten_orders,
            account_limit_breached=self._account_limit_breached,
            stopped_strategies=dict(self._stopped_strategies),
            open_orders=[order.to_state() for order in self._open_orders.values()],
            submitted_ids=self._submitted_ids.to_state(),
            positions=dict(self._positions),
            strategy_positions={sid: dict(pos) for sid, pos in self._strategy_positions.items()},
            fill_keys=self._fill_keys.to_state(),
            rejection_counts=dict(self._rejection_counts),
            portfolio=self._portfolio,
            order_rate=None if self._order_rate is None else self._order_rate.snapshot(),
            accounts={venue: a.snapshot() for venue, a in self._accounts.items()},
            adopted_venues=sorted(self._adopted_venues),
            limit_changes=list(self._limit_changes.values()),
            limits_refused=self._limits_refused,
            emulator=self._emulator.snapshot(),
            liquidations=self._liquidations,
        )

    def restore(self, state: RiskState) -> None:
        """Replace all state with that of a :meth:`snapshot`."""
        self._last_prices = dict(state.last_prices)
        for account in self._accounts.values():
            if isinstance(account, MarginAccount):
                account.use_marks(self._last_prices)
        self._liquidations = state.liquidations
        self._stale_feeds = dict(state.stale_feeds)
        self._unavailable_venues = dict(state.unavailable_venues)
        self._kill_switch_tripped = state.kill_switch_tripped
        self._kill_switch_reason = state.kill_switch_reason
        self._kill_switch_mode = state.kill_switch_mode
        self._flatten_pending = state.flatten_pending
        self._flatten_orders = state.flatten_orders
        self._account_limit_breached = state.account_limit_breached
        self._stopped_strategies = dict(state.stopped_strategies)
        orders = (OpenOrder.from_state(o) for o in state.open_orders)
        self._open_orders = {o.client_order_id: o for o in orders}
        self._submitted_ids = RecentIds(ids=state.submitted_ids)
        self._positions = dict(state.positions)
        self._strategy_positions = {sid: dict(pos) for sid, pos in state.strategy_positions.items()}
        self._fill_keys = RecentIds(ids=state.fill_keys)
        self._rejection_counts = dict(state.rejection_counts)
        self._portfolio = state.portfolio
        self._limits_refused = state.limits_refused
        self._limit_changes = {c.field: c for c in state.limit_changes}
        try:
            self._set_limits(apply_limit_changes(self._configured, state.limit_changes))
        except ConfigError as exc:
            # The configuration changed under the stored state: its limits stand.
            self._limits_refused = f"stored limit changes no longer valid: {exc}"
            self._limit_changes = {}
            self._set_limits(self._configured)
        if self._order_rate is not None and state.order_rate is not None:
            self._order_rate.restore(state.order_rate)
        for venue, account_state in state.accounts.items():
            found = self._accounts.get(venue)
            if found is not None:
                restore_account(found, account_state)
        # A state written before balances were adopted is authoritative at every venue.
        every_venue = sorted({i.venue for i in self._instruments.values()})
        adopted = state.adopted_venues
        self._adopted_venues = set(every_venue if adopted is None else adopted)
        if state.emulator is not None:
            self._emulator.restore(state.emulator)
            # Setting a timer replaces one of the same name: harmless if the clock kept it.
            now = self._clock.now_ns()
            for cid, expire_at_ns in state.emulator.expiries.items():
                self._clock.set_timer(GTD_TIMER_PREFIX + cid, max(expire_at_ns, now))

    def _check_config(self) -> None:
        for inst_id, limit in self._config.max_position_quantity.items():
            if inst_id not in self._instruments:
                raise ConfigError(
                    f"risk.max_position_quantity: unknown instrument {inst_id!r}; "
                    f"known: {sorted(self._instruments)}"
                )
            if not (math.isfinite(limit) and limit > 0.0):
                raise ConfigError(
                    f"risk.max_position_quantity[{inst_id}] must be a number > 0, was {limit!r}"
                )


def _net(position: float, signed_qty: float, flat_below: float) -> float:
    net = position + signed_qty
    return 0.0 if abs(net) <= flat_below else net


def _drawdown_fraction(snapshot: PortfolioSnapshot) -> float:
    """``snapshot.drawdown`` (an amount below peak equity) as a fraction of peak equity."""
    if snapshot.peak_equity > 0.0:
        return snapshot.drawdown / snapshot.peak_equity
    return math.inf if snapshot.drawdown > 0.0 else 0.0
