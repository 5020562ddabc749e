"""Metrics that observe the message stream, whatever carries it.

:class:`GraphMetrics` turns messages into counters, gauges and histograms and writes them to a
:class:`MetricsSink`: ``PrometheusSink`` (``tradegraph.observability.prometheus``) in-process and
on drivers, ``RayMetricsSink`` (``tradegraph.actors.metrics``) inside actors, :class:`InMemorySink`
in tests. Every sink is built from the same :data:`METRICS` table, so the names agree everywhere.

Observe each message once, where it is *published* (every message is published exactly once;
a message is received by several components). Counts and gauge values are kept in the
``GraphMetrics`` object and written to the sink in bulk by :meth:`GraphMetrics.flush`, so
observing a message costs a dictionary update, never a sink call.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from tradegraph.contracts import (
    Bar,
    FeedStatus,
    FundingPaid,
    KillSwitchChanged,
    Message,
    OrderBookSnapshot,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PortfolioSnapshot,
    PositionLiquidated,
    QuoteTick,
    RiskRejected,
    StrategyError,
    SubmitOrder,
    TradeTick,
    VenueStatus,
)


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what sinks declare up front.

    Attributes:
        name: Base name, ``tradegraph_`` prefixed. Counters are exposed with a ``_total``
            suffix by Prometheus and Ray.
        kind: Counter, gauge or histogram.
        description: Help text.
        tag_keys: Every write gives exactly these tags.
        buckets: Histogram bucket upper bounds (histograms only).
    """

    name: str
    kind: MetricKind
    description: str
    tag_keys: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


MARKET_EVENTS: Final = "tradegraph_market_events"
MARKET_DATA_DROPPED: Final = "tradegraph_market_data_dropped"
ORDER_INTENTS: Final = "tradegraph_order_intents"
ORDERS_SUBMITTED: Final = "tradegraph_orders_submitted"
REJECTIONS: Final = "tradegraph_rejections"
FILLS: Final = "tradegraph_fills"
FILLED_NOTIONAL: Final = "tradegraph_filled_notional"
STRATEGY_ERRORS: Final = "tradegraph_strategy_errors"
KILL_SWITCH_TRIPS: Final = "tradegraph_kill_switch_trips"
KILL_SWITCH_TRIPPED: Final = "tradegraph_kill_switch_tripped"
EQUITY: Final = "tradegraph_equity"
DRAWDOWN: Final = "tradegraph_drawdown"
POSITION: Final = "tradegraph_position"
QUEUE_DEPTH: Final = "tradegraph_queue_depth"
TICK_TO_ORDER: Final = "tradegraph_tick_to_order_seconds"
FEED_STALE: Final = "tradegraph_feed_stale"
VENUE_AVAILABLE: Final = "tradegraph_venue_available"
SCENARIOS_PLANNED: Final = "tradegraph_scenarios_planned"
SCENARIOS_DONE: Final = "tradegraph_scenarios_done"
SCENARIOS_FAILED: Final = "tradegraph_scenarios_failed"
LIQUIDATIONS: Final = "tradegraph_liquidations"
FUNDING_PAID: Final = "tradegraph_funding_paid"

TICK_TO_ORDER_BUCKETS_S: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

_C, _G, _H = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.HISTOGRAM

METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec(MARKET_EVENTS, _C, "market events published to the graph", ("instrument", "kind")),
    MetricSpec(MARKET_DATA_DROPPED, _C, "malformed market data dropped", ("reason", "instrument")),
    MetricSpec(ORDER_INTENTS, _C, "order intents sent by strategies", ("strategy", "instrument")),
    MetricSpec(ORDERS_SUBMITTED, _C, "orders Risk sent to a venue", ("strategy", "instrument")),
    MetricSpec(
        REJECTIONS, _C, "orders refused, by Risk or by a venue", ("source", "reason", "strategy")
    ),
    MetricSpec(FILLS, _C, "fills", ("strategy", "instrument", "side")),
    MetricSpec(FILLED_NOTIONAL, _C, "filled notional, quote currency", ("instrument",)),
    MetricSpec(STRATEGY_ERRORS, _C, "strategies stopped by an error", ("strategy",)),
    MetricSpec(KILL_SWITCH_TRIPS, _C, "times the kill switch tripped"),
    MetricSpec(KILL_SWITCH_TRIPPED, _G, "1 while the kill switch is tripped, else 0"),
    MetricSpec(EQUITY, _G, "portfolio equity, quote currency"),
    MetricSpec(DRAWDOWN, _G, "drawdown from peak equity, a fraction"),
    MetricSpec(POSITION, _G, "position, base units (signed)", ("instrument",)),
    MetricSpec(QUEUE_DEPTH, _G, "messages waiting for a component", ("component",)),
    MetricSpec(
        TICK_TO_ORDER,
        _H,
        "wall time from a market event to the order it caused",
        buckets=TICK_TO_ORDER_BUCKETS_S,
    ),
    MetricSpec(
        FEED_STALE, _G, "1 while an instrument's live feed is stale, else 0", ("instrument",)
    ),
    MetricSpec(
        VENUE_AVAILABLE,
        _G,
        "1 while a live venue is reachable, 0 while its circuit is open",
        ("venue",),
    ),
    MetricSpec(SCENARIOS_PLANNED, _G, "scenarios in the batch"),
    MetricSpec(SCENARIOS_DONE, _C, "scenarios finished (ok or failed)"),
    MetricSpec(SCENARIOS_FAILED, _C, "scenarios failed"),
    MetricSpec(
        LIQUIDATIONS, _C, "positions liquidated by a venue", ("strategy", "instrument", "venue")
    ),
    MetricSpec(
        FUNDING_PAID,
        _G,
        "net funding paid on perpetual positions, settle asset (negative: received)",
        ("strategy", "instrument"),
    ),
)
"""Every metric tradegraph writes. Sinks declare all of them up front."""

NO_TAGS: Final[Mapping[str, str]] = {}

MARKET_KINDS: Final[Mapping[type[Message], str]] = {
    Bar: "bar",
    TradeTick: "trade",
    QuoteTick: "quote",
    OrderBookSnapshot: "book",
}
"""The ``kind`` tag of each market-data message type."""


class MetricsSink(Protocol):
    """Where metric values go. Names and tag keys are those of :data:`METRICS`."""

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        """Add ``amount`` (> 0) to a counter."""
        ...

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Set a gauge."""
        ...

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Record one histogram observation."""
        ...


_REASON_WORDS = re.compile(r"[A-Za-z_\- ]+")


def reason_label(reason: str) -> str:
    """A bounded tag value from a free-text rejection reason.

    Venues explain rejections in prose with ids and numbers in it; keeping only the leading
    words (``"duplicate client_order_id 'x-1'"`` -> ``duplicate_client_order_id``) keeps the
    number of distinct tag values small.
    """
    match = _REASON_WORDS.match(reason.strip())
    words = match.group(0).strip().lower() if match else ""
    return "_".join(words.split())[:48] or "other"


MetricTotals = dict[str, list[list[Any]]]
"""Plain-data running totals (JSON-able, cheap to pickle): ``counters`` and ``gauges`` as
``[name, tags, value]``, ``histograms`` as ``[name, tags, per-bucket counts + overflow, sum]``."""


class TotalsSink:
    """A sink that keeps running totals, so another process can expose them.

    An actor reports its totals with its status; the session's driver merges every actor's
    (:func:`merge_totals`) and serves them on its own ``/metrics`` port. Counters are summed,
    gauges keep their last value, histograms count per bucket of their spec.
    """

    def __init__(self, specs: Iterable[MetricSpec] = METRICS) -> None:
        self._buckets = {spec.name: spec.buckets for spec in specs}
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        key = (name, tuple(sorted(tags.items())))
        self._counters[key] = self._counters.get(key, 0.0) + amount

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._gauges[(name, tuple(sorted(tags.items())))] = value

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        buckets = self._buckets[name]
        key = (name, tuple(sorted(tags.items())))
        counts = self._histograms.get(key)
        if counts is None:
            counts = self._histograms[key] = [0.0] * (len(buckets) + 2)
        counts[bisect.bisect_left(buckets, value)] += 1
        counts[-1] += value

    def totals(self) -> MetricTotals:
        return {
            "counters": [[n, dict(t), v] for (n, t), v in self._counters.items()],
            "gauges": [[n, dict(t), v] for (n, t), v in self._gauges.items()],
            "histograms": [[n, dict(t), c[:-1], c[-1]] for (n, t), c in self._histograms.items()],
        }


