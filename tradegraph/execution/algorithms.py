"""Execution algorithms: TWAP, VWAP, iceberg and POV, worked inside the strategy that owns them.

Where they run, and why there: an algorithm is a helper object owned by the strategy
(:class:`ParentOrderBook`, reached through ``Strategy.submit_algo_order``), not a separate graph
component. Every child it sends is an ordinary ``OrderIntent`` published through the strategy's
outbox, so it reaches Risk by the one road every order takes and no bypass is possible by
construction. The strategy already receives everything an algorithm reacts to (its fills,
cancels, venue and Risk rejections, timers, bars of its instruments and kill-switch changes), so
no routing, actor or message type is needed for the parent itself, and the algorithm runs
unchanged wherever the strategy runs (backtest kernel, Monte Carlo batches, Ray actors, live).
Its state is part of the strategy's ``snapshot()``. A separate component would need a new
command type, a second copy of the fill stream and cross-component id bookkeeping for the same
result.

Bookkeeping: each child carries the parent id as ``OrderIntent.tag``; the venue copies the tag
onto every ``OrderFilled``, so a fill names its parent. Quantities are counted in whole lots of
the instrument, so children always add up exactly to the parent and Risk never rounds a child.
When the parent ends it publishes one :class:`~tradegraph.contracts.ExecutionReport`.

Failure handling: a child refused by Risk or rejected by the venue frees its quantity for later
children; ``max_rejections`` refusals in a row fail the parent. A tripped kill switch (or a
refusal for that reason) stops the parent: no more children, open children are cancelled, and
the report follows once they are all done.

Hot path: the strategy forwards bars to the book only while a parent is working, so an idle
algorithm layer costs one attribute test per bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol, Self, cast

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tradegraph.contracts import (
    Bar,
    ExecutionReport,
    Instrument,
    OrderFilled,
    OrderSide,
    RiskReason,
)
from tradegraph.contracts.state import StateRecord
from tradegraph.errors import ConfigError

__all__ = [
    "ALGO_TIMER_PREFIX",
    "AlgoChoice",
    "AlgoHost",
    "AlgoName",
    "ExecutionAlgorithm",
    "IcebergAlgorithm",
    "IcebergParams",
    "OnlineVolumeProfile",
    "ParentOrderBook",
    "ParentOrderBookState",
    "ParentRecord",
    "ParentStatus",
    "PovAlgorithm",
    "PovParams",
    "TwapAlgorithm",
    "TwapParams",
    "Urgency",
    "VolumeProfileState",
    "VwapAlgorithm",
    "VwapParams",
    "WorkingParentState",
    "choose_algorithm",
    "profile_mass",
    "volume_profile_from_bars",
]

ALGO_TIMER_PREFIX = "algo:"
"""Timers whose name starts with this belong to an execution algorithm, not to user code."""

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
_BPS = 10_000.0


class AlgoName(StrEnum):
    TWAP = "twap"
    VWAP = "vwap"
    ICEBERG = "iceberg"
    POV = "pov"


class Urgency(StrEnum):
    """How fast the caller wants a parent done; the router trades speed for market impact."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ParentStatus(StrEnum):
    WORKING = "working"
    STOPPING = "stopping"  # no more children; waiting for the open ones to finish
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


_SIDES = {side.value: side for side in OrderSide}

# Plain-string forms of the statuses compared on every event (cheaper than enum lookups).
_WORKING = ParentStatus.WORKING.value
_STOPPING = ParentStatus.STOPPING.value

# ---------------------------------------------------------------------------- parameters


class _AlgoParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_rejections: int = Field(
        default=3, ge=1, description="refusals in a row (Risk or venue) that fail the parent"
    )


class TwapParams(_AlgoParams):
    """Equal slices at equal intervals: slice ``k`` is sent at ``start + k * duration / slices``.

    By slice ``k`` the algorithm has sent ``floor(lots * (k + 1) / slices)`` lots in total; the
    last slice sends everything left. A slice worth less than the instrument's min notional is
    carried into the next one.
    """

    duration_s: float = Field(gt=0.0)
    slices: int = Field(ge=1)


