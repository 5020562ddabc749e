"""Pydantic models for a whole graph and each component. Frozen; unknown keys are errors."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tradegraph.config.alert_events import (
    ALERT_EVENTS,
    AlertEvent,
    message_types,
    readable_fields,
)
from tradegraph.contracts import (
    AccountKind,
    Instrument,
    InstrumentKind,
    KillSwitchMode,
    KillSwitchSource,
    MarginTier,
)

# Fees are fractions of notional, as the Instrument contract bounds them.
MIN_MAKER_FEE = -0.01
MAX_FEE = 0.05
MAX_BAR_INTERVAL_S = 31 * 86_400
_INTERVAL_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def interval_seconds(text: str) -> int:
    """Length of a bar interval, in seconds.

    Args:
        text: A count and a unit, ``90s``, ``5m``, ``1h``, ``4h``, ``1d``, ``1w`` (ccxt's
            timeframes), or a bare number of seconds such as ``300``.

    Raises:
        ValueError: ``text`` is neither, or is not a positive whole number of seconds.
    """
    text = text.strip()
    count, unit = (text[:-1], text[-1]) if text[-1:] in _INTERVAL_UNITS_S else (text, "s")
    if not count.isdigit() or int(count) <= 0:
        raise ValueError(
            f"cannot read bar interval {text!r}: write a count and a unit (90s, 5m, 1h, 4h, "
            "1d, 1w) or a number of seconds"
        )
    return int(count) * _INTERVAL_UNITS_S[unit]


class _Config(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


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
    """``none``, ``fixed``, ``linear`` or ``sqrt`` (see above)."""
    bps: float = Field(default=0.0, ge=0.0)
    """Fixed part of the slippage."""
    impact_bps: float = Field(default=0.0, ge=0.0)
    """Impact part, scaled by the order's share of the bar's volume."""


ENABLE_LIVE_ENV = "TRADEGRAPH_ENABLE_LIVE"

DEFAULT_NAMESPACE = "tradegraph"
"""The Ray namespace of a session's named actors unless ``session.namespace`` says otherwise."""
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
    """Cap of the first retry's delay; doubles with each retry."""
    max_delay_s: float = Field(default=30.0, gt=0.0)
    """Largest cap of a retry's delay."""
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
    """Consecutive failed calls that open the breaker."""
    cooldown_s: float = Field(default=30.0, gt=0.0)
    """How long the breaker stays open before one probing call."""


class LiveVenueConfig(_Config):
    """How a paper, dry-run or live session connects to a real exchange through ccxt.

    Credentials are never part of the configuration: ``api_key_env`` and ``api_secret_env``
    name the environment variables that hold them. ``urls`` and ``options`` are merged into
    the ccxt exchange's own (testnets, local test servers, ccxt options such as
    ``defaultType``).
    """

    mode: LiveMode = LiveMode.PAPER
    """``paper``, ``dry-run`` or ``live`` (see ``resolve_mode``)."""
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
    """Timeout of one ccxt REST request."""
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
    """Streams to subscribe to: trades, order book, OHLCV bars."""
    ohlcv_timeframe: str = "1m"
    """ccxt timeframe of the OHLCV stream, e.g. ``1m``."""
    book_depth: int = Field(
        default=0, ge=0, description="levels per side in OrderBookSnapshot; 0: best bid/ask only"
    )
    reconcile_lookback_s: float = Field(
        default=86_400.0, gt=0.0, description="how far back a first reconciliation reads fills"
    )
    balance_tolerance: float = Field(
        default=1e-8, ge=0.0, description="absolute slack when balances are reconciled"
    )
    reconcile_interval_s: float | None = Field(
        default=60.0,
        gt=0.0,
        description="live: compare open orders, recent fills and balances with the venue this "
        "often while the session runs (missed fills are applied; anything unexplained halts "
        "trading); null: only at start",
    )
    reconcile_grace_s: float = Field(
        default=5.0,
        ge=0.0,
        description="a periodic reconciliation leaves alone orders sent or changed less than "
        "this long ago (the venue's answer may still be on its way) and judges them next time",
    )
    journal_retention_s: float = Field(
        default=7 * 86_400.0,
        gt=0.0,
        description="finished orders older than this leave the order journal, their fills "
        "folded into the balance baseline, at each reconciliation that finds nothing wrong",
    )
    margin_mode: Literal["cross", "isolated"] = Field(
        default="isolated",
        description="perpetuals: margin mode set for each perpetual instrument at start "
        "(isolated: a position can lose at most its own margin)",
    )
    leverage: dict[str, int] = Field(
        default_factory=dict,
        description="perpetuals: leverage set at start, by instrument symbol (BTCUSDT-PERP); "
        "a perpetual not named gets default_leverage",
    )
    default_leverage: int = Field(
        default=1, ge=1, le=125, description="perpetuals: leverage of a perpetual not in leverage"
    )
    retry: RetryConfig = RetryConfig()
    """Backoff for venue calls that failed for a reason that may pass."""
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    """When to stop calling a venue that keeps failing."""

    @model_validator(mode="after")
    def _check_leverage(self) -> Self:
        for symbol, leverage in self.leverage.items():
            if not 1 <= leverage <= 125:
                raise ValueError(f"leverage[{symbol}] must be in [1, 125], was {leverage}")
        return self


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