class TeeSink:
    """Writes every value to each of ``sinks``."""

    def __init__(self, *sinks: MetricsSink) -> None:
        self._sinks = sinks

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        for sink in self._sinks:
            sink.inc(name, amount, tags)

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        for sink in self._sinks:
            sink.set(name, value, tags)

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        for sink in self._sinks:
            sink.observe(name, value, tags)


def merge_totals(parts: Sequence[MetricTotals]) -> MetricTotals:
    """Several processes' totals as one: counters and histograms added, gauges the last seen."""
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[float], float]] = {}
    for part in parts:
        for name, tags, value in part.get("counters", []):
            key = (name, tuple(sorted(tags.items())))
            counters[key] = counters.get(key, 0.0) + value
        for name, tags, value in part.get("gauges", []):
            gauges[(name, tuple(sorted(tags.items())))] = value
        for name, tags, counts, total in part.get("histograms", []):
            key = (name, tuple(sorted(tags.items())))
            seen, seen_sum = histograms.get(key, ([0.0] * len(counts), 0.0))
            histograms[key] = ([a + b for a, b in zip(seen, counts, strict=True)], seen_sum + total)
    return {
        "counters": [[n, dict(t), v] for (n, t), v in counters.items()],
        "gauges": [[n, dict(t), v] for (n, t), v in gauges.items()],
        "histograms": [[n, dict(t), c, total] for (n, t), (c, total) in histograms.items()],
    }


