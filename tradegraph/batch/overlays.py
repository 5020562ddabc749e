"""Stress overlays: named, composable distortions of a price path and of the venues.

Each overlay is a frozen pydantic model (so a YAML file can describe it) with two pure methods:
``bend_bars(bars, span) -> bars`` and ``bend_config(config, span) -> config``. Positions in a
path are fractions of its time span (``at: 0.5`` is the middle), so one overlay fits any path;
durations are minutes, turned into bars with the data's interval. The :class:`PathSpan` is the
time grid of the *unbent* path, so overlays applied one after another (an outage that removes
bars, then a liquidity crunch) still place their windows on the same clock.

Price overlays scale opens and closes by a factor path and highs and lows by the larger and
smaller of a bar's two factors, so every bent bar stays consistent (``high >= max(open, close)``,
``low <= min(open, close)``).

A mark-price wick stretches only the bars' extremes for a few minutes (``low`` down or ``high``
up, opens and closes kept): the kind of spike that takes a leveraged position through its
maintenance margin, since a margin venue tests liquidation at each bar's adverse extreme.

Venue overlays (exchange outage, liquidity crunch, latency spike, fee shock, funding shock) act only inside
their window: ``start``/``end`` fractions of the path (or ``at`` and ``duration_min``), turned
into :class:`~tradegraph.execution.venue_stress.VenueWindow` s in simulated time that the
graph's venues honour (see :mod:`tradegraph.execution.venue_stress`). An exchange outage
rejects every order that reaches a venue in its window while market data goes on flowing (as
when an exchange's order entry is down, or prices come from another source), so the orders the
strategies send meanwhile are refused with a venue reason; ``feed: silent`` also removes the
window's bars.

A :class:`StressScenario` is a named sequence of overlays; :data:`PRESETS` holds the built-in
ones and :func:`load_stress_file` reads custom ones from YAML::

    scenarios:
      - name: crash_and_crunch
        description: a 30 % crash while liquidity dries up for two hours
        overlays:
          - {kind: flash_crash, drop_pct: 30, duration_min: 10, recovery_pct: 30}
          - {kind: liquidity_crunch, factor: 10, start: 0.5, duration_min: 120}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradegraph.config.loader import format_validation_error
from tradegraph.config.models import GraphConfig
from tradegraph.data.catalog import BarArrays
from tradegraph.errors import ConfigError
from tradegraph.execution.venue_stress import StressedVenueConfig, VenueWindow

F64 = npt.NDArray[np.float64]

OUTAGE_REJECT_REASON = "venue unavailable: exchange outage"
"""Start of ``OrderRejected.reason`` for orders that reach a venue during an outage."""


def minutes_to_bars(minutes: float, interval_ns: int) -> int:
    """At least one bar; as many as cover ``minutes`` at the data's interval."""
    return max(1, round(minutes * 60e9 / interval_ns))


def position_to_bar(at: float, n_bars: int) -> int:
    """The bar at fraction ``at`` of a path of ``n_bars`` (0 is the first, 1 the last)."""
    return min(max(int(at * n_bars), 0), max(n_bars - 1, 0))


