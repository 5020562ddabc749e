"""Exchange I/O inside live actors: the ccxt broker as the ``broker:<venue>`` component.

:class:`GatewayBroker` stands where the simulated venue stands in backtests and paper sessions:
it takes ``SubmitOrder`` and ``CancelOrder`` from Risk and publishes the same order events, but
the orders go to the exchange (``live``) or to a local journal (``dry-run``) through the
gateway of :mod:`tradegraph.adapters.ccxt.broker`. What the gateway returns is published at
once, so each order's events keep their order.

Two lanes: submits are worked one at a time, in the order Risk sent them; cancels have a lane
of their own, so a cancel never waits behind a submit stuck on a venue timeout or a ban. The
kill switch's cancels (Risk's reason starts with :data:`KILL_SWITCH_REASON`) become one
``cancel_all`` (the venue's cancel-all per symbol), and submits still queued are rejected
unsent. A cancel for an order whose submit is still queued goes behind that submit. During a
rate-limit ban the cancel lane waits for the ban to end and then sends at once (a request sent
into a ban lengthens it); Risk refuses every new order meanwhile.

A live broker reconciles with its exchange at start and then every
``live.reconcile_interval_s``: a timer on the host's clock queues the pass in the submit lane,
so it never runs beside a submit (see ``CcxtBroker.check`` for what it leaves alone). Fills it
finds are published (``ReconciliationRepaired`` says how many); anything it cannot explain
publishes ``ReconciliationDrift`` and halts trading with the reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from tradegraph.adapters.base import BrokerGateway
from tradegraph.config.models import GraphConfig, LiveMode
from tradegraph.contracts import (
    AccountBalances,
    CancelOrder,
    Clock,
    MarketData,
    Message,
    OrderRejected,
    Outbox,
    ReconciliationDrift,
    ReconciliationRepaired,
    SubmitOrder,
    TimerFired,
    VenueBanned,
    VenueReason,
)
from tradegraph.contracts.state import ComponentState
from tradegraph.observability import get_logger

KILL_SWITCH_REASON = "kill switch:"
"""How Risk's kill switch starts the reason of the cancels it sends (``RiskEngine._trip``)."""


def is_kill_switch_cancel(cmd: CancelOrder) -> bool:
    return cmd.reason.startswith(KILL_SWITCH_REASON)


class Secrets(Mapping[str, str]):
    """The few environment values a broker needs, passed to its actor; never printed."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)} redacted)"

    __str__ = __repr__


def broker_environment(config: GraphConfig, environ: Mapping[str, str]) -> Secrets:
    """What the brokers of ``config`` may read from ``environ``: the live gate and the variables
    named in ``venues[].live`` (``api_key_env``, ``api_secret_env``), nothing else."""
    from tradegraph.config.models import ENABLE_LIVE_ENV

    names = {ENABLE_LIVE_ENV, *credential_names(config)}
    return Secrets({n: environ[n] for n in names if n in environ})


def credential_names(config: GraphConfig) -> set[str]:
    """The environment variables holding API keys and secrets of ``config``'s venues."""
    names: set[str] = set()
    for venue in config.venues:
        if venue.live is not None:
            names.update(n for n in (venue.live.api_key_env, venue.live.api_secret_env) if n)
    return names


def take_broker_environment(config: GraphConfig, environ: MutableMapping[str, str]) -> Secrets:
    """:func:`broker_environment`, with the credentials removed from ``environ``.

    Call it before a local Ray starts: its processes (every actor of the session) inherit the
    driver's environment, and only the broker actors, which get the returned object, may hold
    the keys.
    """
    secrets = broker_environment(config, environ)
    for name in credential_names(config):
        environ.pop(name, None)
    return secrets


class _Reconcile:
    """The periodic reconciliation's turn in the submit lane (never beside a submit)."""


_RECONCILE = _Reconcile()
RECONCILE_TIMER = "reconcile"
"""Name of the broker's timer that starts each periodic reconciliation."""


class GatewayState(ComponentState):
    """What a :class:`GatewayBroker` keeps in a host snapshot: nothing but its version.

    Its durable state is the order journal file (``journal_path``): every order is written
    there before it is sent and every venue update as it comes, so the file is always newer
    than any snapshot. A restarted gateway loads the journal when it is built and reconciles
    it with the venue, which is the truth, before it takes a command. Copying the journal
    into the snapshot as well would restore an older journal over the newer file. The queued
    commands are not kept either: recovery hands the host's journal of batches to the gateway
    again, and the broker drops a submit its order journal already holds (by client order id).
    """