class AccountConfig(_Config):
    """The account the graph trades through at one venue.

    ``kind: cash`` is a spot account: a balance per asset, and an order is refused, by Risk and
    by the simulated venue alike, unless the free balance pays for it (buys: notional plus the
    highest fee in the quote asset; sells: the base quantity).

    ``kind: margin`` holds collateral in each instrument's settle asset and one net position
    per instrument, short or long; an order is refused (``insufficient_margin``) unless free
    margin posts its initial margin, notional over ``leverage`` (or the instrument's margin
    tier), plus its fee; a position whose account equity falls below maintenance margin is
    liquidated by the simulated venue (see :mod:`tradegraph.portfolio.margin`).

    The venue's balance of ``portfolio.currency`` starts at ``portfolio.starting_cash`` unless
    ``starting_balances`` names it; every other asset starts at what ``starting_balances``
    says, or 0. In live sessions the balances the broker reads from the exchange replace these
    once reconciliation has passed.
    """

    kind: AccountKind = AccountKind.CASH
    """``cash`` (spot): balances per asset, no borrowing; ``margin``: collateral, leverage,
    net positions that may be short, funding and liquidation."""
    leverage: dict[str, float] = Field(
        default_factory=dict,
        description="margin accounts: instrument id -> leverage (1 when not named), at most the "
        "instrument's max_leverage",
    )
    maintenance_margin_rate: float = Field(
        default=0.005,
        gt=0.0,
        lt=1.0,
        description="margin accounts: maintenance margin as a fraction of notional for "
        "instruments without margin_tiers",
    )
    starting_balances: dict[str, float] = Field(
        default_factory=dict,
        description="asset -> amount held at the start, e.g. {BTC: 0.5}; overrides "
        "portfolio.starting_cash for portfolio.currency",
    )
    market_buy_buffer_pct: float = Field(
        default=5.0,
        ge=0.0,
        le=100.0,
        description="a market buy reserves notional at the last price raised by this much (%), "
        "plus the taker fee, since the price it fills at is not known yet",
    )

    @model_validator(mode="after")
    def _check_balances(self) -> Self:
        for asset, amount in self.starting_balances.items():
            if not amount >= 0.0:
                raise ValueError(f"starting_balances[{asset}] must be >= 0, was {amount!r}")
        if self.leverage and self.kind is not AccountKind.MARGIN:
            raise ValueError("leverage applies to margin accounts only (kind: margin)")
        for inst_id, value in self.leverage.items():
            if not 1.0 <= value < math.inf:
                raise ValueError(f"leverage[{inst_id}] must be a number >= 1, was {value!r}")
            if 1.0 / value <= self.maintenance_margin_rate:
                raise ValueError(
                    f"leverage[{inst_id}] {value:g} leaves initial margin (1/leverage) at or "
                    f"below maintenance_margin_rate {self.maintenance_margin_rate:g}: every "
                    "position would be liquidated at once"
                )
        return self


class VenueConfig(_Config):
    """A simulated venue (backtest, paper) or, in live sessions, the exchange it stands for.

    ``live`` says how paper, dry-run and live sessions reach the real exchange; backtests
    ignore it.
    """

    name: str = "BINANCE"
    """Venue name that instruments refer to, e.g. ``BINANCE``."""
    fill_at: FillAt = FillAt.NEXT_OPEN
    """When market orders fill against bars: ``next_open`` (no look-ahead) or ``close``."""
    slippage: SlippageConfig = SlippageConfig()
    """Slippage on taker fills."""
    latency_ms: float = Field(default=0.0, ge=0.0, description="submit-to-acceptance delay")
    max_volume_share: float = Field(
        default=1.0, gt=0.0, le=1.0, description="largest share of a bar's volume one order fills"
    )
    maker_fee: float | None = Field(
        default=None, ge=MIN_MAKER_FEE, le=MAX_FEE, description="overrides the instrument's fee"
    )
    taker_fee: float | None = Field(
        default=None, ge=0.0, le=MAX_FEE, description="overrides the instrument's fee"
    )
    account: AccountConfig = Field(
        default=AccountConfig(), description="`cash` (the default) or a full account section"
    )
    live: LiveVenueConfig | None = None
    """How paper, dry-run and live sessions reach the real exchange; backtests ignore it."""

    @field_validator("account", mode="before")
    @classmethod
    def _account_kind_alone(cls, value: Any) -> Any:
        # `account: cash` is short for `account: {kind: cash}`.
        return {"kind": value} if isinstance(value, str) else value


