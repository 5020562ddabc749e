"""The fake exchange's state: symbol rules, one spot account, order books and matching.

Pure and synchronous: no sockets, no wire format. The server turns requests into calls here and
the events drained from :meth:`MatchingEngine.drain_events` into websocket frames.

Model (good enough for fills, not a venue simulator):

- Each symbol has a book of outside liquidity (``set_book`` or the ladder ``set_price`` builds).
  Market orders and crossing limit orders take from it as taker, level by level, and what they
  take leaves the book. A market order the book cannot fill completely ends ``EXPIRED`` with its
  partial fill, as on Binance.
- The account's own limit orders rest outside that book. They fill as maker, at their own price,
  when the market reaches them: ``set_price`` at or through the limit fills them completely;
  ``trade(price, qty)`` fills them by price-time priority up to ``qty`` (partial fills).
- Commission is taken from what is received (base for a buy, quote for a sell), as Binance does
  without BNB discounts. Amounts are ``Decimal``: balances conserve exactly.
- A client order id can be used once, ever. Binance itself only refuses one that is still open;
  the fake is stricter so that a second order for one intent can never slip through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

ZERO = Decimal(0)
SATOSHI = Decimal("0.00000001")

LIVE_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


class BinanceError(Exception):
    """A request the venue refuses: Binance's error code, message and HTTP status."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def insufficient_balance() -> BinanceError:
    return BinanceError(-2010, "Account has insufficient balance for requested action.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


@dataclass(frozen=True)
class SymbolRules:
    """Trading rules of one symbol, as ``exchangeInfo`` gives them."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    order_types: tuple[str, ...]

    @classmethod
    def from_exchange_info(cls, raw: Mapping[str, Any]) -> SymbolRules:
        filters = {f["filterType"]: f for f in raw["filters"]}
        price_f = filters["PRICE_FILTER"]
        lot_f = filters["LOT_SIZE"]
        notional_f = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        return cls(
            symbol=raw["symbol"],
            base=raw["baseAsset"],
            quote=raw["quoteAsset"],
            tick_size=Decimal(price_f["tickSize"]),
            min_price=Decimal(price_f["minPrice"]),
            max_price=Decimal(price_f["maxPrice"]),
            step_size=Decimal(lot_f["stepSize"]),
            min_qty=Decimal(lot_f["minQty"]),
            max_qty=Decimal(lot_f["maxQty"]),
            min_notional=Decimal(notional_f.get("minNotional", "0")),
            order_types=tuple(raw.get("orderTypes", ("LIMIT", "MARKET"))),
        )


@dataclass(frozen=True)
class Fill:
    """One execution of the account's order (a row of ``myTrades``)."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass(frozen=True)
class PublicTrade:
    """A print on the public tape (``trades``, ``aggTrades`` and the trade stream)."""

    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass
class Order:
    """An order of the account, as it stands now."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_order_qty: Decimal
    time_ms: int
    update_time_ms: int
    executed_qty: Decimal = ZERO
    cumulative_quote_qty: Decimal = ZERO
    status: str = "NEW"
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class OrderEvent:
    """An order changed: becomes an ``executionReport``. ``order`` is a copy taken then."""

    order: Order
    execution_type: str
    fill: Fill | None
    time_ms: int
    cancel_client_order_id: str = ""


@dataclass(frozen=True)
class BalanceEvent:
    """Balances changed: becomes an ``outboundAccountPosition``. ``(asset, free, locked)``."""

    balances: tuple[tuple[str, Decimal, Decimal], ...]
    time_ms: int


@dataclass(frozen=True)
class DepthEvent:
    """The outside book changed: becomes a ``depthUpdate`` (quantity 0 removes a level)."""

    symbol: str
    first_update_id: int
    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int


@dataclass(frozen=True)
class TradeEvent:
    trade: PublicTrade


Event = OrderEvent | BalanceEvent | DepthEvent | TradeEvent


@dataclass
class _Book:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    update_id: int = 1
    last_price: Decimal | None = None
    resting: list[Order] = field(default_factory=list)

    def levels(self, side: str) -> list[tuple[Decimal, Decimal]]:
        """Levels a taker on ``side`` walks, best first."""
        if side == "BUY":
            return sorted(self.asks.items())
        return sorted(self.bids.items(), reverse=True)


def _floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == ZERO or value % step == ZERO


class MatchingEngine:
    """One spot account trading against fake order books.

    Args:
        rules: trading rules by symbol (``BTCUSDT``).
        balances: starting free balances by asset.
        maker_fee: commission rate of resting fills (0.001 = 0.1 %).
        taker_fee: commission rate of crossing fills.
        clock_ms: the exchange's clock, milliseconds since the epoch.
    """

    def __init__(
        self,
        rules: Mapping[str, SymbolRules],
        *,
        balances: Mapping[str, Decimal],
        maker_fee: Decimal,
        taker_fee: Decimal,
        clock_ms: Callable[[], int],
    ) -> None:
        self.rules = dict(rules)
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self._clock_ms = clock_ms
        self.free: dict[str, Decimal] = {}
        self.locked: dict[str, Decimal] = {}
        for r in self.rules.values():
            for asset in (r.base, r.quote):
                self.free.setdefault(asset, ZERO)
                self.locked.setdefault(asset, ZERO)
        for asset, amount in balances.items():
            self.free[asset] = Decimal(amount)
            self.locked.setdefault(asset, ZERO)
        self.books: dict[str, _Book] = {s: _Book() for s in self.rules}
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[str, int] = {}
        self.fills: list[Fill] = []
        self.tape: list[PublicTrade] = []
        self._next_order_id = 10_001
        self._next_trade_id = 500_001
        self._next_cancel_id = 1
        self._events: list[Event] = []
        self._touched: set[str] = set()

    # -- lookups ------------------------------------------------------------------------------

    def rules_for(self, symbol: str) -> SymbolRules:
        try:
            return self.rules[symbol]
        except KeyError:
            raise BinanceError(-1121, "Invalid symbol.") from None

    def book(self, symbol: str) -> _Book:
        self.rules_for(symbol)
        return self.books[symbol]

    def drain_events(self) -> list[Event]:
        """Events since the last call, in the order they happened."""
        self._flush_balances()
        events, self._events = self._events, []
        return events

    def depth(
        self, symbol: str, limit: int
    ) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        book = self.book(symbol)
        bids = sorted(book.bids.items(), reverse=True)[:limit]
        asks = sorted(book.asks.items())[:limit]
        return book.update_id, bids, asks

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        return self.free.get(asset, ZERO), self.locked.get(asset, ZERO)

    def find_order(self, symbol: str, order_id: int | None, client_order_id: str | None) -> Order:
        self.rules_for(symbol)
        order: Order | None = None
        if order_id is not None:
            order = self.orders.get(order_id)
        elif client_order_id is not None:
            found = self.client_ids.get(client_order_id)
            order = self.orders.get(found) if found is not None else None
        if order is None or order.symbol != symbol:
            raise BinanceError(-2013, "Order does not exist.")
        return order

    def _open_with_client_id(self, client_order_id: str) -> bool:
        found = self.client_ids.get(client_order_id)
        order = self.orders.get(found) if found is not None else None
        return order is not None and order.is_live

    def open_orders(self, symbol: str | None) -> list[Order]:
        return [
            o for o in self.orders.values() if o.is_live and (symbol is None or o.symbol == symbol)
        ]

    # -- market control -----------------------------------------------------------------------

    def set_book(
        self,
        symbol: str,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
    ) -> None:
        """Replace the outside liquidity of ``symbol``; one depth update says what changed."""
        book = self.book(symbol)
        new_bids = {Decimal(p): Decimal(q) for p, q in bids if Decimal(q) > ZERO}
        new_asks = {Decimal(p): Decimal(q) for p, q in asks if Decimal(q) > ZERO}
        bid_diff = _diff(book.bids, new_bids)
        ask_diff = _diff(book.asks, new_asks)
        book.bids, book.asks = new_bids, new_asks
        self._emit_depth(symbol, bid_diff, ask_diff)

    def set_price(
        self,
        symbol: str,
        price: Decimal,
        *,
        levels: int = 5,
        qty_per_level: Decimal = Decimal(1),
        spread_ticks: int = 1,
    ) -> None:
        """Move the market to ``price``: a ladder of ``levels`` levels each side, best bid and
        ask ``spread_ticks`` ticks away; resting orders at or through ``price`` fill in full."""
        rules = self.rules_for(symbol)
        tick = rules.tick_size
        half = tick * spread_ticks
        bids = [(price - half - tick * i, qty_per_level) for i in range(levels)]
        asks = [(price + half + tick * i, qty_per_level) for i in range(levels)]
        self.set_book(symbol, [(p, q) for p, q in bids if p > ZERO], asks)
        book = self.books[symbol]
        book.last_price = price
        for order in self._crossed(book, price):
            self._fill_resting(order, order.remaining)

    def trade(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """An outside trade of ``qty`` at ``price``: resting orders it reaches fill at their own
        price, best price then oldest first, up to ``qty``; what is left prints at ``price``."""
        book = self.book(symbol)
        left = qty
        for order in self._crossed(book, price):
            if left <= ZERO:
                break
            take = min(order.remaining, left)
            self._fill_resting(order, take)
            left -= take
        if left > ZERO:
            self._print(symbol, price, left, buyer_is_maker=False)
        book.last_price = price

    # -- orders -------------------------------------------------------------------------------

    def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        client_order_id: str | None,
        quantity: Decimal | None,
        quote_order_qty: Decimal | None = None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
    ) -> Order:
        """Validate, accept and match one order. Raises :class:`BinanceError` on refusal."""
        rules = self.rules_for(symbol)
        book = self.books[symbol]
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'side'.")
        if order_type not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
            raise BinanceError(-1116, "Invalid orderType.")
        if order_type not in rules.order_types:
            raise BinanceError(-1116, "Invalid orderType.")
        if client_order_id is not None and self._open_with_client_id(client_order_id):
            # Binance: newClientOrderId is "a unique id among open orders"; a finished order's
            # id may be used again (and the lookup by client id then finds the new order).
            raise BinanceError(-2010, "Duplicate order sent.")
        if order_type == "MARKET":
            if (quantity is None) == (quote_order_qty is None):
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty."
                )
            if price is not None:
                raise BinanceError(-1106, "Parameter 'price' sent when not required.")
        else:
            if quantity is None or price is None:
                raise BinanceError(-1102, "Mandatory parameter 'quantity' or 'price' was not sent.")
            if order_type == "LIMIT" and time_in_force not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1102, "Mandatory parameter 'timeInForce' was not sent.")
        if price is not None:
            if price < rules.min_price or price > rules.max_price:
                raise filter_failure("PRICE_FILTER")
            if not _is_multiple(price - rules.min_price, rules.tick_size):
                raise filter_failure("PRICE_FILTER")
        if quantity is not None:
            if quantity < rules.min_qty or quantity > rules.max_qty:
                raise filter_failure("LOT_SIZE")
            if not _is_multiple(quantity - rules.min_qty, rules.step_size):
                raise filter_failure("LOT_SIZE")
        reference = price or book.last_price or _best(book, side)
        if rules.min_notional > ZERO and reference is not None:
            notional = quote_order_qty if quantity is None else quantity * reference
            if notional is not None and notional < rules.min_notional:
                raise filter_failure("MIN_NOTIONAL")

        locked_asset, lock = rules.quote, ZERO
        if order_type == "MARKET":
            plan = self._plan_market(rules, book, side, quantity, quote_order_qty)
            self._check_market_funds(rules, side, plan, quote_order_qty)
        else:
            assert price is not None
            assert quantity is not None
            plan = [
                (p, q)
                for p, q in _walk(book.levels(side), quantity)
                if (p <= price if side == "BUY" else p >= price)
            ]
            if order_type == "LIMIT_MAKER" and plan:
                raise BinanceError(-2010, "Order would immediately match and take.")
            if time_in_force == "FOK" and sum((q for _, q in plan), ZERO) < quantity:
                plan = []
            locked_asset, lock = (
                (rules.quote, quantity * price) if side == "BUY" else (rules.base, quantity)
            )
            if self.free.get(locked_asset, ZERO) < lock:
                raise insufficient_balance()

        now = self._clock_ms()
        order_id = self._next_order_id
        self._next_order_id += 1
        order = Order(
            order_id=order_id,
            client_order_id=client_order_id or f"fake{order_id}",
            symbol=symbol,
            side=side,
            type=order_type,
            time_in_force=time_in_force or "GTC",
            price=price if price is not None else ZERO,
            orig_qty=quantity if quantity is not None else sum((q for _, q in plan), ZERO),
            orig_quote_order_qty=quote_order_qty or ZERO,
            time_ms=now,
            update_time_ms=now,
        )
        self.orders[order_id] = order
        self.client_ids[order.client_order_id] = order_id
        if order_type != "MARKET":
            self._move(locked_asset, lock, to_locked=True)
        self._emit_order(order, "NEW", None)

        for level_price, level_qty in plan:
            self._take_level(symbol, side, level_price, level_qty)
            self._apply_fill(order, level_price, level_qty, is_maker=False)
        if order.remaining > ZERO:
            if order_type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
                self._finish(order, "EXPIRED")
            else:
                book.resting.append(order)
        return order

    def cancel_order(
        self,
        symbol: str,
        order_id: int | None,
        orig_client_order_id: str | None,
        *,
        cancel_client_order_id: str | None = None,
    ) -> tuple[Order, str]:
        """Cancel a live order; gives the order and the client id of the cancel request."""
        try:
            order = self.find_order(symbol, order_id, orig_client_order_id)
        except BinanceError:
            raise BinanceError(-2011, "Unknown order sent.") from None
        if not order.is_live:
            raise BinanceError(-2011, "Unknown order sent.")
        cancel_id = cancel_client_order_id or f"fakecancel{self._next_cancel_id}"
        self._next_cancel_id += 1
        self._finish(order, "CANCELED", cancel_client_order_id=cancel_id)
        return order, cancel_id

    # -- internals ----------------------------------------------------------------------------

    def _plan_market(
        self,
        rules: SymbolRules,
        book: _Book,
        side: str,
        quantity: Decimal | None,
        quote_order_qty: Decimal | None,
    ) -> list[tuple[Decimal, Decimal]]:
        if quantity is not None:
            return _walk(book.levels(side), quantity)
        assert quote_order_qty is not None
        plan: list[tuple[Decimal, Decimal]] = []
        budget = quote_order_qty
        for level_price, level_qty in book.levels(side):
            take = min(level_qty, _floor_to_step(budget / level_price, rules.step_size))
            if take <= ZERO:
                break
            plan.append((level_price, take))
            budget -= take * level_price
        return plan

    def _check_market_funds(
        self,
        rules: SymbolRules,
        side: str,
        plan: list[tuple[Decimal, Decimal]],
        quote_order_qty: Decimal | None,
    ) -> None:
        if side == "BUY":
            cost = sum((p * q for p, q in plan), ZERO)
            if self.free.get(rules.quote, ZERO) < max(cost, quote_order_qty or ZERO):
                raise insufficient_balance()
        else:
            qty = sum((q for _, q in plan), ZERO)
            if self.free.get(rules.base, ZERO) < qty:
                raise insufficient_balance()

    def _crossed(self, book: _Book, price: Decimal) -> list[Order]:
        """Resting orders a market at ``price`` reaches, best price then oldest first."""
        buys = [o for o in book.resting if o.side == "BUY" and o.price >= price]
        sells = [o for o in book.resting if o.side == "SELL" and o.price <= price]
        buys.sort(key=lambda o: (-o.price, o.order_id))
        sells.sort(key=lambda o: (o.price, o.order_id))
        return buys + sells

    def _fill_resting(self, order: Order, qty: Decimal) -> None:
        self._apply_fill(order, order.price, qty, is_maker=True)
        if not order.is_live:
            self.books[order.symbol].resting.remove(order)

    def _take_level(self, symbol: str, side: str, price: Decimal, qty: Decimal) -> None:
        book = self.books[symbol]
        levels = book.asks if side == "BUY" else book.bids
        left = levels[price] - qty
        if left > ZERO:
            levels[price] = left
        else:
            del levels[price]
        change = ((price, max(left, ZERO)),)
        if side == "BUY":
            self._emit_depth(symbol, (), change)
        else:
            self._emit_depth(symbol, change, ())

    def _apply_fill(self, order: Order, price: Decimal, qty: Decimal, *, is_maker: bool) -> None:
        rules = self.rules[order.symbol]
        now = self._clock_ms()
        quote_qty = price * qty
        rate = self.maker_fee if is_maker else self.taker_fee
        if order.side == "BUY":
            commission = (qty * rate).quantize(SATOSHI)
            commission_asset = rules.base
            self._add(rules.base, qty - commission)
            if order.type == "MARKET":
                self._add(rules.quote, -quote_qty)
            else:
                self._add(rules.quote, -qty * order.price, locked=True)
                self._add(rules.quote, qty * (order.price - price))
        else:
            commission = (quote_qty * rate).quantize(SATOSHI)
            commission_asset = rules.quote
            self._add(rules.quote, quote_qty - commission)
            self._add(rules.base, -qty, locked=order.type != "MARKET")
        trade = self._print(
            order.symbol, price, qty, buyer_is_maker=(order.side == "BUY") == is_maker
        )
        fill = Fill(
            trade_id=trade.trade_id,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=now,
            is_maker=is_maker,
        )
        self.fills.append(fill)
        order.fills.append(fill)
        order.executed_qty += qty
        order.cumulative_quote_qty += quote_qty
        order.update_time_ms = now
        order.status = "FILLED" if order.remaining <= ZERO else "PARTIALLY_FILLED"
        self._emit_order(order, "TRADE", fill)

    def _finish(self, order: Order, status: str, *, cancel_client_order_id: str = "") -> None:
        """End a live order (cancel, expiry) and release what it still has locked."""
        rules = self.rules[order.symbol]
        if order.type != "MARKET":
            if order.side == "BUY":
                self._move(rules.quote, order.remaining * order.price, to_locked=False)
            else:
                self._move(rules.base, order.remaining, to_locked=False)
        book = self.books[order.symbol]
        if order in book.resting:
            book.resting.remove(order)
        order.status = status
        order.update_time_ms = self._clock_ms()
        self._emit_order(
            order,
            "CANCELED" if status == "CANCELED" else "EXPIRED",
            None,
            cancel_client_order_id=cancel_client_order_id,
        )

    def _print(
        self, symbol: str, price: Decimal, qty: Decimal, *, buyer_is_maker: bool
    ) -> PublicTrade:
        trade = PublicTrade(
            trade_id=self._next_trade_id,
            symbol=symbol,
            price=price,
            qty=qty,
            time_ms=self._clock_ms(),
            buyer_is_maker=buyer_is_maker,
        )
        self._next_trade_id += 1
        self.tape.append(trade)
        self.books[symbol].last_price = price
        self._events.append(TradeEvent(trade))
        return trade

    def _add(self, asset: str, amount: Decimal, *, locked: bool = False) -> None:
        bucket = self.locked if locked else self.free
        bucket[asset] = bucket.get(asset, ZERO) + amount
        self._touched.add(asset)

    def _move(self, asset: str, amount: Decimal, *, to_locked: bool) -> None:
        sign = 1 if to_locked else -1
        self._add(asset, -amount * sign)
        self._add(asset, amount * sign, locked=True)

    def _emit_order(
        self,
        order: Order,
        execution_type: str,
        fill: Fill | None,
        *,
        cancel_client_order_id: str = "",
    ) -> None:
        # Balance updates follow the order update they belong to, as on Binance.
        self._events.append(
            OrderEvent(
                order=replace(order, fills=list(order.fills)),
                execution_type=execution_type,
                fill=fill,
                time_ms=self._clock_ms(),
                cancel_client_order_id=cancel_client_order_id,
            )
        )
        self._flush_balances()

    def _flush_balances(self) -> None:
        if not self._touched:
            return
        rows = tuple(
            (asset, self.free.get(asset, ZERO), self.locked.get(asset, ZERO))
            for asset in sorted(self._touched)
        )
        self._touched.clear()
        self._events.append(BalanceEvent(rows, self._clock_ms()))

    def _emit_depth(
        self,
        symbol: str,
        bids: tuple[tuple[Decimal, Decimal], ...],
        asks: tuple[tuple[Decimal, Decimal], ...],
    ) -> None:
        if not bids and not asks:
            return
        book = self.books[symbol]
        book.update_id += 1
        self._events.append(
            DepthEvent(
                symbol=symbol,
                first_update_id=book.update_id,
                last_update_id=book.update_id,
                bids=bids,
                asks=asks,
                time_ms=self._clock_ms(),
            )
        )


def _walk(
    levels: list[tuple[Decimal, Decimal]], quantity: Decimal
) -> list[tuple[Decimal, Decimal]]:
    """Take ``quantity`` from ``levels`` (best first): the (price, qty) taken at each."""
    plan: list[tuple[Decimal, Decimal]] = []
    left = quantity
    for price, qty in levels:
        if left <= ZERO:
            break
        take = min(qty, left)
        plan.append((price, take))
        left -= take
    return plan


def _best(book: _Book, side: str) -> Decimal | None:
    levels = book.levels(side)
    return levels[0][0] if levels else None


def _diff(
    old: Mapping[Decimal, Decimal], new: Mapping[Decimal, Decimal]
) -> tuple[tuple[Decimal, Decimal], ...]:
    changes = [(p, q) for p, q in new.items() if old.get(p) != q]
    changes += [(p, ZERO) for p in old if p not in new]
    return tuple(sorted(changes))
