"""A simulated venue whose conditions change over time: outages, latency, spreads and fees.

Stress scenarios bend a venue for a *window* of simulated time, not for a whole run: an exchange
that is down for an hour, answers slowly for two, charges triple fees from some day on. A
:class:`VenueWindow` describes one such window; :class:`StressedVenueConfig` is a venue
configuration that carries them, and :class:`StressedVenue` is the venue that honours them.

What a window does while it is open (``start_ns <= now < end_ns``):

* ``reject_reason``: every order that *reaches* the venue is rejected with that reason and the
  code ``VenueReason.VENUE_UNAVAILABLE`` (``OrderRejected``, so it shows in the order ledger
  and ``orders.parquet``). Cancels still work, and orders already resting stay in the book (without market data they cannot fill).
* ``extra_latency_ms``: commands *sent* in the window take that much longer to arrive.
* ``slippage_factor`` and ``min_slippage_bps``: taker fills pay more slippage, standing for
  wider spreads: the slippage model becomes ``fixed`` if it was ``none``, its ``bps`` becomes
  ``max(bps, min_slippage_bps) * slippage_factor`` and its ``impact_bps`` is multiplied too.
* ``fee_factor``: maker and taker fee rates of fills in the window are multiplied.
* ``funding_factor``: the rates of the funding events due in the window are multiplied (the
  venue scales its funding series once, when it is built, by the windows covering each
  event's time).

Windows compose: latencies add, factors multiply in window order, and any open rejecting
window rejects. Conditions are a pure function of time, so the venue recomputes them only
when time leaves the span over which they are constant; between boundaries a message costs
one clock read and one comparison more than in :class:`~tradegraph.execution.venue.SimulatedVenue`.

``StressedVenueConfig`` extends the shared ``VenueConfig`` instead of changing it: the graph
builder picks :class:`StressedVenue` for it, in the in-process kernel and in the Ray actor
graph alike (the config travels to the actor pickled, windows included). Its ``model_dump``
shows only the ``VenueConfig`` fields.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradegraph.config.models import SlippageConfig, VenueConfig
from tradegraph.contracts import (
    Clock,
    Instrument,
    Message,
    Outbox,
    SubmitOrder,
    VenueReason,
)
from tradegraph.execution.fill_models import build_slippage_model
from tradegraph.execution.funding import FundingSeries
from tradegraph.execution.venue import SimulatedVenue, VenueState, _Listing
from tradegraph.portfolio.margin import Account

__all__ = [
    "StressedVenue",
    "StressedVenueConfig",
    "VenueConditions",
    "VenueWindow",
    "shock_funding",
]

_NS_PER_MS = 1_000_000


class VenueWindow(BaseModel):
    """One stretch of simulated time during which a venue is bent.

    Attributes:
        label: Who opened the window (the overlay's kind); shown in rejection reasons.
        start_ns: First instant of the window; ``None`` opens it before the run.
        end_ns: First instant after the window; ``None`` keeps it open to the end of the run.
        reject_reason: Orders reaching the venue in the window are rejected with this reason.
        extra_latency_ms: Added to the latency of commands sent in the window.
        slippage_factor: Multiplies taker slippage in the window.
        min_slippage_bps: Slippage floor (in bps) before ``slippage_factor`` applies.
        fee_factor: Multiplies maker and taker fee rates in the window.
        funding_factor: Multiplies the rates of funding events due in the window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    label: str
    start_ns: int | None = None
    end_ns: int | None = None
    reject_reason: str | None = None
    extra_latency_ms: float = Field(default=0.0, ge=0.0)
    slippage_factor: float = Field(default=1.0, gt=0.0)
    min_slippage_bps: float = Field(default=0.0, ge=0.0)
    fee_factor: float = Field(default=1.0, gt=0.0)
    funding_factor: float = 1.0

    @model_validator(mode="after")
    def _check_span(self) -> Self:
        if self.start_ns is not None and self.end_ns is not None and self.end_ns <= self.start_ns:
            raise ValueError(
                f"window {self.label!r}: end_ns {self.end_ns} must be after "
                f"start_ns {self.start_ns}"
            )
        return self

    def covers(self, ts_ns: int) -> bool:
        """Whether the window is open at ``ts_ns``."""
        return (self.start_ns is None or self.start_ns <= ts_ns) and (
            self.end_ns is None or ts_ns < self.end_ns
        )


class StressedVenueConfig(VenueConfig):
    """A ``VenueConfig`` plus the windows that bend it; built into a :class:`StressedVenue`."""

    windows: tuple[VenueWindow, ...] = ()

    @classmethod
    def extend(cls, venue: VenueConfig, *windows: VenueWindow) -> StressedVenueConfig:
        """``venue`` with ``windows`` added after any it already has."""
        if isinstance(venue, StressedVenueConfig):
            return venue.model_copy(update={"windows": (*venue.windows, *windows)})
        return cls(**venue.model_dump(), windows=windows)


def shock_funding(
    funding: Mapping[str, FundingSeries], windows: tuple[VenueWindow, ...]
) -> dict[str, FundingSeries]:
    """``funding`` with each event's rate multiplied by the ``funding_factor`` of every window
    open at the event's time (series no window touches are returned as they are)."""
    shocks = [w for w in windows if w.funding_factor != 1.0]
    if not shocks:
        return dict(funding)
    out: dict[str, FundingSeries] = {}
    for iid, series in funding.items():
        rates = []
        for ts, rate in zip(series.ts_ns, series.rate, strict=True):
            for w in shocks:
                if w.covers(ts):
                    rate *= w.funding_factor
            rates.append(rate)
        out[iid] = FundingSeries(
            ts_ns=series.ts_ns, rate=tuple(rates), mark_price=series.mark_price
        )
    return out


class VenueConditions:
    """The combined effect of the windows open at one instant, and how long it lasts.

    Attributes:
        reject_reason: Why orders are rejected now, or ``None``.
        latency_ns: Command latency now.
        slippage: The slippage configuration now.
        fee_factor: Product of the open windows' fee factors.
        valid_from_ns: The conditions hold from here (inclusive) ...
        valid_until_ns: ... to here (exclusive).
    """

    __slots__ = (
        "fee_factor",
        "latency_ns",
        "reject_reason",
        "slippage",
        "valid_from_ns",
        "valid_until_ns",
    )

    def __init__(
        self, config: VenueConfig, windows: tuple[VenueWindow, ...], boundaries: list[int], at: int
    ) -> None:
        open_windows = [w for w in windows if w.covers(at)]
        rejecting = [w for w in open_windows if w.reject_reason is not None]
        self.reject_reason: str | None = (
            f"{rejecting[0].reject_reason} ({rejecting[0].label})" if rejecting else None
        )
        latency_ms = config.latency_ms + sum(w.extra_latency_ms for w in open_windows)
        self.latency_ns = round(latency_ms * _NS_PER_MS)
        slippage = config.slippage
        for w in open_windows:
            if w.slippage_factor != 1.0 or w.min_slippage_bps > 0.0:
                slippage = SlippageConfig(
                    model="fixed" if slippage.model == "none" else slippage.model,
                    bps=max(slippage.bps, w.min_slippage_bps) * w.slippage_factor,
                    impact_bps=slippage.impact_bps * w.slippage_factor,
                )
        self.slippage = slippage
        factor = 1.0
        for w in open_windows:
            factor *= w.fee_factor
        self.fee_factor = factor
        # The conditions change only at window boundaries: they hold between the last boundary
        # at or before ``at`` and the first one after it.
        i = bisect.bisect_right(boundaries, at)
        self.valid_from_ns = boundaries[i - 1] if i > 0 else -(2**63)
        self.valid_until_ns = boundaries[i] if i < len(boundaries) else 2**63


class StressedVenueState(VenueState):
    """A :class:`StressedVenue`'s state: the plain venue's and its window rejections."""

    window_rejections: int


class StressedVenue(SimulatedVenue):
    """A :class:`~tradegraph.execution.venue.SimulatedVenue` under time windows of stress.

    Everything the plain venue does holds; inside a window the venue rejects, delays, slips and
    charges as the window says (see the module docstring). Built by the graph for a
    :class:`StressedVenueConfig`.

    Attributes:
        window_rejections: Orders rejected because a rejecting window was open.
    """

    State: ClassVar[type[StressedVenueState]] = StressedVenueState

    def __init__(
        self,
        config: StressedVenueConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
        *,
        account: Account | None = None,
        funding: Mapping[str, FundingSeries] | None = None,
    ) -> None:
        super().__init__(
            config,
            instruments,
            clock,
            outbox,
            account=account,
            funding=shock_funding(funding, config.windows) if funding else funding,
        )
        self._windows = config.windows
        self._boundaries = sorted(
            {t for w in config.windows for t in (w.start_ns, w.end_ns) if t is not None}
        )
        self._base_listings = dict(self._listings)
        self._reject_reason: str | None = None
        # Empty span: the first message computes the conditions.
        self._valid_from_ns = 0
        self._valid_until_ns = 0
        self.window_rejections = 0

    @property
    def windows(self) -> tuple[VenueWindow, ...]:
        return self._windows

    def conditions_at(self, ts_ns: int) -> VenueConditions:
        """The venue's conditions at ``ts_ns``."""
        return VenueConditions(self._config, self._windows, self._boundaries, ts_ns)

    def handle(self, msg: Message) -> None:
        now = self._clock.now_ns()
        if not self._valid_from_ns <= now < self._valid_until_ns:
            self._enter(self.conditions_at(now))
        super().handle(msg)

    def _enter(self, conditions: VenueConditions) -> None:
        """Switch the venue's latency, slippage and fee rates to ``conditions``."""
        self._valid_from_ns = conditions.valid_from_ns
        self._valid_until_ns = conditions.valid_until_ns
        self._reject_reason = conditions.reject_reason
        self._latency_ns = conditions.latency_ns
        self._slippage = build_slippage_model(conditions.slippage)
        factor = conditions.fee_factor
        if factor == 1.0:
            self._listings = dict(self._base_listings)
        else:
            self._listings = {
                iid: _Listing(
                    instrument=listing.instrument,
                    maker_rate=listing.maker_rate * factor,
                    taker_rate=listing.taker_rate * factor,
                )
                for iid, listing in self._base_listings.items()
            }

    def _arrive_submit(self, cmd: SubmitOrder) -> None:
        reason = self._reject_reason
        if reason is None:
            super()._arrive_submit(cmd)
            return
        # The id is spent, as for any rejected order: a retry must use a new one.
        self._seen_client_ids.add(cmd.client_order_id)
        self.window_rejections += 1
        self._reject(cmd, VenueReason.VENUE_UNAVAILABLE, reason)

    def snapshot(self) -> StressedVenueState:
        return StressedVenueState(**self._state_fields(), window_rejections=self.window_rejections)

    def restore(self, state: VenueState) -> None:
        """Restore a :meth:`snapshot`; conditions are recomputed from the clock on the next
        message, since they depend on time alone."""
        super().restore(state)
        self.window_rejections = (
            state.window_rejections if isinstance(state, StressedVenueState) else 0
        )
        self._valid_from_ns = 0
        self._valid_until_ns = 0
