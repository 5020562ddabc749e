"""The in-process kernel: every component in one process under a simulated clock.

One event heap ordered by ``(ts, seq)``; a bar stream merged into it lazily. Before a bar at time
``t`` is delivered, every queued event with ``ts <= t`` runs; the bar then goes to its
destinations in router order, and whatever they publish is queued at ``t`` behind it: a
breadth-first walk of what the bar caused. This order is the determinism contract the actor
graph reproduces (``actors/causal_order.py``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tradegraph.config.models import GraphConfig
from tradegraph.contracts import (
    CONTROL,
    Bar,
    Component,
    Message,
    strategy_component_id,
)
from tradegraph.contracts.base import set_extra, set_fields_set, set_instance_dict, set_private
from tradegraph.engine.assembly import build_components, build_router
from tradegraph.engine.schedule import EventSchedule
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import ConfigError
from tradegraph.observability import get_logger
from tradegraph.observability.audit import AuditFolder
from tradegraph.observability.metrics import GraphMetrics

_new = object.__new__
_BAR_FIELDS = Bar._field_set
REPLAY_CHUNK = 65_536


@contextmanager
def _young_gc_relaxed() -> Iterator[None]:
    """Collect the young generation less often while replaying.

    A replay allocates millions of short-lived messages that reference counting frees at once;
    with the default threshold the cyclic collector would still walk the young generation every
    700 allocations. Long-lived state is moved out of its way with ``gc.freeze``.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def bar_at(stream: BarStream, i: int) -> Bar:
    """Bar ``i`` of ``stream`` as a message (the columns were validated by the feed)."""
    k = int(stream.instrument_index[i])
    ts = int(stream.ts_ns[i])
    return Bar.trusted(
        instrument_id=stream.instrument_ids[k],
        open=float(stream.open[i]),
        high=float(stream.high[i]),
        low=float(stream.low[i]),
        close=float(stream.close[i]),
        volume=float(stream.volume[i]),
        interval_ns=int(stream.interval_ns[k]),
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def market_event_order(stream: BarStream, trades: TradeStream) -> Any:
    """Positions of bars (>= 0) and trades (< 0, as ``-1 - i``) in delivery order.

    A bar stamped ``t`` closes the interval ending at ``t``; a trade at ``t`` opens the next
    one, so at equal times the bar goes first.
    """
    nb, nt = len(stream), len(trades)
    ts = np.concatenate((stream.ts_ns, trades.ts_ns))
    kind = np.concatenate((np.zeros(nb, np.int8), np.ones(nt, np.int8)))
    ref = np.concatenate((np.arange(nb, dtype=np.int64), -1 - np.arange(nt, dtype=np.int64)))
    return ref[np.lexsort((np.arange(nb + nt), kind, ts))]


class _KernelClock:
    """The clock one component sees: kernel time, and timers that go through the kernel heap."""

    __slots__ = ("_kernel", "_owner")

    def __init__(self, kernel: LocalKernel, owner: str) -> None:
        self._kernel = kernel
        self._owner = owner

    def now_ns(self) -> int:
        return self._kernel.now_ns

    def set_timer(self, name: str, at_ns: int) -> None:
        self._kernel.schedule_timer(self._owner, name, at_ns)

    def cancel_timer(self, name: str) -> None:
        self._kernel.cancel_timer(self._owner, name)


class _KernelOutbox:
    __slots__ = ("_kernel", "_source")

    def __init__(self, kernel: LocalKernel, source: str) -> None:
        self._kernel = kernel
        self._source = source

    def publish(self, msg: Message) -> None:
        self._kernel.publish(self._source, msg)


class LocalKernel:
    """Runs one ``GraphConfig`` over a ``BarStream`` in this process, deterministically.

    Attributes:
        components: component id -> component, in build order.
        ledger: one row per order, folded from the order-path messages as they pass.
        journal: with ``keep_journal=True``, every message a component published, in order
            (portfolio snapshots excepted); empty otherwise, to keep memory flat.
        control: messages addressed to the driver (strategy errors, kill-switch changes,
            risk rejections).
        metrics: when given, observes every published message; market events are counted in
            bulk per replay chunk (not per event) and flushed to its sink after each chunk.
        audit: when given, every message a component publishes (market data, portfolio
            snapshots and timers aside) is recorded in the component's audit chain.
    """

    def __init__(
        self,
        config: GraphConfig,
        stream: BarStream,
        *,
        trades: TradeStream | None = None,
        on_control: Callable[[Message], None] | None = None,
        keep_journal: bool = False,
        metrics: GraphMetrics | None = None,
        audit: AuditFolder | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.audit = audit
        self.stream = stream
        self.trades = trades if trades is not None and len(trades) else None
        self.router = build_router(config)
        first = [int(s.ts_ns[0]) for s in (stream, self.trades) if s is not None and len(s)]
        self.now_ns = min(first) - 1 if first else 0
        self._mixed_order = self._merge_order() if self.trades is not None else None
        self._log = get_logger("kernel", session_id=config.name)
        self.schedule = EventSchedule(
            self.router, self._log, on_control=on_control, keep_journal=keep_journal
        )
        self.ledger = self.schedule.ledger
        self.control = self.schedule.control
        self.journal = self.schedule.journal
        self._heap = self.schedule.heap
        self.components: dict[str, Component] = build_components(
            config,
            lambda cid: _KernelClock(self, cid),
            lambda cid: _KernelOutbox(self, cid),
        )
        self._handlers: dict[str, Callable[[Message], None]] = {
            cid: comp.handle for cid, comp in self.components.items()
        }
        self.bars_processed = 0
        self.trades_processed = 0
        self.events_processed = 0

    # -- scheduling -------------------------------------------------------------------------

    def publish(self, source: str, msg: Message) -> None:
        """Queue ``msg`` for its destinations at the current time."""
        self.schedule.publish(msg, self.now_ns)
        if self.metrics is not None:
            self.metrics.observe(msg)
        if self.audit is not None:
            self.audit.publish(source, msg)

    def schedule_timer(self, owner: str, name: str, at_ns: int) -> None:
        self.schedule.set_timer(owner, name, at_ns, self.now_ns)

    def cancel_timer(self, owner: str, name: str) -> None:
        self.schedule.cancel_timer(owner, name)

    def inject(self, msg: Message) -> None:
        """Deliver a message from outside the graph (a test, an operator) at the current time."""
        self.publish(CONTROL, msg)

    def _drain(self, until_ns: int) -> None:
        heap = self._heap
        handlers = self._handlers
        pop = self.schedule.pop
        while heap and heap[0][0] <= until_ns:
            event = pop()
            if event is None:
                continue  # a cancelled or replaced timer
            ts, _, dest, msg = event
            self.now_ns = ts
            self.events_processed += 1
            handlers[dest](msg)

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.metrics is not None:
            self._report_dropped(self.metrics)
        for comp in self.components.values():
            comp.start()

    def stop(self) -> None:
        for comp in self.components.values():
            comp.stop()
        if self.metrics is not None:
            self.metrics.flush()

    def _report_dropped(self, metrics: GraphMetrics) -> None:
        """Rows the feed dropped while preparing the streams, by reason and instrument."""
        for dropped in (self.stream.dropped, self.trades.dropped if self.trades else {}):
            for instrument_id, counts in dropped.items():
                for reason, count in counts.items():
                    metrics.observe_dropped(reason, instrument_id, count)

    def run(self, warmup: BarStream | None = None) -> None:
        """Start every component, replay the whole stream, drain what is due, stop.

        Args:
            warmup: Bars before the stream that only warm the strategies up (see
                :meth:`warm_up`).
        """
        self.start()
        if warmup is not None and len(warmup):
            self.warm_up(warmup)
        with _young_gc_relaxed():
            self.replay(0, self.market_event_count)
        self._drain(self.now_ns)
        self.stop()

    def warm_up(self, warmup: BarStream) -> None:
        """Deliver ``warmup`` (bars before the stream) to the strategies alone, in order.

        Risk, venues and the portfolio never see these bars, so nothing is marked, filled or
        counted; a strategy that sends an order while warming up is refused with an error,
        since its warm-up would then trade.

        Raises:
            ConfigError: a strategy sent an order during the warm-up.
        """
        strategies = {strategy_component_id(s.id) for s in self.config.strategies}
        destinations = [
            tuple(self._handlers[d] for d in self.router.market_destinations(i) if d in strategies)
            for i in warmup.instrument_ids
        ]
        intents_before = self.ledger.intents
        for i in range(len(warmup)):
            bar = bar_at(warmup, i)
            if self._heap and self._heap[0][0] <= bar.ts_event_ns:
                self._drain(bar.ts_event_ns)
            self.now_ns = bar.ts_event_ns
            for handle in destinations[int(warmup.instrument_index[i])]:
                handle(bar)
            if self.ledger.intents != intents_before:
                raise ConfigError(
                    f"a strategy sent an order during its warm-up (bar {i + 1} of {len(warmup)} "
                    f"before data.trade_start): it needs fewer warm-up bars than it was given "
                    "or its warmup_bars is wrong"
                )

    @property
    def market_event_count(self) -> int:
        """Bars plus trade ticks to replay."""
        return len(self.stream) + (len(self.trades) if self.trades is not None else 0)

    def _merge_order(self) -> Any:
        assert self.trades is not None
        return market_event_order(self.stream, self.trades)

    def replay(self, begin: int, end: int) -> None:
        """Deliver market events ``begin:end`` (and every queued event due in between).

        With bars only, events are bars and a fast path builds them straight from the columns,
        one chunk at a time so memory stays flat however long the stream. With trade ticks too,
        bars and ticks are interleaved by time.
        """
        if self._mixed_order is None:
            for lo in range(begin, end, REPLAY_CHUNK):
                self._replay_chunk(lo, min(end, lo + REPLAY_CHUNK))
            return
        assert self.trades is not None
        bar_destinations = [
            tuple(self._handlers[d] for d in self.router.market_destinations(i))
            for i in self.stream.instrument_ids
        ]
        trade_destinations = [
            tuple(self._handlers[d] for d in self.router.market_destinations(i))
            for i in self.trades.instrument_ids
        ]
        for lo in range(begin, end, REPLAY_CHUNK):
            refs = self._mixed_order[lo : min(end, lo + REPLAY_CHUNK)]
            self._replay_mixed(refs, bar_destinations, trade_destinations)
            if self.metrics is not None:
                self._count_mixed(self.metrics, refs)

    def _replay_mixed(
        self,
        refs: Any,
        bar_destinations: list[tuple[Callable[[Message], None], ...]],
        trade_destinations: list[tuple[Callable[[Message], None], ...]],
    ) -> None:
        assert self.trades is not None
        trades = self.trades
        bars_iter = self.stream
        for ref in refs.tolist():
            if ref >= 0:
                k = int(bars_iter.instrument_index[ref])
                msg: Message = bar_at(bars_iter, ref)
                destinations = bar_destinations[k]
                self.bars_processed += 1
            else:
                i = -1 - ref
                msg = trades.trade(i)
                destinations = trade_destinations[int(trades.instrument_index[i])]
                self.trades_processed += 1
            ts = msg.ts_event_ns
            if self._heap and self._heap[0][0] <= ts:
                self._drain(ts)
            self.now_ns = ts
            for handle in destinations:
                handle(msg)

    def _count_mixed(self, metrics: GraphMetrics, refs: Any) -> None:
        """Count a chunk of interleaved bars and trades per instrument, then flush."""
        assert self.trades is not None
        bar_refs = refs[refs >= 0]
        trade_refs = -1 - refs[refs < 0]
        for kind, stream_ids, index in (
            ("bar", self.stream.instrument_ids, self.stream.instrument_index[bar_refs]),
            ("trade", self.trades.instrument_ids, self.trades.instrument_index[trade_refs]),
        ):
            counts = np.bincount(index, minlength=len(stream_ids)).tolist()
            for instrument_id, count in zip(stream_ids, counts, strict=True):
                metrics.count_market_events(kind, instrument_id, count)
        metrics.flush()

    def _replay_chunk(self, begin: int, end: int) -> None:
        stream = self.stream
        router = self.router
        handlers = self._handlers
        ids = stream.instrument_ids
        intervals = stream.interval_ns.tolist()
        destinations = [tuple(handlers[d] for d in router.market_destinations(i)) for i in ids]
        heap = self._heap
        drain = self._drain
        fields = _BAR_FIELDS
        for k, o, h, lo, c, v, ts in zip(
            stream.instrument_index[begin:end].tolist(),
            stream.open[begin:end].tolist(),
            stream.high[begin:end].tolist(),
            stream.low[begin:end].tolist(),
            stream.close[begin:end].tolist(),
            stream.volume[begin:end].tolist(),
            stream.ts_ns[begin:end].tolist(),
            strict=True,
        ):
            if heap and heap[0][0] <= ts:
                drain(ts)
            self.now_ns = ts
            # Validated in bulk by the feed: build the message without per-field checks.
            bar = _new(Bar)
            set_instance_dict(
                bar,
                {
                    "instrument_id": ids[k],
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": v,
                    "interval_ns": intervals[k],
                    "ts_event_ns": ts,
                    "ts_init_ns": ts,
                },
            )
            set_fields_set(bar, fields)
            set_extra(bar, None)
            set_private(bar, None)
            for handle in destinations[k]:
                handle(bar)
        self.bars_processed += end - begin
        if self.metrics is not None:
            # Counted per chunk, not per bar: the replay loop stays as fast as without metrics.
            counts = np.bincount(stream.instrument_index[begin:end], minlength=len(ids)).tolist()
            for instrument_id, count in zip(ids, counts, strict=True):
                self.metrics.count_market_events("bar", instrument_id, count)
            self.metrics.flush()

    def component(self, component_id: str) -> Any:
        return self.components[component_id]