class InstrumentConfig(_Config):
    """One tradable instrument and its venue's trading rules (``tradegraph data instruments``
    writes them from an exchange's markets)."""

    symbol: str
    """Exchange symbol without separator, e.g. ``BTCUSDT``."""
    venue: str = "BINANCE"
    """Name of the venue (``venues[].name``) it trades on."""
    base: str
    """Base currency, e.g. ``BTC``."""
    quote: str
    """Quote currency, e.g. ``USDT``; prices and notionals are in it."""
    tick_size: float = Field(gt=0.0)
    """Price increment; limit prices are rounded to it."""
    lot_size: float = Field(gt=0.0)
    """Quantity increment; order quantities are rounded down to it."""
    min_quantity: float = Field(default=0.0, ge=0.0)
    """Smallest order quantity the venue accepts."""
    min_notional: float = Field(default=0.0, ge=0.0)
    """Smallest order value (price times quantity) the venue accepts."""
    maker_fee: float = Field(default=0.001, ge=MIN_MAKER_FEE, le=MAX_FEE)
    """Fee on fills that add liquidity, as a fraction of notional (0.001 = 0.1 %)."""
    taker_fee: float = Field(default=0.001, ge=0.0, le=MAX_FEE)
    """Fee on fills that take liquidity, as a fraction of notional (0.001 = 0.1 %)."""
    kind: InstrumentKind = InstrumentKind.SPOT
    """``spot`` or ``perpetual`` (a linear perpetual swap, symbol like ``BTCUSDT-PERP``)."""
    contract_size: float = Field(default=1.0, gt=0.0)
    """Base units per contract (perpetuals); quantities count contracts."""
    settle: str = ""
    """Asset a perpetual is margined and settled in; empty: the quote asset."""
    max_leverage: float = Field(default=1.0, ge=1.0)
    """Highest leverage the venue allows on the instrument."""
    margin_tiers: tuple[MarginTier, ...] = ()
    """Margin schedule by position notional, ascending ``max_notional``; empty: initial margin
    is notional over leverage, maintenance ``venues[].account.maintenance_margin_rate``."""
    funding_interval_h: float = Field(default=8.0, gt=0.0)
    """Hours between funding events (perpetuals)."""
    liquidation_fee: float = Field(default=0.0, ge=0.0, le=0.1)
    """Fraction of notional charged when the venue liquidates a position."""

    @model_validator(mode="after")
    def _builds(self) -> Self:
        # The instrument's own rules, reported at load time with the config's field path.
        try:
            self.build()
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
        return self

    def build(self) -> Instrument:
        return Instrument(**self.model_dump())


class BarSourceConfig(_Config):
    """A Parquet file of bars: ``ts`` (int64 ns, bar open time), ``open`` .. ``volume``.

    ``symbol`` and ``venue`` are taken from the file's columns when it has them; otherwise from
    here. ``path`` may be ``sample:NAME`` for data bundled with the package.
    """

    path: str
    """Parquet file or dataset folder of bars, or ``sample:NAME`` for bundled data."""
    symbol: str | None = None
    """Symbol of the bars, when the file has no ``symbol`` column (or to pick one of several)."""
    venue: str | None = None
    """Venue of the bars, when the file has no ``venue`` column."""
    interval_s: int = Field(default=60, gt=0, le=MAX_BAR_INTERVAL_S)
    """Bar length; a bar becomes known at its open time plus this."""
    start: str | None = Field(
        default=None, description="ISO date/time (UTC); bars before are skipped"
    )
    end: str | None = Field(
        default=None, description="ISO date/time (UTC); bars at or after are skipped"
    )
    limit: int | None = Field(default=None, gt=0, description="at most this many bars per symbol")
    as_symbol: str | None = None
    """Replay these bars as the bars of this symbol, whatever the file calls them (e.g. spot
    bars standing in for a perpetual's, ``BTCUSDT-PERP``); the source must hold one symbol."""
    as_venue: str | None = None
    """Replay these bars at this venue, whatever the file calls it (e.g. the same bars for a
    futures venue next to the spot one); the source must hold one symbol."""


class TradeSourceConfig(_Config):
    """A Parquet file of trade ticks: ``ts`` (int64 ns), ``price``, ``size``, ``side``, ``trade_id``."""

    path: str
    """Parquet file of trade ticks, or ``sample:NAME`` for bundled data."""
    symbol: str
    """Symbol of the trades."""
    venue: str = "BINANCE"
    """Venue of the trades."""
    start: str | None = None
    """ISO date/time (UTC); trades before are skipped."""
    end: str | None = None
    """ISO date/time (UTC); trades at or after are skipped."""
    limit: int | None = Field(default=None, gt=0)
    """At most this many trades."""


class FundingSourceConfig(_Config):
    """A perpetual's funding-rate series: a Parquet (or ``.csv``) file with ``ts`` (time of
    each funding event), ``funding_rate`` (fraction of notional; positive: longs pay shorts)
    and optionally ``mark_price`` (else the last bar close or trade is the mark)."""

    instrument: str
    """Instrument id (``SYMBOL.VENUE``) of a ``kind: perpetual`` instrument."""
    path: str
    """Funding file, or ``sample:NAME`` for bundled data."""


class DataConfig(_Config):
    """Historical data to replay: bars, trade ticks, or both (merged by time)."""

    bars: tuple[BarSourceConfig, ...] = ()
    """Bar sources, merged by time."""
    trades: tuple[TradeSourceConfig, ...] = ()
    """Trade-tick sources, merged by time with the bars."""
    funding: tuple[FundingSourceConfig, ...] = ()
    """Funding-rate series of perpetuals, applied by the simulated venue at each funding time
    (at the first bar or trade of the instrument that closes at or after it)."""
    trade_start: str | None = None
    """ISO date/time (UTC): bars that open before it only warm the strategies up (they reach
    the strategies alone; no order may be sent, no equity or fill is counted; trade ticks
    before it are skipped). Results count from it. Null: every bar counts."""

    @model_validator(mode="after")
    def _some_data(self) -> Self:
        if not self.bars and not self.trades:
            raise ValueError("give at least one source under data.bars or data.trades")
        return self


