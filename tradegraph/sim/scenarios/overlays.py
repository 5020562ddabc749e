"""Stress overlays: named, composable distortions of a price path and of the venues.

Each overlay is a frozen pydantic model (so a YAML file can describe it) with two pure methods:
``bend_bars(bars) -> bars`` and ``bend_config(config) -> config``. Positions in a path are
fractions of its length (``at: 0.5`` is the middle), so one overlay fits any path; durations are
minutes, turned into bars with the data's interval.

Price overlays scale opens and closes by a factor path and highs and lows by the larger and
smaller of a bar's two factors, so every bent bar stays consistent (``high >= max(open, close)``,
``low <= min(open, close)``).

A :class:`StressScenario` is a named sequence of overlays; :data:`PRESETS` holds the built-in
ones and :func:`load_stress_file` reads custom ones from YAML::

    scenarios:
      - name: crash_and_crunch
        description: a 30 % crash while liquidity dries up
        overlays:
          - {kind: flash_crash, drop_pct: 30, duration_min: 10, recovery_pct: 30}
          - {kind: liquidity_crunch, factor: 10}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradegraph.config.loader import format_validation_error
from tradegraph.config.models import GraphConfig, SlippageConfig
from tradegraph.data.catalog import BarArrays
from tradegraph.errors import ConfigError

F64 = npt.NDArray[np.float64]


def minutes_to_bars(minutes: float, interval_ns: int) -> int:
    """At least one bar; as many as cover ``minutes`` at the data's interval."""
    return max(1, round(minutes * 60e9 / interval_ns))


def position_to_bar(at: float, n_bars: int) -> int:
    """The bar at fraction ``at`` of a path of ``n_bars`` (0 is the first, 1 the last)."""
    return min(max(int(at * n_bars), 0), max(n_bars - 1, 0))


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
) -> BarArrays:
    """Prices fall ``drop_pct`` % over ``duration_min`` minutes from ``at``, then win back
    ``recovery_pct`` % of the fall over ``recovery_min`` minutes and stay there."""
    n = len(bars)
    if n == 0:
        return bars
    start = position_to_bar(at, n)
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


def gap_move(bars: BarArrays, *, move_pct: float, at: float = 0.5) -> BarArrays:
    """Every price from bar ``at`` on moves by ``move_pct`` %, the open included: a gap."""
    n = len(bars)
    if n == 0:
        return bars
    shift = np.zeros(n)
    shift[position_to_bar(at, n) :] = math.log(1.0 + move_pct / 100.0)
    return shift_prices(bars, shift, shift)


def scale_volume(
    bars: BarArrays, *, divisor: float, start: float = 0.0, end: float = 1.0
) -> BarArrays:
    """Bar volumes between fractions ``start`` and ``end`` of the path divided by ``divisor``."""
    n = len(bars)
    lo, hi = round(start * n), round(end * n)
    volume = bars.volume.copy()
    volume[lo:hi] /= divisor
    return replace(bars, volume=volume)


def remove_window(bars: BarArrays, *, at: float, duration_min: float) -> BarArrays:
    """Bars from ``at`` for ``duration_min`` minutes are gone: the feed falls silent."""
    n = len(bars)
    if n == 0:
        return bars
    start = position_to_bar(at, n)
    stop = min(n, start + minutes_to_bars(duration_min, bars.interval_ns))
    keep = np.ones(n, dtype=bool)
    keep[start:stop] = False
    return replace(
        bars,
        ts_open_ns=bars.ts_open_ns[keep],
        open=bars.open[keep],
        high=bars.high[keep],
        low=bars.low[keep],
        close=bars.close[keep],
        volume=bars.volume[keep],
    )


