"""The live actor shell: a component in real time, talking to its peers through its links.

One loop: a batch arrives (``push``) -> the inbox orders, dedupes and fences it (``inbox.py``)
-> it is journaled (``recovery.py``) -> the component handles it -> what it published is sent
on its links (``links.py``: sequencing, resends after a peer restarts, hang detection). Every
call to a peer goes through a ``PeerTransport``; what a component says about itself in
``status`` is chosen by its role (``roles.py``).

``LiveHost`` is a plain class made remote at wiring time as an *async* actor. Its methods never
await while they handle messages, so each call runs to completion on the actor's event loop:
the component sees one message at a time, as in the backtest.

Transport, per link (sender -> receiver):

* Everything a component publishes while it handles one batch goes out when the batch is done,
  one remote call per receiver (a batch published to several receivers with identical content
  is put into the object store once).
* Batches carry ``(sender, incarnation, seq)``. The receiver handles a sender's batches in
  ``seq`` order (holding any that arrive early) and ignores one it has already handled, so a
  batch may be sent again safely: delivery is exactly-once over an at-least-once link.
* A batch whose call fails because the receiver died is sent again once Ray has restarted the
  receiver; the receiver recovers what it had handled from its snapshot and journal (see
  ``journal.py``) and recognises the resend. This is not a blind retry of an order-path call:
  the receiver decides, by sequence number, whether it has seen the batch.
* Causal fences: what a component publishes carries, for every receiver of market data, the
  last ``md`` batch (``md``'s incarnation and its sequence number on that receiver's link) that
  went out before the market data it handled. A receiver holds a batch from anyone but ``md``
  until it has taken that ``md`` batch itself, so a broker never sees an order before the bar
  that caused it, nor a strategy a fill before the bar it was filled on: the backtest's order.
* Causal order (a causal data-clock session): what one market event causes reaches every
  receiver in the kernel's breadth-first order, whoever sends it. Batches carry the causal key
  of each message and a mode: a batch from a host that was alone in its generation is taken at
  once; any other is held until ``md`` settles the generation, and the receiver then takes all
  it holds merged by key (``settle``). See ``causal_order.py`` for the rule.
* A receiver on the order path (risk, a broker, the portfolio) that stays dead, or leaves a
  batch unanswered for ``session.hang_timeout_s``, halts trading: Risk is told to trip its kill
  switch with the reason, and the driver is told too.

* ``md``'s replay is exactly-once across its own restarts: before a replay batch goes out, its
  range of events and the sequence numbers it takes on each link are journaled. A restarted
  ``md`` keeps its incarnation, sends again every batch not known to be taken (its receivers
  recognise the ones they already have), and goes on from where it stopped. An ``md`` that
  restarts with no recovery state to resume from halts trading instead of replaying again.

Recovery contract: ``push`` is idempotent per ``(sender, incarnation, seq)``; ``request`` (an
operator command) and ``start``/``stop`` are not, and are never retried (``max_task_retries=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import ray

from tradegraph.actors.causal_order import (
    CausalOrder,
    CausalReport,
    Holding,
    Key,
    Mode,
    causal_runs,
    merge_holding,
)
from tradegraph.actors.causal_order import TimerReport as TimerReport
from tradegraph.actors.causal_order import merge_timer_reports as merge_timer_reports
from tradegraph.actors.gateway import GatewayBroker
from tradegraph.actors.inbox import Batch, Fence, Inbox
from tradegraph.actors.links import (
    Links,
    PeerFailure,
    PeerTransport,
    RayPeerTransport,
    split_by_destination,
)
from tradegraph.actors.links import on_order_path as on_order_path
from tradegraph.actors.live_clock import DataClock, WallClock
from tradegraph.actors.metrics import RayMetricsSink
from tradegraph.actors.recovery import Recovery, ReplayBatch, continue_order_ids
from tradegraph.actors.roles import Describer, describer_for
from tradegraph.actors.wire import (
    BLOCK_KINDS,
    BlockRouter,
    Item,
    MarketBlock,
    expand,
    message_count,
)
from tradegraph.adapters.base import MarketDataSource
from tradegraph.config.alert_events import message_types
from tradegraph.config.models import GraphConfig, LiveMode
from tradegraph.contracts import (
    CONTROL,
    MARKET_DATA,
    RISK,
    AccountBalances,
    ActorRestarted,
    Bar,
    Component,
    KillSwitchMode,
    Message,
    OrderBookSnapshot,
    Outbox,
    PortfolioSnapshot,
    QuoteTick,
    SubmitOrder,
    TimerFired,
    TradeTick,
    TripKillSwitch,
    VenueBanned,
)
from tradegraph.contracts.state import ComponentState
from tradegraph.engine.assembly import build_component, build_router, component_ids
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.engine.recording import MarketRecorder
from tradegraph.engine.schedule import log_for_operator
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.observability import get_logger
from tradegraph.observability.alert_sender import AlertSender
from tradegraph.observability.alerts import AlertRules, AlertRulesState, rule_message_types
from tradegraph.observability.audit import (
    AuditChain,
    AuditWriteError,
    TornLine,
    chain_file_name,
    config_digest,
)
from tradegraph.observability.guards import (
    CLOCK_DRIFT,
    MEMORY,
    TICK_TO_ORDER,
    GuardSet,
    MemoryReader,
    resident_memory_mb,
)
from tradegraph.observability.metrics import GraphMetrics, MetricTotals, TeeSink, TotalsSink

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

OPERATOR = "operator"
# Market data moves a data clock by its event time; everything else by when it was created.
_MARKET_TYPES = frozenset({Bar, TradeTick, QuoteTick, OrderBookSnapshot})
# Batches for several receivers with at least this many messages are put in the object store.
_SHARED_PAYLOAD_MIN = 1024
# What a host keeps of what it published, for the session's order table and its message
# counts: everything the kernel's ledger sees (all but portfolio snapshots), market data aside
# (and a live venue's balances, which the kernel never sees).
_UNLEDGERED_TYPES = frozenset({AccountBalances, PortfolioSnapshot, TimerFired, *_MARKET_TYPES})


def _untracked(method: F) -> F:
    """Keep Ray from recording an event per call of ``method`` in its GCS (see
    benchmarks/gcs_memory.py); the method stays a plain method outside Ray."""
    return cast(F, ray.method(enable_task_events=False)(method))


def live_component_ids(config: GraphConfig) -> tuple[str, ...]:
    """Actors of a live session in start order: control, the graph's components, then md."""
    from tradegraph.engine.assembly import component_ids

    return (CONTROL, *component_ids(config), MARKET_DATA)


class ControlState(ComponentState):
    """All of a :class:`ControlSink`'s state (the kept messages are a view, not state).

    Attributes:
        counts: Messages received, by message type name.
        halt_reason: Why trading was halted (the last ``TripKillSwitch``), or ``""``.
        alerts: What the alert rules remember (deduplication, rate limits, counts).
    """

    schema_version: int = 2
    counts: dict[str, int]
    halt_reason: str
    alerts: AlertRulesState = AlertRulesState()