class StrategyConfig(_Config):
    """One strategy instance. ``class_path`` is ``module:Class`` or a registered short name."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    """Unique id: letters, digits, ``_`` and ``-``, at most 32 characters."""
    class_path: str
    """``module:Class`` or a registered short name (``sma_cross``, ``mean_reversion``,
    ``trendline_breakout``).
    """
    instruments: tuple[str, ...] = Field(min_length=1)
    """Instrument ids (``SYMBOL.VENUE``) the strategy trades and gets data for."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameters, validated by the strategy's own ``Params`` model."""
    bars: tuple[str, ...] = ()
    """Longer bars the strategy also gets, e.g. ``["5m", "1h"]`` (``s``, ``m``, ``h``, ``d``,
    ``w``, or seconds): built from its instruments' data as it arrives, aligned to the epoch,
    each reaching ``on_bar`` at its close, right after the bar that closes it; a whole multiple
    of the data's bar interval."""
    bars_from: Literal["bars", "trades"] = "bars"
    """What ``bars`` are built from: the instruments' bars, or their trade ticks."""

    @field_validator("bars", mode="before")
    @classmethod
    def _seconds_as_text(cls, value: Any) -> Any:
        # `bars: [300]` means 300 seconds, as `bars: ["300s"]` does.
        if isinstance(value, list | tuple):
            return [f"{v}s" if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("bars")
    @classmethod
    def _readable_intervals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seconds = [interval_seconds(text) for text in value]
        if len(set(seconds)) != len(seconds):
            raise ValueError(f"the same interval is listed twice in {list(value)}")
        for text, length_s in zip(value, seconds, strict=True):
            if length_s > MAX_BAR_INTERVAL_S:
                raise ValueError(f"{text!r} is longer than {MAX_BAR_INTERVAL_S} s (31 days)")
        return value

    @property
    def bar_intervals_ns(self) -> tuple[int, ...]:
        """``bars`` in nanoseconds, shortest first."""
        return tuple(sorted(interval_seconds(text) * 1_000_000_000 for text in self.bars))


class RiskConfig(_Config):
    """Pre-trade limits. ``None`` disables a limit. Amounts are in the quote currency."""

    max_order_notional: float | None = Field(default=None, gt=0.0)
    """Largest value of one order; null: no limit."""
    max_position_notional: float | None = Field(default=None, gt=0.0)
    """Largest value of the position in one instrument after an order; null: no limit."""
    max_position_quantity: dict[str, float] = Field(default_factory=dict)
    """Largest absolute position per instrument id (``SYMBOL.VENUE``), in base units."""
    max_gross_exposure: float | None = Field(default=None, gt=0.0)
    """Largest sum of absolute position values plus the order; null: no limit."""
    daily_loss_limit: float | None = Field(default=None, gt=0.0)
    """Loss over the UTC day at which new orders are refused; null: no limit."""
    max_drawdown_pct: float | None = Field(default=None, gt=0.0, le=100.0)
    """Drawdown from peak equity at which new orders are refused; null: no limit."""
    max_orders_per_s: float | None = Field(default=None, gt=0.0)
    """Sustained order rate (token bucket); null: no limit."""
    order_burst: int = Field(default=10, ge=1)
    """Orders that may go at once above ``max_orders_per_s`` (the bucket's size)."""
    price_band_pct: float | None = Field(default=10.0, gt=0.0)
    """Refuse limit prices further than this from the last price; null: no band."""
    trip_on_limit_breach: bool = Field(
        default=True, description="trip the kill switch when daily loss or drawdown is breached"
    )
    kill_switch_mode: KillSwitchMode = KillSwitchMode.HALT
    """What a kill-switch trip does: ``halt`` refuses every new order; ``reduce_only`` passes
    only orders that shrink a strategy's position and cancels open orders that would grow it;
    ``flatten`` cancels every open order, closes every strategy's position at market, then
    halts."""
    kill_switch_modes: dict[KillSwitchSource, KillSwitchMode] = Field(default_factory=dict)
    """Mode per trip source (``drawdown``, ``daily_loss``, ``operator``), in place of
    ``kill_switch_mode``; ``tradegraph kill --mode`` overrides both for its trip."""


class GuardLevelsConfig(_Config):
    """A guard's two levels: at ``warn`` it is logged and published, at ``halt`` trading halts
    with the guard's name and values as the reason. ``None`` turns a level off."""

    warn: float | None = Field(default=None, gt=0.0)
    """Level at which the guard warns; null: no warning."""
    halt: float | None = Field(default=None, gt=0.0)
    """Level at which the guard halts trading; null: it never halts."""

    @model_validator(mode="after")
    def _warn_below_halt(self) -> Self:
        if self.warn is not None and self.halt is not None and self.warn >= self.halt:
            raise ValueError(f"warn ({self.warn:g}) must be below halt ({self.halt:g})")
        return self


class LatencyGuardConfig(GuardLevelsConfig):
    """Tick-to-order latency p99, in milliseconds, over the last ``window_s`` at the broker."""

    window_s: float = Field(default=60.0, gt=0.0)
    """Orders of the last this many seconds count."""
    min_samples: int = Field(default=20, ge=1)
    """Fewer orders in the window than this: no judgement (a p99 of a handful means little)."""


class GuardsConfig(_Config):
    """Runtime guards of a paper or live session, each checked every ``interval_s``.

    ``memory_mb``: resident memory of each actor's process (MB), measured by the actor itself.
    ``tick_to_order_p99_ms``: p99 of the time from a market event entering the graph to the
    order it caused reaching the broker. ``clock_drift_ms``: difference between this machine's
    clock and the exchange's (ccxt ``fetch_time``), live brokers only.
    """

    interval_s: float = Field(default=10.0, gt=0.0)
    """How often each actor checks its guards."""
    memory_mb: GuardLevelsConfig = GuardLevelsConfig()
    """An actor's resident memory (RSS), MB."""
    tick_to_order_p99_ms: LatencyGuardConfig = LatencyGuardConfig()
    """Tick-to-order latency p99 at a broker, ms."""
    clock_drift_ms: GuardLevelsConfig = GuardLevelsConfig()
    """Absolute difference between our clock and the exchange's, ms (live brokers)."""


class PortfolioConfig(_Config):
    """The account: starting cash, currency, and when Risk hears of the portfolio."""

    starting_cash: float = Field(default=100_000.0, gt=0.0)
    """Cash in the account at the start, in ``currency``."""
    currency: str = "USDT"
    """Account currency; every instrument must quote in it."""
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
    """Where and how a run's results are written."""

    out_dir: str = "out/backtest"
    """Folder the outputs are written to (``--out`` overrides it)."""
    html: bool = True
    """Also write the self-contained ``report.html``."""
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
    """Id of the strategy (``strategies[].id``)."""
    weight: float = Field(gt=0.0)
    """Relative target weight; targets are normalised to sum to 1."""
    min_capital: float = Field(default=0.0, ge=0.0)
    """Least capital given to the strategy when the equity allows it."""
    max_capital: float | None = Field(default=None, gt=0.0)
    """Most capital given to the strategy; null: no cap."""
    min_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    """Least risk-adjusted weight, a fraction of 1."""
    max_weight: float = Field(default=1.0, gt=0.0, le=1.0)
    """Most risk-adjusted weight, a fraction of 1."""
    risk_multiplier: float = Field(default=1.0, gt=0.0)
    """The strategy sizes from its capital times this."""

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
    """One entry per strategy that gets a share of the capital."""
    check_interval_s: float = Field(default=3600.0, gt=0.0)
    """How often the allocator samples each strategy's value and checks drift."""
    rebalance_interval_s: float | None = Field(default=86_400.0, gt=0.0)
    """Rebalance to the targets this often whatever the drift; null: only on drift."""
    drift_threshold: float | None = Field(default=0.05, gt=0.0)
    """Rebalance when a weight is this far (absolute fraction) from its target; null: never on drift.

    """
    risk_adjusted: bool = False
    """Tilt targets towards a better trailing Sharpe ratio and away from drawdown."""
    lookback: int = Field(default=168, ge=2, description="samples for trailing Sharpe/drawdown")
    sharpe_sensitivity: float = Field(default=0.5, ge=0.0)
    """How strongly the trailing Sharpe ratio tilts the targets (0: not at all)."""
    drawdown_penalty: float = Field(default=2.0, ge=0.0)
    """How strongly a strategy's drawdown (a fraction) cuts its target."""

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


class MarketDataChecksConfig(_Config):
    """Checks on streamed market data (paper and live sessions) before it is published.

    A frame stamped more than ``max_ahead_s`` after the local clock, or with a price more than
    ``price_band_pct`` away from the median of the instrument's last ``reference_prices``
    published prices, is dropped, counted and logged. ``reanchor_after`` consecutive prices
    outside the band that agree with each other (within the band) are a real jump: the last of
    them is published and becomes the new reference.
    """

    max_ahead_s: float = Field(default=60.0, ge=0.0, le=86_400.0)
    """Largest lead of a frame's timestamp over the local clock before it is dropped."""
    price_band_pct: float = Field(default=20.0, gt=0.0, le=10_000.0)
    """Widest distance, in %, of a price from the median of recent prices."""
    reference_prices: int = Field(default=20, ge=1, le=10_000)
    """How many recent published prices per instrument the median is taken over."""
    reanchor_after: int = Field(default=3, ge=1, le=1_000)
    """Consecutive agreeing out-of-band prices taken as a real jump."""


class SessionConfig(_Config):
    """How a paper or live session runs the graph as Ray actors under a real-time clock.

    ``clock: data`` (replays) lets every component's clock follow the replayed data, so a
    replay at any speed keeps the backtest's timing; ``clock: wall`` reads the system clock
    (live market data). ``speed`` is data seconds per wall second for replays; 0 replays as
    fast as the graph takes it.
    """

    market_data_checks: MarketDataChecksConfig = MarketDataChecksConfig()
    """Checks on streamed prices and timestamps before they reach strategies and Risk."""
    market_data: Literal["replay", "ccxt"] = Field(
        default="replay",
        description="replay: the data section at `speed`; ccxt: live data from each venue's "
        "exchange (venues[].live), as `tradegraph live` runs it",
    )
    clock: Literal["data", "wall"] = "data"
    """``data``: clocks follow the replayed data; ``wall``: the system clock."""
    speed: float = Field(default=60.0, ge=0.0, description="replay: data seconds per wall second")
    causal: bool = Field(
        default=True,
        description="replay one market event at a time, each after the graph has taken all the "
        "previous one caused, timers fired at their own time between events: the backtest's "
        "order of events, at a few hundred steps per second",
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
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    """Ray namespace of the session's named actors."""
    state_dir: str | None = Field(
        default="out/paper/state",
        description="snapshots and journals for recovery after an actor restart; null: none",
    )
    snapshot_interval_s: float = Field(default=2.0, gt=0.0)
    """How often each actor snapshots its state to ``state_dir``."""
    record_dir: str | None = Field(
        default=None,
        description="folder where md records the market data it publishes, as a Parquet "
        "catalog `tradegraph twin` replays; `tradegraph paper` and `live` record under the "
        "run's folder (`recorded/`) unless the config sets this; null there: no recording",
    )
    max_restarts: int = Field(default=3, ge=-1, description="restarts per actor; -1: forever")
    hang_timeout_s: float = Field(
        default=5.0, gt=0.0, description="an order-path actor silent this long halts trading"
    )
    health_interval_s: float = Field(default=0.5, gt=0.0)
    """How often the supervisor checks that every actor answers."""
    stop_timeout_s: float = Field(
        default=2.5, gt=0.0, description="clean stop: cancel, flush and snapshot within this"
    )

    @model_validator(mode="after")
    def _live_data_on_the_wall_clock(self) -> Self:
        # Live frames are checked against the clock; a data clock never moves without a replay.
        if self.market_data == "ccxt" and self.clock != "wall":
            raise ValueError("clock: market_data ccxt runs on the wall clock; set clock: wall")
        return self


AlertSeverity = Literal["info", "warning", "error", "critical"]
_ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = r"^[A-Za-z0-9_\-]{1,64}$"


def env_references(url: str) -> list[str]:
    """The environment variables a channel URL names as ``${NAME}``, in order."""
    return _ENV_REFERENCE.findall(url)


class AlertChannelConfig(_Config):
    """Where alerts go: one Apprise URL (``json://host/path``, ``slack://...``, ``tgram://...``,
    ``discord://...``, ``mailtos://...``; see the Apprise documentation for every service).

    Write secrets as ``${ENV_VAR}``: they are read from the environment of the process that
    sends (never stored in the config, its dumps or a log), and a URL is shown in logs and
    errors as its scheme only (``json://***``).
    """

    name: str = Field(pattern=_NAME)
    """Names the channel in rules, logs and ``tradegraph alerts test``."""
    url: str
    """Apprise URL; ``${NAME}`` is replaced by the environment variable ``NAME``."""

    # Checked on the whole section, not the field: an error then names the field without
    # echoing its value, which may hold a secret.
    @model_validator(mode="after")
    def _check_url(self) -> Self:
        url = self.url
        scheme, sep, _ = url.partition("://")
        if not sep or not scheme or not scheme.replace("+", "").isalnum():
            raise ValueError(
                "url: not an Apprise URL: expected scheme://... (json://, slack://...)"
            )
        for name in env_references(url):
            if not _ENV_NAME.match(name):
                raise ValueError(f"url: ${{{name}}} is not an environment variable name")
        if "${" in _ENV_REFERENCE.sub("", url):
            raise ValueError("url: an unclosed ${ in the URL: write ${ENV_VAR}")
        return self


class AlertRuleConfig(_Config):
    """One alert rule: an event, how severe it is, and how often it may be sent.

    ``event`` is a built-in event (``kill_switch_tripped``, ``kill_switch_reset``,
    ``trading_halted``, ``reconciliation_failed``, ``feed_stale``, ``venue_unavailable`` (a
    venue's circuit breaker opened), ``venue_banned``, ``venue_rejections``, ``drawdown``,
    ``actor_restarted``, ``strategy_error``, ``fill``) or the name of any message type
    (``VenueStatus``, ``ExecutionReport``, a message a newer component publishes), narrowed
    with ``where`` and ``contains``.

    An alert is raised when ``count`` matching events fall within ``window_s`` (seconds of the
    graph's clock). Alerts with the same ``dedup_key`` (a template of the message's fields,
    ``{venue}``) within ``dedup_window_s`` are sent once; past ``max_alerts`` per
    ``rate_window_s`` the rule is quiet, and its next alert says how many were held back.
    """

    event: str
    """A built-in event or a message type name (see above)."""
    id: str | None = Field(default=None, pattern=_NAME)
    """Names the rule in alerts and logs; default: the event."""
    severity: AlertSeverity = "warning"
    """``info``, ``warning``, ``error`` or ``critical``."""
    where: dict[str, str | bool | int | float] = {}
    """Message fields that must equal these values (on top of the event's own)."""
    contains: dict[str, str] = {}
    """Text fields of the message that must contain these texts."""
    field: str | None = None
    """A numeric field (or property) compared with ``above``; ``drawdown`` reads
    ``drawdown_pct`` (percent of peak equity)."""
    above: float | None = None
    """Raise the alert only while ``field`` is above this level."""
    count: int | None = Field(default=None, ge=1)
    """Matching events within ``window_s`` that make one alert; default: the event's own
    (``venue_rejections``: 5), else 1."""
    window_s: float | None = Field(default=None, gt=0.0)
    """Window of ``count``; default: the event's own (``venue_rejections``: 300), else 60."""
    dedup_key: str | None = None
    """Template of message fields naming what an alert is about (``{venue}``); default: the
    event's own (``{reason}``, ``{instrument_id}``, ``{venue}``...), else the rule alone."""
    dedup_window_s: float = Field(default=300.0, ge=0.0)
    """An alert with the same key within this window is not sent again (0: always sent)."""
    max_alerts: int = Field(default=10, ge=1)
    """Most alerts the rule sends per ``rate_window_s``."""
    rate_window_s: float = Field(default=3600.0, gt=0.0)
    """Window of ``max_alerts``."""
    channels: tuple[str, ...] = ()
    """Channel names to send to; empty: every channel."""

    @property
    def rule_id(self) -> str:
        return self.id or self.event

    def resolved(self) -> AlertEvent:
        """The rule as one event: the built-in event's mapping with the rule's on top."""
        base = ALERT_EVENTS.get(self.event) or AlertEvent(self.event, self.event)
        return AlertEvent(
            message=base.message,
            title=base.title,
            where={**base.where, **self.where},
            unless=base.unless,
            contains={**base.contains, **self.contains},
            key=self.dedup_key if self.dedup_key is not None else base.key,
            field=self.field or base.field,
            count=self.count or base.count,
            window_s=self.window_s or base.window_s,
        )

    @model_validator(mode="after")
    def _check_event(self) -> Self:
        kinds = message_types()
        event = self.resolved()
        kind = kinds.get(event.message)
        if kind is None:
            raise ValueError(
                f"event: unknown event {self.event!r}; built-in events: "
                f"{', '.join(ALERT_EVENTS)}; or a message type such as VenueStatus"
            )
        readable = readable_fields(kind)
        for label, names in (
            ("where", self.where),
            ("contains", self.contains),
            ("field", [self.field] if self.field else []),
        ):
            for name in names:
                if name not in readable:
                    raise ValueError(
                        f"{label}: {event.message} has no field {name!r}; "
                        f"it has {', '.join(sorted(readable - {'model_fields_set'}))}"
                    )
        if (self.above is None) != (event.field is None):
            raise ValueError(
                f"above: event {self.event!r} needs a level (above: ...)"
                if self.above is None
                else "above: set field: to the message field compared with it"
            )
        try:
            placeholders = [
                name for _, name, _, _ in string.Formatter().parse(event.key) if name is not None
            ]
        except ValueError as exc:
            raise ValueError(f"dedup_key: {exc}") from None
        for name in placeholders:
            if name not in readable:
                raise ValueError(f"dedup_key: {event.message} has no field {name!r}")
        return self


class AlertsConfig(_Config):
    """Alerts of paper and live sessions: rules on the session's events, sent to channels.

    Rules are evaluated as the events reach the session's ``control`` actor; sending is done
    by a background thread from a bounded queue, so a slow or failing channel never holds up
    trading (what cannot be queued or sent is logged and counted).
    ``tradegraph alerts test`` sends a test message to every channel.
    """

    channels: tuple[AlertChannelConfig, ...] = ()
    """Where alerts go."""
    rules: tuple[AlertRuleConfig, ...] = ()
    """What raises an alert."""
    queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    """Alerts waiting to be sent; when full, new alerts are dropped and counted."""
    send_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    """Longest a channel may take to accept one alert."""
    stop_timeout_s: float = Field(default=1.0, ge=0.0, le=60.0)
    """When the session stops: the longest it waits for queued alerts to be sent."""

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channels: duplicate channel name in {names}")
        ids = [r.rule_id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rules: duplicate rule id in {ids} (set id: on one of them)")
        if self.rules and not self.channels:
            raise ValueError("rules: there are rules but no channels to send to")
        for index, rule in enumerate(self.rules):
            for name in rule.channels:
                if name not in names:
                    raise ValueError(
                        f"rules.{index}.channels: unknown channel {name!r}; known: {names}"
                    )
        return self


class GraphConfig(_Config):
    """Everything needed to build one trading graph, in either transport and either clock."""

    name: str = "backtest"
    """Name of the run (session id of actor runs, label in reports)."""
    seed: int = 0
    """Root seed of every random choice (slippage draws, Monte Carlo scenarios)."""
    instruments_file: str | None = None
    """YAML file of instruments (``instruments: [...]``, as ``tradegraph data instruments``
    writes it), relative to the config's folder; its entries come before ``instruments``."""
    instruments: tuple[InstrumentConfig, ...] = Field(min_length=1)
    """The instruments traded; strategies name them as ``SYMBOL.VENUE``."""
    venues: tuple[VenueConfig, ...] = (VenueConfig(),)
    """Simulated venues (and, in sessions, the exchanges they stand for)."""
    data: DataConfig
    """Historical data to replay."""
    strategies: tuple[StrategyConfig, ...] = Field(min_length=1)
    """Strategy instances, each with its own id and parameters."""
    risk: RiskConfig = RiskConfig()
    """Pre-trade limits applied by Risk to every order intent."""
    portfolio: PortfolioConfig = PortfolioConfig()
    """Starting account and how often Risk hears of the portfolio."""
    report: ReportConfig = ReportConfig()
    """Where and how results are written."""
    allocation: AllocationConfig | None = None
    """Capital allocation across strategies; null: every strategy sizes from the account."""
    session: SessionConfig = SessionConfig()
    """How paper and live sessions run the graph as Ray actors."""
    guards: GuardsConfig = GuardsConfig()
    """Runtime guards of sessions (memory, tick-to-order latency, clock drift): warn, then halt."""
    alerts: AlertsConfig = AlertsConfig()
    """Alerts of paper and live sessions (none by default)."""

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
        for s in self.strategies:
            for interval in s.bars:
                for inst_id in s.instruments:
                    problem = self._bar_interval_problem(s, interval_seconds(interval), inst_id)
                    if problem:
                        raise ValueError(f"strategies.{s.id}.bars: {interval!r}: {problem}")
        by_id = {f"{i.symbol}.{i.venue}": i for i in self.instruments}
        for venue_cfg in self.venues:
            for inst_id, value in venue_cfg.account.leverage.items():
                leveraged = by_id.get(inst_id)
                if leveraged is None or leveraged.venue != venue_cfg.name:
                    raise ValueError(
                        f"venues.{venue_cfg.name}.account.leverage: unknown instrument "
                        f"{inst_id!r} at this venue; known: {ids}"
                    )
                if value > leveraged.max_leverage:
                    raise ValueError(
                        f"venues.{venue_cfg.name}.account.leverage[{inst_id}] {value:g} is above "
                        f"the instrument's max_leverage {leveraged.max_leverage:g}"
                    )
        for venue_cfg in self.venues:
            live = venue_cfg.live
            for inst_id, inst in by_id.items():
                if live is None or inst.venue != venue_cfg.name:
                    continue
                if inst.kind is not InstrumentKind.PERPETUAL:
                    continue
                at_exchange = live.leverage.get(inst.symbol, live.default_leverage)
                modelled = venue_cfg.account.leverage.get(inst_id, 1.0)
                if at_exchange != modelled:
                    raise ValueError(
                        f"venues.{venue_cfg.name}: {inst_id} trades at leverage {at_exchange} "
                        f"at the exchange (live.leverage / live.default_leverage) but "
                        f"{modelled:g} in the account Risk checks margin with "
                        f"(account.leverage); set both to the same value"
                    )
        for source in self.data.funding:
            funded = by_id.get(source.instrument)
            if funded is None or funded.kind is not InstrumentKind.PERPETUAL:
                raise ValueError(
                    f"data.funding: {source.instrument!r} is not a kind: perpetual instrument"
                )
            if self.venue(funded.venue).account.kind is not AccountKind.MARGIN:
                raise ValueError(
                    f"data.funding: {source.instrument} trades at venue {funded.venue}, whose "
                    "account is not kind: margin"
                )
        for inst in self.instruments:
            if (
                inst.kind is InstrumentKind.PERPETUAL
                and self.venue(inst.venue).account.kind is not AccountKind.MARGIN
            ):
                raise ValueError(
                    f"instruments: {inst.symbol} is a perpetual; venue {inst.venue} needs "
                    "account: margin to trade it"
                )
        if self.allocation is not None:
            for target in self.allocation.targets:
                if target.strategy not in strategy_ids:
                    raise ValueError(
                        f"allocation.targets: unknown strategy {target.strategy!r}; "
                        f"known: {strategy_ids}"
                    )
        return self

    def _bar_interval_problem(self, strategy: StrategyConfig, length_s: int, inst_id: str) -> str:
        """Why ``strategy`` cannot get bars of ``length_s`` for ``inst_id``, or ``""``."""
        inst = next(i for i in self.instruments if f"{i.symbol}.{i.venue}" == inst_id)
        if self.session.market_data == "ccxt":
            live = self.venue(inst.venue).live or LiveVenueConfig()
            if strategy.bars_from == "trades":
                if "trades" in live.market_data:
                    return ""
                return f"nothing builds it for {inst_id}: venue {inst.venue} streams no trades"
            if "ohlcv" not in live.market_data:
                return (
                    f"nothing builds it for {inst_id}: venue {inst.venue} streams no bars "
                    "(add ohlcv to live.market_data, or set bars_from: trades)"
                )
            base_s = {interval_seconds(live.ohlcv_timeframe)}
        elif strategy.bars_from == "trades":
            if any(t.symbol == inst.symbol and t.venue == inst.venue for t in self.data.trades):
                return ""
            return f"nothing builds it for {inst_id}: data.trades has no trades of it"
        else:
            # A source without a symbol may hold any instrument (its file names them).
            base_s = {
                b.interval_s
                for b in self.data.bars
                if b.symbol in (None, inst.symbol) and b.venue in (None, inst.venue)
            }
            if not base_s:
                return (
                    f"nothing builds it for {inst_id}: data.bars has no bars of it "
                    "(set bars_from: trades to build them from data.trades)"
                )
        for base in sorted(base_s):
            if length_s % base or length_s == base:
                return (
                    f"{length_s} s is not a whole multiple (2x or more) of the {base} s bars "
                    f"of {inst_id}"
                )
        return ""

    @model_validator(mode="after")
    def _instruments_file_included(self) -> Self:
        if self.instruments_file is not None:
            raise ValueError(
                "instruments_file is read by the config loader (load_config), which adds its "
                "instruments to instruments; a config built otherwise must list them"
            )
        return self

    def instrument_map(self) -> dict[str, Instrument]:
        return {i.build().instrument_id: i.build() for i in self.instruments}

    def venue(self, name: str) -> VenueConfig:
        for v in self.venues:
            if v.name == name:
                return v
        raise KeyError(name)