class InMemorySink:
    """A sink that keeps every value in dictionaries; for tests and for reading metrics back.

    It checks each write against :data:`METRICS` exactly as Prometheus and Ray would (known
    name, right kind, exactly the declared tag keys, counters only go up).
    """

    def __init__(self, specs: Iterable[MetricSpec] = METRICS) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.observations: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def _key(
        self, name: str, kind: MetricKind, tags: Mapping[str, str]
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        spec = self.specs.get(name)
        if spec is None:
            raise ValueError(f"unknown metric {name!r}")
        if spec.kind is not kind:
            raise ValueError(f"{name} is a {spec.kind}, not a {kind}")
        if set(tags) != set(spec.tag_keys):
            raise ValueError(f"{name} takes tags {spec.tag_keys}, got {tuple(tags)}")
        return name, tuple(sorted(tags.items()))

    def inc(self, name: str, amount: float, tags: Mapping[str, str]) -> None:
        if amount < 0:
            raise ValueError(f"{name}: a counter cannot go down (amount {amount})")
        key = self._key(name, MetricKind.COUNTER, tags)
        self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self.values[self._key(name, MetricKind.GAUGE, tags)] = value

    def observe(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self.observations.setdefault(self._key(name, MetricKind.HISTOGRAM, tags), []).append(value)

    def value(self, name: str, **tags: str) -> float:
        """A counter's or gauge's value for exactly these tags (0 if never written)."""
        return self.values.get((name, tuple(sorted(tags.items()))), 0.0)

    def total(self, name: str, **tags: str) -> float:
        """Sum of a counter over every tag set that includes ``tags``."""
        wanted = set(tags.items())
        return sum(v for (n, t), v in self.values.items() if n == name and wanted <= set(t))

    def tag_sets(self, name: str) -> list[dict[str, str]]:
        """The tag sets written for ``name``."""
        return [dict(t) for (n, t) in self.values if n == name] + [
            dict(t) for (n, t) in self.observations if n == name
        ]


Series = tuple[str, tuple[str, ...]]
"""A metric name and its tag values, in the order of the spec's ``tag_keys``."""

_TAG_KEYS: Final[Mapping[str, tuple[str, ...]]] = {spec.name: spec.tag_keys for spec in METRICS}


def _tags(name: str, values: tuple[str, ...]) -> dict[str, str]:
    # str() turns enum members (kept in series keys because they are cheap to read) into
    # plain strings, which is what every sink expects.
    return {key: str(value) for key, value in zip(_TAG_KEYS[name], values, strict=True)}


class GraphMetrics:
    """Counters, gauges and histograms of one graph, fed by the messages it publishes.

    Counter increments and gauge values are kept here and written to the sink by
    :meth:`flush`, which also runs by itself every ``flush_every`` observed messages: observing
    costs a dictionary update, and the sink sees one write per changed series per flush. A
    replay flushes after each chunk and at the end; a live host flushes after each batch it
    delivers (or on a timer), so quiet sessions still report promptly. Histogram observations
    are written at once.

    Not thread-safe: one instance per kernel or component host, fed from one thread.

    Args:
        sink: Where values are written.
        flush_every: Observed messages between automatic flushes.
    """

    def __init__(self, sink: MetricsSink, *, flush_every: int = 1024) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, was {flush_every}")
        self.sink = sink
        self.flush_every = flush_every
        # Per market kind: instrument -> events not yet written to the sink.
        self._pending: dict[str, dict[str, int]] = {kind: {} for kind in MARKET_KINDS.values()}
        self._market: dict[type[Message], dict[str, int]] = {
            kind: self._pending[label] for kind, label in MARKET_KINDS.items()
        }
        self._counts: dict[Series, float] = {}
        self._gauges: dict[Series, float] = {}
        self._budget = flush_every
        self._positions: set[str] = set()
        self._handlers: dict[type[Message], Callable[[Any], None]] = {
            OrderIntent: self._on_intent,
            SubmitOrder: self._on_submit,
            RiskRejected: self._on_risk_rejected,
            OrderRejected: self._on_order_rejected,
            OrderFilled: self._on_fill,
            PortfolioSnapshot: self._on_portfolio,
            KillSwitchChanged: self._on_kill_switch,
            StrategyError: self._on_strategy_error,
            FeedStatus: self._on_feed_status,
            VenueStatus: self._on_venue_status,
            PositionLiquidated: self._on_liquidation,
            FundingPaid: self._on_funding,
        }
        self._funding_paid: dict[tuple[str, str], float] = {}

    # -- the message stream -----------------------------------------------------------------

    def observe(self, msg: Message) -> None:
        """Account for one published message (types that are not measured are ignored)."""
        pending = self._market.get(type(msg))
        if pending is not None:
            # The per-tick path: one dictionary update, no sink call.
            instrument: str = msg.instrument_id  # type: ignore[attr-defined]
            pending[instrument] = pending.get(instrument, 0) + 1
        else:
            handler = self._handlers.get(type(msg))
            if handler is None:
                return
            handler(msg)
        self._budget -= 1
        if not self._budget:
            self.flush()

    def count_market_events(self, kind: str, instrument_id: str, count: int) -> None:
        """Account for ``count`` market events at once (a replay counts a whole chunk).

        Args:
            kind: ``bar``, ``trade``, ``quote`` or ``book``.
            instrument_id: e.g. ``BTCUSDT.BINANCE``.
            count: Events, >= 0.
        """
        if count <= 0:
            return
        pending = self._pending.get(kind)
        if pending is None:
            raise ValueError(
                f"market event kind must be one of {list(self._pending)}, was {kind!r}"
            )
        pending[instrument_id] = pending.get(instrument_id, 0) + count

    def flush(self) -> None:
        """Write every count and gauge value kept since the last flush to the sink."""
        sink = self.sink
        for kind, pending in self._pending.items():
            for instrument, count in pending.items():
                sink.inc(MARKET_EVENTS, count, {"instrument": instrument, "kind": kind})
            pending.clear()
        for (name, values), amount in self._counts.items():
            sink.inc(name, amount, _tags(name, values))
        self._counts.clear()
        for (name, values), value in self._gauges.items():
            sink.set(name, value, _tags(name, values))
        self._gauges.clear()
        self._budget = self.flush_every

    def _count(self, series: Series, amount: float = 1.0) -> None:
        counts = self._counts
        counts[series] = counts.get(series, 0.0) + amount

    def _on_intent(self, msg: OrderIntent) -> None:
        self._count((ORDER_INTENTS, (msg.strategy_id, msg.instrument_id)))

    def _on_submit(self, msg: SubmitOrder) -> None:
        self._count((ORDERS_SUBMITTED, (msg.strategy_id, msg.instrument_id)))

    def _on_risk_rejected(self, msg: RiskRejected) -> None:
        # StrEnum members are their own str value (``.value`` is a slower property lookup).
        self._count((REJECTIONS, ("risk", msg.reason, msg.strategy_id)))

    def _on_order_rejected(self, msg: OrderRejected) -> None:
        self._count((REJECTIONS, ("venue", reason_label(msg.reason), msg.strategy_id)))

    def _on_fill(self, msg: OrderFilled) -> None:
        self._count((FILLS, (msg.strategy_id, msg.instrument_id, msg.side)))
        self._count((FILLED_NOTIONAL, (msg.instrument_id,)), msg.last_qty * msg.last_px)

    def _on_portfolio(self, msg: PortfolioSnapshot) -> None:
        gauges = self._gauges
        gauges[(EQUITY, ())] = msg.equity
        # The snapshot's drawdown is in the quote currency; the gauge is a fraction of the peak.
        peak = msg.peak_equity
        gauges[(DRAWDOWN, ())] = msg.drawdown / peak if peak > 0.0 else 0.0
        held = set()
        for position in msg.positions:
            held.add(position.instrument_id)
            gauges[(POSITION, (position.instrument_id,))] = position.quantity
        # A position that left the snapshot is flat; a gauge would otherwise keep its last value.
        for instrument in self._positions - held:
            gauges[(POSITION, (instrument,))] = 0.0
        self._positions = held

    def _on_kill_switch(self, msg: KillSwitchChanged) -> None:
        self._gauges[(KILL_SWITCH_TRIPPED, ())] = 1.0 if msg.tripped else 0.0
        if msg.tripped:
            self._count((KILL_SWITCH_TRIPS, ()))

    def _on_strategy_error(self, msg: StrategyError) -> None:
        self._count((STRATEGY_ERRORS, (msg.strategy_id,)))

    def _on_feed_status(self, msg: FeedStatus) -> None:
        self._gauges[(FEED_STALE, (msg.instrument_id,))] = 1.0 if msg.stale else 0.0

    def _on_venue_status(self, msg: VenueStatus) -> None:
        self._gauges[(VENUE_AVAILABLE, (msg.venue,))] = 1.0 if msg.available else 0.0

    def _on_liquidation(self, msg: PositionLiquidated) -> None:
        self._count((LIQUIDATIONS, (msg.strategy_id, msg.instrument_id, msg.venue)))

    def _on_funding(self, msg: FundingPaid) -> None:
        # A gauge of the running total: funding may be received, and counters only rise.
        key = (msg.strategy_id, msg.instrument_id)
        total = self._funding_paid.get(key, 0.0) + msg.amount
        self._funding_paid[key] = total
        self._gauges[(FUNDING_PAID, key)] = total

    # -- what the transport knows -----------------------------------------------------------

    def set_queue_depth(self, component: str, depth: int) -> None:
        """Messages waiting for ``component`` (the live host reports its inbox); kept until
        the next flush."""
        self._gauges[(QUEUE_DEPTH, (component,))] = float(depth)

    def observe_tick_to_order(self, seconds: float) -> None:
        """Wall time from a market event's arrival to the ``SubmitOrder`` it caused (written
        at once)."""
        self.sink.observe(TICK_TO_ORDER, seconds, NO_TAGS)

    def observe_dropped(self, reason: str, instrument_id: str, count: int = 1) -> None:
        """Malformed market data dropped at the edge (``reason`` as the feed counts it); kept
        until the next flush."""
        if count > 0:
            self._count((MARKET_DATA_DROPPED, (reason, instrument_id)), float(count))


class BatchMetrics:
    """Progress of a scenario batch (Monte Carlo, stress) as the driver sees it."""

    def __init__(self, sink: MetricsSink) -> None:
        self.sink = sink

    def set_planned(self, scenarios: int) -> None:
        """Scenarios in the whole batch, including those already done by an earlier run."""
        self.sink.set(SCENARIOS_PLANNED, float(scenarios), NO_TAGS)

    def scenarios_finished(self, ok: int, failed: int) -> None:
        """``ok + failed`` scenarios finished, ``failed`` of them failed."""
        if ok + failed > 0:
            self.sink.inc(SCENARIOS_DONE, ok + failed, NO_TAGS)
        if failed > 0:
            self.sink.inc(SCENARIOS_FAILED, failed, NO_TAGS)