class VwapParams(TwapParams):
    """Like TWAP, but each slice's share follows an intraday volume profile.

    With ``profile: historical`` (the default) ``volume_profile`` holds the relative volume of
    equal buckets covering a UTC day (24 for hourly, 1440 for per-minute; see
    :func:`volume_profile_from_bars`), computed from past data. With ``profile: online`` the
    profile is learned from the bars the strategy has seen so far in the run: the mean bar
    volume in each of ``profile_buckets`` slices of the UTC day (see
    :class:`OnlineVolumeProfile`), read again at every slice, so the schedule adapts as volume
    comes in. A strategy learns from the start of the run once it calls
    ``Strategy.learn_volume_profile``; otherwise learning starts with its first online VWAP.
    Without a profile, or when the profile gives the parent's window no volume, the schedule
    is TWAP's.
    """

    profile: Literal["historical", "online"] = "historical"
    volume_profile: tuple[float, ...] | None = None
    profile_buckets: int = Field(
        default=24, ge=1, le=1440, description="online: buckets per UTC day"
    )

    @model_validator(mode="after")
    def _one_profile(self) -> Self:
        if self.profile == "online" and self.volume_profile is not None:
            raise ValueError(
                "volume_profile is the historical profile; leave it out with profile: online"
            )
        return self

    @field_validator("volume_profile")
    @classmethod
    def _check_profile(cls, profile: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if profile is None:
            return None
        if not profile or any(not math.isfinite(w) or w < 0.0 for w in profile):
            raise ValueError("must be a non-empty list of finite numbers >= 0")
        if sum(profile) <= 0.0:
            raise ValueError("must have some volume (sum > 0)")
        return profile


class IcebergParams(_AlgoParams):
    """Shows ``display_quantity`` at the limit price; a fully filled child is replenished."""

    display_quantity: float = Field(gt=0.0)


class PovParams(_AlgoParams):
    """Trades ``participation`` of the volume printed since the start, bar by bar.

    After each bar the algorithm has sent ``floor(participation * observed_volume)`` (in lots)
    in total. With ``max_duration_s`` it stops after that long and reports ``expired``.
    """

    participation: float = Field(gt=0.0, le=1.0)
    max_duration_s: float | None = Field(default=None, gt=0.0)


# ---------------------------------------------------------------------------- host


class AlgoHost(Protocol):
    """What an algorithm needs from the strategy that owns it."""

    strategy_id: str

    def now_ns(self) -> int: ...

    def last_price(self, instrument_id: str) -> float | None: ...

    def set_timer(self, name: str, at_ns: int) -> None: ...

    def cancel_timer(self, name: str) -> None: ...

    def submit_child(
        self,
        parent_id: str,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        limit_price: float | None,
    ) -> str:
        """Send a child intent through Risk; return its client order id."""
        ...

    def cancel_child(self, client_order_id: str) -> bool: ...

    def report_execution(self, report: ExecutionReport) -> None: ...


# ---------------------------------------------------------------------------- state


@dataclass(slots=True)
class ParentState:
    """Everything an algorithm knows about its parent, as plain data (snapshots).

    Quantities are whole lots of the instrument.
    """

    parent_id: str
    algo: str
    instrument_id: str
    side: str
    total_lots: int
    limit_price: float | None
    arrival_price: float
    start_ns: int
    status: str = ParentStatus.WORKING.value
    final_status: str = ""
    reason: str = ""
    filled_lots: int = 0
    filled_notional: float = 0.0
    fees: float = 0.0
    open_children: dict[str, int] = field(default_factory=dict)
    child_orders: int = 0
    child_fills: int = 0
    rejections: int = 0
    consecutive_rejections: int = 0
    next_slice: int = 0
    observed_volume: float = 0.0
    vwap_pv: float = 0.0
    vwap_volume: float = 0.0

    @property
    def open_lots(self) -> int:
        return sum(self.open_children.values())

    @property
    def committed_lots(self) -> int:
        return self.filled_lots + self.open_lots

    def to_state(self) -> ParentRecord:
        return ParentRecord(**asdict(self))

    @classmethod
    def from_state(cls, record: ParentRecord) -> ParentState:
        # JSON form: the algorithms compare and look up side and status as plain strings.
        return cls(**record.model_dump(mode="json"))


class ParentRecord(StateRecord):
    """A :class:`ParentState` as stored (same fields, same meaning)."""

    parent_id: str
    algo: AlgoName
    instrument_id: str
    side: OrderSide
    total_lots: int
    limit_price: float | None
    arrival_price: float
    start_ns: int
    status: ParentStatus = ParentStatus.WORKING
    final_status: ParentStatus | Literal[""] = ""
    reason: str = ""
    filled_lots: int = 0
    filled_notional: float = 0.0
    fees: float = 0.0
    open_children: dict[str, int] = Field(default_factory=dict)
    child_orders: int = 0
    child_fills: int = 0
    rejections: int = 0
    consecutive_rejections: int = 0
    next_slice: int = 0
    observed_volume: float = 0.0
    vwap_pv: float = 0.0
    vwap_volume: float = 0.0


class WorkingParentState(StateRecord):
    """A parent still working: its algorithm's parameters and its :class:`ParentRecord`.

    The parameters are read as the model of the parent's algorithm (``state.algo``).
    """

    params: TwapParams | VwapParams | IcebergParams | PovParams
    state: ParentRecord

    @model_validator(mode="before")
    @classmethod
    def _params_of_the_algorithm(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("params"), Mapping):
            return data
        parent = data.get("state")
        algo = parent.algo if isinstance(parent, ParentRecord) else None
        if isinstance(parent, Mapping):
            algo = parent.get("algo")
        algorithm = _ALGORITHMS.get(str(algo))
        if algorithm is None:
            raise ValueError(f"unknown execution algorithm {algo!r}; known: {sorted(_ALGORITHMS)}")
        return {**data, "params": algorithm.Params.model_validate(data["params"])}

    @model_validator(mode="after")
    def _params_match_the_algorithm(self) -> Self:
        expected = _ALGORITHMS[self.state.algo.value].Params
        if type(self.params) is not expected:
            raise ValueError(
                f"parent {self.state.parent_id}: {self.state.algo.value} needs "
                f"{expected.__name__}, not {type(self.params).__name__}"
            )
        return self


class VolumeProfileState(StateRecord):
    """An :class:`OnlineVolumeProfile` as stored: bar volume summed and counted per bucket."""

    buckets: int
    sums: tuple[float, ...]
    counts: tuple[int, ...]


class ParentOrderBookState(StateRecord):
    """All of a :class:`ParentOrderBook`'s state (kept inside the strategy's state, whose
    ``schema_version`` covers it).

    Attributes:
        count: Parent ids handed out so far.
        parents: Parents still working, in submission order.
        child_parent: Parent id of each child still known, by client order id.
        reports: Execution reports of the parents that ended, in order.
        profiles: Volume profiles being learned, by instrument id.
    """

    count: int
    parents: tuple[WorkingParentState, ...]
    child_parent: dict[str, str]
    reports: tuple[ExecutionReport, ...]
    profiles: dict[str, VolumeProfileState] = Field(default_factory=dict)


# ---------------------------------------------------------------------------- algorithms


class ExecutionAlgorithm:
    """Base of the algorithms: child accounting, stopping and the execution report.

    Subclasses decide *when* and *how much*: :meth:`_begin` runs at submission,
    :meth:`_on_timer`, :meth:`_on_bar` and :meth:`_on_capacity_freed` (a child finished
    without completing the parent) as things happen. They send with :meth:`_send`.
    """

    name: ClassVar[AlgoName]
    Params: ClassVar[type[_AlgoParams]]
    # Whether :meth:`_on_bar` does anything (bars always feed the interval VWAP).
    reacts_to_bars: ClassVar[bool] = False

    def __init__(
        self,
        host: AlgoHost,
        instrument: Instrument,
        state: ParentState,
        params: _AlgoParams,
        learned_profile: OnlineVolumeProfile | None = None,
    ) -> None:
        self.host = host
        self.instrument = instrument
        self.state = state
        self.params = params
        self.learned_profile = learned_profile
        self.side = _SIDES[state.side]
        self.timer_name = ALGO_TIMER_PREFIX + state.parent_id
        # Whether the algorithm's timer may be pending: ending a parent that never set one
        # (a one-slice TWAP, an iceberg) then costs no call into the clock. The book marks a
        # restored parent as armed, since its clock may still hold a timer.
        self.timer_armed = False
        self.final_report: ExecutionReport | None = None
        self._lot = instrument.lot_size
        self._size_decimals = _size_decimals(instrument)

    # -- queries ------------------------------------------------------------------------

    @property
    def parent_id(self) -> str:
        return self.state.parent_id

    @property
    def lot(self) -> float:
        return self._lot

    @property
    def working(self) -> bool:
        return self.state.status == _WORKING

    @property
    def finished(self) -> bool:
        status = self.state.status
        return status != _WORKING and status != _STOPPING

    def quantity_of(self, lots: int) -> float:
        return round(lots * self._lot, self._size_decimals)

    # -- events -------------------------------------------------------------------------

    def start(self) -> None:
        self._begin()

    def on_timer(self) -> None:
        self.timer_armed = False
        if self.working:
            self._on_timer()

    def _set_timer(self, at_ns: int) -> None:
        self.timer_armed = True
        self.host.set_timer(self.timer_name, at_ns)

    def _cancel_timer(self) -> None:
        if self.timer_armed:
            self.timer_armed = False
            self.host.cancel_timer(self.timer_name)

    def on_bar(self, bar: Bar) -> None:
        state = self.state
        volume = bar.volume
        if volume > 0.0:
            state.vwap_pv += (bar.high + bar.low + bar.close) / 3.0 * volume
            state.vwap_volume += volume
        state.observed_volume += volume
        if self.reacts_to_bars and state.status == _WORKING:
            self._on_bar(bar)

    def on_fill(self, fill: OrderFilled) -> None:
        state = self.state
        open_lots = state.open_children.get(fill.client_order_id)
        if open_lots is None:
            return
        lots = round(fill.last_qty / self._lot)
        state.filled_lots += lots
        state.filled_notional += fill.last_qty * fill.last_px
        state.fees += fill.fee
        state.child_fills += 1
        state.consecutive_rejections = 0
        child_done = fill.leaves_qty <= 1e-9 * fill.last_qty
        if child_done:
            del state.open_children[fill.client_order_id]
        else:
            state.open_children[fill.client_order_id] = max(0, open_lots - lots)
        if state.filled_lots >= state.total_lots:
            self._finish(ParentStatus.COMPLETED, "filled")
        elif state.status != _WORKING:
            self._finish_if_idle()
        elif child_done:
            self._on_capacity_freed()

    def on_child_ended(
        self, client_order_id: str, *, rejected: bool, reason: str, risk_reason: RiskReason | None
    ) -> None:
        """A child was cancelled, or refused by Risk or the venue; its quantity is free again."""
        state = self.state
        if state.open_children.pop(client_order_id, None) is None:
            return
        if rejected:
            state.rejections += 1
            state.consecutive_rejections += 1
        if not self.working:
            self._finish_if_idle()
            return
        if risk_reason in (RiskReason.KILL_SWITCH, RiskReason.STRATEGY_STOPPED):
            self.stop(ParentStatus.CANCELLED, f"child refused by risk: {reason}")
            return
        max_rejections = self.params.max_rejections
        if rejected and state.consecutive_rejections >= max_rejections:
            self.stop(
                ParentStatus.FAILED,
                f"{state.consecutive_rejections} children refused in a row; last: {reason}",
            )
            return
        self._on_capacity_freed()

    def stop(self, status: ParentStatus, reason: str) -> None:
        """Send no more children, cancel the open ones, report once they are all done."""
        if not self.working:
            return
        self._cancel_timer()
        self.state.status = ParentStatus.STOPPING.value
        self.state.final_status = status.value
        self.state.reason = reason
        for client_order_id in list(self.state.open_children):
            self.host.cancel_child(client_order_id)
        self._finish_if_idle()

    def expire(self, reason: str) -> None:
        """End now as expired (or as the stop already decided), sending nothing more."""
        state = self.state
        state.open_children.clear()
        if self.working:
            state.status = ParentStatus.STOPPING.value
            state.final_status = ParentStatus.EXPIRED.value
            state.reason = reason
        self._finish_if_idle()

    # -- for subclasses -----------------------------------------------------------------

    def _begin(self) -> None:
        raise NotImplementedError

    def _on_timer(self) -> None:
        """The algorithm's timer came due."""

    def _on_bar(self, bar: Bar) -> None:
        """A bar of any of the strategy's instruments closed while the parent works."""

    def _on_capacity_freed(self) -> None:
        """A child finished (filled, cancelled, refused) and the parent is not complete."""

    def _reference_price(self) -> float:
        price = self.host.last_price(self.state.instrument_id)
        if price is None:
            price = self.state.limit_price or self.state.arrival_price
        return price

    def _worth_sending(self, lots: int) -> bool:
        """Whether ``lots`` clears the instrument's minimums at the current price."""
        quantity = lots * self.lot
        inst = self.instrument
        if quantity < inst.min_quantity * (1.0 - 1e-9):
            return False
        price = self.state.limit_price or self._reference_price()
        return quantity * price >= inst.min_notional * (1.0 - 1e-9)

    def _send(self, lots: int) -> str | None:
        """Send a child of ``lots`` (capped at what is not yet committed)."""
        state = self.state
        lots = min(lots, state.total_lots - state.committed_lots)
        if lots <= 0:
            return None
        client_order_id = self.host.submit_child(
            state.parent_id,
            state.instrument_id,
            self.side,
            self.quantity_of(lots),
            state.limit_price,
        )
        state.child_orders += 1
        state.open_children[client_order_id] = lots
        return client_order_id

    def _schedule_over(self) -> None:
        """No more children will be sent: end now if nothing is open, else when it is done."""
        state = self.state
        if state.open_lots == 0 and state.filled_lots < state.total_lots:
            self._finish(ParentStatus.EXPIRED, "schedule ended before the parent filled")

    def _finish_if_idle(self) -> None:
        if self.state.status == _STOPPING and not self.state.open_children:
            self._finish(ParentStatus(self.state.final_status), self.state.reason)

    def _finish(self, status: ParentStatus, reason: str) -> None:
        state = self.state
        if self.finished:
            return
        self._cancel_timer()
        state.status = status.value
        state.reason = reason
        self.final_report = self.report()
        self.host.report_execution(self.final_report)

    def report(self) -> ExecutionReport:
        """The execution report as of now."""
        state = self.state
        sign = 1 if self.side is OrderSide.BUY else -1
        filled = self.quantity_of(state.filled_lots)
        avg_price = state.filled_notional / filled if filled > 0.0 else None
        vwap = state.vwap_pv / state.vwap_volume if state.vwap_volume > 0.0 else None
        arrival = state.arrival_price
        shortfall = None
        slippage = None
        if avg_price is not None:
            shortfall = sign * (avg_price - arrival) / arrival * _BPS
            if vwap is not None:
                slippage = sign * (avg_price - vwap) / vwap * _BPS
        now = self.host.now_ns()
        # Every field is computed here from validated fills and parameters.
        return ExecutionReport.trusted(
            parent_id=state.parent_id,
            strategy_id=self.host.strategy_id,
            instrument_id=state.instrument_id,
            algo=state.algo,
            side=self.side,
            status=state.status,
            reason=state.reason,
            quantity=self.quantity_of(state.total_lots),
            filled_quantity=filled,
            avg_price=avg_price,
            arrival_price=arrival,
            implementation_shortfall_bps=shortfall,
            interval_vwap=vwap,
            slippage_vs_vwap_bps=slippage,
            fees=state.fees,
            child_orders=state.child_orders,
            child_fills=state.child_fills,
            rejections=state.rejections,
            start_ns=state.start_ns,
            end_ns=now,
            ts_event_ns=now,
            ts_init_ns=now,
        )


class TwapAlgorithm(ExecutionAlgorithm):
    """Time-weighted: see :class:`TwapParams`."""

    name = AlgoName.TWAP
    Params = TwapParams
    params: TwapParams

    def _slice_time_ns(self, k: int) -> int:
        duration_ns = round(self.params.duration_s * NS_PER_S)
        return self.state.start_ns + duration_ns * k // self.params.slices

    def _target_lots(self, k: int) -> int:
        """Lots sent in total once slice ``k`` is out."""
        return self.state.total_lots * (k + 1) // self.params.slices

    def _begin(self) -> None:
        self._run_due_slices()

    def _on_timer(self) -> None:
        self._run_due_slices()

    def _run_due_slices(self) -> None:
        state = self.state
        slices = self.params.slices
        now = self.host.now_ns()
        while state.next_slice < slices and self._slice_time_ns(state.next_slice) <= now:
            k = state.next_slice
            state.next_slice += 1
            last = state.next_slice == slices
            lots = self._target_lots(k) - state.committed_lots
            if lots > 0 and (last or self._worth_sending(lots)):
                self._send(lots)
        if state.next_slice < slices:
            self._set_timer(self._slice_time_ns(state.next_slice))
        else:
            self._schedule_over()

    def _on_capacity_freed(self) -> None:
        if self.state.next_slice >= self.params.slices:
            self._schedule_over()


class VwapAlgorithm(TwapAlgorithm):
    """Volume-weighted: TWAP's clock with a volume profile's shares (see :class:`VwapParams`)."""

    name = AlgoName.VWAP
    Params = VwapParams
    params: VwapParams

    def _profile(self) -> tuple[float, ...] | None:
        if self.params.profile == "online":
            learned = self.learned_profile
            return None if learned is None else learned.profile()
        return self.params.volume_profile

    def _target_lots(self, k: int) -> int:
        profile = self._profile()
        slices = self.params.slices
        if profile is None or k + 1 >= slices:
            return super()._target_lots(k)
        start = self.state.start_ns
        end = self._slice_time_ns(slices)
        total = profile_mass(profile, start, end)
        if total <= 0.0:
            return super()._target_lots(k)
        share = profile_mass(profile, start, self._slice_time_ns(k + 1)) / total
        return math.floor(self.state.total_lots * share + 1e-9)


class IcebergAlgorithm(ExecutionAlgorithm):
    """Shows one limit child of ``display_quantity`` at a time (see :class:`IcebergParams`)."""

    name = AlgoName.ICEBERG
    Params = IcebergParams
    params: IcebergParams

    @property
    def display_lots(self) -> int:
        return max(1, math.floor(self.params.display_quantity / self.lot + 1e-9))

    def _begin(self) -> None:
        self._replenish()

    def _on_capacity_freed(self) -> None:
        self._replenish()

    def _replenish(self) -> None:
        if not self.state.open_children:
            self._send(self.display_lots)


class PovAlgorithm(ExecutionAlgorithm):
    """Participation of volume: see :class:`PovParams`."""

    name = AlgoName.POV
    Params = PovParams
    params: PovParams
    reacts_to_bars = True

    def _begin(self) -> None:
        if self.params.max_duration_s is not None:
            end_ns = self.state.start_ns + round(self.params.max_duration_s * NS_PER_S)
            self._set_timer(end_ns)

    def _on_timer(self) -> None:
        self.stop(ParentStatus.EXPIRED, "max_duration_s reached before the parent filled")

    def _on_bar(self, bar: Bar) -> None:
        if bar.instrument_id != self.state.instrument_id:
            return
        state = self.state
        target = math.floor(self.params.participation * state.observed_volume / self.lot + 1e-9)
        lots = min(target, state.total_lots) - state.committed_lots
        last = state.committed_lots + lots >= state.total_lots
        if lots > 0 and (last or self._worth_sending(lots)):
            self._send(lots)


_SIZE_DECIMALS: dict[float, int] = {}


def _size_decimals(instrument: Instrument) -> int:
    """``instrument.size_decimals``, memoised: it is computed with ``Decimal`` each time."""
    decimals = _SIZE_DECIMALS.get(instrument.lot_size)
    if decimals is None:
        decimals = _SIZE_DECIMALS[instrument.lot_size] = instrument.size_decimals
    return decimals


# Validated parameters by (algorithm, parameters): a strategy usually sends the same ones.
_ParamsKey = tuple[type["ExecutionAlgorithm"], tuple[tuple[str, Any], ...]]
_PARAMS_CACHE: dict[_ParamsKey, _AlgoParams] = {}
_PARAMS_CACHE_MAX = 256


def _parse_params(cls: type[ExecutionAlgorithm], params: Mapping[str, Any]) -> _AlgoParams:
    key: _ParamsKey | None = None
    try:
        candidate: _ParamsKey = (cls, tuple(sorted(params.items())))
        cached = _PARAMS_CACHE.get(candidate)
        key = candidate
    except TypeError:  # unhashable values (a profile given as a list): validate every time
        cached = None
    if cached is not None:
        return cached
    try:
        parsed = cls.Params.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"{cls.name.value} parameters: {problems}") from None
    if key is not None and len(_PARAMS_CACHE) < _PARAMS_CACHE_MAX:
        _PARAMS_CACHE[key] = parsed
    return parsed