class ControlSink:
    """The ``control`` component of a session: keeps what is addressed to the driver, and
    raises the alerts of ``config.alerts``.

    Strategy errors, kill-switch changes, risk rejections and halts are logged as they come;
    the last ``keep`` messages are kept for ``tradegraph status``. Every message is also
    handed to the alert rules; what they raise is queued for a background sender, so
    handling a message never waits for a notification service. Hosts also send ``control``
    the messages some rule reads that nothing else addresses to it (fills, rejections,
    portfolio snapshots...): those are read by the rules alone, neither counted nor kept.

    Args:
        session_id: Names the session in logs and alerts.
        keep: How many messages to keep.
        config: The graph (its ``alerts`` section and routing); none: no alerts.
        environ: The environment values the alert channels' URLs name.
        sender: Sends the alerts (built from ``config.alerts`` and ``environ`` unless given).
    """

    component_id = CONTROL
    State = ControlState

    def __init__(
        self,
        session_id: str,
        keep: int = 1000,
        *,
        config: GraphConfig | None = None,
        environ: Mapping[str, str] | None = None,
        sender: AlertSender | None = None,
    ) -> None:
        self.messages: deque[Message] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}
        self.halt_reason = ""
        self._log = get_logger(CONTROL, session_id=session_id)
        alerts = config.alerts if config is not None else None
        self.alert_rules = (
            AlertRules(alerts, session_id) if alerts is not None and alerts.rules else None
        )
        self._router = build_router(config) if config is not None else None
        self._taps = alert_taps(config) if config is not None else frozenset()
        self.sender = sender
        if self.alert_rules is not None and sender is None and alerts is not None:
            self.sender = AlertSender.from_config(alerts, environ or {}, session_id)
        self._stop_timeout_s = alerts.stop_timeout_s if alerts is not None else 0.0

    def start(self) -> None:
        return None

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.close(self._stop_timeout_s)

    def handle(self, msg: Message) -> None:
        if self.alert_rules is not None:
            for alert in self.alert_rules.observe(msg):
                self._log.warning(
                    "alert_raised",
                    rule=alert.rule_id,
                    severity=alert.severity,
                    key=alert.key,
                    title=alert.title,
                )
                if self.sender is not None:
                    self.sender.submit(alert)
        if self._tapped(msg):
            return
        name = type(msg).__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        self.messages.append(msg)
        if isinstance(msg, TripKillSwitch):
            self.halt_reason = msg.reason
            self._log.error("trading_halted", reason=msg.reason)
        else:
            log_for_operator(self._log, msg)

    def _tapped(self, msg: Message) -> bool:
        """Whether ``msg`` came only because an alert rule reads it."""
        return (
            type(msg) in self._taps
            and type(msg) is not TripKillSwitch  # halts are sent here directly
            and self._router is not None
            and CONTROL not in self._router.destinations(msg)
        )

    def alert_counts(self) -> dict[str, int]:
        """Alerts held back by deduplication and rate limits, and sent, failed and dropped."""
        counts: dict[str, int] = {}
        if self.alert_rules is not None:
            counts["duplicates"] = self.alert_rules.duplicates
            counts["rate_limited"] = self.alert_rules.rate_limited
        if self.sender is not None:
            counts.update(self.sender.counts())
        return counts

    def snapshot(self) -> ControlState:
        return ControlState(
            counts=dict(self.counts),
            halt_reason=self.halt_reason,
            alerts=(
                self.alert_rules.snapshot() if self.alert_rules is not None else AlertRulesState()
            ),
        )

    def restore(self, state: ControlState) -> None:
        self.counts = dict(state.counts)
        self.halt_reason = state.halt_reason
        if self.alert_rules is not None:
            self.alert_rules.restore(state.alerts)


def alert_taps(config: GraphConfig) -> frozenset[type[Message]]:
    """The message types the alert rules of ``config`` read: a host sends ``control`` every
    one of them it publishes, whether or not the routing table addresses it there."""
    kinds = message_types()
    return frozenset(kinds[name] for name in rule_message_types(config.alerts) if name in kinds)


@dataclass
class HostStatus:
    """What a host reports about itself to ``tradegraph status`` and the driver's health check."""

    component_id: str
    pid: int
    incarnation: int
    recovered: bool
    clock_ns: int
    batches_in: int
    messages_in: int
    messages_out: int
    queue_depth: int
    held_batches: int
    halted: str
    details: dict[str, Any]
    metrics: MetricTotals = field(default_factory=dict)
    # ``(file name, line number, line hash)`` of the host's audit chain once it is closed.
    audit_head: tuple[str, int, str] | None = None


class ReplaySource:
    """Market data of the config's data section, published by the ``md`` host at a pace.

    Events come out as columnar blocks (slices of the loaded streams, bars and trades in
    delivery order), never as one object per event. The columns were validated when they were
    loaded: bad rows were dropped, counted and logged there.
    """

    def __init__(
        self,
        config: GraphConfig,
        bars: BarStream | None = None,
        trades: TradeStream | None = None,
    ) -> None:
        from tradegraph.engine.backtest import load_bar_stream, load_trade_stream
        from tradegraph.engine.kernel import market_event_order

        # Given streams (a stressed history, a Monte Carlo path) replace the data section.
        if bars is None and trades is None:
            bars = load_bar_stream(config)
            trades = load_trade_stream(config)
        bars = bars if bars is not None else BarStream.empty()
        self._bars = bars
        self._trades = trades if trades is not None and len(trades) else None
        self._order: npt.NDArray[np.int64] | None = None
        self._ts = bars.ts_ns
        if self._trades is not None:
            order = market_event_order(bars, self._trades)
            self._order = order
            self._ts = np.where(
                order >= 0,
                bars.ts_ns[np.maximum(order, 0)] if len(bars) else 0,
                self._trades.ts_ns[np.maximum(-1 - order, 0)],
            )
        self.total = len(self._ts)
        self.dropped = {**bars.dropped, **(trades.dropped if trades is not None else {})}
        self.published = 0
        self.finished = self.total == 0
        # Wall time (Unix seconds) of the first batch this source gave out.
        self.started_at: float | None = None

    def skip_through(self, ts_ns: int) -> None:
        """Drop events at or before ``ts_ns`` (already published before a restart)."""
        skipped = int(np.searchsorted(self._ts, ts_ns, side="right"))
        self.published = max(self.published, skipped)
        self.finished = self.published >= self.total

    def take(self, until_ts_ns: int | None, limit: int) -> list[MarketBlock]:
        """Up to ``limit`` next events, stopping before the first later than ``until_ts_ns``."""
        start = self.published
        stop = min(self.total, start + limit)
        if until_ts_ns is not None:
            stop = min(stop, int(np.searchsorted(self._ts, until_ts_ns, side="right")))
        if stop <= start:
            return []
        self.seek(stop)
        return self.rows(start, stop)

    def seek(self, position: int) -> None:
        """Go on from event ``position`` (events before it count as published)."""
        self.published = position
        self.finished = position >= self.total
        if self.started_at is None:
            self.started_at = time.time()

    def ts_ns(self, position: int) -> int:
        """Event time of event ``position``."""
        return int(self._ts[position])

    def rows(self, start: int, stop: int) -> list[MarketBlock]:
        """Events ``[start, stop)`` as blocks, bars and trades in delivery order."""
        if self._order is None or self._trades is None:
            return [self._bars.rows(slice(start, stop))]
        refs = self._order[start:stop]
        is_bar = refs >= 0
        runs = np.split(refs, np.flatnonzero(is_bar[1:] != is_bar[:-1]) + 1)
        trades = self._trades
        return [self._bars.rows(run) if run[0] >= 0 else trades.rows(-1 - run) for run in runs]

    @property
    def next_ts_ns(self) -> int | None:
        return None if self.finished else int(self._ts[self.published])