class GatewayBroker:
    """The ``broker:<venue>`` component of a dry-run or live session.

    Args:
        config: The graph; ``config.venue(venue).live`` says how to reach the exchange.
        venue: Venue name.
        session_id: Names the session's order journal and client order ids.
        environ: The live gate and the credentials (see :func:`broker_environment`).
        journal_path: The gateway's order journal, kept across actor restarts.
        outbox: Where order events go (the host's outbox).
        clock: The host's clock; a live broker sets its reconciliation timer on it
            (``live.reconcile_interval_s``). ``None``: reconciliation only at start.
        halt: Halts trading with a reason (the host's halt: Risk trips its kill switch and
            the driver is told); a periodic reconciliation that finds drift calls it.
    """

    State = GatewayState

    def __init__(
        self,
        config: GraphConfig,
        venue: str,
        *,
        session_id: str,
        environ: Mapping[str, str],
        journal_path: str | None,
        outbox: Outbox,
        exchange: Any | None = None,
        clock: Clock | None = None,
        halt: Callable[[str], None] | None = None,
    ) -> None:
        from tradegraph.adapters.ccxt.broker import build_broker

        self.component_id = f"broker:{venue}"
        self._outbox = outbox
        self._clock = clock
        self._halt = halt
        live = config.venue(venue).live
        self._reconcile_interval_s = None if live is None else live.reconcile_interval_s
        gateway, self.mode, self.mode_reason = build_broker(
            config.venue(venue),
            config.instrument_map(),
            session_id=session_id,
            environ=environ,
            journal_path=journal_path,
            exchange=exchange,
        )
        self.gateway: BrokerGateway = gateway
        # Commands wait here until the gateway is connected and reconciled (an order may
        # arrive while a restarted broker is still reconnecting).
        self._commands: asyncio.Queue[SubmitOrder | CancelOrder | _Reconcile] = asyncio.Queue()
        self._cancels: asyncio.Queue[CancelOrder] = asyncio.Queue()
        # Submits queued and not yet started; those the kill switch refused, with why.
        self._queued: set[str] = set()
        self._refused: dict[str, str] = {}
        self.connected = False
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciliation = ""
        self.failure = ""
        self.reconciliations = 0
        self.drift = ""
        self._log = get_logger(self.component_id, session_id=session_id)

    @property
    def live(self) -> bool:
        return self.mode is LiveMode.LIVE

    def _publish_all(self, messages: list[Message]) -> None:
        for msg in messages:
            self._outbox.publish(msg)

    async def connect(self, on_published: Callable[[], object]) -> str:
        """Start the gateway, reconcile with the venue, then work commands and venue updates.

        Returns an empty string, or why the session must not trade (reconciliation failed,
        venue unreachable): the caller halts before strategies start.
        """
        self._log.warning("broker_mode", mode=self.mode.value, reason=self.mode_reason)
        try:
            self._publish_all(await self.gateway.start())
            report = await self.gateway.reconcile()
        except Exception as exc:
            self.failure = f"{self.component_id} could not start: {type(exc).__name__}: {exc}"
            self._refuse_waiting(on_published)
            return self.failure
        self.reconciliation = report.summary()
        if not report.ok:
            self.failure = f"reconciliation failed: {report.summary()}"
            self._refuse_waiting(on_published)
            return self.failure
        self._publish_all(list(report.events))
        if report.balances:
            # After the recovered fills: from now on Risk checks orders against what the
            # account holds at the venue (which already includes those fills).
            self._outbox.publish(
                AccountBalances(
                    venue=self.gateway.venue,
                    balances=dict(report.balances),
                    ts_event_ns=report.ts_ns,
                    ts_init_ns=report.ts_ns,
                )
            )
        on_published()
        self.connected = True
        self._arm_reconcile()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._work_commands(on_published)))
        self._tasks.append(loop.create_task(self._work_cancels(on_published)))
        self._tasks.append(loop.create_task(self._watch(on_published)))
        return ""

    def _arm_reconcile(self) -> None:
        """Set the timer of the next periodic reconciliation (live brokers with an interval)."""
        interval = self._reconcile_interval_s
        if self._clock is None or interval is None or not self.live or self.drift:
            return
        self._clock.set_timer(RECONCILE_TIMER, self._clock.now_ns() + round(interval * 1e9))

    async def reconcile_now(self) -> None:
        """One periodic reconciliation: publish what it repaired; on drift, publish
        ``ReconciliationDrift`` and halt trading with its reason."""
        report = await self.gateway.check()
        self.reconciliations += 1
        now = time.time_ns()
        self._publish_all(list(report.events))
        if report.recovered_fills:
            # (A fill a stream brought while the pass ran counts too: the pass cannot tell.)
            self._outbox.publish(
                ReconciliationRepaired(
                    venue=self.gateway.venue,
                    recovered_fills=report.recovered_fills,
                    detail=f"{report.recovered_fills} fill(s) booked while reconciling",
                    ts_event_ns=now,
                    ts_init_ns=now,
                )
            )
        if report.ok:
            self.reconciliation = report.skipped or report.summary()
            return
        reason = f"reconciliation drift at {self.gateway.venue}: " + "; ".join(report.problems)
        self.drift = reason
        self.reconciliation = report.summary()
        self._outbox.publish(
            ReconciliationDrift(
                venue=self.gateway.venue,
                problems=report.problems,
                reason=reason,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        if self._halt is not None:
            self._halt(reason)

    async def clock_offset_ms(self) -> float | None:
        """Our clock minus the exchange's, in ms (``None``: dry-run, or no clock to read)."""
        return await self.gateway.venue_clock_offset_ms()

    def _refuse_waiting(self, on_published: Callable[[], object]) -> None:
        """Reject the orders that waited for a connection that failed (Risk and the strategy
        learn why); cancels of orders that never left need nothing."""
        while not self._commands.empty():
            cmd = self._commands.get_nowait()
            if isinstance(cmd, SubmitOrder):
                now = time.time_ns()
                self._outbox.publish(
                    OrderRejected(
                        client_order_id=cmd.client_order_id,
                        strategy_id=cmd.strategy_id,
                        instrument_id=cmd.instrument_id,
                        venue=cmd.venue,
                        reason=f"{VenueReason.NOT_SENT.value}: {self.failure}",
                        code=VenueReason.NOT_SENT,
                        ts_event_ns=now,
                        ts_init_ns=now,
                    )
                )
        on_published()

    async def _work_commands(self, on_published: Callable[[], object]) -> None:
        while True:
            cmd = await self._commands.get()
            if isinstance(cmd, _Reconcile):
                try:
                    await self.reconcile_now()
                except Exception as exc:  # a broken check must not stop the submit lane
                    self._log.error("reconcile_failed", error=f"{type(exc).__name__}: {exc}")
                    if self._halt is not None:
                        self._halt(f"periodic reconciliation failed: {type(exc).__name__}: {exc}")
                on_published()
                self._arm_reconcile()
                continue
            if isinstance(cmd, SubmitOrder):
                self._queued.discard(cmd.client_order_id)
                refused = self._refused.pop(cmd.client_order_id, None)
                if refused is not None:
                    messages = self.gateway.refuse(cmd, refused)
                else:
                    messages = await self.gateway.submit(cmd)
            else:
                messages = await self.gateway.cancel(cmd)
            self._publish_all(messages)
            on_published()

    async def _work_cancels(self, on_published: Callable[[], object]) -> None:
        while True:
            cmd = await self._cancels.get()
            if is_kill_switch_cancel(cmd):
                # Every kill-switch cancel already queued is answered by the one cancel-all.
                while not self._cancels.empty():
                    more = self._cancels.get_nowait()
                    if not is_kill_switch_cancel(more):
                        self._cancels.put_nowait(more)
                        break
                messages = await self.gateway.cancel_all(cmd.reason)
            else:
                messages = await self.gateway.cancel(cmd)
            self._publish_all(messages)
            on_published()

    async def _watch(self, on_published: Callable[[], object]) -> None:
        async for batch in self.gateway.watch():
            self._publish_all(batch)
            on_published()

    def start(self) -> None:
        return None

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        self.stop()
        await self.gateway.close()

    def handle(self, msg: Message) -> None:
        if isinstance(msg, SubmitOrder | CancelOrder):
            if not self.connected:
                self._log.warning("order_held_until_connected", client_order_id=msg.client_order_id)
            if isinstance(msg, SubmitOrder):
                self._queued.add(msg.client_order_id)
                self._commands.put_nowait(msg)
            elif msg.client_order_id in self._queued:
                if is_kill_switch_cancel(msg):
                    self._refused[msg.client_order_id] = msg.reason
                else:
                    self._commands.put_nowait(msg)  # after its submit
            else:
                self._cancels.put_nowait(msg)
        elif isinstance(msg, MarketData):
            self.gateway.observe(msg)
        elif isinstance(msg, TimerFired) and msg.name == RECONCILE_TIMER:
            if self.connected:
                self._commands.put_nowait(_RECONCILE)
        elif isinstance(msg, VenueBanned):
            self.gateway.honour_ban(msg)

    @property
    def open_orders(self) -> int:
        return self.gateway.open_orders

    def snapshot(self) -> GatewayState:
        """Nothing beyond the version: the order journal file is the durable state (see
        :class:`GatewayState`)."""
        return GatewayState()

    def restore(self, state: GatewayState) -> None:
        return None