_ALGORITHMS: dict[str, type[ExecutionAlgorithm]] = {
    cls.name.value: cls for cls in (TwapAlgorithm, VwapAlgorithm, IcebergAlgorithm, PovAlgorithm)
}


# ---------------------------------------------------------------------------- online profile


class OnlineVolumeProfile:
    """Mean bar volume in each of ``buckets`` equal slices of the UTC day, learned bar by bar.

    A bar counts in the slice its open time falls in. Slices not seen yet read as the mean of
    every bar seen, so an unlearnt part of the day neither attracts nor repels volume. Before
    the first bar there is no profile.
    """

    __slots__ = ("buckets", "counts", "sums")

    def __init__(self, buckets: int = 24) -> None:
        if not 1 <= buckets <= 1440:
            raise ValueError(f"buckets must be between 1 and 1440, was {buckets}")
        self.buckets = buckets
        self.sums = [0.0] * buckets
        self.counts = [0] * buckets

    def observe(self, bar: Bar) -> None:
        open_ns = bar.ts_event_ns - bar.interval_ns
        j = (open_ns % NS_PER_DAY) * self.buckets // NS_PER_DAY
        self.sums[j] += bar.volume
        self.counts[j] += 1

    @property
    def bars_seen(self) -> int:
        return sum(self.counts)

    def profile(self) -> tuple[float, ...] | None:
        """Relative volume per slice (a profile for :func:`profile_mass`), or ``None``."""
        seen = self.bars_seen
        if seen == 0:
            return None
        overall = sum(self.sums) / seen
        return tuple(
            total / count if count else overall
            for total, count in zip(self.sums, self.counts, strict=True)
        )

    def to_state(self) -> VolumeProfileState:
        return VolumeProfileState(
            buckets=self.buckets, sums=tuple(self.sums), counts=tuple(self.counts)
        )

    @classmethod
    def from_state(cls, state: VolumeProfileState) -> OnlineVolumeProfile:
        learned = cls(state.buckets)
        if len(state.sums) != state.buckets or len(state.counts) != state.buckets:
            raise ValueError(
                f"a volume profile of {state.buckets} buckets holds {len(state.sums)} sums "
                f"and {len(state.counts)} counts"
            )
        learned.sums = list(state.sums)
        learned.counts = list(state.counts)
        return learned


