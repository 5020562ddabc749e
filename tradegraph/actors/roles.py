"""What a host's component says about itself in ``tradegraph status``, per role.

The host's assembly picks the describer by component id, the way it picks the component:
the host itself never asks what type its component is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from tradegraph.contracts import CONTROL, MARKET_DATA, PORTFOLIO, RISK

Describer = Callable[[Any], dict[str, Any]]


def describe_portfolio(component: Any) -> dict[str, Any]:
    from tradegraph.portfolio import Portfolio

    portfolio = cast(Portfolio, component)
    return {
        "cash": portfolio.cash,
        "equity": portfolio.equity,
        "realized_pnl": portfolio.realized_pnl,
        "unrealized_pnl": portfolio.unrealized_pnl,
        "fees": portfolio.fees,
        "fills": len(portfolio.fills),
        "positions": {iid: p.quantity for iid, p in portfolio.positions().items() if p.quantity},
    }


def describe_risk(component: Any) -> dict[str, Any]:
    from tradegraph.risk import RiskEngine

    risk = cast(RiskEngine, component)
    return {
        "kill_switch_tripped": risk.kill_switch_tripped,
        "kill_switch_reason": risk.kill_switch_reason,
        "kill_switch_mode": risk.kill_switch_mode.value,
        "open_orders": len(risk.open_orders),
        "positions": {k: v for k, v in risk.positions.items() if v},
        "gross_exposure": risk.gross_exposure(),
        "rejections": {str(k): v for k, v in risk.rejection_counts.items()},
        "stale_feeds": dict(risk.stale_feeds),
        "unavailable_venues": dict(risk.unavailable_venues),
        "limits": risk.limits.model_dump(mode="json"),
        "limits_refused": risk.limits_refused,
    }


def describe_simulated_venue(component: Any) -> dict[str, Any]:
    from tradegraph.execution import SimulatedVenue

    venue = cast(SimulatedVenue, component)
    return {"open_orders": len(venue.open_orders), "in_flight": venue.in_flight_count}


def describe_gateway(component: Any) -> dict[str, Any]:
    from tradegraph.actors.gateway import GatewayBroker

    broker = cast(GatewayBroker, component)
    return {
        "mode": broker.mode.value,
        "mode_reason": broker.mode_reason,
        "open_orders": broker.open_orders,
        "reconciliation": broker.reconciliation,
        "reconciliations": broker.reconciliations,
        "drift": broker.drift,
        "failure": broker.failure,
        "circuit": str(broker.gateway.breaker.state.value)
        if hasattr(broker.gateway, "breaker")
        else None,
    }


def describe_strategy(component: Any) -> dict[str, Any]:
    from tradegraph.strategies.base import Strategy

    strategy = cast(Strategy, component)
    return {
        "positions": {k: v for k, v in strategy.positions.items() if v},
        "open_orders": len(strategy.open_orders),
        "stopped": strategy.stopped,
        "error": strategy.error,
    }


def describe_control(component: Any) -> dict[str, Any]:
    return {
        "counts": dict(component.counts),
        "halt_reason": component.halt_reason,
        "alerts": component.alert_counts(),
    }


def describe_market_data(component: Any) -> dict[str, Any]:
    return {"published": component.published, "dropped": dict(component.dropped)}


def describe_nothing(component: Any) -> dict[str, Any]:
    return {}


def describer_for(component_id: str, *, gateway: bool = False) -> Describer:
    """The describer of the component ``component_id`` (``gateway``: a broker that goes
    through the ccxt gateway, not a simulated venue)."""
    if component_id == CONTROL:
        return describe_control
    if component_id == MARKET_DATA:
        return describe_market_data
    if component_id == RISK:
        return describe_risk
    if component_id == PORTFOLIO:
        return describe_portfolio
    if component_id.startswith("broker:"):
        return describe_gateway if gateway else describe_simulated_venue
    if component_id.startswith("strategy:"):
        return describe_strategy
    return describe_nothing
