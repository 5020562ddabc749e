"""Order-path messages: intents from strategies, commands to venues, events back.

Flow: ``Strategy --OrderIntent/CancelIntent--> Risk --SubmitOrder/CancelOrder--> Venue``;
the venue answers with ``OrderAccepted``, ``OrderRejected``, ``OrderCancelled`` and
``OrderFilled``; Risk answers a refused intent with ``RiskRejected``.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from tradegraph.contracts.base import Message, require_finite_positive
from tradegraph.contracts.enums import (
    LiquiditySide,
    OrderSide,
    OrderType,
    RiskReason,
    TimeInForce,
    TrailingOffsetType,
    VenueReason,
)

_MAX_BPS = 10_000.0


class OrderIntent(Message):
    """A strategy's wish to trade. Risk turns it into a ``SubmitOrder`` or a ``RiskRejected``.

    ``intent_id`` is unique per strategy and becomes the venue's client order id, so a retried
    intent can never create a second order.

    Conditional and contingent orders (see :mod:`tradegraph.execution.emulator`) are held by
    Risk until they trigger; they then go to the venue, under the same id, as the market or
    limit order they become, after passing every check a fresh intent passes.

    Attributes:
        trigger_price: Price that triggers a stop or take-profit; for a trailing stop, an
            optional initial stop level.
        trailing_offset: A trailing stop's distance from the best price since it was placed,
            in price units or basis points (``trailing_offset_type``).
        expire_at_ns: With ``time_in_force=gtd``: when the order expires on the graph's clock.
        oco_group: Orders of a strategy sharing a non-empty group cancel each other: when one
            triggers, the others are cancelled.
        parent_id: The order waits until the order ``parent_id`` (of the same strategy) has
            filled, then works for the quantity the parent filled; it is cancelled if the
            parent ends without a fill. A bracket's take-profit and stop-loss use it.
    """

    intent_id: str
    strategy_id: str
    instrument_id: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    tag: str = ""
    trigger_price: float | None = None
    trailing_offset: float | None = None
    trailing_offset_type: TrailingOffsetType = TrailingOffsetType.PRICE
    expire_at_ns: int | None = None
    oco_group: str = ""
    parent_id: str = ""

    @property
    def is_emulated(self) -> bool:
        """Whether Risk holds the order before it reaches a venue (a conditional type, a
        member of an OCO group or a child of another order)."""
        return self.order_type.is_conditional or bool(self.oco_group) or bool(self.parent_id)

    @model_validator(mode="after")
    def _check(self) -> Self:
        require_finite_positive("quantity", self.quantity)
        kind = self.order_type
        if (
            (kind is OrderType.MARKET or kind is OrderType.LIMIT)
            and self.trigger_price is None
            and self.trailing_offset is None
            and self.expire_at_ns is None
            and not self.oco_group
            and not self.parent_id
        ):
            # The plain orders most intents are, checked without the conditional fields' rules.
            if kind is OrderType.LIMIT:
                if self.limit_price is None:
                    raise ValueError("a limit order needs limit_price")
                require_finite_positive("limit_price", self.limit_price)
            elif self.limit_price is not None:
                raise ValueError("a market order takes no limit_price")
            if self.post_only:
                self._check_post_only()
            if self.time_in_force is TimeInForce.GTD:
                raise ValueError("expire_at_ns is required with time_in_force gtd")
            return self
        if kind.has_limit:
            if self.limit_price is None:
                raise ValueError(f"a {kind.value.replace('_', '-')} order needs limit_price")
            require_finite_positive("limit_price", self.limit_price)
        elif self.limit_price is not None:
            raise ValueError(f"a {kind.value.replace('_', '-')} order takes no limit_price")
        self._check_trigger()
        if self.post_only:
            self._check_post_only()
        if self.time_in_force is TimeInForce.GTD:
            if self.expire_at_ns is None:
                raise ValueError("expire_at_ns is required with time_in_force gtd")
            if self.expire_at_ns <= self.ts_event_ns:
                raise ValueError(
                    f"expire_at_ns ({self.expire_at_ns}) must be after the order's time "
                    f"({self.ts_event_ns})"
                )
        elif self.expire_at_ns is not None:
            raise ValueError(
                f"expire_at_ns applies to time_in_force gtd only, not {self.time_in_force.value}"
            )
        if self.oco_group and kind is OrderType.MARKET:
            raise ValueError("oco_group: a market order cannot wait in an OCO group")
        if self.parent_id and self.parent_id == self.intent_id:
            raise ValueError(f"parent_id: order {self.intent_id} cannot be its own parent")
        return self

    def _check_post_only(self) -> None:
        if not self.order_type.has_limit:
            raise ValueError("post_only applies to limit orders only")
        if self.time_in_force is TimeInForce.IOC:
            raise ValueError("post_only and IOC contradict each other")
        if self.time_in_force is TimeInForce.FOK:
            raise ValueError("post_only and FOK contradict each other")

    def _check_trigger(self) -> None:
        kind = self.order_type
        name = kind.value.replace("_", "-")  # only conditional or contingent orders get here
        if kind is OrderType.TRAILING_STOP:
            if self.trailing_offset is None:
                raise ValueError("a trailing-stop order needs trailing_offset")
            require_finite_positive("trailing_offset", self.trailing_offset)
            if (
                self.trailing_offset_type is TrailingOffsetType.BPS
                and self.trailing_offset >= _MAX_BPS
            ):
                raise ValueError(
                    f"trailing_offset in bps must be below {_MAX_BPS:g}, "
                    f"was {self.trailing_offset!r}"
                )
        elif self.trailing_offset is not None:
            raise ValueError(f"a {name} order takes no trailing_offset")
        if kind.is_conditional and kind is not OrderType.TRAILING_STOP:
            if self.trigger_price is None:
                raise ValueError(f"a {name} order needs trigger_price")
        elif not kind.is_conditional and self.trigger_price is not None:
            raise ValueError(f"a {name} order takes no trigger_price")
        if self.trigger_price is not None:
            require_finite_positive("trigger_price", self.trigger_price)


class CancelIntent(Message):
    """A strategy's wish to cancel one of its open orders."""

    strategy_id: str
    client_order_id: str


