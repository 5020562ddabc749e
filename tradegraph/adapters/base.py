"""What the actor hosts need of the outside world, one protocol per role."""

from __future__ import annotations

from typing import Protocol

from tradegraph.contracts import VenueBanned


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
