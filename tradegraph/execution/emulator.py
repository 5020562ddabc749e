"""Order emulation: conditional and contingent orders held and triggered by tradegraph itself.

A venue trades market and limit orders. Everything else a strategy can ask for is held here
until it triggers, and then released as the plain order it becomes, under the order's own id:

* ``stop_market`` / ``stop_limit``: a buy triggers when the price rises to ``trigger_price``
  (``price >= trigger``), a sell when it falls to it (``price <= trigger``); it then becomes a
  market order, or a limit order at ``limit_price``.
* ``take_profit`` / ``take_profit_limit``: the mirror image, a buy triggers when the price falls
  to ``trigger_price``, a sell when it rises to it; then a market or a limit order.
* ``trailing_stop``: a stop whose trigger follows the best price since the order was armed at
  ``trailing_offset`` (price units, or basis points of that best price), never moving back; a
  given ``trigger_price`` is its initial level. It becomes a market order.
* a plain ``limit`` order in an OCO group or waiting for a parent is held too; it triggers when
  the price trades strictly through its limit (the venue's rule for a resting limit to fill)
  and is released as that limit order.

Contingencies: orders sharing an ``oco_group`` cancel each other; when one triggers, the others
are cancelled in the same step. An order with a ``parent_id`` waits, unarmed, until its parent
has filled completely, or has ended after filling part, and then works for the quantity the
parent filled; it is cancelled if the parent ends with no fill. A bracket is an entry with a
take-profit and a stop-loss that are both its children and one OCO group.

Prices. A trade triggers with its price. A quote triggers a buy with the ask and a sell with the
bid (and moves a trailing stop with them). A bar is walked as a path from its open, and an order
triggers at the first point of the path that reaches its trigger:

* a sell order sees ``open -> low -> high -> close``; a buy order ``open -> high -> low ->
  close``. The extreme adverse to a position the order would close comes first, so a
  protective stop triggers as early as the bar allows and a target as late.
* When one bar reaches both the stop and the target of an OCO group, the stop is taken
  first: the path reaches it first, and at one point of the path stops rank before targets.
  This is the conservative rule; a bar alone cannot tell which came first.
* A trailing stop is checked at each point before the point moves it, so the extreme of a bar
  can raise the stop and the close can then trigger it.
* A bar that opened before the order was armed (a bar is stamped at its close) is skipped, as
  the venue skips it for new orders: its prices may predate the order.

Released orders are ordinary orders from then on: Risk checks them like a fresh intent (a
refusal is a ``RiskRejected`` of the order's id) and the venue fills them by its rules for
market and limit orders; with bars, a released market order fills at the next bar's open
(``fill_at: next_open``). Nothing is reserved against an account while an order is held.

The emulator is a pure core: no clock, no outbox. Risk owns it, feeds it prices and order
events, and turns what it returns into messages; so the same code runs in a backtest, a paper
session and live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tradegraph.contracts import (
    Bar,
    OrderIntent,
    OrderSide,
    OrderType,
    QuoteTick,
    TimeInForce,
    TradeTick,
    TrailingOffsetType,
)
from tradegraph.contracts.state import StateRecord

__all__ = [
    "EmulatedOrder",
    "EmulatedOrderState",
    "EmulatorState",
    "OrderEmulator",
    "Release",
    "released_intent",
]

_BPS = 10_000.0


class _Kind(StrEnum):
    STOP = "stop"
    TARGET = "target"


def _kind(order_type: OrderType) -> _Kind:
    """Stops (including trailing) trigger on adverse moves; targets and limits on favourable."""
    if order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP):
        return _Kind.STOP
    return _Kind.TARGET


def _trigger_of(intent: OrderIntent) -> float | None:
    """The level a non-trailing order triggers at: its trigger price, or a limit's price."""
    if intent.trigger_price is not None:
        return intent.trigger_price
    if intent.order_type is OrderType.LIMIT:
        return intent.limit_price
    return None


