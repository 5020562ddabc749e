"""Who receives which message. Both transports (in-process kernel, Ray actors) use this table.

Component ids: ``md``, ``risk``, ``portfolio``, ``broker:<venue>``, ``strategy:<id>``,
``allocator`` (only in graphs with capital allocation), and ``control`` for the driver (errors,
kill-switch changes, execution reports and allocations are reported there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tradegraph.contracts.base import Message
from tradegraph.contracts.control import (
    FeedStatus,
    KillSwitchChanged,
    ResetKillSwitch,
    StrategyError,
    TripKillSwitch,
)
from tradegraph.contracts.execution import CapitalAllocated, ExecutionReport
from tradegraph.contracts.market import Bar, OrderBookSnapshot, QuoteTick, TradeTick
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
        if isinstance(msg, Bar | TradeTick | QuoteTick | OrderBookSnapshot):
            return self._market.get(msg.instrument_id, ())
        if isinstance(msg, PortfolioSnapshot):
            return self._snapshot_to
        if isinstance(msg, OrderIntent | CancelIntent):
            return (RISK,)
        if isinstance(msg, TripKillSwitch | ResetKillSwitch):
            return (RISK,)
        if isinstance(msg, SubmitOrder | CancelOrder):
            return (broker_id(msg.venue),)
        if isinstance(msg, OrderFilled):
            return (*self._fill_to, strategy_component_id(msg.strategy_id))
        if isinstance(msg, OrderAccepted | OrderRejected | OrderCancelled):
            return (RISK, PORTFOLIO, strategy_component_id(msg.strategy_id))
        if isinstance(msg, RiskRejected):
            return (strategy_component_id(msg.strategy_id), CONTROL)
        if isinstance(msg, KillSwitchChanged):
            return (*self._strategies, CONTROL)
        if isinstance(msg, FeedStatus):
            return self._for_feed_status.get(msg.instrument_id, (RISK,))
        if isinstance(msg, StrategyError):
            return (RISK, CONTROL)
        if isinstance(msg, ExecutionReport):
            return (CONTROL,)
        if isinstance(msg, CapitalAllocated):
            return (strategy_component_id(msg.strategy_id), CONTROL)
        return ()
