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
    VenueReason,
)


class OrderIntent(Message):
    """A strategy's wish to trade. Risk turns it into a ``SubmitOrder`` or a ``RiskRejected``.

    ``intent_id`` is unique per strategy and becomes the venue's client order id, so a retried
    intent can never create a second order.
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

    @model_validator(mode="after")
    def _check(self) -> Self:
        require_finite_positive("quantity", self.quantity)
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None:
                raise ValueError("a limit order needs limit_price")
            require_finite_positive("limit_price", self.limit_price)
        elif self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")
        if self.post_only and self.order_type is not OrderType.LIMIT:
            raise ValueError("post_only applies to limit orders only")
        if self.post_only and self.time_in_force is TimeInForce.IOC:
            raise ValueError("post_only and IOC contradict each other")
        return self


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
