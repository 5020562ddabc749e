"""Who receives which message. Both transports (in-process kernel, Ray actors) use this table.

Component ids: ``md``, ``risk``, ``portfolio``, ``broker:<venue>``, ``strategy:<id>``,
``allocator`` (only in graphs with capital allocation), and ``control`` for the driver (errors,
kill-switch changes, execution reports and allocations are reported there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tradegraph.contracts.account import AccountBalances
from tradegraph.contracts.base import Message
from tradegraph.contracts.control import (
    ActorRestarted,
    ChangeLimits,
    FeedStatus,
    GuardBreached,
    KillSwitchChanged,
    LimitsChanged,
    ReconciliationDrift,
    ReconciliationRepaired,
    ResetKillSwitch,
    StrategyError,
    TripKillSwitch,
    VenueBanned,
    VenueStatus,
)
from tradegraph.contracts.execution import CapitalAllocated, ExecutionReport
from tradegraph.contracts.margin import FundingPaid, PositionLiquidated
from tradegraph.contracts.market import Bar, FundingRate, OrderBookSnapshot, QuoteTick, TradeTick
from tradegraph.contracts.orders import (
    CancelIntent,
    CancelOrder,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    RiskRejected,
    SubmitOrder,
)
from tradegraph.contracts.portfolio import PortfolioSnapshot

MARKET_DATA = "md"
RISK = "risk"
PORTFOLIO = "portfolio"
CONTROL = "control"
ALLOCATOR = "allocator"


def broker_id(venue: str) -> str:
    return f"broker:{venue}"


def strategy_component_id(strategy_id: str) -> str:
    return f"strategy:{strategy_id}"


class Router:
    """Maps a message to the ordered tuple of component ids that must receive it.

    Market data goes first to the venue (so resting orders match against it), then to risk and
    portfolio (marks), then to the subscribed strategies in configuration order. The order is
    part of the determinism contract.

    With ``allocator=True`` the capital allocator also gets portfolio snapshots (after Risk)
    and fills (after the portfolio); without it, routing is exactly as in a graph that has
    never heard of allocation.
    """

    def __init__(
        self,
        instrument_venues: Mapping[str, str],
        strategy_subscriptions: Mapping[str, Iterable[str]],
        *,
        allocator: bool = False,
    ) -> None:
        self._rules: dict[type[Message], Callable[[Message], tuple[str, ...]]] = {}
        self._snapshot_to: tuple[str, ...] = (RISK, ALLOCATOR) if allocator else (RISK,)
        self._fill_to: tuple[str, ...] = (
            (RISK, PORTFOLIO, ALLOCATOR) if allocator else (RISK, PORTFOLIO)
        )
        self._strategies = tuple(strategy_component_id(s) for s in strategy_subscriptions)
        self._market: dict[str, tuple[str, ...]] = {}
        for inst, venue in instrument_venues.items():
            subs = tuple(
                strategy_component_id(s)
                for s, insts in strategy_subscriptions.items()
                if inst in set(insts)
            )
            self._market[inst] = (broker_id(venue), RISK, PORTFOLIO, *subs)
        self._for_feed_status: dict[str, tuple[str, ...]] = {
            inst: (RISK, *dests[3:]) for inst, dests in self._market.items()
        }

    @property
    def strategy_ids(self) -> tuple[str, ...]:
        return self._strategies

    def market_destinations(self, instrument_id: str) -> tuple[str, ...]:
        return self._market.get(instrument_id, ())

    def destinations(self, msg: Message) -> tuple[str, ...]:
        """Ordered destinations of ``msg``; empty if nobody listens."""
        rule = self._rules.get(type(msg))
        if rule is None:
            rule = self._rule_for(type(msg))
        return rule(msg)

    def _rule_for(self, kind: type[Message]) -> Callable[[Message], tuple[str, ...]]:
        """The routing rule of a message type (found once per type, then looked up by type)."""
        rule: Callable[[Message], tuple[str, ...]] = _nobody
        for base, candidate in self._rule_table():
            if issubclass(kind, base):
                rule = candidate
                break
        self._rules[kind] = rule
        return rule

    def _rule_table(self) -> tuple[tuple[type[Message], Callable[[Any], tuple[str, ...]]], ...]:
        market = self._market
        feed_status = self._for_feed_status
        to_risk: tuple[str, ...] = (RISK,)
        return (
            (Bar, lambda m: market.get(m.instrument_id, ())),
            (TradeTick, lambda m: market.get(m.instrument_id, ())),
            (QuoteTick, lambda m: market.get(m.instrument_id, ())),
            (OrderBookSnapshot, lambda m: market.get(m.instrument_id, ())),
            (FundingRate, lambda m: market.get(m.instrument_id, ())),
            (PortfolioSnapshot, lambda m: self._snapshot_to),
            (OrderIntent, lambda m: to_risk),
            (CancelIntent, lambda m: to_risk),
            (TripKillSwitch, lambda m: to_risk),
            (ResetKillSwitch, lambda m: to_risk),
            (ChangeLimits, lambda m: to_risk),
            (LimitsChanged, lambda m: (CONTROL,)),
            (ReconciliationRepaired, lambda m: (CONTROL,)),
            (ReconciliationDrift, lambda m: (CONTROL,)),
            (GuardBreached, lambda m: (CONTROL,)),
            (SubmitOrder, lambda m: (broker_id(m.venue),)),
            (CancelOrder, lambda m: (broker_id(m.venue),)),
            (OrderFilled, lambda m: (*self._fill_to, strategy_component_id(m.strategy_id))),
            (FundingPaid, lambda m: (RISK, PORTFOLIO, strategy_component_id(m.strategy_id))),
            (
                PositionLiquidated,
                lambda m: (RISK, PORTFOLIO, strategy_component_id(m.strategy_id), CONTROL),
            ),
            (OrderAccepted, self._order_event),
            (OrderRejected, self._order_event),
            (OrderCancelled, self._order_event),
            (RiskRejected, lambda m: (strategy_component_id(m.strategy_id), CONTROL)),
            (KillSwitchChanged, lambda m: (*self._strategies, CONTROL)),
            (FeedStatus, lambda m: feed_status.get(m.instrument_id, to_risk)),
            (VenueStatus, lambda m: (RISK, CONTROL)),
            (VenueBanned, self._ban_shared_with),
            (AccountBalances, lambda m: (RISK, PORTFOLIO)),
            (StrategyError, lambda m: (RISK, CONTROL)),
            (ActorRestarted, lambda m: (CONTROL,)),
            (ExecutionReport, lambda m: (CONTROL,)),
            (CapitalAllocated, lambda m: (strategy_component_id(m.strategy_id), CONTROL)),
        )

    @staticmethod
    def _ban_shared_with(msg: Any) -> tuple[str, ...]:
        """Every other caller of the banned venue: its broker and market data."""
        return tuple(c for c in (MARKET_DATA, broker_id(msg.venue)) if c != msg.source)

    @staticmethod
    def _order_event(msg: Any) -> tuple[str, ...]:
        return (RISK, PORTFOLIO, strategy_component_id(msg.strategy_id))


def _nobody(msg: Message) -> tuple[str, ...]:
    return ()
