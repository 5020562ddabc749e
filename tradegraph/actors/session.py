"""Paper and live sessions: the actor graph in real time, and the operator's commands.

:class:`LiveSession` builds one ``LiveHost`` actor per component (named, in
``session.namespace``), starts them (market data last), watches their health while the session
runs, and stops them cleanly: market data off, Risk's kill switch tripped so open orders are
cancelled, every actor's state and journal flushed, all within ``session.stop_timeout_s``.

:func:`operator_command` and :func:`graph_status` reach a running session from any process on
the cluster, by actor name (``tradegraph kill``, ``resume``, ``status``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import ray

from tradegraph import errors
from tradegraph.actors.gateway import Secrets, broker_environment
from tradegraph.actors.live_host import (
    HostStatus,
    LiveHost,
    clear_state,
    live_component_ids,
    on_order_path,
)
from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.config.models import DEFAULT_NAMESPACE, GraphConfig
from tradegraph.contracts import (
    CONTROL,
    MARKET_DATA,
    PORTFOLIO,
    RISK,
    ChangeLimits,
    KillSwitchMode,
    LimitChange,
    Message,
    ResetKillSwitch,
    TripKillSwitch,
)
from tradegraph.engine.backtest import (
    BacktestResult,
    PortfolioOutcome,
    assemble_result,
    portfolio_outcome,
)
from tradegraph.engine.ledger import OrderLedger
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import TradegraphError
from tradegraph.observability import get_logger
from tradegraph.observability.alert_sender import alert_environment, resolve_channel_urls
from tradegraph.observability.audit import (
    SESSION_WRITER,
    AuditChain,
    AuditWriteError,
    chain_file_name,
    config_digest,
)
from tradegraph.observability.metrics import (
    FILLS,
    MARKET_EVENTS,
    ORDERS_SUBMITTED,
    MetricTotals,
    merge_totals,
)

STOP_REASON = "session stopping"
LOCK_FILE = "session.lock"
LAST_SESSION_FILE = "last_session"
_LEDGER_RANK = {
    "OrderIntent": 0,
    "RiskRejected": 1,
    "SubmitOrder": 1,
    "OrderAccepted": 2,
    "OrderRejected": 2,
    "OrderFilled": 3,
    "OrderCancelled": 3,
}


@dataclass
class SessionOutcome:
    """How a session ended and what its graph held at the end."""

    session_id: str
    stopped_by: str
    elapsed_s: float
    market_events: int
    halted: str
    statuses: dict[str, HostStatus]
    portfolio: PortfolioOutcome | None
    stop_s: float
    result: BacktestResult | None = None

    def failure_reasons(self) -> list[str]:
        """Why this session is not a result to trust; empty when it ran as configured.

        The result's reasons (a strategy stopped, the kill switch halted trading, every order
        refused), a strategy whose actor says an error stopped it, and a halt by the session
        itself (an order-path actor died or hung), each once.
        """
        reasons = self.result.failure_reasons() if self.result is not None else []
        for cid, status in self.statuses.items():
            sid = cid.removeprefix("strategy:")
            # Every strategy is stopped when the session ends: only an error makes it a failure.
            error = status.details.get("error")
            if sid == cid or not error:
                continue
            if not any(r.startswith(f"strategy {sid} stopped") for r in reasons):
                reasons.append(f"strategy {sid} stopped: {error}")
        if self.halted and not any(self.halted in r for r in reasons):
            reasons.append(f"trading halted: {self.halted}")
        return reasons

    def summary(self) -> dict[str, Any]:
        port = self.statuses.get(PORTFOLIO)
        details = port.details if port is not None else {}
        failures = self.failure_reasons()
        return {
            "session_id": self.session_id,
            "status": "failed" if failures else "ok",
            "failure_reasons": failures,
            "stopped_by": self.stopped_by,
            "elapsed_s": round(self.elapsed_s, 3),
            "stop_s": round(self.stop_s, 3),
            "market_events": self.market_events,
            "halted": self.halted,
            "fills": details.get("fills", 0),
            "cash": details.get("cash"),
            "equity": details.get("equity"),
            "positions": details.get("positions", {}),
            "restarts": {cid: s.recovered for cid, s in self.statuses.items() if s.recovered},
        }


class LiveSession:
    """One paper or live session of ``config``'s graph. Ray must be initialised.

    Args:
        config: The graph; ``config.session`` says how it runs.
        session_id: Names the session in logs and its state directory (default: config name;
            for live market data a new timestamped id, or the last session's id on resume).
        state_dir: Overrides ``config.session.state_dir``.
        secrets: What the brokers may read (see
            :func:`~tradegraph.actors.gateway.take_broker_environment`); default: read from
            this process's environment when the session starts.
        resume: What to do with the state an earlier run left in the state directory:
            ``True`` resumes it (actors restore their snapshots and journals, strategies keep
            counting their order ids, open orders and positions carry over), ``False``
            discards it and starts afresh (the brokers' order journals are kept: the venue's
            history is reconciled against them), ``None`` refuses to start while there is
            any (:meth:`start` raises and says which flag to pass).
        replay: The bar and trade streams ``md`` replays instead of the config's data
            section (a stressed history, a Monte Carlo path); they also make the result's
            prices and its bar and trade counts.
        audit_dir: The session's audit folder (default ``<state_dir>/audit/<session id>``,
            none without a state directory). It is never cleared, not even by ``resume=False``:
            a new run of the same session id chains on. Each actor appends to its own chain
            there (see :class:`~tradegraph.actors.live_host.LiveHost`); the driver's
            ``session.audit.ndjson`` holds the configuration loaded and its SHA-256, halts,
            and at a clean stop the last line and hash of every actor's chain.
        alert_secrets: The environment values the alert channels' URLs name (see
            :func:`~tradegraph.observability.alert_sender.alert_environment`); default: read
            from this process's environment.

    Raises:
        ConfigError: an alert channel's URL names an environment variable that is not set.
    """

    def __init__(
        self,
        config: GraphConfig,
        *,
        session_id: str | None = None,
        state_dir: str | None = None,
        secrets: Secrets | None = None,
        resume: bool | None = None,
        replay: tuple[BarStream | None, TradeStream | None] | None = None,
        audit_dir: str | Path | None = None,
        alert_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        # Only the control actor, which sends the alerts, gets the values the channel URLs
        # name; a missing one stops the session here, before anything starts.
        self._alert_secrets = Secrets(
            alert_secrets
            if alert_secrets is not None
            else alert_environment(config.alerts, os.environ)
        )
        if config.alerts.rules:
            resolve_channel_urls(config.alerts, self._alert_secrets)
        self._replay = replay
        self._secrets = secrets
        self.settings = config.session
        self.resume = resume
        base = state_dir if state_dir is not None else self.settings.state_dir
        self.base_dir = Path(base).resolve() if base is not None else None
        self.previous_session = self._last_session_id()
        if session_id is None and resume and self.previous_session:
            session_id = self.previous_session
        if session_id is None and self.settings.market_data == "ccxt":
            # Client order ids derive from the session id: a new live session must never
            # reuse the ids of an earlier one on the same account.
            session_id = f"{config.name}-{time.time_ns() // 1_000_000}"
        self.session_id = session_id or config.name
        self.state_dir = str(self.base_dir / self.session_id) if self.base_dir is not None else None
        if audit_dir is None and self.base_dir is not None:
            audit_dir = self.base_dir / "audit" / self.session_id
        self.audit_dir = str(Path(audit_dir).resolve()) if audit_dir is not None else None
        self._audit: AuditChain | None = None
        self.hosts: dict[str, Any] = {}
        self.halted = ""
        self._unhealthy_since: dict[str, float] = {}
        self._dead: set[str] = set()
        # The last status each actor reported (replaced whole, so other threads may read it).
        self._reported: dict[str, HostStatus] = {}
        self._log = get_logger("session", session_id=self.session_id)
        self._started_at = 0.0
        self._lock: IO[str] | None = None
        self.running = False

    def _last_session_id(self) -> str | None:
        if self.base_dir is None:
            return None
        marker = self.base_dir / LAST_SESSION_FILE
        if not marker.exists():
            return None
        return marker.read_text(encoding="utf-8").strip() or None

    def _earlier_state(self) -> list[Path]:
        """Per-session state folders an earlier run left that this start would take over."""
        if self.base_dir is None or self.state_dir is None:
            return []
        names = {self.session_id, self.previous_session or ""} - {""}
        return [
            self.base_dir / name
            for name in sorted(names)
            if (self.base_dir / name).is_dir() and any((self.base_dir / name).iterdir())
        ]

    def claim_state_dir(self) -> None:
        """Lock the state directory for this session, then resume, wipe or refuse its state
        (:meth:`start` does it, if it was not done before; Ray is not needed).

        Raises:
            ActorGraphError: another session holds the directory, or it holds an earlier
                run's state and neither resume nor fresh was asked for.
        """
        if self.base_dir is None or self._lock is not None:
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        lock = (self.base_dir / LOCK_FILE).open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "an unknown process"
            lock.close()
            raise ActorGraphError(
                f"session.state_dir {self.base_dir} is in use by {holder}: two sessions must "
                "never share an order journal; stop that session or use another state_dir"
            ) from None
        earlier = self._earlier_state()
        if earlier and self.resume is None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()
            raise ActorGraphError(
                f"session.state_dir {self.base_dir} holds the state of an earlier run "
                f"({', '.join(p.name for p in earlier)}): pass --resume to continue it, or "
                "--fresh to discard it and start a new session"
            )
        lock.seek(0)
        lock.truncate()
        lock.write(
            json.dumps(
                {"session_id": self.session_id, "pid": os.getpid(), "host": socket.gethostname()}
            )
            + "\n"
        )
        lock.flush()
        self._lock = lock
        if self.resume is False:
            for path in earlier:
                clear_state(str(path))
        (self.base_dir / LAST_SESSION_FILE).write_text(self.session_id + "\n", encoding="utf-8")

    def _open_audit(self) -> None:
        """Start the driver's chain with the configuration this session runs."""
        if self.audit_dir is None or self._audit is not None:
            return
        sha, resolved = config_digest(self.config)
        self._audit = AuditChain(
            Path(self.audit_dir) / chain_file_name(SESSION_WRITER),
            SESSION_WRITER,
            durable=self.settings.market_data == "ccxt",
            opened={"session_id": self.session_id},
        )
        self._audit.record(
            "session_started",
            session_id=self.session_id,
            resume=self.resume,
            namespace=self.settings.namespace,
            market_data=self.settings.market_data,
            clock=self.settings.clock,
            config_sha256=sha,
            config=resolved,
        )
        self._audit.flush()

    def _audit_event(self, event: str, **fields: Any) -> None:
        """Record a driver's event. A failure is logged, never raised: it must not keep a halt
        from reaching Risk or a stop from finishing (the actors' chains still hold both)."""
        if self._audit is None:
            return
        try:
            self._audit.record(event, **fields)
            self._audit.flush()
        except AuditWriteError as exc:
            self._audit = None
            self._log.error("audit_not_written", event=event, error=str(exc))

    def _close_audit(self, **fields: Any) -> None:
        audit, self._audit = self._audit, None
        if audit is None:
            return
        try:
            audit.close(**fields)
        except AuditWriteError as exc:
            self._log.error("audit_not_written", event="closed", error=str(exc))

    def _release_state_dir(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def actor_options(self, component_id: str) -> dict[str, Any]:
        return {
            "name": component_id,
            "namespace": self.settings.namespace,
            "max_restarts": self.settings.max_restarts,
            "max_task_retries": 0,
            "num_cpus": 0,
        }

    def start(self) -> None:
        """Create every actor, then start them: control and components first, market data last.

        Raises:
            ActorGraphError: Ray is not running, or a session already holds the actor names.
        """
        if not ray.is_initialized():
            raise ActorGraphError("Ray is not initialised: call ray.init() before starting")
        self.claim_state_dir()
        self._open_audit()
        remote_host = ray.remote(LiveHost)
        secrets = (
            (
                self._secrets
                if self._secrets is not None
                else broker_environment(self.config, os.environ)
            )
            if self.settings.market_data == "ccxt"
            else None
        )
        try:
            for cid in live_component_ids(self.config):
                environ = (
                    secrets
                    if cid.startswith("broker:")
                    else self._alert_secrets
                    if cid == CONTROL
                    else None
                )
                replay = self._replay if cid == MARKET_DATA else None
                self.hosts[cid] = remote_host.options(**self.actor_options(cid)).remote(
                    self.config,
                    cid,
                    self.session_id,
                    self.state_dir,
                    environ,
                    replay,
                    audit_dir=self.audit_dir,
                )
        except ValueError as exc:
            self.kill()
            raise ActorGraphError(
                f"cannot start session {self.session_id!r} in namespace "
                f"{self.settings.namespace!r}: {exc} (is another session running? stop it "
                f"or set session.namespace)"
            ) from exc
        try:
            ray.get([h.ready.remote() for h in self.hosts.values()])
        except ray.exceptions.RayActorError as exc:
            # An actor whose component could not be built (a strategy module that will not
            # import, say): the user's error, in one line, not Ray's traceback.
            self.kill()
            raise _creation_error(exc, self.session_id) from None
        self._started_at = time.monotonic()
        # Venues first (a live broker reconciles with its exchange as it starts), then
        # strategies, then market data. A failed reconciliation stops the session here,
        # before any strategy has run (fail closed).
        core = [c for c in self.hosts if c != MARKET_DATA and not c.startswith("strategy:")]
        started = ray.get([self.hosts[cid].start.remote() for cid in core])
        failures = [s.halted for s in started if s.halted]
        if failures:
            self.halted = failures[0]
            self._log.error("session_refused", reason=self.halted)
            self._audit_event("session_refused", reason=self.halted)
            self._stop_control()
            self.kill()
            raise ActorGraphError(f"session {self.session_id!r} not started: {self.halted}")
        strategies = [c for c in self.hosts if c.startswith("strategy:")]
        ray.get([self.hosts[cid].start.remote() for cid in strategies])
        ray.get(self.hosts[MARKET_DATA].start.remote())
        self.running = True
        self._log.info(
            "session_started",
            actors=list(self.hosts),
            namespace=self.settings.namespace,
            clock=self.settings.clock,
            speed=self.settings.speed,
            state_dir=self.state_dir,
        )

    def _stop_control(self) -> None:
        """Stop ``control`` cleanly (its queued alerts are sent, within
        ``alerts.stop_timeout_s``) once what the actors published has reached it, for a
        session about to be removed at once."""
        if not self.config.alerts.rules or CONTROL not in self.hosts:
            return
        deadline = time.monotonic() + self.settings.stop_timeout_s
        while time.monotonic() < deadline and not self._all_idle():
            time.sleep(0.02)
        stop_timeout = max(0.05, deadline - time.monotonic()) + self.config.alerts.stop_timeout_s
        _quietly(lambda: ray.get(self.hosts[CONTROL].stop.remote(), timeout=stop_timeout))

    def status(self, component_id: str, timeout_s: float = 10.0) -> HostStatus:
        """One actor's status (raises if it cannot answer in time)."""
        found: HostStatus = ray.get(self.hosts[component_id].report.remote(), timeout=timeout_s)
        return found

    def venue_modes(self) -> list[tuple[str, str, str]]:
        """``(venue, mode, why)`` of each broker: simulated, or what the gateway resolved."""
        out = []
        for cid in self.hosts:
            if cid.startswith("broker:"):
                details = self.status(cid).details
                mode = details.get("mode", "simulated")
                reason = details.get("mode_reason", "orders matched by the simulated venue")
                out.append((cid.split(":", 1)[1], str(mode), str(reason)))
        return out

    def statuses(self, timeout_s: float | None = None) -> dict[str, HostStatus | str]:
        """Every actor's status, or why it could not be had (restarting, dead, hung)."""
        timeout = timeout_s if timeout_s is not None else self.settings.hang_timeout_s
        refs = {cid: h.report.remote() for cid, h in self.hosts.items()}
        out: dict[str, HostStatus | str] = {}
        reported = dict(self._reported)
        deadline = time.monotonic() + timeout
        for cid, ref in refs.items():
            try:
                status: HostStatus = ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
                out[cid] = reported[cid] = status
            except ray.exceptions.GetTimeoutError:
                out[cid] = f"{cid} did not answer within {timeout:g} s"
            except ray.exceptions.ActorDiedError as exc:
                out[cid] = f"{cid} is dead: {_first_line(exc)}"
                self._dead.add(cid)
            except ray.exceptions.RayActorError as exc:
                out[cid] = f"{cid} is unavailable: {_first_line(exc)}"
        self._reported = reported
        return out

    def metric_totals(self) -> list[MetricTotals]:
        """Each actor's metric totals as of its last status report (the health checks ask for
        one every ``session.health_interval_s``); safe to call from another thread."""
        return [status.metrics for status in self._reported.values()]

    def progress(self) -> dict[str, Any]:
        """Market events, orders sent, fills, equity and health, as the actors last reported
        them (one health check ago at most)."""
        reported = dict(self._reported)
        totals = merge_totals([status.metrics for status in reported.values()])
        counted: dict[str, float] = {}
        for name, _, value in totals["counters"]:
            counted[name] = counted.get(name, 0.0) + value
        portfolio = reported.get(PORTFOLIO)
        if self.halted:
            health = f"halted: {self.halted}"
        elif self._unhealthy_since:
            health = f"{len(self._unhealthy_since)} unhealthy: {', '.join(self._unhealthy_since)}"
        else:
            health = "ok"
        return {
            "events": int(counted.get(MARKET_EVENTS, 0.0)),
            "orders": int(counted.get(ORDERS_SUBMITTED, 0.0)),
            "fills": int(counted.get(FILLS, 0.0)),
            "equity": portfolio.details.get("equity") if portfolio is not None else None,
            "health": health,
        }

    def check_health(self) -> str:
        """Halt trading if an order-path actor or ``md`` is dead, or unavailable or silent for
        longer than ``session.hang_timeout_s`` (a restart takes a second or two); return the
        reason. Without ``md`` every price the graph holds goes stale while orders could still
        be sent on it, so a lost market-data actor stops trading like a lost broker does."""
        now = time.monotonic()
        for cid, status in self.statuses().items():
            if isinstance(status, HostStatus):
                self._unhealthy_since.pop(cid, None)
                if status.halted and not self.halted:
                    self.halted = status.halted
                continue
            since = self._unhealthy_since.setdefault(cid, now)
            self._log.warning("actor_unhealthy", component=cid, status=status)
            lasting = now - since >= self.settings.hang_timeout_s or cid in self._dead
            if lasting and cid == MARKET_DATA and not self.halted:
                self.halt(f"{status}: market data is stale")
            elif lasting and on_order_path(cid) and not self.halted:
                self.halt(status)
        return self.halted

    def halt(self, reason: str) -> None:
        """Trip Risk's kill switch (if Risk can hear it) and remember why trading stopped."""
        self.halted = reason
        self._log.error("trading_halted", reason=reason)
        self._audit_event("halted", reason=reason)
        trip = _stamped(
            TripKillSwitch, reason=f"halted by the session: {reason}", mode=KillSwitchMode.HALT
        )
        for cid in (RISK, CONTROL):
            try:
                ray.get(self.hosts[cid].request.remote(trip), timeout=2.0)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                self._log.error("halt_not_delivered", component=cid)

    def replay_finished(self) -> bool:
        try:
            status = self.status(MARKET_DATA, timeout_s=2.0)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return False
        return bool(status.details.get("replay_finished"))

    def run(
        self,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        *,
        until_replay_done: bool = True,
        checkpoint: Callable[[], object] | None = None,
        checkpoint_interval_s: float = 5.0,
        on_check: Callable[[], None] | None = None,
    ) -> str:
        """Watch the session until ``duration_s``, ``stop`` is set, or the replay has ended.

        ``checkpoint`` (writing outputs, say) is called every ``checkpoint_interval_s``, so a
        driver that dies leaves what it had; ``on_check`` is called after each health check
        (every ``session.health_interval_s``), e.g. to show :meth:`progress`.

        Returns what ended it: ``duration``, ``signal``, ``replay_finished`` or ``halted``
        (an order-path actor died or hung: trading is halted and the session should stop).
        """
        stop = stop or threading.Event()
        interval = self.settings.health_interval_s
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_checkpoint = time.monotonic() + checkpoint_interval_s
        while True:
            if stop.wait(interval):
                return "signal"
            if checkpoint is not None and time.monotonic() >= next_checkpoint:
                checkpoint()
                next_checkpoint = time.monotonic() + checkpoint_interval_s
            if deadline is not None and time.monotonic() >= deadline:
                return "duration"
            if self.check_health():
                return "halted"
            if on_check is not None:
                on_check()
            if until_replay_done and self.replay_finished() and self._all_idle():
                return "replay_finished"

    def _all_idle(self) -> bool:
        try:
            return all(ray.get([h.idle.remote() for h in self.hosts.values()], timeout=2.0))
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return False

    def stop(self, stopped_by: str = "request") -> SessionOutcome:
        """Stop cleanly within ``session.stop_timeout_s`` and remove the actors."""
        self.running = False
        started = time.monotonic()
        deadline = started + self.settings.stop_timeout_s
        elapsed = started - self._started_at

        def left() -> float:
            return max(0.05, deadline - time.monotonic())

        md = self.hosts.get(MARKET_DATA)
        if md is not None:
            _quietly(lambda: ray.get(md.stop_feed.remote(), timeout=left()))
        trip = _stamped(TripKillSwitch, reason=STOP_REASON, mode=KillSwitchMode.HALT)
        _quietly(lambda: ray.get(self.hosts[RISK].request.remote(trip), timeout=left()))
        while time.monotonic() < deadline - 0.5 * self.settings.stop_timeout_s:
            if self._all_idle():
                break
            time.sleep(0.02)
        order = [c for c in self.hosts if c not in (MARKET_DATA, CONTROL)]
        statuses: dict[str, HostStatus] = {}
        # control sends its queued alerts as it stops: it may take that much longer.
        alerts_s = self.config.alerts.stop_timeout_s if self.config.alerts.rules else 0.0
        for group in ([MARKET_DATA], order, [CONTROL]):
            refs = {cid: self.hosts[cid].stop.remote() for cid in group if cid in self.hosts}
            extra = alerts_s if group == [CONTROL] else 0.0
            for cid, ref in refs.items():
                try:
                    statuses[cid] = ray.get(ref, timeout=left() + extra)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                    self._log.error("actor_not_stopped", component=cid, error=_first_line(exc))
        md_status = statuses.get(MARKET_DATA)
        events = int(md_status.details.get("published", 0)) if md_status else 0
        outcome, result = self._result(events, elapsed, left)
        heads = {
            status.audit_head[0]: list(status.audit_head[1:])
            for status in statuses.values()
            if status.audit_head is not None
        }
        self._audit_event(
            "session_stopped",
            stopped_by=stopped_by,
            halted=self.halted,
            not_stopped=sorted(set(self.hosts) - set(statuses)),
            heads=heads,
        )
        self._close_audit()
        self.kill()
        session_outcome = SessionOutcome(
            session_id=self.session_id,
            stopped_by=stopped_by,
            elapsed_s=elapsed,
            market_events=events,
            halted=self.halted,
            statuses=statuses,
            portfolio=outcome,
            stop_s=time.monotonic() - started,
            result=result,
        )
        self._log.info("session_stopped", **session_outcome.summary())
        return session_outcome

    def _result(
        self, events: int, elapsed: float, left: Callable[[], float]
    ) -> tuple[PortfolioOutcome | None, BacktestResult | None]:
        """The portfolio and the session's result as its actors hold them now."""
        outcome: PortfolioOutcome | None = None
        try:
            outcome = ray.get(
                self.hosts[PORTFOLIO].inspect.remote(portfolio_outcome), timeout=left()
            )
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            self._log.error("portfolio_unreadable", error=_first_line(exc))
        if outcome is None:
            return None, None
        stream, trades = self._replay or (None, None)
        stream = stream if stream is not None else BarStream.empty()
        bars, trade_ticks = events, 0
        if self._replay is not None and events == len(stream) + len(trades or ()):
            bars, trade_ticks = len(stream), len(trades or ())
        result = assemble_result(
            self.config,
            outcome,
            stream=stream,
            trades=trades,
            bars=bars,
            trade_ticks=trade_ticks,
            ledger=self._order_ledger(left()),
            control=self._control_messages(left()),
            elapsed_s=elapsed,
        )
        return outcome, result

    def result_so_far(self, timeout_s: float = 5.0) -> BacktestResult | None:
        """Orders, fills and equity of the running session (``None`` if the portfolio cannot
        be read), for outputs written while it runs."""
        events = 0
        with contextlib.suppress(ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            events = int(self.status(MARKET_DATA, timeout_s).details.get("published", 0))
        _, result = self._result(events, time.monotonic() - self._started_at, lambda: timeout_s)
        return result

    def _order_ledger(self, timeout_s: float) -> OrderLedger:
        """One order table from what every host published, in causal order."""
        refs = [h.published_orders.remote() for h in self.hosts.values()]
        messages: list[Message] = []
        for ref in refs:
            with contextlib.suppress(ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                messages.extend(ray.get(ref, timeout=timeout_s))
        messages.sort(key=lambda m: (m.ts_init_ns, _LEDGER_RANK.get(type(m).__name__, 9)))
        ledger = OrderLedger()
        for msg in messages:
            ledger.record(msg)
        return ledger

    def _control_messages(self, timeout_s: float) -> list[Message]:
        try:
            found: list[Message] = ray.get(
                self.hosts[CONTROL].control_messages.remote(), timeout=timeout_s
            )
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return []
        return found

    def kill(self) -> None:
        """Remove every actor at once (no restart) and let go of the state directory."""
        self.running = False
        for host in self.hosts.values():
            _quietly(lambda h=host: ray.kill(h, no_restart=True))
        self.hosts.clear()
        self._close_audit(detail="actors removed without a clean stop")
        self._release_state_dir()


def _quietly(call: Any) -> None:
    with contextlib.suppress(
        ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ValueError
    ):
        call()


def _creation_error(exc: BaseException, session_id: str) -> TradegraphError:
    """The tradegraph error an actor's constructor raised, rebuilt from Ray's report of it
    (same class, so the same exit code), or an :class:`ActorGraphError` saying what Ray said."""
    found = re.findall(r"tradegraph\.errors\.(\w+): (.+)", str(exc))
    if found:
        name, message = found[-1]
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, TradegraphError):
            return kind(message.strip())
    return ActorGraphError(f"session {session_id!r} not started: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _stamped(
    kind: type[TripKillSwitch] | type[ResetKillSwitch],
    reason: str,
    mode: KillSwitchMode | None = None,
) -> Message:
    now = time.time_ns()
    if kind is TripKillSwitch:
        return TripKillSwitch(reason=reason, mode=mode, ts_event_ns=now, ts_init_ns=now)
    return kind(reason=reason, ts_event_ns=now, ts_init_ns=now)


def operator_command(
    command: str,
    reason: str,
    *,
    mode: KillSwitchMode | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    timeout_s: float = 5.0,
) -> HostStatus:
    """``kill`` or ``resume`` the session running in ``namespace``, through its Risk actor.

    ``mode`` (``kill`` only) overrides the configured kill-switch mode for this trip.
    Returns Risk's status once it has handled the command (its kill switch has tripped and its
    cancels, and a ``flatten`` trip's closing orders, are on their way, or it is reset).

    Raises:
        ActorGraphError: no session runs in ``namespace`` or Risk did not answer.
    """
    kind = TripKillSwitch if command == "kill" else ResetKillSwitch
    risk = _actor(RISK, namespace)
    try:
        status: HostStatus = ray.get(
            risk.request.remote(_stamped(kind, reason, mode)), timeout=timeout_s
        )
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
        raise ActorGraphError(f"risk did not take the command: {_first_line(exc)}") from exc
    return status


def change_limits(
    changes: tuple[LimitChange, ...],
    reason: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    timeout_s: float = 5.0,
) -> HostStatus:
    """Set risk limits of the session running in ``namespace``, through its Risk actor.

    Risk validates the changes over the limits in force with the configuration's model and
    applies them to the next order (publishing ``LimitsChanged``), or changes nothing.

    Returns:
        Risk's status once it has handled the command (``details["limits"]`` in force).

    Raises:
        ConfigError: Risk refused the changes (the message names the field); nothing changed.
        ActorGraphError: no session runs in ``namespace`` or Risk did not answer.
    """
    now = time.time_ns()
    command = ChangeLimits(changes=changes, reason=reason, ts_event_ns=now, ts_init_ns=now)
    risk = _actor(RISK, namespace)
    try:
        status: HostStatus = ray.get(risk.request.remote(command), timeout=timeout_s)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
        raise ActorGraphError(f"risk did not take the limits: {_first_line(exc)}") from exc
    refused = status.details.get("limits_refused")
    if refused:
        raise errors.ConfigError(f"{refused}; no limit changed")
    return status


def graph_status(
    namespace: str = DEFAULT_NAMESPACE, timeout_s: float = 5.0
) -> dict[str, dict[str, Any] | str]:
    """Status of every actor of the session in ``namespace``: positions, PnL, open orders,
    kill switch, health (or why an actor could not answer).

    Raises:
        ActorGraphError: no session runs in ``namespace``.
    """
    names = _actor_names(namespace)
    if not names:
        raise ActorGraphError(f"no session is running in namespace {namespace!r}")
    refs = {name: _actor(name, namespace).report.remote() for name in names}
    out: dict[str, dict[str, Any] | str] = {}
    for name, ref in refs.items():
        try:
            report = asdict(ray.get(ref, timeout=timeout_s))
            report.pop("metrics")  # served at the driver's /metrics, not part of the status
            out[name] = report
        except ray.exceptions.GetTimeoutError:
            out[name] = f"did not answer within {timeout_s:g} s"
        except ray.exceptions.RayActorError as exc:
            out[name] = f"dead: {_first_line(exc)}"
    return out


def _actor_names(namespace: str) -> list[str]:
    try:
        control = ray.get_actor(CONTROL, namespace=namespace)
    except ValueError:
        return []
    names: list[str] = ray.get(control.members.remote(), timeout=5.0)
    return names


def _actor(name: str, namespace: str) -> Any:
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError as exc:
        raise ActorGraphError(
            f"no actor {name!r} in namespace {namespace!r}: is a session running there?"
        ) from exc
