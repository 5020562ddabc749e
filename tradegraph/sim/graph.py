"""Build the components of one graph from a ``GraphConfig``.

Both transports call :func:`build_components`; they differ only in the clocks and outboxes they
hand in. That is how one configuration gives the same graph in-process and as Ray actors.
"""

from __future__ import annotations

from collections.abc import Callable

from tradegraph.config.models import GraphConfig
from tradegraph.contracts import ALLOCATOR, PORTFOLIO, RISK, Clock, Component, Outbox, Router
from tradegraph.execution import SimulatedVenue
from tradegraph.portfolio import CapitalAllocator, Portfolio
from tradegraph.risk import RiskEngine
from tradegraph.strategies.registry import build_strategy


def build_router(config: GraphConfig) -> Router:
    instruments = config.instrument_map()
    return Router(
        {iid: inst.venue for iid, inst in instruments.items()},
        {s.id: s.instruments for s in config.strategies},
        allocator=config.allocation is not None,
    )


def build_components(
    config: GraphConfig,
    make_clock: Callable[[str], Clock],
    make_outbox: Callable[[str], Outbox],
) -> dict[str, Component]:
    """All components of the graph, keyed by component id, in a fixed order.

    Order: venues, risk, portfolio, the capital allocator (only with an ``allocation``
    section), then strategies in configuration order.
    """
    instruments = config.instrument_map()
    components: dict[str, Component] = {}
    for venue_cfg in config.venues:
        venue_id = f"broker:{venue_cfg.name}"
        components[venue_id] = SimulatedVenue(
            venue_cfg, instruments, make_clock(venue_id), make_outbox(venue_id)
        )
    components[RISK] = RiskEngine(config.risk, instruments, make_clock(RISK), make_outbox(RISK))
    components[PORTFOLIO] = Portfolio(
        config.portfolio, instruments, make_clock(PORTFOLIO), make_outbox(PORTFOLIO)
    )
    if config.allocation is not None:
        components[ALLOCATOR] = CapitalAllocator(
            config.allocation,
            instruments,
            make_clock(ALLOCATOR),
            make_outbox(ALLOCATOR),
            starting_equity=config.portfolio.starting_cash,
        )
    for strat_cfg in config.strategies:
        strategy_id = f"strategy:{strat_cfg.id}"
        components[strategy_id] = build_strategy(
            strat_cfg, instruments, make_clock(strategy_id), make_outbox(strategy_id)
        )
    return components
