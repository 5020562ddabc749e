"""What the rest of tradegraph needs from a venue adapter, as protocols.

A venue family (``ccxt/`` today) lives in a folder of its own and satisfies these; the actor
hosts and the CLI are typed against them, never against one adapter's classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tradegraph.config.models import LiveMode
from tradegraph.contracts import CancelOrder, Message, SubmitOrder, VenueBanned
from tradegraph.contracts.state import ComponentState

__all__ = [
    "BrokerGateway",
    "HistoricalSource",
    "MarketDataSource",
    "ReconciliationReport",
]

# ---------------------------------------------------------------------------- order path


@dataclass(frozen=True)
class ReconciliationReport:
    """What the venue and the journal agree and disagree on.

    Attributes:
        ok: Nothing unexplained: strategies may start. ``False``: halt (fail closed).
        problems: One sentence per unexplained difference.
        events: Messages to publish before anything else (fills found at the venue that the
            journal missed, orders that ended while the broker was away).
        open_orders: Orders open at the venue that the journal knows.
        recovered_fills: Fills found at the venue that the journal missed.
        balances: Venue balances (total) of the currencies this session trades.
        expected_balances: What the journal says they should be.
        positions: Net positions at the venue (base units, negative: short) of the perpetual
            instruments this session trades, by instrument id.
        expected_positions: What the journal says they should be.
        funding: Funding the account got (negative: paid) per perpetual instrument since the
            journal's baseline (or over ``live.reconcile_lookback_s`` on a first start).
        mode: How the broker trades.
        ts_ns: When the venue was read (0: not known).
        skipped: Why nothing was judged (the venue could not be read), or ``""``.
    """

    ok: bool
    problems: tuple[str, ...]
    events: tuple[Message, ...]
    open_orders: int
    recovered_fills: int
    balances: Mapping[str, float] = field(default_factory=dict)
    expected_balances: Mapping[str, float] = field(default_factory=dict)
    positions: Mapping[str, float] = field(default_factory=dict)
    expected_positions: Mapping[str, float] = field(default_factory=dict)
    funding: Mapping[str, float] = field(default_factory=dict)
    mode: LiveMode = LiveMode.LIVE
    ts_ns: int = 0
    skipped: str = ""

    def summary(self) -> str:
        """A few lines for the operator."""
        head = (
            f"reconciliation {'passed' if self.ok else 'FAILED: trading must not start'} "
            f"({self.mode.value}): {self.open_orders} open orders, "
            f"{self.recovered_fills} missed fills recovered"
        )
        lines = [head]
        lines += [f"  - {problem}" for problem in self.problems]
        for ccy in sorted(self.balances):
            expected = self.expected_balances.get(ccy)
            shown = "" if expected is None else f" (journal expects {expected:.10g})"
            lines.append(f"  {ccy}: {self.balances[ccy]:.10g}{shown}")
        for iid in sorted(self.positions):
            expected = self.expected_positions.get(iid)
            shown = "" if expected is None else f" (journal expects {expected:.10g})"
            paid = self.funding.get(iid)
            funding = "" if paid is None else f", funding {paid:+.10g}"
            lines.append(f"  {iid} position: {self.positions[iid]:.10g}{shown}{funding}")
        return "\n".join(lines)


class BrokerGateway(Protocol):
    """What the ``broker:<venue>`` actor (:class:`~tradegraph.actors.gateway.GatewayBroker`)
    calls on a dry-run or live broker.

    Every coroutine returns the messages the broker produced since the previous return, from
    any source, in the order it produced them; :meth:`watch` yields them as they come.
    Recovery contract: :meth:`submit` of a client order id seen before publishes nothing more;
    :meth:`cancel` of an unknown or finished order publishes nothing; :meth:`reconcile` after
    a restart says whether trading may start.
    """

    venue: str
    component_id: str
    mode: LiveMode

    async def start(self) -> list[Message]:
        """Connect (load the venue's markets, synchronise clocks)."""
        ...

    async def submit(self, cmd: SubmitOrder) -> list[Message]:
        """Place ``cmd`` at most once."""
        ...

    async def cancel(self, cmd: CancelOrder) -> list[Message]:
        """Cancel one order."""
        ...

    async def cancel_all(self, reason: str) -> list[Message]:
        """Cancel every active order of the session (the kill switch)."""
        ...

    def refuse(self, cmd: SubmitOrder, reason: str) -> list[Message]:
        """Reject ``cmd`` without sending it."""
        ...

    async def poll(self) -> list[Message]:
        """Bring every active order up to date from the venue."""
        ...

    def watch(self) -> AsyncIterator[list[Message]]:
        """Batches of messages as venue updates arrive, until :meth:`close`."""
        ...

    async def reconcile(self) -> ReconciliationReport:
        """Compare what the broker remembers with the venue."""
        ...

    async def check(self) -> ReconciliationReport:
        """Compare again while trading (periodic reconciliation), never judging what the
        session's own orders in flight may still change."""
        ...

    async def venue_clock_offset_ms(self) -> float | None:
        """Our clock minus the venue's, in ms (``None``: the venue has no clock to read)."""
        ...

    def observe(self, msg: Message) -> None:
        """Market data (last prices for notional checks)."""
        ...

    def honour_ban(self, ban: VenueBanned) -> None:
        """Another caller of the venue met a rate-limit ban."""
        ...

    @property
    def open_orders(self) -> int:
        """Orders not finished (pending or open)."""
        ...

    def snapshot(self) -> ComponentState:
        """The broker's state (its order journal) as a frozen, versioned model."""
        ...

    async def close(self) -> None:
        """Stop :meth:`watch` and release the venue connection."""
        ...


# ---------------------------------------------------------------------------- history


class HistoricalSource(Protocol):
    """What ``tradegraph data download`` needs from a venue: its markets and paged candles.

    Satisfied by a synchronous ccxt client.
    """

    id: str
    markets: Mapping[str, Any] | None
    timeframes: Mapping[str, Any] | None
    last_response_headers: Mapping[str, Any] | None

    def load_markets(self) -> Mapping[str, Any]:
        """The venue's markets keyed by symbol."""
        ...

    def parse_timeframe(self, timeframe: str) -> int:
        """Seconds in ``timeframe`` (``"1m"`` is 60)."""
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        """Candles ``[ts_ms, open, high, low, close, volume]`` from ``since`` (ms)."""
        ...


# ---------------------------------------------------------------------------- market data


class MarketDataSource(Protocol):
    """Where a session's market data comes from: a replay of stored data, or a venue's stream.

    A source publishes into the ``md`` host; the host starts it, runs it until it is done or
    closed, and closes it when the session stops.
    """

    async def start(self) -> None:
        """Get ready to publish (connect, load markets, or resume where a replay stood)."""
        ...

    async def run(self) -> None:
        """Publish until done or closed; data trouble is counted and logged, never raised."""
        ...

    async def close(self) -> None:
        """Stop publishing; :meth:`run` returns."""
        ...

    def honour_ban(self, ban: VenueBanned) -> None:
        """Back off from a venue that banned the session (a no-op for a source without one)."""
        ...
