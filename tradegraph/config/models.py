"""Pydantic models for a whole graph and each component. Frozen; unknown keys are errors."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradegraph.contracts import Instrument


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FillAt(StrEnum):
    """When a market order fills against bar data."""

    CLOSE = "close"  # at the close of the bar that produced the signal
    NEXT_OPEN = "next_open"  # at the open of the following bar


class SlippageConfig(_Config):
    """Slippage on taker fills, in basis points of price.

    ``fixed``: ``bps`` always. ``linear``: ``bps + impact_bps * qty / bar_volume``.
    ``sqrt``: ``bps + impact_bps * sqrt(qty / bar_volume)`` (square-root impact).
    """

    model: Literal["none", "fixed", "linear", "sqrt"] = "none"
    bps: float = Field(default=0.0, ge=0.0)
    impact_bps: float = Field(default=0.0, ge=0.0)


ENABLE_LIVE_ENV = "TRADEGRAPH_ENABLE_LIVE"
"""Environment variable that must be ``1`` for a session to send real orders."""


class LiveMode(StrEnum):
    """How a session trades on a venue.

    ``paper``: live market data, orders matched by the simulated venue. ``dry-run``: live market
    data, orders journaled and acknowledged locally, never sent. ``live``: real orders.
    """

    PAPER = "paper"
    DRY_RUN = "dry-run"
    LIVE = "live"


class RetryConfig(_Config):
    """Backoff for venue calls that failed for a reason that may pass (network, rate limit).

    The delay before retry ``n`` (0-based) is uniform in ``[0, min(max_delay_s,
    base_delay_s * 2**n)]`` (full jitter).

    A rate-limit refusal (HTTP 429/418) bans the venue: for the whole ``Retry-After`` it sent
    (never shortened), or without one for ``ban_floor_s`` doubled for each refusal in a row
    (``ban_floor_s``, 2x, 4x, ... up to ``ban_max_s``; a call that succeeds starts again from
    the floor). No call to the venue is sent during a ban; a call that hit one waits it out
    and tries again when it lasts at most ``max_ban_wait_s``, else gives up at once (a submit
    is rejected, and Risk refuses new orders until the venue answers again).
    """

    max_attempts: int = Field(default=5, ge=1, description="calls per operation, first included")
    base_delay_s: float = Field(default=0.5, gt=0.0)
    max_delay_s: float = Field(default=30.0, gt=0.0)
    ban_floor_s: float = Field(
        default=5.0, gt=0.0, description="ban after a 429/418 without Retry-After"
    )
    ban_max_s: float = Field(
        default=900.0, gt=0.0, description="longest ban of our own choosing (no Retry-After)"
    )
    max_ban_wait_s: float = Field(
        default=30.0, ge=0.0, description="longest ban a call waits out before giving up"
    )


class CircuitBreakerConfig(_Config):
    """Stop calling a venue after ``failure_threshold`` consecutive failed calls, for
    ``cooldown_s``; then let one call through to probe it. Risk refuses new orders while open."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0.0)


class LiveVenueConfig(_Config):
    """How a paper, dry-run or live session connects to a real exchange through ccxt.

    Credentials are never part of the configuration: ``api_key_env`` and ``api_secret_env``
    name the environment variables that hold them. ``urls`` and ``options`` are merged into
    the ccxt exchange's own (testnets, local test servers, ccxt options such as
    ``defaultType``).
    """

    mode: LiveMode = LiveMode.PAPER
    exchange: str = Field(default="binance", pattern=r"^[a-z0-9_]+$", description="ccxt id")
    api_key_env: str | None = Field(default=None, description="env var holding the API key")
    api_secret_env: str | None = Field(default=None, description="env var holding the secret")
    sandbox: bool = Field(default=False, description="ccxt set_sandbox_mode (exchange testnet)")
    urls: dict[str, Any] = Field(default_factory=dict, description="merged into exchange.urls")
    options: dict[str, Any] = Field(default_factory=dict, description="merged into options")
    max_order_notional: float | None = Field(
        default=None,
        gt=0.0,
        description="hard cap on one order's notional (quote currency); required for live",
    )
    request_timeout_s: float = Field(default=10.0, gt=0.0)
    enable_rate_limit: bool = Field(
        default=True,
        description="ccxt's client-side throttle to the venue's published request weights "
        "(off only for local test servers)",
    )
    ambiguous_settle_s: float = Field(
        default=10.0,
        ge=0.0,
        description="after a submit whose outcome is unknown, wait this long before trusting "
        "that a lookup which does not find the order means it was never placed (at least the "
        "venue's receive window, e.g. Binance recvWindow)",
    )
    use_websockets: bool = Field(default=True, description="False: REST polling only")
    poll_interval_s: float = Field(
        default=2.0, gt=0.0, description="REST polling period when websockets are unavailable"
    )
    safety_poll_interval_s: float = Field(
        default=30.0, gt=0.0, description="REST check of open orders even while websockets work"
    )
    stale_after_s: float = Field(
        default=30.0, gt=0.0, description="no market data this long: feed is stale, reconnect"
    )
    market_data: tuple[Literal["trades", "book", "ohlcv"], ...] = ("trades", "book")
    ohlcv_timeframe: str = "1m"
    book_depth: int = Field(
        default=0, ge=0, description="levels per side in OrderBookSnapshot; 0: best bid/ask only"
    )
    reconcile_lookback_s: float = Field(
        default=86_400.0, gt=0.0, description="how far back a first reconciliation reads fills"
    )
    balance_tolerance: float = Field(
        default=1e-8, ge=0.0, description="absolute slack when balances are reconciled"
    )
    journal_retention_s: float = Field(
        default=7 * 86_400.0,
        gt=0.0,
        description="finished orders older than this leave the order journal, their fills "
        "folded into the balance baseline, at each reconciliation that finds nothing wrong",
    )
    retry: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()