# ---------------------------------------------------------------------------- the book


class ParentOrderBook:
    """The parent orders of one strategy and the algorithms working them.

    The strategy calls :meth:`submit`, :meth:`cancel`, and forwards its order events, its
    algorithm timers, its bars (only while :attr:`wants_bars`) and kill-switch trips.

    Attributes:
        active: True while at least one parent is working.
        wants_bars: True while a parent works or a volume profile is being learned; the
            strategy reads it per bar.
        reports: Execution reports of the parents that ended, in order.
    """

    def __init__(self, host: AlgoHost, instruments: Mapping[str, Instrument]) -> None:
        self._host = host
        self._instruments = instruments
        self._algos: dict[str, ExecutionAlgorithm] = {}
        self._child_parent: dict[str, str] = {}
        self._profiles: dict[str, OnlineVolumeProfile] = {}
        self._count = 0
        self.active = False
        self.wants_bars = False
        self.reports: list[ExecutionReport] = []

    def _refresh(self) -> None:
        self.active = bool(self._algos)
        self.wants_bars = self.active or bool(self._profiles)

    def learn_volume_profile(self, instrument_id: str, buckets: int = 24) -> OnlineVolumeProfile:
        """Learn the intraday volume profile of ``instrument_id`` from every bar from now on
        (for ``vwap`` with ``profile: online``); returns the learner, already learning or new.

        Raises:
            ValueError: the instrument is unknown, or its profile is learned with another
                number of buckets.
        """
        if instrument_id not in self._instruments:
            raise ValueError(f"cannot learn the volume of unknown instrument {instrument_id!r}")
        learned = self._profiles.get(instrument_id)
        if learned is None:
            learned = self._profiles[instrument_id] = OnlineVolumeProfile(buckets)
            self._refresh()
        elif learned.buckets != buckets:
            raise ValueError(
                f"the volume profile of {instrument_id} is learned in {learned.buckets} "
                f"buckets, not {buckets}"
            )
        return learned

    @property
    def learned_profiles(self) -> Mapping[str, OnlineVolumeProfile]:
        """The volume profiles being learned, by instrument id."""
        return self._profiles

    def volume_profile(self, instrument_id: str) -> tuple[float, ...] | None:
        """The profile learned so far for ``instrument_id`` (``None`` if none or no bar yet)."""
        learned = self._profiles.get(instrument_id)
        return None if learned is None else learned.profile()

    @property
    def parents(self) -> Mapping[str, ExecutionAlgorithm]:
        """Parents still working (or waiting for their children to stop), by parent id."""
        return self._algos

    def submit(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        algo: AlgoName | str,
        params: Mapping[str, Any],
        limit_price: float | None = None,
    ) -> str:
        """Start an algorithm on a new parent order; return the parent id.

        Raises:
            ConfigError: Unknown algorithm or invalid parameters (the message names them).
            ValueError: The quantity is below one lot, or there is no price to measure the
                arrival against, or an iceberg has no limit price.
        """
        cls = _ALGORITHMS.get(str(algo))
        if cls is None:
            raise ConfigError(f"unknown execution algorithm {algo!r}; known: {sorted(_ALGORITHMS)}")
        parsed = _parse_params(cls, params)
        instrument = self._instruments[instrument_id]
        total_lots = math.floor(quantity / instrument.lot_size + 1e-9)
        if total_lots <= 0:
            raise ValueError(
                f"parent quantity {quantity!r} is below one lot ({instrument.lot_size!r}) "
                f"of {instrument_id}"
            )
        if cls is IcebergAlgorithm and limit_price is None:
            raise ValueError("an iceberg order needs a limit_price")
        if limit_price is not None and not (math.isfinite(limit_price) and limit_price > 0.0):
            raise ValueError(f"limit_price must be a finite number > 0, was {limit_price!r}")
        arrival = self._host.last_price(instrument_id) or limit_price
        if arrival is None:
            raise ValueError(
                f"no price known for {instrument_id} yet: an algorithm needs an arrival price; "
                "submit after the first bar"
            )
        self._count += 1
        parent_id = f"{self._host.strategy_id}-P{self._count:06d}"
        state = ParentState(
            parent_id=parent_id,
            algo=cls.name.value,
            instrument_id=instrument_id,
            side=side.value,
            total_lots=total_lots,
            limit_price=None if limit_price is None else float(limit_price),
            arrival_price=float(arrival),
            start_ns=self._host.now_ns(),
        )
        if cls is VwapAlgorithm:
            vwap = cast(VwapParams, parsed)
            if vwap.profile == "online":
                self.learn_volume_profile(instrument_id, vwap.profile_buckets)
        algorithm = cls(self._host, instrument, state, parsed, self._profiles.get(instrument_id))
        self._algos[parent_id] = algorithm
        self._refresh()
        algorithm.start()
        # Children are only queued while the parent starts; no other parent can have moved.
        self._retire(algorithm)
        return parent_id

    def cancel(self, parent_id: str, reason: str = "cancelled by strategy") -> bool:
        """Stop a working parent and cancel its children; False if it is not working."""
        algorithm = self._algos.get(parent_id)
        if algorithm is None or not algorithm.working:
            return False
        algorithm.stop(ParentStatus.CANCELLED, reason)
        self._sweep()
        return True

    def stop_all(self, status: ParentStatus, reason: str) -> None:
        for algorithm in list(self._algos.values()):
            algorithm.stop(status, reason)
        self._sweep()

    def expire_all(self, reason: str) -> None:
        """Report every parent still open as expired, without sending anything (run end)."""
        for algorithm in list(self._algos.values()):
            algorithm.expire(reason)
        self._sweep()

    def register_child(self, client_order_id: str, parent_id: str) -> None:
        self._child_parent[client_order_id] = parent_id

    def owns(self, client_order_id: str) -> bool:
        return client_order_id in self._child_parent

    def on_bar(self, bar: Bar) -> None:
        instrument_id = bar.instrument_id
        if self._profiles:
            learned = self._profiles.get(instrument_id)
            if learned is not None:
                learned.observe(bar)
        # A bar only ever makes an algorithm send children, never end: nothing to retire, and
        # the book does not change while it is walked.
        for algorithm in self._algos.values():
            if algorithm.state.instrument_id == instrument_id:
                algorithm.on_bar(bar)

    def on_timer(self, name: str) -> None:
        algorithm = self._algos.get(name.removeprefix(ALGO_TIMER_PREFIX))
        if algorithm is not None:
            algorithm.on_timer()
            self._retire(algorithm)

    def on_fill(self, fill: OrderFilled) -> None:
        algorithm = self._algo_of(fill.client_order_id)
        if algorithm is not None:
            if fill.leaves_qty <= 1e-9 * fill.last_qty:
                del self._child_parent[fill.client_order_id]
            algorithm.on_fill(fill)
            self._retire(algorithm)

    def on_child_ended(
        self,
        client_order_id: str,
        *,
        rejected: bool,
        reason: str,
        risk_reason: RiskReason | None = None,
    ) -> None:
        algorithm = self._algo_of(client_order_id)
        self._child_parent.pop(client_order_id, None)
        if algorithm is not None:
            algorithm.on_child_ended(
                client_order_id, rejected=rejected, reason=reason, risk_reason=risk_reason
            )
            self._retire(algorithm)

    def _algo_of(self, client_order_id: str) -> ExecutionAlgorithm | None:
        parent_id = self._child_parent.get(client_order_id)
        return None if parent_id is None else self._algos.get(parent_id)

    def _retire(self, algorithm: ExecutionAlgorithm) -> None:
        """Drop a parent that ended and keep its report."""
        if algorithm.finished and self._algos.pop(algorithm.parent_id, None) is not None:
            if algorithm.final_report is not None:
                self.reports.append(algorithm.final_report)
            # Children of an ended parent that are still known (cancels in flight) end on
            # their own events; only those already forgotten by the parent are dropped here.
            if self._child_parent:
                parent_id = algorithm.parent_id
                open_children = algorithm.state.open_children
                for child in [c for c, p in self._child_parent.items() if p == parent_id]:
                    if child not in open_children:
                        del self._child_parent[child]
            self._refresh()

    def _sweep(self) -> None:
        for algorithm in tuple(self._algos.values()):
            self._retire(algorithm)

    # -- snapshot -----------------------------------------------------------------------

    def snapshot(self) -> ParentOrderBookState:
        return ParentOrderBookState(
            count=self._count,
            parents=tuple(
                WorkingParentState(params=a.params, state=a.state.to_state())
                for a in self._algos.values()
            ),
            child_parent=dict(self._child_parent),
            reports=tuple(self.reports),
            profiles={iid: p.to_state() for iid, p in self._profiles.items()},
        )

    def restore(self, state: ParentOrderBookState) -> None:
        self._count = state.count
        self._profiles = {
            iid: OnlineVolumeProfile.from_state(p) for iid, p in state.profiles.items()
        }
        self._algos = {}
        for working in state.parents:
            parent = ParentState.from_state(working.state)
            cls = _ALGORITHMS[parent.algo]
            instrument = self._instruments[parent.instrument_id]
            algorithm = cls(
                self._host,
                instrument,
                parent,
                working.params,
                self._profiles.get(parent.instrument_id),
            )
            algorithm.timer_armed = True
            self._algos[parent.parent_id] = algorithm
        self._child_parent = dict(state.child_parent)
        self.reports = list(state.reports)
        self._refresh()