@dataclass(slots=True)
class EmulatedOrder:
    """An order held by the emulator.

    Attributes:
        intent: The intent as the strategy sent it.
        venue: Where it will go once released.
        seq: Arrival number; orders triggering at the same point go in this order.
        armed: Watching prices (``False`` while it waits for its parent).
        armed_ns: When it began watching prices.
        quantity: Quantity it is released for (a child's is capped by its parent's fills).
        trigger: Current trigger level; a trailing stop's moves, ``None`` until it has a
            price to trail.
        best: A trailing stop's best price since it was armed.
    """

    intent: OrderIntent
    venue: str
    seq: int
    armed: bool
    armed_ns: int
    quantity: float
    trigger: float | None
    best: float | None

    @property
    def client_order_id(self) -> str:
        return self.intent.intent_id

    def to_state(self) -> EmulatedOrderState:
        """The order as a state record."""
        return EmulatedOrderState(
            intent=self.intent,
            venue=self.venue,
            seq=self.seq,
            armed=self.armed,
            armed_ns=self.armed_ns,
            quantity=self.quantity,
            trigger=self.trigger,
            best=self.best,
        )

    @classmethod
    def from_state(cls, state: EmulatedOrderState) -> EmulatedOrder:
        """Inverse of :meth:`to_state`."""
        return cls(**dict(state))

    def _trail(self, price: float) -> None:
        """Move a trailing stop's best price and trigger with ``price`` (never backwards)."""
        intent = self.intent
        is_sell = intent.side is OrderSide.SELL
        best = self.best
        if best is not None and (price <= best if is_sell else price >= best):
            return
        self.best = price
        offset = intent.trailing_offset
        assert offset is not None  # validated by OrderIntent
        if intent.trailing_offset_type is TrailingOffsetType.BPS:
            offset = price * offset / _BPS
        level = price - offset if is_sell else price + offset
        current = self.trigger
        if current is None or (level > current if is_sell else level < current):
            self.trigger = level

    def _hit(self, price: float) -> bool:
        """Whether ``price`` reaches the order's trigger."""
        trigger = self.trigger
        if trigger is None:
            return False
        intent = self.intent
        is_sell = intent.side is OrderSide.SELL
        kind = intent.order_type
        if kind is OrderType.LIMIT:
            # Strictly through, as a resting limit needs to fill at the venue.
            return price > trigger if is_sell else price < trigger
        if _kind(kind) is _Kind.STOP:
            return price <= trigger if is_sell else price >= trigger
        return price >= trigger if is_sell else price <= trigger


class EmulatedOrderState(StateRecord):
    """An :class:`EmulatedOrder` as stored."""

    intent: OrderIntent
    venue: str
    seq: int
    armed: bool
    armed_ns: int
    quantity: float
    trigger: float | None
    best: float | None


class EmulatorState(StateRecord):
    """All of an :class:`OrderEmulator`'s state.

    Attributes:
        orders: Held orders in arrival order.
        parent_fills: Quantity filled so far by each parent with waiting children.
        expiries: Expiry time of each good-till-date order, held or at a venue.
        seq: Orders held so far.
    """

    orders: list[EmulatedOrderState]
    parent_fills: dict[str, float]
    expiries: dict[str, int]
    seq: int