def resolve_mode(config: LiveVenueConfig, environ: Mapping[str, str]) -> tuple[LiveMode, str]:
    """Decide how a session really trades, and say why.

    Real orders need all of: ``mode: live`` in the configuration, ``TRADEGRAPH_ENABLE_LIVE=1``
    in the environment, and a hard per-order notional cap (``max_order_notional``). A live
    configuration that misses either of the other two runs dry-run.

    Returns:
        ``(mode, reason)``; ``reason`` is one sentence for the operator.
    """
    if config.mode is LiveMode.PAPER:
        return LiveMode.PAPER, "mode is paper: live data, orders matched by the simulated venue"
    if config.mode is LiveMode.DRY_RUN:
        return LiveMode.DRY_RUN, "mode is dry-run: orders are journaled and never sent"
    missing: list[str] = []
    if environ.get(ENABLE_LIVE_ENV) != "1":
        missing.append(f"{ENABLE_LIVE_ENV}=1 is not set in the environment")
    if config.max_order_notional is None:
        missing.append("live.max_order_notional (a hard per-order notional cap) is not set")
    if missing:
        return LiveMode.DRY_RUN, (
            "mode is live but " + " and ".join(missing) + "; running dry-run: orders are "
            "journaled and never sent"
        )
    return LiveMode.LIVE, (
        f"mode is live with {ENABLE_LIVE_ENV}=1 and max_order_notional "
        f"{config.max_order_notional:g}: real orders are sent to {config.exchange}"
    )


class VenueConfig(_Config):
    """A simulated venue (backtest, paper) or, in live sessions, the exchange it stands for.

    ``live`` says how paper, dry-run and live sessions reach the real exchange; backtests
    ignore it.
    """

    name: str = "BINANCE"
    fill_at: FillAt = FillAt.NEXT_OPEN
    slippage: SlippageConfig = SlippageConfig()
    latency_ms: float = Field(default=0.0, ge=0.0, description="submit-to-acceptance delay")
    max_volume_share: float = Field(
        default=1.0, gt=0.0, le=1.0, description="largest share of a bar's volume one order fills"
    )
    maker_fee: float | None = Field(default=None, description="overrides the instrument's fee")
    taker_fee: float | None = Field(default=None, description="overrides the instrument's fee")
    live: LiveVenueConfig | None = None


class InstrumentConfig(_Config):
    symbol: str
    venue: str = "BINANCE"
    base: str
    quote: str
    tick_size: float = Field(gt=0.0)
    lot_size: float = Field(gt=0.0)
    min_quantity: float = Field(default=0.0, ge=0.0)
    min_notional: float = Field(default=0.0, ge=0.0)
    maker_fee: float = 0.001
    taker_fee: float = 0.001

    def build(self) -> Instrument:
        return Instrument(**self.model_dump())


class BarSourceConfig(_Config):
    """A Parquet file of bars: ``ts`` (int64 ns, bar open time), ``open`` .. ``volume``.

    ``symbol`` and ``venue`` are taken from the file's columns when it has them; otherwise from
    here. ``path`` may be ``sample:NAME`` for data bundled with the package.
    """

    path: str
    symbol: str | None = None
    venue: str | None = None
    interval_s: int = Field(default=60, gt=0)
    start: str | None = Field(
        default=None, description="ISO date/time (UTC); bars before are skipped"
    )
    end: str | None = Field(
        default=None, description="ISO date/time (UTC); bars at or after are skipped"
    )
    limit: int | None = Field(default=None, gt=0, description="at most this many bars per symbol")


