"""The sim coordinator: steps an actor graph through simulated time, in the kernel's exact order.

``LocalKernel`` handles one event at a time in ``(ts, seq)`` order, and hands a market event to
its destinations in router order; every message published gets the next ``seq``. Components
share no state, so the same run can be taken in *waves*:

* a wave is every queued event at the smallest queued time (or one market event's fan-out);
* its events are grouped per destination, in ``seq`` order, and each group goes to its actor in
  one remote call, all actors of a wave at once;
* what each event caused comes back separately and is queued in the order of the events'
  ``seq`` (for a market event, in router order), exactly as the kernel would have queued it.

Everything an event publishes is queued at its own time with a ``seq`` above every event queued
before the wave began, so the kernel would have run the whole wave before any of it: waves give
the kernel's order. Timers follow the kernel's replace/cancel rule; a timer replaced or cancelled
earlier in the same wave is dropped by the host (see ``HostClock``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import ray

from tradegraph.actors.host import PUBLISH, SET_TIMER, Action, Delivery, Outputs
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import (
    Message,
)
from tradegraph.engine.assembly import build_router, component_ids
from tradegraph.engine.kernel import bar_at, market_event_order
from tradegraph.engine.schedule import EventSchedule
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.observability import get_logger

_first = itemgetter(0)


class SimCoordinator:
    """Runs a ``GraphConfig`` whose components are actors over a ``BarStream``, deterministically.

    Attributes mirror ``LocalKernel``'s: ``ledger``, ``control``, ``bars_processed``,
    ``trades_processed``, ``events_processed``; ``waves`` and ``remote_calls`` count the steps
    and the actor calls they took.

    Args:
        config: The graph's configuration (for routing and build order).
        hosts: Component id -> actor handle of a ``ComponentHost``.
        stream: Bars to replay.
        trades: Trade ticks to replay, merged with the bars by time.
        on_control: Called with every message addressed to the driver.
    """

    def __init__(
        self,
        config: GraphConfig,
        hosts: Mapping[str, Any],
        stream: BarStream,
        *,
        trades: TradeStream | None = None,
        on_control: Callable[[Message], None] | None = None,
    ) -> None:
        self.config = config
        self.stream = stream
        self.trades = trades if trades is not None and len(trades) else None
        self.router = build_router(config)
        self._order = component_ids(config)
        missing = [cid for cid in self._order if cid not in hosts]
        if missing:
            raise ValueError(f"no actor for components {missing}")
        self._hosts = dict(hosts)
        first = [int(s.ts_ns[0]) for s in (stream, self.trades) if s is not None and len(s)]
        self.now_ns = min(first) - 1 if first else 0
        self._log = get_logger("coordinator", session_id=config.name)
        self.schedule = EventSchedule(self.router, self._log, on_control=on_control)
        self.ledger = self.schedule.ledger
        self.control = self.schedule.control
        self._heap = self.schedule.heap
        self.bars_processed = 0
        self.trades_processed = 0
        self.events_processed = 0
        self.waves = 0
        self.remote_calls = 0

    @property
    def market_event_count(self) -> int:
        return len(self.stream) + (len(self.trades) if self.trades is not None else 0)

    # -- turning actions into queued events -------------------------------------------------

    def _apply(self, source: str, actions: Sequence[Action]) -> None:
        now = self.now_ns
        schedule = self.schedule
        for kind, payload, at_ns in actions:
            if kind == PUBLISH:
                assert isinstance(payload, Message)
                schedule.publish(payload, now)
            elif kind == SET_TIMER:
                assert isinstance(payload, str)
                schedule.set_timer(source, payload, at_ns, now)
            else:
                assert isinstance(payload, str)
                schedule.cancel_timer(source, payload)

    # -- stepping ---------------------------------------------------------------------------

    def _step(self, ts_ns: int, events: Sequence[tuple[int, str, Message]]) -> None:
        """Deliver ``(order key, destination, message)`` events at ``ts_ns``, one call per actor.

        Actions come back per event and are applied in order-key order.
        """
        groups: dict[str, list[Delivery]] = {}
        keys: dict[str, list[int]] = {}
        for key, dest, msg in events:
            group = groups.get(dest)
            if group is None:
                groups[dest] = group = []
                keys[dest] = []
            group.append((ts_ns, msg))
            keys[dest].append(key)
        dests = list(groups)
        hosts = self._hosts
        results: list[Outputs] = ray.get([hosts[d].deliver.remote(groups[d]) for d in dests])
        self.waves += 1
        self.remote_calls += len(dests)
        self.events_processed += len(events)
        caused: list[tuple[int, str, list[Action]]] = []
        for dest, outputs in zip(dests, results, strict=True):
            dest_keys = keys[dest]
            for index, actions in outputs:
                caused.append((dest_keys[index], dest, actions))
        if len(caused) > 1:
            caused.sort(key=_first)
        for _, dest, actions in caused:
            self._apply(dest, actions)

    def _drain(self, until_ns: int) -> None:
        heap = self._heap
        pop = self.schedule.pop
        while heap and heap[0][0] <= until_ns:
            ts = heap[0][0]
            wave: list[tuple[int, str, Message]] = []
            while heap and heap[0][0] == ts:
                event = pop()
                if event is not None:  # else a cancelled or replaced timer
                    _, seq, dest, msg = event
                    wave.append((seq, dest, msg))
            if wave:
                self.now_ns = ts
                self._step(ts, wave)

    def _market_event(self, msg: Message, destinations: tuple[str, ...]) -> None:
        ts = msg.ts_event_ns
        if self._heap and self._heap[0][0] <= ts:
            self._drain(ts)
        self.now_ns = ts
        if destinations:
            self._step(ts, [(i, dest, msg) for i, dest in enumerate(destinations)])

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every component, in build order, and queue what they did."""
        results = ray.get([self._hosts[cid].start.remote(self.now_ns) for cid in self._order])
        for cid, actions in zip(self._order, results, strict=True):
            self._apply(cid, actions)

    def stop(self) -> None:
        """Stop every component, in build order; what they publish is recorded, not delivered."""
        results = ray.get([self._hosts[cid].stop.remote(self.now_ns) for cid in self._order])
        for cid, actions in zip(self._order, results, strict=True):
            self._apply(cid, actions)

    def run(self) -> None:
        """Start every component, replay the whole stream, drain what is due, stop."""
        self.start()
        self.replay(0, self.market_event_count)
        self._drain(self.now_ns)
        self.stop()

    def replay(self, begin: int, end: int) -> None:
        """Deliver market events ``begin:end`` and every queued event due in between."""
        stream = self.stream
        bar_destinations = [self.router.market_destinations(i) for i in stream.instrument_ids]
        if self.trades is None:
            for i in range(begin, end):
                k = int(stream.instrument_index[i])
                self._market_event(bar_at(stream, i), bar_destinations[k])
                self.bars_processed += 1
            return
        trades = self.trades
        trade_destinations = [self.router.market_destinations(i) for i in trades.instrument_ids]
        for ref in market_event_order(stream, trades)[begin:end].tolist():
            if ref >= 0:
                k = int(stream.instrument_index[ref])
                self._market_event(bar_at(stream, ref), bar_destinations[k])
                self.bars_processed += 1
            else:
                i = -1 - ref
                k = int(trades.instrument_index[i])
                self._market_event(trades.trade(i), trade_destinations[k])
                self.trades_processed += 1