class LiveHost:
    """Hosts the component ``component_id`` of ``config`` in a paper or live session.

    Args:
        config: The whole graph's configuration; ``config.session`` says how the session runs.
        component_id: ``md``, ``control``, ``risk``, ``portfolio``, ``broker:<venue>`` or
            ``strategy:<id>``.
        session_id: Names the session in logs and in the state directory.
        state_dir: Where snapshots and journals go (``None``: no recovery state).
        environ: For a broker of a dry-run or live session: the live gate and credentials
            (:func:`tradegraph.actors.gateway.broker_environment`); for ``control``, the
            environment values the alert channels' URLs name.
        replay: For ``md`` of a replay: the bar and trade streams to replay instead of the
            config's data section.
        transport: How batches reach the peers (Ray actor handles unless given).
        md_sources: For ``md`` of a live session: builds its market-data sources from the feed
            and the outbox (one ccxt client per live venue unless given).
        audit_dir: The session's audit folder: the host appends what it publishes (all but
            market data, portfolio snapshots, balances and timers), the operator commands it
            takes and its halts to its own chain there (``None``: no audit trail).

    Audit: every host writes its own chain file rather than sending records to one writer, so
    auditing adds no remote call to the order path. Records are buffered as messages are
    published and written in one go when the host flushes what a batch caused, *before* it
    is sent (``fsync`` too in a live session): whatever a peer received is on disk first. A
    chain that cannot be written halts trading.
    """

    def __init__(
        self,
        config: GraphConfig,
        component_id: str,
        session_id: str,
        state_dir: str | None = None,
        environ: Mapping[str, str] | None = None,
        replay: tuple[BarStream | None, TradeStream | None] | None = None,
        transport: PeerTransport | None = None,
        md_sources: SourceFactory | None = None,
        memory_mb: MemoryReader = resident_memory_mb,
        audit_dir: str | None = None,
    ) -> None:
        self.config = config
        self._md_sources = md_sources or _ccxt_sources
        self.session = config.session
        self._replay_streams = replay
        self.component_id = component_id
        self.session_id = session_id
        self.router = build_router(config)
        # What alert rules read goes to control too (nothing, without rules).
        self._alert_taps = alert_taps(config) if component_id != CONTROL else frozenset()
        self._blocks = BlockRouter(self.router)
        self.incarnation = time.time_ns()
        self._log = get_logger(component_id, session_id=session_id)
        self._clock: DataClock | WallClock = (
            DataClock() if self.session.clock == "data" else WallClock(self._fire_wall_timer)
        )
        self._outbox = _LiveOutbox(self)
        # Ray's metrics agent exports what actors record; the totals also travel with each
        # status report, for the driver's own /metrics port.
        self._metric_totals = TotalsSink()
        self.metrics = GraphMetrics(TeeSink(RayMetricsSink(), self._metric_totals))
        self._audit = self._open_audit(audit_dir)
        self._audit_head: tuple[str, int, str] | None = None
        self.component: Component | ControlSink | MarketDataFeed | GatewayBroker
        venue = self._gateway_venue(component_id)
        if component_id == CONTROL:
            self.component = ControlSink(session_id, config=config, environ=environ)
        elif component_id == MARKET_DATA:
            self.component = MarketDataFeed(
                config.instrument_map(),
                self._clock,
                self._outbox,
                self.session.market_data_checks,
                self.metrics,
            )
        elif venue is not None:
            self.component = GatewayBroker(
                config,
                venue,
                session_id=session_id,
                environ=environ or {},
                # Kept across sessions (the session's own folder is cleared at its start):
                # reconciliation explains the venue's history by it.
                journal_path=(
                    str(Path(state_dir).parent / "orders" / f"{venue}.jsonl") if state_dir else None
                ),
                outbox=self._outbox,
                clock=self._clock,
                halt=self.halt,
            )
        else:
            self.component = build_component(config, component_id, self._clock, self._outbox)
        describe = describer_for(component_id, gateway=venue is not None)
        self._describe: Describer = (
            (lambda feed: describe(feed) | self._replay_details())
            if component_id == MARKET_DATA
            else describe
        )
        self._handle = (
            self._handle_market_data
            if isinstance(self.component, MarketDataFeed)
            else self.component.handle
        )
        # What md publishes, written to the session's recording folder (``tradegraph twin``).
        self._recorder = (
            MarketRecorder(
                self.session.record_dir,
                writer=str(self.incarnation),
                flush_interval_s=self.session.snapshot_interval_s,
            )
            if component_id == MARKET_DATA and self.session.record_dir is not None
            else None
        )
        # md's live sources (one per venue); the replay publishes from the host's own loop.
        self._sources: list[MarketDataSource] = []
        # The longest ban met per venue, kept for sources that do not exist yet.
        self._bans: dict[str, VenueBanned] = {}
        self.inbox = Inbox(component_id)
        # Pushes waiting for their batch, held by the inbox, to be taken.
        self._waiting: dict[Batch, asyncio.Future[Any]] = {}
        self.links = Links(
            component_id,
            self.incarnation,
            transport or RayPeerTransport(self.session.namespace),
            self.session.hang_timeout_s,
            self._on_link_lost,
            session_id=session_id,
        )
        # Wall time at which the market event behind the batch being handled entered the
        # graph; passed on with what it causes, so a broker can time tick-to-order.
        self._origin_ns = 0
        # A causal data-clock session fires timers at their own time (see ``advance``): every
        # host tells what it knows of its timers, and md asks them to fire in time order.
        self._reports_timers = isinstance(self._clock, DataClock) and self.session.causal
        self._timer_reports = 0
        self._peer_rank = {cid: i for i, cid in enumerate(component_ids(config))}
        self._measure_orders = component_id.startswith("broker:")
        self.tick_to_order_us: deque[float] = deque(maxlen=100_000)
        # Runtime guards (``guards:``), checked by the link watcher every guards.interval_s.
        self.guards = GuardSet(config.guards, component_id)
        self._memory_mb = memory_mb
        self._guards_due = 0.0
        self._drift_check: asyncio.Task[None] | None = None
        self._out: list[tuple[tuple[str, ...], Item]] = []
        # Causal order (see ``causal_order.py``), in a causal data-clock session only: the key
        # of the message being handled and how many messages it published so far; the keys of
        # what is queued in ``_out``; whether this host handles its generation alone (None: what
        # it handles came from outside the causal order, and what it sends goes out without
        # keys); the batches kept for md's settle step, and what it sent to be held.
        self._parent: Key = ()
        self._child = 0
        self._out_keys: list[Key] = []
        self._alone: bool | None = None
        self._stash: list[Batch] = []
        self._stash_grew: asyncio.Event | None = None
        self._holding: Holding = {}
        self._flush_scheduled = False
        self._suppress_output = False
        self.order_log: list[Message] = []
        self._ledger_unsaved: list[Message] = []
        # Kept messages that recovery may publish again (a batch not marked done is redone).
        self._ledger_kept: set[Message] = set()
        self._halted = ""
        self._batches_in = 0
        self._messages_in = 0
        self._messages_out = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._component_started = False
        self._replay: ReplaySource | None = None
        self.recovery = Recovery(state_dir, component_id, self.session.snapshot_interval_s)
        self._store = self.recovery.store
        self.recovered = self._recover()
        if self.recovered and self._audit is not None:
            self._audit.record("recovered", clock_ns=self._clock.now_ns())
        # md's replay goes on under the incarnation it had (see _resume_replay).
        self.links.incarnation = self.incarnation
        if component_id == MARKET_DATA and not self.recovered and _restarted():
            # Died before it journaled anything (nothing was sent), or without a state
            # directory: ``_resume`` starts over, or halts.
            self.recovered = True
        if not self.recovered and state_dir is not None:
            continue_order_ids(self.component, Path(state_dir).parent / "orders")

    def _open_audit(self, audit_dir: str | None) -> AuditChain | None:
        if audit_dir is None:
            return None
        sha, _ = config_digest(self.config)

        def report_torn(torn: TornLine) -> None:
            self._log.error(
                "audit_torn_line",
                file=chain_file_name(self.component_id),
                line=torn.line,
                bytes=torn.size,
                detail="the last line was cut short by a crash; acknowledged and chained past",
            )

        return AuditChain(
            Path(audit_dir) / chain_file_name(self.component_id),
            self.component_id,
            durable=self.session.market_data == "ccxt",
            opened={
                "session_id": self.session_id,
                "incarnation": self.incarnation,
                "config_sha256": sha,
            },
            on_torn=report_torn,
        )

    def _flush_audit(self) -> None:
        """Write the audit records of what was just handled; halt if they cannot be."""
        audit = self._audit
        if audit is None:
            return
        try:
            audit.flush()
        except AuditWriteError as exc:
            self._audit = None
            self.halt(str(exc))

    def _gateway_venue(self, component_id: str) -> str | None:
        """The venue whose broker goes through the ccxt gateway here (dry-run or live)."""
        if self.session.market_data != "ccxt" or not component_id.startswith("broker:"):
            return None
        venue = self.config.venue(component_id.split(":", 1)[1])
        if venue.live is None or venue.live.mode is LiveMode.PAPER:
            return None
        return venue.name

    # ---- recovery -------------------------------------------------------------------------

    def _recover(self) -> bool:
        # The order table survives restarts: what was published before is kept on disk.
        self.order_log = self.recovery.ledger()
        self._ledger_kept = set(self.order_log)

        def redo(messages: list[Item], publish: bool) -> None:
            self._suppress_output = not publish
            self._deliver_batch(messages)

        self._suppress_output = True
        try:
            recovered, facts = self.recovery.restore(self.component, self.inbox, self._clock, redo)
        finally:
            self._suppress_output = False
        if not recovered:
            return False
        if self.recovery.replay.incarnation is not None:
            self.incarnation = self.recovery.replay.incarnation
        self._log.warning("actor_recovered", **facts, clock_ns=self._clock.now_ns())
        return True

    def _state(self) -> dict[str, Any]:
        replay = None
        if self.component_id == MARKET_DATA and self.session.market_data == "replay":
            journal = self.recovery.replay
            position = self._replay.published if self._replay else journal.position
            replay = journal.state(self.incarnation, position, self.links.seqs())
        return self.recovery.capture(self.component, self.inbox, self._clock, replay)

    def _maybe_snapshot(self, force: bool = False) -> None:
        if self._stash and not force:
            # The inbox has handed out the batches kept for md's settle step, the component
            # has not taken them yet: a snapshot now would lose them.
            return
        self.recovery.maybe_snapshot(self._state, force)
        if self._recorder is not None:
            self._recorder.maybe_flush(force)

    # ---- delivery -------------------------------------------------------------------------

    def _deliver_batch(self, items: Sequence[Item]) -> None:
        handle = self._handle
        clock = self._clock
        if isinstance(clock, DataClock):
            market = _MARKET_TYPES
            for msg in expand(items):
                if type(msg) is TimerFired:
                    # Journaled by ``advance``: fire it again from the recovered clock.
                    self._fire_timers_through(msg.ts_event_ns, journal=False)
                    continue
                ts = msg.ts_event_ns if type(msg) in market else msg.ts_init_ns
                if ts > clock.now_ns():
                    for fired in clock.advance(ts):
                        handle(fired)
                handle(msg)
        else:
            for msg in expand(items):
                handle(msg)
        self._messages_in += message_count(items)

    # Every batch is one call: Ray's GCS would keep an event record of each (tens of MB a
    # minute, see benchmarks/gcs_memory.py). The same for the driver's twice-a-second polls.
    @_untracked
    async def push(
        self,
        sender: str,
        incarnation: int,
        seq: int,
        messages: list[Item],
        origin_ns: int = 0,
        fence: Fence | None = None,
        order: CausalOrder | None = None,
    ) -> CausalReport | None:
        """Take batch ``seq`` of ``sender``; handle it (and any held ones it unblocks) in order.

        Returns once what the batch caused has been taken by its receivers in turn, so a sender
        that waits for its answers knows the whole graph has seen the consequences; in a causal
        data-clock session, with the timer report of every host it reached and the batches held
        for md's settle step (held batches and repeats answer ``None``: their consequences are
        reported to whoever unblocks or settles them). A batch sent ``HOLD`` is kept until md's
        :meth:`settle` takes it.
        """
        self._resume()
        batch = Batch(sender, incarnation, seq, messages, origin_ns, fence, order)
        arrival = self.inbox.offer(batch)
        for dropped in arrival.dropped:
            waiting = self._waiting.pop(dropped, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        if arrival.held or (arrival.ready and _held_for_settle(batch)):
            handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting[batch] = handled
        taken = False
        for ready in arrival.ready:
            if _held_for_settle(ready):
                self._stash.append(ready)
                continue
            taken = True
            self._alone = _handles_alone(ready)
            self._take(ready)
            waiting = self._waiting.pop(ready, None)
            if waiting is not None:
                waiting.set_result(None)
        if self._stash and self._stash_grew is not None:
            self._stash_grew.set()
        own = self._waiting.get(batch)
        if own is not None:
            await own
            return None
        if not taken:
            return None
        sent = self._flush_and_mark()
        return self._timer_report(await self._answers(sent))

    @_untracked
    async def settle(
        self, expected: dict[str, tuple[int, int]], alone: bool
    ) -> CausalReport | None:
        """Take the batches held for md's settle step, up to ``expected`` (sender ->
        ``(incarnation, seq)`` of its last one), merged in causal-key order.

        ``md`` of a causal replay calls it on every host that holds batches of one generation at
        once; ``alone`` says this host is the only one. Returns once what they caused has gone
        through the graph or is held for the next settle step. Batches still on their way are
        waited for (they were sent before the sender answered, but Ray may deliver this call
        first).
        """
        self._resume()
        marks = self.inbox.watermarks
        deadline = time.monotonic() + self.session.hang_timeout_s
        while any(marks.get(s, (0, 0)) < mark for s, mark in expected.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = {s: m for s, m in expected.items() if marks.get(s, (0, 0)) < m}
                self.halt(f"batches to settle never arrived: {missing}")
                return self._timer_report([])
            if self._stash_grew is None:
                self._stash_grew = asyncio.Event()
            self._stash_grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stash_grew.wait(), min(left, 0.05))
        due = [
            b
            for b in self._stash
            if b.sender in expected and (b.incarnation, b.seq) <= expected[b.sender]
        ]
        if not due:
            return self._timer_report([])
        taken = set(due)
        self._stash = [b for b in self._stash if b not in taken]
        self._alone = alone
        keyed = [(b, b.order.keys if b.order is not None else ()) for b in due]
        for b, positions in causal_runs(keyed):
            self._take(b, positions)
        for b in due:
            waiting = self._waiting.pop(b, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        sent = self._flush_and_mark()
        return self._timer_report(await self._answers(sent))

    @_untracked
    async def advance(self, until_ns: int | None) -> CausalReport | None:
        """Fire the data-clock timers due by ``until_ns``, each at its own time, earliest first
        (none when ``None``); return once what they caused has gone through the graph, with
        the timer report of every host it reached.

        ``md`` of a causal replay calls it between market events, so a timer fires where the
        kernel fires it: after every event before it, before any event after it. Not idempotent,
        never retried.
        """
        self._resume()
        if until_ns is not None:
            # md fires one host's timers at a time: this host is alone in their generation.
            self._alone = True
            self._fire_timers_through(until_ns, journal=True)
        sent = self._flush_and_mark()
        return self._timer_report(await self._answers(sent))

    def _fire_timers_through(self, until_ns: int, *, journal: bool) -> None:
        clock = self._clock
        assert isinstance(clock, DataClock)
        handle = self._handle
        while (due_ns := clock.next_timer_ns()) is not None and due_ns <= until_ns:
            fired = clock.advance_to(max(due_ns, clock.now_ns()))
            if journal and self._store is not None:
                self._store.append("timer", 0, 0, list(fired))
            for i, msg in enumerate(fired):
                self._parent, self._child = (i,), 0
                handle(msg)
            self._messages_in += len(fired)

    async def _answers(self, sent: list[asyncio.Future[Any]]) -> list[Any]:
        """The answers of the batches ``sent`` (those taken within the hang timeout)."""
        if not sent:
            return []
        done, _ = await asyncio.wait(sent, timeout=self.session.hang_timeout_s)
        return [f.result() for f in done]

    def _timer_report(self, answers: list[Any]) -> CausalReport | None:
        if not self._reports_timers:
            return None
        report = CausalReport()
        for answer in answers:
            report.merge(answer)
        clock = self._clock
        assert isinstance(clock, DataClock)
        self._timer_reports += 1
        report.timers[self.component_id] = (self._timer_reports, clock.next_timer_ns())
        holding, self._holding = self._holding, {}
        merge_holding(report.holding, holding)
        return report

    def _take(self, batch: Batch, positions: list[int] | None = None) -> None:
        """Journal ``batch`` (or its messages at ``positions``), then deliver it to the
        component, each message under its causal key in a causal session."""
        origin_ns = batch.origin_ns
        if origin_ns:
            self._origin_ns = origin_ns
            if self._measure_orders and any(type(m) is SubmitOrder for m in batch.messages):
                now_ns = time.time_ns()
                latency_us = (now_ns - origin_ns) / 1e3
                self.tick_to_order_us.append(latency_us)
                self.guards.latency.add(now_ns, latency_us / 1e3)
                self.metrics.observe_tick_to_order(latency_us / 1e6)
        items = batch.messages if positions is None else [batch.messages[i] for i in positions]
        if self._store is not None:
            self._store.append(batch.sender, batch.incarnation, batch.seq, items)
        self._batches_in += 1
        order = batch.order
        if order is None or not self._reports_timers:
            self._parent, self._child = (), 0
            self._deliver_batch(items)
        elif batch.sender == MARKET_DATA:
            self._deliver_keyed(items, None)
        else:
            keys = order.keys
            self._deliver_keyed(
                items, [keys[i] for i in positions] if positions is not None else list(keys)
            )

    def _deliver_keyed(self, items: Sequence[Item], keys: Sequence[Key] | None) -> None:
        """Deliver ``items`` one message at a time under its causal key; market data from
        ``md`` (``keys`` None) under this host's position among the event's destinations."""
        if keys is None:
            messages = list(expand(items))
            destinations = self.router.destinations
            for msg in messages:
                dests = destinations(msg)
                me = self.component_id
                self._parent = (dests.index(me) if me in dests else len(dests),)
                self._child = 0
                self._deliver_batch([msg])
            return
        for item, key in zip(items, keys, strict=True):
            self._parent, self._child = key, 0
            self._deliver_batch([item])

    async def request(self, msg: Message) -> HostStatus:
        """Handle an operator's command (kill switch, reset) now; return the host's status.

        Not idempotent and never retried; it does not move a data clock.
        """
        self._resume()
        self._alone = None  # outside the causal order: what it causes is taken at once
        if self._store is not None:
            self._store.append(OPERATOR, 0, 0, [msg])
        if self._audit is not None:
            self._audit.record_message(OPERATOR, msg)
        self._handle(msg)
        self._messages_in += 1
        self._flush_and_mark()
        return self.status()

    def _fire_wall_timer(self, name: str) -> None:
        fired = TimerFired(name=name, ts_event_ns=time.time_ns(), ts_init_ns=time.time_ns())
        if self._store is not None:
            self._store.append("timer", 0, 0, [fired])
        self._handle(fired)
        self._flush_and_mark()

    def _flush_and_mark(self) -> list[asyncio.Future[Any]]:
        """Send what the batches just handled caused, then mark them done in the journal."""
        sent = self.flush()
        if self._store is not None:
            self._store.mark_done()
        self._maybe_snapshot()
        return sent

    # ---- sending --------------------------------------------------------------------------

    def emit(self, msg: Message) -> None:
        """The outbox's ``publish``: queue ``msg`` for its destinations, flushed after the batch."""
        if self._suppress_output:
            return
        if self._recorder is not None:
            self._recorder.record(msg)
        self.metrics.observe(msg)
        if type(msg) not in _UNLEDGERED_TYPES and msg not in self._ledger_kept:
            self.order_log.append(msg)
            self._ledger_unsaved.append(msg)
            if self._audit is not None:
                self._audit.record_message("published", msg)
        dests = self.router.destinations(msg)
        if type(msg) in self._alert_taps and CONTROL not in dests:
            dests = (*dests, CONTROL)
        if not dests:
            return
        self._messages_out += 1
        self._out.append((dests, msg))
        if self._reports_timers:
            self._out_keys.append((*self._parent, self._child))
            self._child += 1
        self._schedule_flush()

    def emit_block(self, block: MarketBlock) -> None:
        """Queue a block of market data: each receiver gets the rows it subscribes to."""
        if self._suppress_output:
            return
        if self._recorder is not None:
            self._recorder.record_block(block)
        ids = block.instrument_ids
        kind = BLOCK_KINDS[type(block)]
        for k, count in enumerate(np.bincount(block.instrument_index, minlength=len(ids)).tolist()):
            self.metrics.count_market_events(kind, ids[k], count)
        self._messages_out += len(block)
        for dest, rows in self._blocks.split(block):
            self._out.append(((dest,), rows))
            if self._reports_timers:
                self._out_keys.append(())
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(self.flush)
                return
            self._flush_scheduled = False

    def flush(self) -> list[asyncio.Future[Any]]:
        """Send everything published since the last flush: one call per receiver.

        Returns, per batch sent, a future that resolves when the receiver has taken it.
        """
        self._flush_scheduled = False
        # The audit first: recovery does not record again a message the ledger holds, so
        # whatever is in the ledger must be in the audit trail already.
        self._flush_audit()
        if self._ledger_unsaved:
            if self._store is not None:
                self._store.append_ledger(self._ledger_unsaved)
            self._ledger_unsaved = []
        out = self._out
        if not out:
            return []
        self._out = []
        keys, self._out_keys = self._out_keys, []
        routes = {dests for dests, _ in out}
        if self._reports_timers and (self._alone is not None or self.component_id == MARKET_DATA):
            return self._flush_causal(out, keys, routes)
        if len(routes) == 1:
            (dests,) = routes
            messages = [m for _, m in out]
            fence = self._outgoing_fence(dests)
            # A large batch for several receivers goes into the object store once; a small one
            # travels inline with each call (a put costs more than serialising it again).
            shared = len(dests) > 1 and message_count(messages) >= _SHARED_PAYLOAD_MIN
            payload: Any = self.links.transport.share(messages) if shared else messages
            sends = [self._send(dest, payload, fence) for dest in dests]
        else:
            per_dest = split_by_destination(out)
            fence = self._outgoing_fence(per_dest)
            sends = [self._send(d, messages, fence) for d, messages in per_dest.items()]
        return [f for f in sends if f is not None]

    def _flush_causal(
        self,
        out: list[tuple[tuple[str, ...], Item]],
        keys: list[Key],
        routes: set[tuple[str, ...]],
    ) -> list[asyncio.Future[Any]]:
        """Send ``out`` in a causal session, each batch with its messages' causal keys.

        Returns the futures of the batches taken at once; those sent ``HOLD`` are noted in
        ``_holding`` for the answer instead (they are taken at md's settle step, which waits
        for this answer: waiting for them here would never end).
        """
        per_dest: dict[str, tuple[list[Item], list[Key]]] = {}
        for (dests, item), key in zip(out, keys, strict=True):
            for dest in dests:
                items, item_keys = per_dest.setdefault(dest, ([], []))
                items.append(item)
                item_keys.append(key)
        fence = self._outgoing_fence(per_dest)
        md = self.component_id == MARKET_DATA
        if md or self._alone:
            mode = Mode.ALONE if len(per_dest) == 1 else Mode.HANDLE
        else:
            mode = Mode.HOLD
        shared: Any = None
        if len(routes) == 1 and len(per_dest) > 1:
            messages = [m for _, m in out]
            if message_count(messages) >= _SHARED_PAYLOAD_MIN:
                shared = self.links.transport.share(messages)
        sends: list[asyncio.Future[Any]] = []
        for dest, (items, item_keys) in per_dest.items():
            order = CausalOrder(mode, () if md else tuple(item_keys))
            sent = self._send(dest, items if shared is None else shared, fence, order=order)
            if sent is None:
                continue
            if mode is Mode.HOLD:
                seq = self.links.link(dest).seq
                self._holding.setdefault(dest, {})[self.component_id] = (self.incarnation, seq)
            else:
                sends.append(sent)
        return sends

    def _outgoing_fence(self, destinations: Sequence[str] | Mapping[str, Any]) -> Fence:
        """The causal fence of a flush about to go to ``destinations``.

        ``md``'s names, for every receiver, the last md batch it will have been sent once this
        flush is out; anyone else's is what it took since its last flush.
        """
        if self.component_id != MARKET_DATA:
            return self.inbox.take_fence()
        return self.links.next_fence(destinations)

    def _send(
        self,
        destination: str,
        payload: Any,
        fence: Fence | None = None,
        seq: int | None = None,
        order: CausalOrder | None = None,
    ) -> asyncio.Future[Any] | None:
        """Send ``payload`` as the link's next batch (or again as batch ``seq``)."""
        return self.links.send(destination, payload, fence, seq, self._origin_ns, order)

    def send_direct(self, destination: str, msg: Message) -> None:
        """Send ``msg`` to ``destination`` whatever the routing table says (halts, reports)."""
        self._send(destination, [msg])

    def in_flight(self) -> int:
        """Batches sent and not yet answered, on the busiest live link."""
        return self.links.in_flight()

    async def _watch_links(self) -> None:
        """Collect answers; resend after a receiver's restart; halt on a dead or hung receiver."""
        ticks = 0
        while True:
            await asyncio.sleep(0.02)
            self.links.check()
            self._maybe_snapshot()
            self._maybe_check_guards()
            ticks += 1
            if ticks % 25 == 0:
                self.metrics.set_queue_depth(self.component_id, self.in_flight())
                self.metrics.flush()

    # ---- guards -------------------------------------------------------------------------

    def _maybe_check_guards(self) -> None:
        """Measure and judge this actor's guards when ``guards.interval_s`` has passed."""
        guards = self.guards
        if not guards.any_enabled or time.monotonic() < self._guards_due:
            return
        self._guards_due = time.monotonic() + guards.config.interval_s
        values: dict[str, float | None] = {}
        if guards.enabled(MEMORY):
            values[MEMORY] = self._memory_mb()
        if guards.enabled(TICK_TO_ORDER) and self._measure_orders:
            values[TICK_TO_ORDER] = guards.latency.p99(time.time_ns())
        self.judge_guards(values)
        component = self.component
        if (
            guards.enabled(CLOCK_DRIFT)
            and isinstance(component, GatewayBroker)
            and component.connected
            and (self._drift_check is None or self._drift_check.done())
        ):
            self._drift_check = asyncio.get_running_loop().create_task(self._check_clock_drift())

    async def _check_clock_drift(self) -> None:
        assert isinstance(self.component, GatewayBroker)
        try:
            offset_ms = await self.component.clock_offset_ms()
        except Exception as exc:  # the venue unreachable: its circuit breaker reports that
            self._log.warning("clock_drift_unmeasured", error=f"{type(exc).__name__}: {exc}")
            return
        if offset_ms is not None:
            self.judge_guards({CLOCK_DRIFT: abs(offset_ms)})

    def judge_guards(self, values: Mapping[str, float | None]) -> None:
        """Judge measured guard values: publish each ``GuardBreached`` to the driver, and halt
        trading with the guard's reason when one reached its halting level."""
        breaches, halt = self.guards.judge(values, time.time_ns())
        for breached in breaches:
            log = self._log.error if breached.level == "halt" else self._log.warning
            log(
                "guard_breached", guard=breached.guard, level=breached.level, detail=breached.detail
            )
            if self.component_id == CONTROL:
                self._handle(breached)
            else:
                self.send_direct(CONTROL, breached)
        if halt:
            self.halt(halt)

    def _on_link_lost(self, destination: str, reason: str) -> None:
        if on_order_path(destination):
            self.halt(reason)
        else:
            self._log.error("receiver_lost", destination=destination, reason=reason)

    def halt(self, reason: str) -> None:
        """Stop trading: tell Risk to trip its kill switch, and tell the driver why."""
        if self._halted:
            return
        self._halted = reason
        self._log.error("trading_halted", reason=reason)
        if self._audit is not None:
            self._audit.record("halted", reason=reason)
        trip = TripKillSwitch(
            reason=f"halted by {self.component_id}: {reason}",
            mode=KillSwitchMode.HALT,
            ts_event_ns=self._clock.now_ns(),
            ts_init_ns=self._clock.now_ns(),
        )
        if self.component_id == RISK:
            self._handle(trip)
        elif not self.links.lost(RISK):
            self.send_direct(RISK, trip)
        if self.component_id != CONTROL:
            self.send_direct(CONTROL, trip)
        self.flush()

    # ---- lifecycle --------------------------------------------------------------------------

    async def ready(self) -> HostStatus:
        return self.status()

    async def start(self) -> HostStatus:
        """Start the component (and, in ``md``, the replay) and the link watcher."""
        if not self.recovered and not self._component_started:
            self._component_started = True
            self.component.start()
        self._resume(from_start=True)
        if isinstance(self.component, GatewayBroker):
            await self._connect_gateway()
        self.flush()
        return self.status()

    async def _connect_gateway(self) -> None:
        assert isinstance(self.component, GatewayBroker)
        failure = await self.component.connect(self._flush_and_mark)
        if failure:
            self.halt(failure)

    def _resume(self, *, from_start: bool = False) -> None:
        """Run the host's background work: on start, or on the first call after a restart.

        Ray restarts a dead actor by building it again; nobody calls ``start`` then, so the
        first call it gets brings the link watcher (and the replay, in ``md``) back and sends
        what recovery produced.
        """
        if self._running:
            return
        if not from_start and not self.recovered:
            return
        self._running = True
        loop = asyncio.get_running_loop()
        if isinstance(self._clock, WallClock) and self.recovery.pending_wall_timers is not None:
            self._clock.restore(self.recovery.pending_wall_timers)
            self.recovery.pending_wall_timers = None
        self._tasks.append(loop.create_task(self._watch_links()))
        if self.component_id == MARKET_DATA and self.session.market_data == "ccxt":
            self._tasks.append(loop.create_task(self._run_ccxt_market_data()))
        elif self.component_id == MARKET_DATA:
            self._replay = ReplaySource(self.config, *(self._replay_streams or (None, None)))
            if self.recovered:
                self._resume_replay(self._replay)
            self._tasks.append(loop.create_task(self._run_replay()))
        if isinstance(self.component, GatewayBroker) and not from_start:
            self._tasks.append(loop.create_task(self._connect_gateway()))
        if self._out:
            self._flush_and_mark()
        if not from_start:
            # Last: a restarted md has taken up its links' sequence numbers by now.
            self._announce_restart()

    def _announce_restart(self) -> None:
        """Tell ``control`` that this actor died and runs again (an alert rule may read it)."""
        now = self._clock.now_ns()
        restarted = ActorRestarted(
            component_id=self.component_id,
            recovered=self.recovered,
            detail=f"incarnation {self.incarnation}",
            ts_event_ns=now,
            ts_init_ns=now,
        )
        self._log.warning("actor_restarted", recovered=self.recovered)
        if self.component_id == CONTROL:
            self._handle(restarted)
        else:
            self.send_direct(CONTROL, restarted)

    def _resume_replay(self, replay: ReplaySource) -> None:
        """After a restart: go on where the replay stood, sending again every batch not known
        to be taken, under the same incarnation and sequence numbers (receivers drop the ones
        they have). Without recovery state that cannot be done: trading halts."""
        if self._store is None:
            replay.seek(replay.total)
            self.halt(
                "md restarted without recovery state (session.state_dir is null): its replay "
                "cannot go on without sending market data twice or leaving some out; market "
                "data is stale"
            )
            return
        assert isinstance(self.component, MarketDataFeed)
        journal = self.recovery.replay
        position = journal.position
        replay.seek(position)
        self.component.published = position
        if position and isinstance(self._clock, DataClock):
            self._clock.advance(replay.ts_ns(position - 1))
        self.links.continue_after(journal.seqs)
        batches = sorted(journal.batches.values(), key=lambda b: b.start)
        for batch in batches:
            per_dest: dict[str, list[Item]] = {}
            for block in replay.rows(batch.start, batch.stop):
                for dest, rows in self._blocks.split(block):
                    per_dest.setdefault(dest, []).append(rows)
            sent = [
                self._send(dest, per_dest[dest], batch.fence, seq=batch.fence[dest][1])
                for dest in batch.destinations
                if dest in per_dest
            ]
            self._track_replay_batch(batch, [f for f in sent if f is not None])
        self._log.warning(
            "replay_resumed", position=position, total=replay.total, resent_batches=len(batches)
        )

    def _send_replay_batch(self, start: int, stop: int) -> list[asyncio.Future[Any]]:
        """Send the replay events ``[start, stop)`` queued in the outbox, journaled first."""
        if self._store is None or not self._out:
            return self.flush()
        destinations = tuple(dict.fromkeys(d for dests, _ in self._out for d in dests))
        batch = ReplayBatch(start, stop, self._outgoing_fence(destinations), destinations)
        self._store.append_sent(batch.to_state())
        self.recovery.replay.batches[start] = batch
        sent = self.flush()
        self._track_replay_batch(batch, sent)
        return sent

    def _track_replay_batch(self, batch: ReplayBatch, sent: list[asyncio.Future[Any]]) -> None:
        """Forget ``batch`` once every receiver has taken it."""
        batches = self.recovery.replay.batches
        if not sent:
            batches.pop(batch.start, None)
            return
        taken = asyncio.gather(*sent)
        taken.add_done_callback(lambda _: batches.pop(batch.start, None))

    async def _run_replay(self) -> None:
        replay = self._replay
        assert replay is not None
        assert isinstance(self.component, MarketDataFeed)
        feed = self.component
        settings = self.session
        speed = settings.speed
        first = replay.next_ts_ns
        if first is None:
            return
        wall_start = time.monotonic()
        clock = self._clock
        causal = settings.causal
        in_flight: set[asyncio.Future[Any]] = set()
        window = settings.max_in_flight
        interval_s = 0.0 if causal else settings.batch_interval_ms / 1e3
        next_send = 0.0
        timers = await self._peer_timer_reports() if self._reports_timers else None
        while not replay.finished:
            nxt = replay.next_ts_ns
            if nxt is None:
                break
            late_ns = 0
            if speed > 0:
                now = time.monotonic()
                if now < next_send:
                    await asyncio.sleep(next_send - now)
                    continue
                due_ts = first + int((now - wall_start) * speed * 1e9)
                if nxt > due_ts:
                    await asyncio.sleep(min(0.25, max(interval_s, (nxt - due_ts) / speed / 1e9)))
                    continue
                next_send = now + interval_s
                # The batch's first event fell due this long ago: it counts from then.
                late_ns = int((due_ts - nxt) / speed)
            # Causal replay sends one event at a time and waits until everything it caused has
            # gone through the graph: the kernel's order, which handles what a bar or trade
            # caused before the next event, even one at the same time. Timers due by then
            # fire first, each at its own time.
            if timers is not None and not await self._fire_peer_timers(timers, nxt):
                return
            until = nxt if causal else (due_ts if speed > 0 else None)
            start = replay.published
            blocks = replay.take(until, 1 if causal else settings.batch_size)
            self._origin_ns = time.time_ns() - late_ns
            if isinstance(clock, DataClock) and blocks:
                clock.advance(int(blocks[-1].ts_ns[-1]))
            for block in blocks:
                self.emit_block(block)
                feed.published += len(block)
            in_flight.update(self._send_replay_batch(start, replay.published))
            if causal:
                # After every batch, whichever receivers it went to (one instrument's bar may
                # go to fewer receivers than md has links).
                report = CausalReport()
                for answer in await self._answers(list(in_flight)):
                    report.merge(answer)
                in_flight = {f for f in in_flight if not f.done()}
                if not await self._settle(report):
                    return
                if timers is not None:
                    merge_timer_reports(timers, report.timers)
            elif len(in_flight) >= window * max(1, len(self.links)):
                _, in_flight = await asyncio.wait(
                    in_flight,
                    timeout=settings.hang_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            else:
                await asyncio.sleep(0)
        if in_flight:
            await asyncio.wait(in_flight, timeout=settings.hang_timeout_s)
        if timers is not None and replay.published:
            # The kernel runs what is due by the last event's time, and stops there.
            await self._fire_peer_timers(timers, replay.ts_ns(replay.published - 1))
        self._log.info("replay_finished", events=replay.published, dropped=dict(feed.dropped))

    async def _peer_timer_reports(self) -> TimerReport:
        """Every component's timer report, asked before the replay's first event."""
        transport = self.links.transport
        asked = [asyncio.wrap_future(transport.advance(cid, None)) for cid in self._peer_rank]
        timers: TimerReport = {}
        for answer in await asyncio.gather(*asked):
            if answer is not None:
                merge_timer_reports(timers, answer.timers)
        return timers

    async def _settle(self, report: CausalReport) -> bool:
        """Settle what ``report`` says is held, generation after generation, until nothing is
        (see ``causal_order.py``); the timer reports of every step go into ``report``.
        ``False`` when a host failed to (trading halts)."""
        holding, report.holding = report.holding, {}
        while holding:
            alone = len(holding) == 1
            calls = [self._settle_one(cid, expected, alone) for cid, expected in holding.items()]
            try:
                answers = await asyncio.gather(*calls)
            except Exception as exc:
                self.halt(f"{sorted(holding)} did not settle what they hold: {exc!r}")
                return False
            holding = {}
            for answer in answers:
                if answer is not None:
                    merge_timer_reports(report.timers, answer.timers)
                    merge_holding(holding, answer.holding)
        return True

    async def _settle_one(
        self, cid: str, expected: dict[str, tuple[int, int]], alone: bool
    ) -> CausalReport | None:
        """Have ``cid`` settle what it holds; asked again while Ray restarts it (its senders
        send the batches it held again, and it waits for them), for up to twice the hang
        timeout: a host that cannot settle because an actor after it hangs is then named by the
        supervisor's hang check (which halts first, with that actor's name) rather than here."""
        transport = self.links.transport
        deadline = time.monotonic() + 2 * self.session.hang_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                answer: CausalReport | None = await asyncio.wait_for(
                    asyncio.wrap_future(transport.settle(cid, expected, alone)), max(left, 0.01)
                )
            except Exception as exc:
                if transport.failure(exc) is not PeerFailure.RESTARTING or left <= 0:
                    raise
                await asyncio.sleep(0.1)
                continue
            return answer

    async def _fire_peer_timers(self, timers: TimerReport, until_ns: int) -> bool:
        """Have the components fire their timers due by ``until_ns``: the earliest first (at
        the same time, in build order), one host at a time, each after what the one before
        caused has gone through the graph. ``False`` when a host failed to (trading halts)."""
        rank = self._peer_rank
        while True:
            due = [
                (at_ns, rank[cid], cid)
                for cid, (_, at_ns) in timers.items()
                if at_ns is not None and at_ns <= until_ns and cid in rank
            ]
            if not due:
                return True
            at_ns, _, cid = min(due)
            try:
                answer = await asyncio.wait_for(
                    asyncio.wrap_future(self.links.transport.advance(cid, at_ns)),
                    self.session.hang_timeout_s,
                )
            except Exception as exc:
                self.halt(f"{cid} did not fire its timers due at {at_ns}: {exc!r}")
                return False
            report = answer if answer is not None else CausalReport()
            if not await self._settle(report):
                return False
            merge_timer_reports(timers, report.timers)
            left = timers[cid][1]
            if left is not None and left <= at_ns:
                self.halt(f"{cid} still has a timer due at {left} after firing those by {at_ns}")
                return False

    async def _run_ccxt_market_data(self) -> None:
        """Live market data from each venue's exchange, checked by the feed on the way in."""
        assert isinstance(self.component, MarketDataFeed)
        sources = self._md_sources(self.config, self.component, self._outbox)
        self._sources = sources
        for source in sources:
            # Bans met before the sources existed: they must not call into them either.
            for ban in self._bans.values():
                source.honour_ban(ban)
        for source in sources:
            await source.start()
        await asyncio.gather(*(source.run() for source in sources))

    def _handle_market_data(self, msg: Message) -> None:
        """md's entry point: a ban the broker met goes to the exchange clients of its venue."""
        if type(msg) is VenueBanned:
            known = self._bans.get(msg.venue)
            if known is None or msg.until_ns > known.until_ns:
                self._bans[msg.venue] = msg
            for source in self._sources:
                source.honour_ban(msg)
            return
        self.component.handle(msg)

    def _replay_details(self) -> dict[str, Any]:
        replay = self._replay
        return {
            "replay_total": None if replay is None else replay.total,
            "replay_finished": None if replay is None else replay.finished,
            "replay_started_at": None if replay is None else replay.started_at,
            "replay_dropped": None if replay is None else replay.dropped,
        }

    async def stop_feed(self) -> HostStatus:
        """Stop publishing market data (``md``)."""
        for task in self._tasks[1:]:
            task.cancel()
        if self._replay is not None:
            self._replay.finished = True
        return self.status()

    async def stop(self) -> HostStatus:
        """Stop the component, send what it published, write a last snapshot."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for source in self._sources:
            with contextlib.suppress(Exception):
                await source.close()
        if isinstance(self.component, GatewayBroker):
            with contextlib.suppress(Exception):
                await self.component.close()
        self.component.stop()
        self.metrics.flush()
        self.flush()
        self._maybe_snapshot(force=True)
        if self._store is not None:
            self._store.close()
        self._close_audit()
        return self.status()

    def _close_audit(self) -> None:
        audit, self._audit = self._audit, None
        if audit is None:
            return
        try:
            n, sha = audit.close(halted=self._halted)
        except AuditWriteError as exc:
            self._log.error("audit_not_closed", error=str(exc))
            return
        self._audit_head = (audit.path.name, n, sha)

    @_untracked
    async def idle(self) -> bool:
        """Nothing unsent, nothing unanswered, nothing held."""
        self._resume()
        self.links.check()
        return (
            not self._out
            and self.in_flight() == 0
            and not self.inbox.held_count()
            and not self._stash
        )

    async def tick_to_order(self) -> list[float]:
        """Microseconds from a market event entering the graph to the order it caused
        reaching this broker, one sample per order batch (brokers only)."""
        return list(self.tick_to_order_us)

    async def published_orders(self) -> list[Message]:
        """The order-path messages this host published (intents, orders, fills...)."""
        return list(self.order_log)

    async def control_messages(self) -> list[Message]:
        """What the ``control`` host kept of the messages addressed to the driver."""
        return list(self.component.messages) if isinstance(self.component, ControlSink) else []

    async def members(self) -> list[str]:
        """Component ids of every actor of this session."""
        return list(live_component_ids(self.config))

    async def inspect(self, reader: Callable[[Any], T]) -> T:
        """Apply ``reader`` (a module-level function) to the hosted component."""
        return reader(self.component)

    @_untracked
    async def report(self) -> HostStatus:
        """The host's status (remote form of :meth:`status`)."""
        self._resume()
        return self.status()

    def status(self) -> HostStatus:
        return HostStatus(
            component_id=self.component_id,
            pid=os.getpid(),
            incarnation=self.incarnation,
            recovered=self.recovered,
            clock_ns=self._clock.now_ns(),
            batches_in=self._batches_in,
            messages_in=self._messages_in,
            messages_out=self._messages_out,
            queue_depth=self.in_flight(),
            held_batches=self.inbox.held_count(),
            halted=self._halted,
            details=self._describe(self.component),
            metrics=self._metric_totals.totals(),
            audit_head=self._audit_head,
        )


SourceFactory = Callable[[GraphConfig, MarketDataFeed, Outbox], list[MarketDataSource]]
"""Builds md's market-data sources of a live session from the config, the feed and the outbox."""


def _ccxt_sources(
    config: GraphConfig, feed: MarketDataFeed, outbox: Outbox
) -> list[MarketDataSource]:
    """One ccxt client per live venue."""
    from tradegraph.adapters.ccxt.market_data import CcxtMarketData

    instruments = config.instrument_map()
    return [
        CcxtMarketData(venue, instruments, feed, outbox)
        for venue in config.venues
        if venue.live is not None
    ]


def _held_for_settle(batch: Batch) -> bool:
    """Whether ``batch`` waits for md's settle step (see ``causal_order.py``)."""
    return batch.order is not None and batch.order.mode is Mode.HOLD


def _handles_alone(batch: Batch) -> bool | None:
    """Whether the host taking ``batch`` at once is alone in its generation (None: the batch
    is outside the causal order)."""
    return None if batch.order is None else batch.order.mode is Mode.ALONE


def _restarted() -> bool:
    """Whether Ray built this actor again after it died (nobody will call ``start``)."""
    try:
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not inside an actor (a host built in a test)
        return False


class _LiveOutbox:
    __slots__ = ("_host",)

    def __init__(self, host: LiveHost) -> None:
        self._host = host

    def publish(self, msg: Message) -> None:
        self._host.emit(msg)


def clear_state(state_dir: str | None) -> None:
    """Remove a session's recovery state (a new session starts from nothing)."""
    if state_dir is not None and Path(state_dir).exists():
        shutil.rmtree(state_dir)