# ---------------------------------------------------------------------------- profiles


def profile_mass(profile: Sequence[float], start_ns: int, end_ns: int) -> float:
    """Volume a UTC-day profile expects between two times (buckets count pro rata)."""
    if end_ns <= start_ns:
        return 0.0
    buckets = len(profile)
    width = NS_PER_DAY / buckets
    total = 0.0
    t = start_ns
    while t < end_ns:
        day = t // NS_PER_DAY
        offset = t - day * NS_PER_DAY
        j = min(int(offset // width), buckets - 1)
        bucket_end = day * NS_PER_DAY + math.ceil((j + 1) * width)
        step_end = min(end_ns, bucket_end)
        if step_end <= t:  # float edge of a bucket: move on by one nanosecond
            step_end = t + 1
        total += profile[j] * (step_end - t) / width
        t = step_end
    return total


def volume_profile_from_bars(
    ts_open_ns: npt.ArrayLike, volume: npt.ArrayLike, buckets: int = 24
) -> tuple[float, ...]:
    """The average share of daily volume in each of ``buckets`` equal slices of the UTC day.

    Feed it historical bars (``BarArrays.ts_open_ns`` and ``.volume``) and pass the result as
    ``VwapParams.volume_profile``.

    Raises:
        ValueError: ``buckets`` is not in 1..1440, the arrays differ in length, or there is no
            volume at all.
    """
    if not 1 <= buckets <= 1440:
        raise ValueError(f"buckets must be between 1 and 1440, was {buckets}")
    ts = np.asarray(ts_open_ns, dtype=np.int64)
    vol = np.asarray(volume, dtype=np.float64)
    if ts.shape != vol.shape:
        raise ValueError(f"ts_open_ns and volume differ in shape: {ts.shape} vs {vol.shape}")
    index = ((ts % NS_PER_DAY) * buckets // NS_PER_DAY).astype(np.int64)
    sums = np.asarray(np.bincount(index, weights=vol, minlength=buckets), dtype=np.float64)
    total = float(sums.sum())
    if total <= 0.0:
        raise ValueError("the bars hold no volume: cannot build a volume profile")
    return tuple(float(x) for x in sums / total)


# ---------------------------------------------------------------------------- the router


@dataclass(frozen=True, slots=True)
class AlgoChoice:
    """What :func:`choose_algorithm` picked, ready for ``submit_algo_order``."""

    algo: AlgoName
    params: dict[str, Any]
    why: str


_PARTICIPATION = {Urgency.LOW: 0.05, Urgency.MEDIUM: 0.10, Urgency.HIGH: 0.25}
_MAX_SLICES = 240


def choose_algorithm(
    quantity: float,
    avg_bar_volume: float,
    urgency: Urgency | str = Urgency.MEDIUM,
    *,
    bar_interval_s: float = 60.0,
    limit_price: float | None = None,
    volume_profile: tuple[float, ...] | None = None,
) -> AlgoChoice:
    """Pick an algorithm from the order's size against recent volume and the urgency.

    Each urgency has a target share of market volume (low 5 %, medium 10 %, high 25 %). The
    order is worked over as many bars as that share needs (at least one):

    * high urgency: POV at 25 % (it follows the market as fast as the target allows);
    * a limit price and low urgency: an iceberg showing one bar's target share;
    * low urgency with a volume profile: VWAP; otherwise TWAP, one slice per bar.

    Raises:
        ValueError: ``quantity`` or ``bar_interval_s`` is not > 0, or ``avg_bar_volume`` < 0.
    """
    if not quantity > 0.0 or not bar_interval_s > 0.0:
        raise ValueError("quantity and bar_interval_s must be > 0")
    if not avg_bar_volume >= 0.0:
        raise ValueError(f"avg_bar_volume must be >= 0, was {avg_bar_volume!r}")
    urgency = Urgency(urgency)
    share = _PARTICIPATION[urgency]
    per_bar = share * avg_bar_volume
    bars = (
        _MAX_SLICES if per_bar <= 0.0 else min(_MAX_SLICES, max(1, math.ceil(quantity / per_bar)))
    )
    duration_s = bars * bar_interval_s
    size = f"{quantity:.10g} is {bars} bar(s) at {share:.0%} of volume"
    if urgency is Urgency.HIGH:
        return AlgoChoice(AlgoName.POV, {"participation": share}, f"high urgency; {size}")
    if limit_price is not None and urgency is Urgency.LOW:
        display = per_bar if per_bar > 0.0 else quantity / bars
        return AlgoChoice(
            AlgoName.ICEBERG,
            {"display_quantity": min(quantity, display)},
            f"low urgency with a limit; {size}",
        )
    if urgency is Urgency.LOW and volume_profile is not None:
        return AlgoChoice(
            AlgoName.VWAP,
            {"duration_s": duration_s, "slices": bars, "volume_profile": volume_profile},
            f"low urgency with a volume profile; {size}",
        )
    return AlgoChoice(
        AlgoName.TWAP, {"duration_s": duration_s, "slices": bars}, f"{urgency.value}; {size}"
    )