class SubmitOrder(Message):
    """Risk's command to a venue: an order already checked and rounded to tick and lot."""

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    side: OrderSide
    quantity: float
    order_type: OrderType
    limit_price: float | None
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    tag: str = ""


class CancelOrder(Message):
    """Risk's command to a venue to cancel an open order."""

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    reason: str = ""


class OrderAccepted(Message):
    client_order_id: str
    venue_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str


class OrderRejected(Message):
    """A venue refused an order. ``code`` is a stable code; ``reason`` is for humans."""

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    reason: str
    code: VenueReason = VenueReason.VENUE_REJECTED


class OrderCancelled(Message):
    """An order ended unfilled (in part). ``code`` is set when the venue ended it itself
    because the account could not pay for the rest; ``None`` for a requested cancel."""

    client_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    reason: str = ""
    code: VenueReason | None = None


class OrderFilled(Message):
    """One fill. ``fee`` is in the quote currency; ``leaves_qty`` is what stays open."""

    fill_id: str
    client_order_id: str
    venue_order_id: str
    strategy_id: str
    instrument_id: str
    venue: str
    side: OrderSide
    last_qty: float
    last_px: float
    fee: float
    liquidity: LiquiditySide
    leaves_qty: float
    tag: str = ""

    @property
    def signed_qty(self) -> float:
        return self.last_qty if self.side is OrderSide.BUY else -self.last_qty

    @property
    def notional(self) -> float:
        return self.last_qty * self.last_px


class RiskRejected(Message):
    """Risk refused an intent. ``reason`` is a stable code; ``detail`` is for humans."""

    intent_id: str
    strategy_id: str
    instrument_id: str
    reason: RiskReason
    detail: str


OrderEvent = OrderAccepted | OrderRejected | OrderCancelled | OrderFilled
