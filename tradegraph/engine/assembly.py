"""Build the components of one graph from a ``GraphConfig``.

Both transports call :func:`build_components`; they differ only in the clocks and outboxes they
hand in. That is how one configuration gives the same graph in-process and as Ray actors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tradegraph.config.models import GraphConfig, VenueConfig
from tradegraph.contracts import (
    ALLOCATOR,
    PORTFOLIO,
    RISK,
    AccountKind,
    Clock,
    Component,
    Instrument,
    LiquiditySide,
    Outbox,
    Router,
    broker_id,
    strategy_component_id,
)
from tradegraph.data.catalog import parse_time_ns, read_funding
from tradegraph.errors import ConfigError
from tradegraph.execution import SimulatedVenue, StressedVenue, StressedVenueConfig, fee_rate
from tradegraph.execution.funding import FundingSeries
from tradegraph.portfolio import Account, CapitalAllocator, CashAccount, MarginAccount, Portfolio
from tradegraph.risk import RiskEngine
from tradegraph.strategies.registry import build_strategy


def build_router(config: GraphConfig) -> Router:
    instruments = config.instrument_map()
    return Router(
        {iid: inst.venue for iid, inst in instruments.items()},
        {s.id: s.instruments for s in config.strategies},
        allocator=config.allocation is not None,
    )


def component_ids(config: GraphConfig) -> tuple[str, ...]:
    """Ids of the graph's components in build order: venues, risk, portfolio, the capital
    allocator (only with an ``allocation`` section), strategies."""
    return (
        *(broker_id(v.name) for v in config.venues),
        RISK,
        PORTFOLIO,
        *((ALLOCATOR,) if config.allocation is not None else ()),
        *(strategy_component_id(s.id) for s in config.strategies),
    )


def starting_balances(config: GraphConfig, venue: VenueConfig) -> dict[str, float]:
    """What the account at ``venue`` holds at the start: ``portfolio.starting_cash`` in
    ``portfolio.currency``, then ``venues[].account.starting_balances`` on top (which win)."""
    balances = {config.portfolio.currency: config.portfolio.starting_cash}
    balances.update(venue.account.starting_balances)
    return balances


def build_account(
    config: GraphConfig, venue: VenueConfig, instruments: Mapping[str, Instrument]
) -> Account:
    """A fresh account for ``venue``, cash or margin as configured; every component gets its
    own."""
    fee_rates = {
        iid: max(
            fee_rate(inst, LiquiditySide.MAKER, venue), fee_rate(inst, LiquiditySide.TAKER, venue)
        )
        for iid, inst in instruments.items()
        if inst.venue == venue.name
    }
    if venue.account.kind is AccountKind.MARGIN:
        return MarginAccount(
            venue.name,
            starting_balances(config, venue),
            instruments,
            fee_rates=fee_rates,
            market_buy_buffer_pct=venue.account.market_buy_buffer_pct,
            leverage=venue.account.leverage,
            maintenance_margin_rate=venue.account.maintenance_margin_rate,
        )
    return CashAccount(
        venue.name,
        starting_balances(config, venue),
        instruments,
        fee_rates=fee_rates,
        market_buy_buffer_pct=venue.account.market_buy_buffer_pct,
    )


def load_funding(config: GraphConfig, venue: VenueConfig) -> dict[str, FundingSeries]:
    """The funding series of ``venue``'s perpetuals (``data.funding``), within the bars'
    configured start and end when every bar source gives them."""
    instruments = config.instrument_map()
    starts = [b.start for b in config.data.bars]
    ends = [b.end for b in config.data.bars]
    start_ns = (
        min(parse_time_ns(t, "data.bars.start") for t in starts if t is not None)
        if starts and all(t is not None for t in starts)
        else None
    )
    end_ns = (
        max(parse_time_ns(t, "data.bars.end") for t in ends if t is not None)
        if ends and all(t is not None for t in ends)
        else None
    )
    out: dict[str, FundingSeries] = {}
    for source in config.data.funding:
        if instruments[source.instrument].venue != venue.name:
            continue
        found = read_funding(source.path, start_ns, end_ns)
        out[source.instrument] = FundingSeries(
            ts_ns=tuple(int(t) for t in found.ts_ns),
            rate=tuple(float(r) for r in found.rate),
            mark_price=tuple(float(m) for m in found.mark_price),
        )
    return out


def build_component(
    config: GraphConfig,
    component_id: str,
    clock: Clock,
    outbox: Outbox,
    instruments: Mapping[str, Instrument] | None = None,
) -> Component:
    """Build the one component of the graph whose id is ``component_id``.

    Raises:
        ConfigError: if the config has no component of that id.
    """
    if instruments is None:
        instruments = config.instrument_map()
    if component_id == RISK:
        accounts = {v.name: build_account(config, v, instruments) for v in config.venues}
        return RiskEngine(config.risk, instruments, clock, outbox, accounts=accounts)
    if component_id == PORTFOLIO:
        return Portfolio(config.portfolio, instruments, clock, outbox)
    if component_id == ALLOCATOR and config.allocation is not None:
        return CapitalAllocator(
            config.allocation,
            instruments,
            clock,
            outbox,
            starting_equity=config.portfolio.starting_cash,
        )
    for venue_cfg in config.venues:
        if component_id == broker_id(venue_cfg.name):
            account = build_account(config, venue_cfg, instruments)
            funding = load_funding(config, venue_cfg) if config.data.funding else None
            if isinstance(venue_cfg, StressedVenueConfig):
                return StressedVenue(
                    venue_cfg, instruments, clock, outbox, account=account, funding=funding
                )
            return SimulatedVenue(
                venue_cfg, instruments, clock, outbox, account=account, funding=funding
            )
    for strat_cfg in config.strategies:
        if component_id == strategy_component_id(strat_cfg.id):
            return build_strategy(strat_cfg, instruments, clock, outbox)
    raise ConfigError(
        f"no component {component_id!r} in graph {config.name!r}; "
        f"known: {list(component_ids(config))}"
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
    return {
        cid: build_component(config, cid, make_clock(cid), make_outbox(cid), instruments)
        for cid in component_ids(config)
    }