@dataclass(frozen=True)
class PathSpan:
    """The time grid of a path: where its fractions and bar positions fall in time.

    Attributes:
        start_ns: Open time of the first bar.
        interval_ns: Bar interval.
        n_bars: Bars the grid holds from ``start_ns`` to the end of the last bar.
    """

    start_ns: int
    interval_ns: int
    n_bars: int

    @classmethod
    def of(cls, datasets: Sequence[BarArrays]) -> PathSpan:
        """The grid covering every dataset (they usually share one)."""
        filled = [d for d in datasets if len(d)]
        if not filled:
            return cls(0, datasets[0].interval_ns if datasets else 60_000_000_000, 0)
        interval = min(d.interval_ns for d in filled)
        start = min(int(d.ts_open_ns[0]) for d in filled)
        end = max(int(d.ts_open_ns[-1]) + d.interval_ns for d in filled)
        return cls(start, interval, -(-(end - start) // interval))

    def bar_time(self, index: int) -> int:
        """Open time of grid bar ``index``."""
        return self.start_ns + index * self.interval_ns

    def window(
        self, start: float, end: float, duration_min: float | None = None
    ) -> tuple[int | None, int | None]:
        """Times ``[from, until)`` of the grid bars from fraction ``start`` to fraction ``end``
        (or for ``duration_min`` minutes); ``None`` where the window reaches past either end
        of the path, so a whole-path window also covers what happens after the last bar."""
        n = self.n_bars
        lo = round(start * n)
        if duration_min is None:
            hi = round(end * n)
        else:
            hi = min(n, lo + minutes_to_bars(duration_min, self.interval_ns))
        return (None if lo <= 0 else self.bar_time(lo)), (None if hi >= n else self.bar_time(hi))

    def point(self, at: float) -> int:
        """Open time of the grid bar at fraction ``at``."""
        return self.bar_time(position_to_bar(at, self.n_bars))


def _span_of(bars: BarArrays, span: PathSpan | None) -> PathSpan:
    return span if span is not None else PathSpan.of([bars])


def _in_window(bars: BarArrays, window: tuple[int | None, int | None]) -> npt.NDArray[np.bool_]:
    ts = bars.ts_open_ns
    lo, hi = window
    inside = np.ones(len(bars), dtype=bool)
    if lo is not None:
        inside &= ts >= lo
    if hi is not None:
        inside &= ts < hi
    return inside


def shift_prices(bars: BarArrays, log_open_shift: F64, log_close_shift: F64) -> BarArrays:
    """Scale each bar's open and close by ``exp`` of the given log shifts.

    High and low are scaled by the larger and smaller of the bar's two factors, which keeps the
    bar consistent: the bent price moves smoothly from the open's factor to the close's.
    """
    fo = np.exp(log_open_shift)
    fc = np.exp(log_close_shift)
    return replace(
        bars,
        open=bars.open * fo,
        close=bars.close * fc,
        high=bars.high * np.maximum(fo, fc),
        low=bars.low * np.minimum(fo, fc),
    )


def flash_crash(
    bars: BarArrays,
    *,
    drop_pct: float,
    at: float = 0.5,
    duration_min: float = 5.0,
    recovery_pct: float = 50.0,
    recovery_min: float = 60.0,
    span: PathSpan | None = None,
) -> BarArrays:
    """Prices fall ``drop_pct`` % over ``duration_min`` minutes from ``at``, then win back
    ``recovery_pct`` % of the fall over ``recovery_min`` minutes and stay there."""
    n = len(bars)
    if n == 0:
        return bars
    grid = _span_of(bars, span)
    start = int(np.searchsorted(bars.ts_open_ns, grid.point(at)))
    fall = minutes_to_bars(duration_min, bars.interval_ns)
    rise = minutes_to_bars(recovery_min, bars.interval_ns)
    bottom = math.log(1.0 - drop_pct / 100.0)
    settle = math.log(1.0 - drop_pct / 100.0 * (1.0 - recovery_pct / 100.0))
    close_shift = np.zeros(n)
    steps = np.arange(n) - start
    falling = (steps >= 0) & (steps < fall)
    close_shift[falling] = bottom * (steps[falling] + 1) / fall
    rising = (steps >= fall) & (steps < fall + rise)
    close_shift[rising] = bottom + (settle - bottom) * (steps[rising] - fall + 1) / rise
    close_shift[steps >= fall + rise] = settle
    open_shift = np.concatenate(([0.0], close_shift[:-1]))
    return shift_prices(bars, open_shift, close_shift)


def gap_move(
    bars: BarArrays, *, move_pct: float, at: float = 0.5, span: PathSpan | None = None
) -> BarArrays:
    """Every price from bar ``at`` on moves by ``move_pct`` %, the open included: a gap."""
    n = len(bars)
    if n == 0:
        return bars
    start = int(np.searchsorted(bars.ts_open_ns, _span_of(bars, span).point(at)))
    shift = np.zeros(n)
    shift[start:] = math.log(1.0 + move_pct / 100.0)
    return shift_prices(bars, shift, shift)


def scale_volume(
    bars: BarArrays,
    *,
    divisor: float,
    start: float = 0.0,
    end: float = 1.0,
    duration_min: float | None = None,
    span: PathSpan | None = None,
) -> BarArrays:
    """Bar volumes inside the window (fractions ``start`` to ``end`` of the path, or
    ``duration_min`` minutes from ``start``) divided by ``divisor``."""
    inside = _in_window(bars, _span_of(bars, span).window(start, end, duration_min))
    volume = bars.volume.copy()
    volume[inside] /= divisor
    return replace(bars, volume=volume)


def mark_wick(
    bars: BarArrays,
    *,
    move_pct: float,
    at: float = 0.5,
    duration_min: float = 1.0,
    span: PathSpan | None = None,
) -> BarArrays:
    """For ``duration_min`` minutes from ``at`` the bars' extremes spike by ``move_pct`` %:
    a negative move lowers each bar's ``low``, a positive one raises its ``high``; opens,
    closes and volumes stay, so every bar stays consistent and the spike leaves no trace after
    its window."""
    if len(bars) == 0:
        return bars
    inside = _in_window(bars, outage_window(_span_of(bars, span), at, duration_min))
    factor = 1.0 + move_pct / 100.0
    if move_pct < 0.0:
        low = bars.low.copy()
        low[inside] = np.minimum(low[inside], bars.low[inside] * factor)
        return replace(bars, low=low)
    high = bars.high.copy()
    high[inside] = np.maximum(high[inside], bars.high[inside] * factor)
    return replace(bars, high=high)


def remove_window(
    bars: BarArrays, *, at: float, duration_min: float, span: PathSpan | None = None
) -> BarArrays:
    """Bars from ``at`` for ``duration_min`` minutes are gone: the feed falls silent."""
    if len(bars) == 0:
        return bars
    keep = ~_in_window(bars, outage_window(_span_of(bars, span), at, duration_min))
    return bars.rows(keep)


def outage_window(span: PathSpan, at: float, duration_min: float) -> tuple[int | None, int | None]:
    """``[from, until)`` of an outage starting at fraction ``at`` (``until`` is ``None`` when
    it lasts past the end of the path)."""
    first = position_to_bar(at, span.n_bars)
    stop = first + minutes_to_bars(duration_min, span.interval_ns)
    return span.bar_time(first), (None if stop >= span.n_bars else span.bar_time(stop))


class _Overlay(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        """The path under this overlay (unchanged unless the overlay bends prices or volume).

        ``span`` places the overlay in time; by default it is the span of ``bars`` itself.
        """
        return bars

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        """The windows this overlay opens on every venue (none unless it bends venues)."""
        return ()

    def bend_config(self, config: GraphConfig, span: PathSpan) -> GraphConfig:
        """The graph under this overlay: its venue windows added to every venue."""
        windows = self.venue_windows(span)
        if not windows:
            return config
        venues = tuple(StressedVenueConfig.extend(v, *windows) for v in config.venues)
        return config.model_copy(update={"venues": venues})


class _WindowedOverlay(_Overlay):
    """An overlay acting from fraction ``start`` of the path to ``end`` (or for
    ``duration_min`` minutes from ``start``)."""

    start: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of the path")
    end: float = Field(default=1.0, ge=0.0, le=1.0, description="fraction of the path")
    duration_min: float | None = Field(
        default=None, gt=0.0, description="instead of end: minutes from start"
    )

    @model_validator(mode="after")
    def _check_window(self) -> Self:
        if self.duration_min is None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def window(self, span: PathSpan) -> tuple[int | None, int | None]:
        return span.window(self.start, self.end, self.duration_min)


class FlashCrash(_Overlay):
    """A fast fall with a partial recovery."""

    kind: Literal["flash_crash"] = "flash_crash"
    drop_pct: float = Field(default=20.0, gt=0.0, lt=100.0)
    at: float = Field(default=0.5, ge=0.0, le=1.0, description="start, as a fraction of the path")
    duration_min: float = Field(default=5.0, gt=0.0)
    recovery_pct: float = Field(
        default=50.0, ge=0.0, le=100.0, description="share of the fall won back"
    )
    recovery_min: float = Field(default=60.0, gt=0.0)

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        return flash_crash(
            bars,
            drop_pct=self.drop_pct,
            at=self.at,
            duration_min=self.duration_min,
            recovery_pct=self.recovery_pct,
            recovery_min=self.recovery_min,
            span=span,
        )


class GapMove(_Overlay):
    """Prices jump by ``move_pct`` % between two bars (negative: down)."""

    kind: Literal["gap_move"] = "gap_move"
    move_pct: float = Field(default=-10.0, gt=-100.0)
    at: float = Field(default=0.5, ge=0.0, le=1.0)

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        return gap_move(bars, move_pct=self.move_pct, at=self.at, span=span)


class LiquidityCrunch(_WindowedOverlay):
    """Inside its window: volume divided by ``factor`` and slippage times ``factor``.

    Thinner bars mean smaller fills under the venue's volume cap; slippage stands for the wider
    spread. A venue without a slippage model gets a fixed ``min_slippage_bps`` before scaling.
    """

    kind: Literal["liquidity_crunch"] = "liquidity_crunch"
    factor: float = Field(default=5.0, gt=1.0)
    min_slippage_bps: float = Field(default=1.0, gt=0.0)

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        return scale_volume(
            bars,
            divisor=self.factor,
            start=self.start,
            end=self.end,
            duration_min=self.duration_min,
            span=span,
        )

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        lo, hi = self.window(span)
        return (
            VenueWindow(
                label=self.kind,
                start_ns=lo,
                end_ns=hi,
                slippage_factor=self.factor,
                min_slippage_bps=self.min_slippage_bps,
            ),
        )


class ExchangeOutage(_Overlay):
    """For ``duration_min`` minutes from ``at`` every venue rejects the orders that reach it.

    With ``feed: flowing`` (the default) market data goes on, so strategies keep deciding and
    the orders they send in the window are rejected (``venue unavailable: exchange outage``).
    With ``feed: silent`` the window's bars are gone too: nothing prompts an order, only
    orders already on their way (under latency) meet the outage, and trading resumes at
    whatever price the market reached meanwhile.
    """

    kind: Literal["exchange_outage"] = "exchange_outage"
    at: float = Field(default=0.5, ge=0.0, le=1.0)
    duration_min: float = Field(default=60.0, gt=0.0)
    feed: Literal["flowing", "silent"] = Field(
        default="flowing", description="whether market data goes on during the outage"
    )

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        if self.feed == "flowing":
            return bars
        return remove_window(bars, at=self.at, duration_min=self.duration_min, span=span)

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        lo, hi = outage_window(span, self.at, self.duration_min)
        return (
            VenueWindow(
                label=self.kind, start_ns=lo, end_ns=hi, reject_reason=OUTAGE_REJECT_REASON
            ),
        )


class LatencySpike(_WindowedOverlay):
    """Commands sent to any venue inside the window arrive ``extra_latency_ms`` later."""

    kind: Literal["latency_spike"] = "latency_spike"
    extra_latency_ms: float = Field(default=2_000.0, gt=0.0)

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        lo, hi = self.window(span)
        return (
            VenueWindow(
                label=self.kind, start_ns=lo, end_ns=hi, extra_latency_ms=self.extra_latency_ms
            ),
        )


class FeeShock(_WindowedOverlay):
    """Maker and taker fees times ``factor`` for fills inside the window, on every venue."""

    kind: Literal["fee_shock"] = "fee_shock"
    factor: float = Field(default=3.0, gt=0.0)

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        lo, hi = self.window(span)
        return (VenueWindow(label=self.kind, start_ns=lo, end_ns=hi, fee_factor=self.factor),)


class FundingShock(_WindowedOverlay):
    """Funding rates times ``factor`` for the funding events inside the window, on every
    perpetual of every venue (a negative factor flips who pays). Only events of the data's
    funding series (``data.funding``) are scaled, so it bends runs over the real history."""

    kind: Literal["funding_shock"] = "funding_shock"
    factor: float = Field(default=10.0, description="multiplies each funding rate in the window")

    def venue_windows(self, span: PathSpan) -> tuple[VenueWindow, ...]:
        lo, hi = self.window(span)
        return (VenueWindow(label=self.kind, start_ns=lo, end_ns=hi, funding_factor=self.factor),)


class MarkWick(_Overlay):
    """A short spike of the bars' extremes (the mark a margin venue tests liquidation at):
    ``move_pct`` % (negative: the lows, down; positive: the highs, up) for ``duration_min``
    minutes from ``at``; opens and closes keep their prices."""

    kind: Literal["mark_wick"] = "mark_wick"
    move_pct: float = Field(default=-10.0, gt=-100.0)
    at: float = Field(default=0.5, ge=0.0, le=1.0, description="start, as a fraction of the path")
    duration_min: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _check_move(self) -> Self:
        if self.move_pct == 0.0:
            raise ValueError("move_pct must not be 0")
        return self

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        return mark_wick(
            bars, move_pct=self.move_pct, at=self.at, duration_min=self.duration_min, span=span
        )


Overlay = Annotated[
    FlashCrash
    | GapMove
    | LiquidityCrunch
    | ExchangeOutage
    | LatencySpike
    | FeeShock
    | FundingShock
    | MarkWick,
    Field(discriminator="kind"),
]


class StressScenario(BaseModel):
    """A named sequence of overlays, applied in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,48}$")
    description: str = ""
    overlays: tuple[Overlay, ...] = Field(min_length=1)

    def bend_bars(self, bars: BarArrays, span: PathSpan | None = None) -> BarArrays:
        grid = _span_of(bars, span)
        for overlay in self.overlays:
            bars = overlay.bend_bars(bars, grid)
        return bars

    def bend_config(self, config: GraphConfig, span: PathSpan) -> GraphConfig:
        for overlay in self.overlays:
            config = overlay.bend_config(config, span)
        return config

    def apply(
        self, config: GraphConfig, datasets: Sequence[BarArrays], span: PathSpan | None = None
    ) -> tuple[GraphConfig, list[BarArrays]]:
        """The config and bars of a run under this scenario (``span``: of ``datasets``)."""
        grid = span if span is not None else PathSpan.of(datasets)
        return self.bend_config(config, grid), [self.bend_bars(d, grid) for d in datasets]


def apply_stress(
    scenarios: Sequence[StressScenario], config: GraphConfig, datasets: Sequence[BarArrays]
) -> tuple[GraphConfig, list[BarArrays]]:
    """Apply ``scenarios`` in order, all placed on the time grid of the unbent ``datasets``."""
    span = PathSpan.of(datasets)
    bent = list(datasets)
    for scenario in scenarios:
        config, bent = scenario.apply(config, bent, span)
    return config, bent


class StressFile(BaseModel):
    """The YAML form: ``scenarios: [{name, description, overlays: [...]}, ...]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenarios: tuple[StressScenario, ...] = Field(min_length=1)


def _preset(name: str, description: str, *overlays: _Overlay) -> StressScenario:
    return StressScenario.model_validate(
        {"name": name, "description": description, "overlays": [o.model_dump() for o in overlays]}
    )


PRESETS: dict[str, StressScenario] = {
    s.name: s
    for s in (
        _preset("flash_crash", "-20 % in 5 minutes, half won back within the hour", FlashCrash()),
        _preset(
            "flash_crash_severe",
            "-40 % in 10 minutes, a quarter won back within two hours",
            FlashCrash(drop_pct=40.0, duration_min=10.0, recovery_pct=25.0, recovery_min=120.0),
        ),
        _preset(
            "liquidity_crunch",
            "volume / 5 and slippage x 5 for four hours from mid-path",
            LiquidityCrunch(start=0.5, duration_min=240.0),
        ),
        _preset(
            "exchange_outage",
            "one hour from mid-path in which every venue rejects every order",
            ExchangeOutage(),
        ),
        _preset(
            "latency_spike",
            "venues answer 90 s later for two hours from mid-path",
            LatencySpike(extra_latency_ms=90_000.0, start=0.5, duration_min=120.0),
        ),
        _preset("fee_shock", "fees x 3 from mid-path on", FeeShock(start=0.5)),
        _preset(
            "funding_shock",
            "funding rates x 10 for a day from mid-path",
            FundingShock(start=0.5, duration_min=1_440.0),
        ),
        _preset(
            "mark_wick",
            "for one minute at mid-path the bars' lows reach 10 % below",
            MarkWick(),
        ),
        _preset("gap_down", "prices gap 10 % down", GapMove(move_pct=-10.0)),
        _preset("gap_up", "prices gap 10 % up", GapMove(move_pct=10.0)),
        _preset(
            "crash_crunch",
            "a 30 % crash while, for two hours, volume dries up and venues slow down",
            FlashCrash(drop_pct=30.0, duration_min=10.0, recovery_pct=30.0),
            LiquidityCrunch(factor=10.0, start=0.5, duration_min=120.0),
            LatencySpike(extra_latency_ms=1_000.0, start=0.5, duration_min=120.0),
        ),
    )
}


def load_stress_file(path: str | Path) -> dict[str, StressScenario]:
    """Read custom stress scenarios from YAML, keyed by name.

    Raises:
        ConfigError: unreadable file, invalid YAML or a field that fails validation (named).
    """
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{source}: stress file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: cannot read stress scenarios ({exc})") from None
    try:
        parsed = StressFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    names = [s.name for s in parsed.scenarios]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: scenarios: duplicate name in {names}")
    return {s.name: s for s in parsed.scenarios}


def resolve_stress(
    names: Sequence[str], custom: Mapping[str, StressScenario] | None = None
) -> tuple[StressScenario, ...]:
    """Look names up among custom scenarios first, then the presets.

    Raises:
        ConfigError: a name is neither.
    """
    known = {**PRESETS, **(custom or {})}
    out = []
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown stress scenario {name!r}; known: {sorted(known)}")
        out.append(known[name])
    return tuple(out)
