"""Enumerations shared by messages and components."""

from __future__ import annotations

from enum import StrEnum


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is OrderSide.BUY else -1

    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    """What an order does once it is working.

    ``market`` and ``limit`` go to a venue as they are. The conditional types wait for a
    trigger and then become a market order (``stop_market``, ``take_profit``,
    ``trailing_stop``) or a limit order (``stop_limit``, ``take_profit_limit``); see
    :mod:`tradegraph.execution.emulator` for when each triggers.
    """

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP = "trailing_stop"

    @property
    def is_conditional(self) -> bool:
        """Whether the order waits for a trigger price before it works."""
        return self not in (OrderType.MARKET, OrderType.LIMIT)

    @property
    def has_limit(self) -> bool:
        """Whether the order (or the order it becomes on its trigger) needs a limit price."""
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class TimeInForce(StrEnum):
    """How long an order works: ``gtc`` until cancelled; ``ioc`` one chance, the rest is
    cancelled; ``fok`` all at once or nothing; ``gtd`` until ``expire_at_ns`` on the graph's
    clock."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"


class TrailingOffsetType(StrEnum):
    """How a trailing stop's distance from the best price is given: in price units or in
    basis points of that price."""

    PRICE = "price"
    BPS = "bps"


class LiquiditySide(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RiskReason(StrEnum):
    """Why Risk refused an order intent. Every rejection carries one of these codes."""

    KILL_SWITCH = "kill_switch"
    FEED_STALE = "feed_stale"
    VENUE_UNAVAILABLE = "venue_unavailable"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    NO_PRICE = "no_price"
    INVALID_QUANTITY = "invalid_quantity"
    QUANTITY_BELOW_LOT = "quantity_below_lot"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_DRAWDOWN = "max_drawdown"
    ORDER_RATE = "order_rate"
    PRICE_BAND = "price_band"
    UNKNOWN_ORDER = "unknown_order"
    STRATEGY_STOPPED = "strategy_stopped"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    """The order's initial margin (plus fee) is above the margin account's free margin."""
    REDUCE_ONLY_MODE = "reduce_only_mode"
    """The kill switch is tripped in ``reduce_only`` mode and the order would not shrink the
    strategy's position."""


class KillSwitchMode(StrEnum):
    """What Risk does while its kill switch is tripped.

    ``halt``: refuse every new order and cancel the open ones. ``reduce_only``: pass only
    orders that shrink the strategy's position and cancel the open orders that would grow it.
    ``flatten``: cancel every open order, then close every strategy's position at market, then
    behave as ``halt``.
    """

    HALT = "halt"
    REDUCE_ONLY = "reduce_only"
    FLATTEN = "flatten"

    @property
    def rank(self) -> int:
        """How far the mode goes: a later trip only ever moves to a higher rank."""
        return _KILL_SWITCH_RANK[self]


_KILL_SWITCH_RANK = {
    KillSwitchMode.REDUCE_ONLY: 0,
    KillSwitchMode.HALT: 1,
    KillSwitchMode.FLATTEN: 2,
}


class KillSwitchSource(StrEnum):
    """What tripped the kill switch, for choosing its mode (``risk.kill_switch_modes``)."""

    OPERATOR = "operator"
    """``tradegraph kill`` (or any ``TripKillSwitch`` that names no mode)."""
    DAILY_LOSS = "daily_loss"
    """``risk.daily_loss_limit`` breached."""
    DRAWDOWN = "drawdown"
    """``risk.max_drawdown_pct`` breached."""


class VenueReason(StrEnum):
    """Why a venue refused an order, as a stable code.

    Every ``OrderRejected`` carries one in ``code`` beside its free-text ``reason``; an
    ``OrderCancelled`` carries one when the venue ended the order itself for want of funds.
    The text of a simulated venue's ``INSUFFICIENT_BALANCE`` and of every ccxt broker refusal
    also starts with the code's value and ``": "``.
    """

    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    DUPLICATE_ORDER = "duplicate_order"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    INVALID_ORDER = "invalid_order"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    NO_PRICE = "no_price"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    BELOW_VENUE_MINIMUM = "below_venue_minimum"
    VENUE_UNAVAILABLE = "venue_unavailable"
    VENUE_REJECTED = "venue_rejected"
    """An exchange refused the order and said why only in text."""
    NOT_RECEIVED = "not_received"
    NOT_SENT = "not_sent"


class AccountKind(StrEnum):
    """How an account at a venue pays for orders.

    ``cash``: a spot account. It holds a balance per asset and can only spend what it has:
    a buy needs the quote asset (notional plus fee), a sell needs the base asset.

    ``margin``: a margin account. It holds collateral in the settle asset; positions are net per
    instrument and may be short; an order needs initial margin (notional over leverage, or the
    instrument's margin tier) out of free margin, and a position whose equity falls below
    maintenance margin is liquidated.
    """

    CASH = "cash"
    MARGIN = "margin"


class InstrumentKind(StrEnum):
    """What an instrument is.

    ``spot``: the asset itself, bought with the quote asset. ``perpetual``: a linear perpetual
    swap, margined and settled in ``settle`` (the quote asset unless given), with periodic
    funding and no expiry.
    """

    SPOT = "spot"
    PERPETUAL = "perpetual"
