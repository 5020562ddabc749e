"""A ban the broker met reaches md's venue clients even when it arrives before they exist."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.transports import TakingTransport
from tradegraph.actors.live_host import LiveHost
from tradegraph.config import GraphConfig, load_config
from tradegraph.config.models import LiveVenueConfig
from tradegraph.contracts import MARKET_DATA, Outbox, VenueBanned
from tradegraph.engine.market_data import MarketDataFeed

PAPER = Path(__file__).resolve().parents[3] / "examples" / "paper.yaml"
BROKER = "broker:BINANCE"


class RecordingSource:
    """A venue's market-data client that records the bans it was told of, and when."""

    def __init__(self) -> None:
        self.bans: list[tuple[str, VenueBanned]] = []
        self.started = False
        self.closed = asyncio.Event()

    async def start(self) -> None:
        self.started = True

    async def run(self) -> None:
        await self.closed.wait()

    async def close(self) -> None:
        self.closed.set()

    def honour_ban(self, ban: VenueBanned) -> None:
        self.bans.append(("started" if self.started else "before start", ban))


def ban(until_ns: int) -> VenueBanned:
    return VenueBanned(
        venue="BINANCE",
        until_ns=until_ns,
        source=BROKER,
        detail="418",
        ts_event_ns=1,
        ts_init_ns=1,
    )


def test_a_ban_that_reaches_md_before_its_clients_exist_is_handed_to_them() -> None:
    config = load_config(
        PAPER, ["session.state_dir=null", "session.market_data=ccxt", "session.clock=wall"]
    )
    live = LiveVenueConfig(exchange="binance")
    venues = tuple(v.model_copy(update={"live": live}) for v in config.venues)
    config = config.model_copy(update={"venues": venues})
    source = RecordingSource()

    def sources(_: GraphConfig, feed: MarketDataFeed, outbox: Outbox) -> list[Any]:
        return [source]

    async def scenario() -> None:
        host = LiveHost(
            config, MARKET_DATA, "bans", transport=TakingTransport(), md_sources=sources
        )
        await host.push(BROKER, 1, 1, [ban(10**19)])
        await host.push(BROKER, 1, 2, [ban(2 * 10**19)])
        await host.start()
        for _ in range(100):
            if source.started:
                break
            await asyncio.sleep(0)
        await host.push(BROKER, 1, 3, [ban(3 * 10**19)])
        await host.stop_feed()

    asyncio.run(scenario())

    assert [(when, b.until_ns) for when, b in source.bans] == [
        ("before start", 2 * 10**19),
        ("started", 3 * 10**19),
    ]