class _Overlay(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        """The path under this overlay (unchanged unless the overlay bends prices or volume)."""
        return bars

    def bend_config(self, config: GraphConfig) -> GraphConfig:
        """The graph under this overlay (unchanged unless the overlay bends the venues)."""
        return config


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

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        return flash_crash(
            bars,
            drop_pct=self.drop_pct,
            at=self.at,
            duration_min=self.duration_min,
            recovery_pct=self.recovery_pct,
            recovery_min=self.recovery_min,
        )


class GapMove(_Overlay):
    """Prices jump by ``move_pct`` % between two bars (negative: down)."""

    kind: Literal["gap_move"] = "gap_move"
    move_pct: float = Field(default=-10.0, gt=-100.0)
    at: float = Field(default=0.5, ge=0.0, le=1.0)

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        return gap_move(bars, move_pct=self.move_pct, at=self.at)


class LiquidityCrunch(_Overlay):
    """Volume divided by ``factor`` (between ``start`` and ``end``) and slippage times ``factor``.

    Thinner bars mean smaller fills under the venue's volume cap; slippage stands for the wider
    spread. A venue without a slippage model gets a fixed ``min_slippage_bps`` before scaling.
    Slippage is a venue setting and so applies to the whole run.
    """

    kind: Literal["liquidity_crunch"] = "liquidity_crunch"
    factor: float = Field(default=5.0, gt=1.0)
    start: float = Field(default=0.0, ge=0.0, le=1.0)
    end: float = Field(default=1.0, ge=0.0, le=1.0)
    min_slippage_bps: float = Field(default=1.0, gt=0.0)

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        return scale_volume(bars, divisor=self.factor, start=self.start, end=self.end)

    def bend_config(self, config: GraphConfig) -> GraphConfig:
        venues = []
        for venue in config.venues:
            slip = venue.slippage
            model = "fixed" if slip.model == "none" else slip.model
            slippage = SlippageConfig(
                model=model,
                bps=max(slip.bps, self.min_slippage_bps) * self.factor,
                impact_bps=slip.impact_bps * self.factor,
            )
            venues.append(venue.model_copy(update={"slippage": slippage}))
        return config.model_copy(update={"venues": tuple(venues)})


class ExchangeOutage(_Overlay):
    """The feed falls silent for ``duration_min`` minutes from ``at``; trading resumes at
    whatever price the market reached meanwhile."""

    kind: Literal["exchange_outage"] = "exchange_outage"
    at: float = Field(default=0.5, ge=0.0, le=1.0)
    duration_min: float = Field(default=60.0, gt=0.0)

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        return remove_window(bars, at=self.at, duration_min=self.duration_min)


class LatencySpike(_Overlay):
    """Every venue answers ``extra_latency_ms`` later (for the whole run)."""

    kind: Literal["latency_spike"] = "latency_spike"
    extra_latency_ms: float = Field(default=2_000.0, gt=0.0)

    def bend_config(self, config: GraphConfig) -> GraphConfig:
        venues = tuple(
            v.model_copy(update={"latency_ms": v.latency_ms + self.extra_latency_ms})
            for v in config.venues
        )
        return config.model_copy(update={"venues": venues})


class FeeShock(_Overlay):
    """Maker and taker fees times ``factor``, on every instrument and venue override."""

    kind: Literal["fee_shock"] = "fee_shock"
    factor: float = Field(default=3.0, gt=0.0)

    def bend_config(self, config: GraphConfig) -> GraphConfig:
        k = self.factor
        instruments = tuple(
            i.model_copy(update={"maker_fee": i.maker_fee * k, "taker_fee": i.taker_fee * k})
            for i in config.instruments
        )
        venues = tuple(
            v.model_copy(
                update={
                    "maker_fee": None if v.maker_fee is None else v.maker_fee * k,
                    "taker_fee": None if v.taker_fee is None else v.taker_fee * k,
                }
            )
            for v in config.venues
        )
        return config.model_copy(update={"instruments": instruments, "venues": venues})


Overlay = Annotated[
    FlashCrash | GapMove | LiquidityCrunch | ExchangeOutage | LatencySpike | FeeShock,
    Field(discriminator="kind"),
]


class StressScenario(BaseModel):
    """A named sequence of overlays, applied in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,48}$")
    description: str = ""
    overlays: tuple[Overlay, ...] = Field(min_length=1)

    def bend_bars(self, bars: BarArrays) -> BarArrays:
        for overlay in self.overlays:
            bars = overlay.bend_bars(bars)
        return bars

    def bend_config(self, config: GraphConfig) -> GraphConfig:
        for overlay in self.overlays:
            config = overlay.bend_config(config)
        return config


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
        _preset("liquidity_crunch", "volume / 5, slippage x 5", LiquidityCrunch()),
        _preset("exchange_outage", "no data for one hour", ExchangeOutage()),
        _preset(
            "latency_spike", "venues answer 90 s later", LatencySpike(extra_latency_ms=90_000.0)
        ),
        _preset("fee_shock", "fees x 3", FeeShock()),
        _preset("gap_down", "prices gap 10 % down", GapMove(move_pct=-10.0)),
        _preset("gap_up", "prices gap 10 % up", GapMove(move_pct=10.0)),
        _preset(
            "crash_crunch",
            "a 30 % crash while volume dries up and venues slow down",
            FlashCrash(drop_pct=30.0, duration_min=10.0, recovery_pct=30.0),
            LiquidityCrunch(factor=10.0),
            LatencySpike(extra_latency_ms=1_000.0),
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