class TradeSourceConfig(_Config):
    """A Parquet file of trade ticks: ``ts`` (int64 ns), ``price``, ``size``, ``side``, ``trade_id``."""

    path: str
    symbol: str
    venue: str = "BINANCE"
    start: str | None = None
    end: str | None = None
    limit: int | None = Field(default=None, gt=0)


class DataConfig(_Config):
    """Historical data to replay: bars, trade ticks, or both (merged by time)."""

    bars: tuple[BarSourceConfig, ...] = ()
    trades: tuple[TradeSourceConfig, ...] = ()

    @model_validator(mode="after")
    def _some_data(self) -> Self:
        if not self.bars and not self.trades:
            raise ValueError("give at least one source under data.bars or data.trades")
        return self


class StrategyConfig(_Config):
    """One strategy instance. ``class_path`` is ``module:Class`` or a registered short name."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    class_path: str
    instruments: tuple[str, ...] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class RiskConfig(_Config):
    """Pre-trade limits. ``None`` disables a limit. Amounts are in the quote currency."""

    max_order_notional: float | None = Field(default=None, gt=0.0)
    max_position_notional: float | None = Field(default=None, gt=0.0)
    max_position_quantity: dict[str, float] = Field(default_factory=dict)
    max_gross_exposure: float | None = Field(default=None, gt=0.0)
    daily_loss_limit: float | None = Field(default=None, gt=0.0)
    max_drawdown_pct: float | None = Field(default=None, gt=0.0, le=100.0)
    max_orders_per_s: float | None = Field(default=None, gt=0.0)
    order_burst: int = Field(default=10, ge=1)
    price_band_pct: float | None = Field(default=10.0, gt=0.0)
    trip_on_limit_breach: bool = Field(
        default=True, description="trip the kill switch when daily loss or drawdown is breached"
    )


class PortfolioConfig(_Config):
    starting_cash: float = Field(default=1_000_000.0, gt=0.0)
    currency: str = "USDT"
    snapshot_interval_s: float = Field(
        default=3600.0,
        ge=0.0,
        description="heartbeat: most event time between snapshots sent to Risk",
    )
    snapshot_equity_move_pct: float = Field(
        default=0.1,
        ge=0.0,
        description="send a snapshot as soon as equity moves this much (%) since the last one; "
        "fills and UTC day changes always send one; 0 disables",
    )


class ReportConfig(_Config):
    out_dir: str = "out/backtest"
    html: bool = True
    periods_per_year: float | None = Field(
        default=None, description="for Sharpe/Sortino; inferred from the bar interval when unset"
    )


class StrategyAllocationConfig(_Config):
    """One strategy's share of the capital.

    ``weight`` is relative (targets are normalised to sum to 1). The allocator never gives a
    strategy less than ``min_capital`` or more than ``max_capital`` (both in the quote
    currency) when the equity allows it, and keeps risk-adjusted weights within
    ``[min_weight, max_weight]``. The strategy sizes from ``capital * risk_multiplier``.
    """

    strategy: str
    weight: float = Field(gt=0.0)
    min_capital: float = Field(default=0.0, ge=0.0)
    max_capital: float | None = Field(default=None, gt=0.0)
    min_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    max_weight: float = Field(default=1.0, gt=0.0, le=1.0)
    risk_multiplier: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.min_weight > self.max_weight:
            raise ValueError(f"min_weight {self.min_weight} is above max_weight {self.max_weight}")
        if self.max_capital is not None and self.min_capital > self.max_capital:
            raise ValueError(
                f"min_capital {self.min_capital} is above max_capital {self.max_capital}"
            )
        return self


class AllocationConfig(_Config):
    """Capital allocation across strategies (see ``tradegraph.portfolio.allocation``).

    Every ``check_interval_s`` the allocator samples each strategy's value; it rebalances when
    a strategy's weight drifts more than ``drift_threshold`` (absolute, 0.05 = 5 points) from
    its target, and every ``rebalance_interval_s`` regardless. With ``risk_adjusted`` the new
    targets tilt towards strategies with a better trailing Sharpe ratio and away from those
    in drawdown, over the last ``lookback`` samples.
    """

    targets: tuple[StrategyAllocationConfig, ...] = Field(min_length=1)
    check_interval_s: float = Field(default=3600.0, gt=0.0)
    rebalance_interval_s: float | None = Field(default=86_400.0, gt=0.0)
    drift_threshold: float | None = Field(default=0.05, gt=0.0)
    risk_adjusted: bool = False
    lookback: int = Field(default=168, ge=2, description="samples for trailing Sharpe/drawdown")
    sharpe_sensitivity: float = Field(default=0.5, ge=0.0)
    drawdown_penalty: float = Field(default=2.0, ge=0.0)

    @model_validator(mode="after")
    def _check_targets(self) -> Self:
        ids = [t.strategy for t in self.targets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"targets: duplicate strategy in {ids}")
        if sum(t.min_weight for t in self.targets) > 1.0 + 1e-9:
            raise ValueError("targets: min_weight values sum to more than 1")
        if sum(t.max_weight for t in self.targets) < 1.0 - 1e-9:
            raise ValueError("targets: max_weight values sum to less than 1")
        return self


class SessionConfig(_Config):
    """How a paper or live session runs the graph as Ray actors under a real-time clock.

    ``clock: data`` (replays) lets every component's clock follow the replayed data, so a
    replay at any speed keeps the backtest's timing; ``clock: wall`` reads the system clock
    (live market data). ``speed`` is data seconds per wall second for replays; 0 replays as
    fast as the graph takes it.
    """

    market_data: Literal["replay", "ccxt"] = Field(
        default="replay",
        description="replay: the data section at `speed`; ccxt: live data from each venue's "
        "exchange (venues[].live), as `tradegraph live` runs it",
    )
    clock: Literal["data", "wall"] = "data"
    speed: float = Field(default=60.0, ge=0.0, description="replay: data seconds per wall second")
    causal: bool = Field(
        default=True,
        description="replay one timestamp at a time, each after the graph has taken all the "
        "previous one caused: the backtest's order of events, at a few hundred steps per second",
    )
    batch_size: int = Field(default=256, ge=1, description="replay: most events per message batch")
    max_in_flight: int = Field(
        default=8, ge=1, description="replay: batches sent but not yet taken by every receiver"
    )
    batch_interval_ms: float = Field(
        default=10.0,
        ge=0.0,
        description="paced replay (speed > 0, not causal): publish at most this often, what "
        "fell due meanwhile as one batch; each remote call costs a few hundred microseconds "
        "of CPU, so fewer, larger batches carry far more events",
    )
    namespace: str = Field(default="tradegraph", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    state_dir: str | None = Field(
        default="out/paper/state",
        description="snapshots and journals for recovery after an actor restart; null: none",
    )
    snapshot_interval_s: float = Field(default=2.0, gt=0.0)
    max_restarts: int = Field(default=3, ge=-1, description="restarts per actor; -1: forever")
    hang_timeout_s: float = Field(
        default=5.0, gt=0.0, description="an order-path actor silent this long halts trading"
    )
    health_interval_s: float = Field(default=0.5, gt=0.0)
    stop_timeout_s: float = Field(
        default=2.5, gt=0.0, description="clean stop: cancel, flush and snapshot within this"
    )


class GraphConfig(_Config):
    """Everything needed to build one trading graph, in either transport and either clock."""

    name: str = "backtest"
    seed: int = 0
    instruments: tuple[InstrumentConfig, ...] = Field(min_length=1)
    venues: tuple[VenueConfig, ...] = (VenueConfig(),)
    data: DataConfig
    strategies: tuple[StrategyConfig, ...] = Field(min_length=1)
    risk: RiskConfig = RiskConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    report: ReportConfig = ReportConfig()
    allocation: AllocationConfig | None = None
    session: SessionConfig = SessionConfig()

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        venue_names = [v.name for v in self.venues]
        if len(set(venue_names)) != len(venue_names):
            raise ValueError(f"venues: duplicate venue name in {venue_names}")
        ids = [f"{i.symbol}.{i.venue}" for i in self.instruments]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instruments: duplicate instrument in {ids}")
        for inst in self.instruments:
            if inst.venue not in venue_names:
                raise ValueError(
                    f"instruments: {inst.symbol} is on venue {inst.venue!r}, "
                    f"which is not among venues {venue_names}"
                )
        strategy_ids = [s.id for s in self.strategies]
        if len(set(strategy_ids)) != len(strategy_ids):
            raise ValueError(f"strategies: duplicate id in {strategy_ids}")
        for s in self.strategies:
            for inst_id in s.instruments:
                if inst_id not in ids:
                    raise ValueError(
                        f"strategies.{s.id}.instruments: unknown instrument {inst_id!r}; "
                        f"known: {ids}"
                    )
        if self.allocation is not None:
            for target in self.allocation.targets:
                if target.strategy not in strategy_ids:
                    raise ValueError(
                        f"allocation.targets: unknown strategy {target.strategy!r}; "
                        f"known: {strategy_ids}"
                    )
        return self

    def instrument_map(self) -> dict[str, Instrument]:
        return {i.build().instrument_id: i.build() for i in self.instruments}

    def venue(self, name: str) -> VenueConfig:
        for v in self.venues:
            if v.name == name:
                return v
        raise KeyError(name)