@dataclass(frozen=True, slots=True)
class Release:
    """An order that triggered: send ``intent`` (a plain market or limit order) on its way."""

    order: EmulatedOrder
    intent: OrderIntent


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A held order that ended without triggering, and why."""

    order: EmulatedOrder
    reason: str


Action = Release | Cancellation


def released_intent(order: EmulatedOrder, now_ns: int) -> OrderIntent:
    """The plain order a triggered ``order`` becomes, under its own id."""
    intent = order.intent
    limit_type = intent.order_type.has_limit
    return OrderIntent.trusted(
        intent_id=intent.intent_id,
        strategy_id=intent.strategy_id,
        instrument_id=intent.instrument_id,
        side=intent.side,
        quantity=order.quantity,
        order_type=OrderType.LIMIT if limit_type else OrderType.MARKET,
        limit_price=intent.limit_price if limit_type else None,
        time_in_force=intent.time_in_force,
        post_only=intent.post_only,
        reduce_only=intent.reduce_only,
        tag=intent.tag,
        trigger_price=None,
        trailing_offset=None,
        trailing_offset_type=TrailingOffsetType.PRICE,
        expire_at_ns=intent.expire_at_ns,
        oco_group="",
        parent_id="",
        ts_event_ns=now_ns,
        ts_init_ns=now_ns,
    )


class OrderEmulator:
    """Holds conditional and contingent orders and says when each triggers or ends.

    See the module docstring for the rules. Methods that can end orders return the actions
    in the order they happen; the caller publishes them.

    Attributes:
        watched: Armed orders by instrument, then by client order id. An instrument with no
            armed order has no entry, so a caller can skip the emulator for it with one
            lookup.
        expiries: Expiry time of every good-till-date order, held or at a venue.
        parents: Ids of the orders held children wait for.

    The dicts behind ``watched``, ``expiries``, ``parents`` and ``orders`` are never replaced
    (a restore refills them), so a caller on a hot path may keep references to them.
    """

    def __init__(self) -> None:
        self.watched: dict[str, dict[str, EmulatedOrder]] = {}
        self.expiries: dict[str, int] = {}
        self._orders: dict[str, EmulatedOrder] = {}
        # Children waiting for their parent, by parent id; and what each parent has filled.
        self._waiting: dict[str, list[str]] = {}
        self.parents: Mapping[str, list[str]] = self._waiting
        self._parent_fills: dict[str, float] = {}
        self._seq = 0

    # ------------------------------------------------------------------ queries

    @property
    def orders(self) -> Mapping[str, EmulatedOrder]:
        """Held orders by client order id (do not modify)."""
        return self._orders

    def is_parent(self, client_order_id: str) -> bool:
        """Whether held children wait for ``client_order_id``."""
        return client_order_id in self._waiting

    # ------------------------------------------------------------------ holding and ending

    def hold(
        self, intent: OrderIntent, venue: str, now_ns: int, prices: Mapping[str, float]
    ) -> None:
        """Start holding ``intent``: armed at once, or waiting if it has a parent.

        Args:
            intent: The order.
            venue: Where it goes once released.
            now_ns: The time.
            prices: Latest price of each instrument (a trailing stop starts trailing from it).
        """
        self._seq += 1
        order = EmulatedOrder(
            intent=intent,
            venue=venue,
            seq=self._seq,
            armed=False,
            armed_ns=now_ns,
            quantity=intent.quantity,
            trigger=None,
            best=None,
        )
        self._orders[intent.intent_id] = order
        if intent.parent_id:
            self._waiting.setdefault(intent.parent_id, []).append(intent.intent_id)
            self._parent_fills.setdefault(intent.parent_id, 0.0)
        else:
            self._arm(order, now_ns, prices)

    def _arm(self, order: EmulatedOrder, now_ns: int, prices: Mapping[str, float]) -> None:
        order.armed = True
        order.armed_ns = now_ns
        intent = order.intent
        if intent.order_type is OrderType.TRAILING_STOP:
            order.trigger = intent.trigger_price
            last_price = prices.get(intent.instrument_id)
            if last_price is not None:
                order._trail(last_price)
        else:
            order.trigger = _trigger_of(intent)
        book = self.watched.get(intent.instrument_id)
        if book is None:
            book = self.watched[intent.instrument_id] = {}
        book[intent.intent_id] = order

    def _remove(self, order: EmulatedOrder) -> None:
        cid = order.client_order_id
        del self._orders[cid]
        self.expiries.pop(cid, None)
        iid = order.intent.instrument_id
        book = self.watched.get(iid)
        if book is not None and book.pop(cid, None) is not None and not book:
            del self.watched[iid]
        parent = order.intent.parent_id
        if parent and not order.armed:
            children = self._waiting.get(parent)
            if children is not None and cid in children:
                children.remove(cid)
                if not children:
                    del self._waiting[parent]
                    self._parent_fills.pop(parent, None)

    def cancel(self, client_order_id: str) -> EmulatedOrder | None:
        """Stop holding one order; ``None`` if it is not held."""
        order = self._orders.get(client_order_id)
        if order is not None:
            self._remove(order)
        return order

    def cancel_all(self, strategy_id: str | None = None) -> list[EmulatedOrder]:
        """Stop holding every order (of one strategy, if given), in arrival order."""
        ended = [
            o
            for o in self._orders.values()
            if strategy_id is None or o.intent.strategy_id == strategy_id
        ]
        for order in ended:
            self._remove(order)
        return ended

    # ------------------------------------------------------------------ parents

    def parent_filled(
        self, parent_id: str, quantity: float, done: bool, now_ns: int, prices: Mapping[str, float]
    ) -> None:
        """A parent filled ``quantity``; with ``done`` it is complete and its children arm."""
        if parent_id not in self._waiting:
            return
        filled = self._parent_fills.get(parent_id, 0.0) + quantity
        self._parent_fills[parent_id] = filled
        if done:
            self._arm_children(parent_id, filled, now_ns, prices)

    def parent_ended(
        self, parent_id: str, reason: str, now_ns: int, prices: Mapping[str, float]
    ) -> list[Cancellation]:
        """A parent ended (cancelled, rejected, refused): children arm for what it filled, or
        are cancelled if it filled nothing."""
        children = self._waiting.get(parent_id)
        if children is None:
            return []
        filled = self._parent_fills.get(parent_id, 0.0)
        if filled > 0.0:
            self._arm_children(parent_id, filled, now_ns, prices)
            return []
        ended = [self._orders[cid] for cid in children]
        for order in ended:
            self._remove(order)
        return [
            Cancellation(o, f"parent order {parent_id} ended unfilled: {reason}") for o in ended
        ]

    def _arm_children(
        self, parent_id: str, filled: float, now_ns: int, prices: Mapping[str, float]
    ) -> None:
        children = self._waiting.pop(parent_id)
        self._parent_fills.pop(parent_id, None)
        for cid in children:
            order = self._orders[cid]
            order.quantity = min(order.quantity, filled)
            self._arm(order, now_ns, prices)

    # ------------------------------------------------------------------ prices

    def on_bar(self, bar: Bar) -> list[Action]:
        """Walk ``bar``'s path for every armed order of its instrument (see module docstring)."""
        book = self.watched.get(bar.instrument_id)
        if book is None:
            return []
        bar_open_ns = bar.ts_event_ns - bar.interval_ns
        sell_path = (bar.open, bar.low, bar.high, bar.close)
        buy_path = (bar.open, bar.high, bar.low, bar.close)
        hits: list[tuple[int, int, int, EmulatedOrder]] = []
        for order in book.values():
            if order.armed_ns > bar_open_ns:
                continue
            is_trailing = order.intent.order_type is OrderType.TRAILING_STOP
            path = sell_path if order.intent.side is OrderSide.SELL else buy_path
            for step, price in enumerate(path):
                if order._hit(price):
                    hits.append((step, _rank(order), order.seq, order))
                    break
                if is_trailing:
                    order._trail(price)
        return self._trigger(hits, bar.ts_event_ns)

    def on_trade(self, trade: TradeTick) -> list[Action]:
        """Check the armed orders of the trade's instrument against its price."""
        book = self.watched.get(trade.instrument_id)
        if book is None:
            return []
        return self._at_prices(book, trade.price, trade.price, trade.ts_event_ns)

    def on_quote(self, quote: QuoteTick) -> list[Action]:
        """Check the armed orders of the quote's instrument: buys at the ask, sells at the bid."""
        book = self.watched.get(quote.instrument_id)
        if book is None:
            return []
        return self._at_prices(book, quote.ask_price, quote.bid_price, quote.ts_event_ns)

    def _at_prices(
        self, book: dict[str, EmulatedOrder], buy_price: float, sell_price: float, now_ns: int
    ) -> list[Action]:
        hits: list[tuple[int, int, int, EmulatedOrder]] = []
        for order in book.values():
            price = sell_price if order.intent.side is OrderSide.SELL else buy_price
            if order._hit(price):
                hits.append((0, _rank(order), order.seq, order))
            elif order.intent.order_type is OrderType.TRAILING_STOP:
                order._trail(price)
        return self._trigger(hits, now_ns)

    def _trigger(
        self, hits: list[tuple[int, int, int, EmulatedOrder]], now_ns: int
    ) -> list[Action]:
        """Release what triggered, earliest point first, stops before targets at one point;
        each release cancels the rest of its OCO group."""
        if not hits:
            return []
        hits.sort(key=lambda hit: hit[:3])
        actions: list[Action] = []
        for *_, order in hits:
            cid = order.client_order_id
            if cid not in self._orders:
                continue  # an OCO sibling released earlier in this step cancelled it
            self._remove(order)
            actions.append(Release(order, released_intent(order, now_ns)))
            group = order.intent.oco_group
            if group:
                actions.extend(self._cancel_group(order, group))
        return actions

    def _cancel_group(self, released: EmulatedOrder, group: str) -> list[Cancellation]:
        strategy_id = released.intent.strategy_id
        siblings = [
            o
            for o in self._orders.values()
            if o.intent.oco_group == group and o.intent.strategy_id == strategy_id
        ]
        for order in siblings:
            self._remove(order)
        reason = f"oco: {released.client_order_id} triggered"
        return [Cancellation(o, reason) for o in siblings]

    # ------------------------------------------------------------------ expiry

    def track_expiry(self, intent: OrderIntent) -> None:
        """Remember a good-till-date order's expiry (held or sent to a venue)."""
        if intent.time_in_force is TimeInForce.GTD and intent.expire_at_ns is not None:
            self.expiries[intent.intent_id] = intent.expire_at_ns

    def expire(self, client_order_id: str) -> EmulatedOrder | None:
        """Forget the expiry of ``client_order_id``; return it if it was held (now dropped)."""
        self.expiries.pop(client_order_id, None)
        return self.cancel(client_order_id)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> EmulatorState:
        """All state, as plain data."""
        return EmulatorState(
            orders=[o.to_state() for o in self._orders.values()],
            parent_fills=dict(self._parent_fills),
            expiries=dict(self.expiries),
            seq=self._seq,
        )

    def restore(self, state: EmulatorState) -> None:
        """Replace all state with a :meth:`snapshot`'s (``watched`` stays the same object)."""
        self.watched.clear()
        self._orders.clear()
        self._waiting.clear()
        self._parent_fills = dict(state.parent_fills)
        self.expiries.clear()
        self.expiries.update(state.expiries)
        self._seq = state.seq
        for stored in state.orders:
            order = EmulatedOrder.from_state(stored)
            self._orders[order.client_order_id] = order
            intent = order.intent
            if order.armed:
                self.watched.setdefault(intent.instrument_id, {})[intent.intent_id] = order
            else:
                self._waiting.setdefault(intent.parent_id, []).append(intent.intent_id)


def _rank(order: EmulatedOrder) -> int:
    """At one point of a path, stops go before targets."""
    return 0 if _kind(order.intent.order_type) is _Kind.STOP else 1
