"""Typed messages, ids, instruments and the protocols components are written against.

This package depends on nothing else in tradegraph.
"""

from __future__ import annotations

from tradegraph.contracts.account import AccountBalances
from tradegraph.contracts.base import Message
from tradegraph.contracts.control import (
    FeedStatus,
    KillSwitchChanged,
    ResetKillSwitch,
    StrategyError,
    TimerFired,
    TripKillSwitch,
    VenueBanned,
    VenueStatus,
)
from tradegraph.contracts.enums import (
    AccountKind,
    InstrumentKind,
    LiquiditySide,
    OrderSide,
    OrderType,
    RiskReason,
    TimeInForce,
    VenueReason,
)
from tradegraph.contracts.execution import CapitalAllocated, ExecutionReport
from tradegraph.contracts.ids import IdGenerator
from tradegraph.contracts.instrument import Instrument, MarginTier, instrument_id
from tradegraph.contracts.margin import FundingPaid, PositionLiquidated
from tradegraph.contracts.market import (
    Bar,
    FundingRate,
    MarketData,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from tradegraph.contracts.orders import (
    CancelIntent,
    CancelOrder,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    RiskRejected,
    SubmitOrder,
)
from tradegraph.contracts.portfolio import PortfolioSnapshot, PositionSnapshot
from tradegraph.contracts.protocols import Clock, Component, Outbox
from tradegraph.contracts.routing import (
    ALLOCATOR,
    CONTROL,
    MARKET_DATA,
    PORTFOLIO,
    RISK,
    Router,
    broker_id,
    strategy_component_id,
)

__all__ = [
    "ALLOCATOR",
    "CONTROL",
    "MARKET_DATA",
    "PORTFOLIO",
    "RISK",
    "AccountBalances",
    "AccountKind",
    "Bar",
    "CancelIntent",
    "CancelOrder",
    "CapitalAllocated",
    "Clock",
    "Component",
    "ExecutionReport",
    "FeedStatus",
    "FundingPaid",
    "FundingRate",
    "IdGenerator",
    "Instrument",
    "InstrumentKind",
    "KillSwitchChanged",
    "LiquiditySide",
    "MarginTier",
    "MarketData",
    "Message",
    "OrderAccepted",
    "OrderBookSnapshot",
    "OrderCancelled",
    "OrderEvent",
    "OrderFilled",
    "OrderIntent",
    "OrderRejected",
    "OrderSide",
    "OrderType",
    "Outbox",
    "PortfolioSnapshot",
    "PositionLiquidated",
    "PositionSnapshot",
    "QuoteTick",
    "ResetKillSwitch",
    "RiskReason",
    "RiskRejected",
    "Router",
    "StrategyError",
    "SubmitOrder",
    "TimeInForce",
    "TimerFired",
    "TradeTick",
    "TripKillSwitch",
    "VenueBanned",
    "VenueReason",
    "VenueStatus",
    "broker_id",
    "instrument_id",
    "strategy_component_id",
]
