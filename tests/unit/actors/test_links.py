"""Outgoing links, driven through a fake transport: sequencing, resends, hang detection."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from tradegraph.actors.causal_order import CausalOrder
from tradegraph.actors.inbox import Fence
from tradegraph.actors.links import Links, PeerFailure
from tradegraph.actors.wire import Item

RISK = "risk"
STRATEGY = "strategy:sma_btc"
HANG_TIMEOUT_S = 2.0


class PeerRestartingError(Exception):
    pass


class PeerGoneError(Exception):
    pass


class FakeTransport:
    """Keeps every call unanswered until the test answers it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, Future[Any]]] = []

    def push(
        self,
        destination: str,
        sender: str,
        incarnation: int,
        seq: int,
        payload: Any,
        origin_ns: int,
        fence: Fence | None,
        order: CausalOrder | None = None,
    ) -> Future[Any]:
        answer: Future[Any] = Future()
        self.calls.append((destination, seq, answer))
        return answer

    def share(self, messages: list[Item]) -> Any:
        return messages

    def advance(self, destination: str, until_ns: int | None) -> Future[Any]:
        fired: Future[Any] = Future()
        fired.set_result(None)
        return fired

    def settle(
        self, destination: str, expected: dict[str, tuple[int, int]], alone: bool
    ) -> Future[Any]:
        settled: Future[Any] = Future()
        settled.set_result(None)
        return settled

    def failure(self, exc: BaseException) -> PeerFailure:
        if isinstance(exc, PeerRestartingError):
            return PeerFailure.RESTARTING
        if isinstance(exc, PeerGoneError):
            return PeerFailure.DEAD
        return PeerFailure.FAILED


class ManualClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def links_with(transport: FakeTransport, clock: ManualClock, lost: list[tuple[str, str]]) -> Links:
    return Links(
        "md",
        5,
        transport,
        HANG_TIMEOUT_S,
        lambda dest, reason: lost.append((dest, reason)),
        monotonic=clock,
    )


async def answers_delivered() -> None:
    """Let the loop run the callbacks of answered calls (no time passes)."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_batches_are_numbered_per_link_and_taken_when_answered() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        first = links.send(RISK, ["a"])
        links.send(STRATEGY, ["b"])
        links.send(RISK, ["c"])
        assert [(d, s) for d, s, _ in transport.calls] == [(RISK, 1), (STRATEGY, 1), (RISK, 2)]
        assert links.in_flight() == 2
        transport.calls[0][2].set_result(None)
        await answers_delivered()
        assert first is not None
        assert first.done()
        assert links.in_flight() == 1

    asyncio.run(run())
    assert lost == []


def test_a_batch_to_a_restarting_peer_is_sent_again_under_its_number() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        taken = links.send(RISK, ["a"])
        transport.calls[0][2].set_exception(PeerRestartingError())
        await answers_delivered()
        links.check()
        assert len(transport.calls) == 1  # too soon: the peer is still being restarted
        clock.now_s += 0.5
        links.check()
        assert [(d, s) for d, s, _ in transport.calls] == [(RISK, 1), (RISK, 1)]
        transport.calls[1][2].set_result(None)
        await answers_delivered()
        assert taken is not None
        assert taken.done()
        assert links.link(RISK).resent_batches == 1

    asyncio.run(run())
    assert lost == []


def test_an_order_path_peer_that_does_not_answer_is_given_up_after_the_hang_timeout() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        taken = links.send(RISK, ["a"])
        clock.now_s += HANG_TIMEOUT_S - 0.1
        links.check()
        assert lost == []
        clock.now_s += 0.2
        links.check()
        assert taken is not None
        assert taken.done()
        assert links.lost(RISK)
        assert links.send(RISK, ["b"]) is None

    asyncio.run(run())
    assert lost == [(RISK, f"{RISK} did not answer within {HANG_TIMEOUT_S:g} s")]


def test_a_strategy_gets_longer_to_come_back_than_the_order_path() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        links.send(STRATEGY, ["a"])
        clock.now_s += 3 * HANG_TIMEOUT_S
        links.check()
        assert lost == []
        clock.now_s += 3 * HANG_TIMEOUT_S + 0.1
        links.check()

    asyncio.run(run())
    assert [dest for dest, _ in lost] == [STRATEGY]


def test_a_peer_dead_for_good_is_given_up_at_once() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        links.send(RISK, ["a"])
        transport.calls[0][2].set_exception(PeerGoneError())
        await answers_delivered()

    asyncio.run(run())
    assert lost == [(RISK, f"{RISK} is dead (no restarts left)")]


def test_md_fences_name_the_batch_each_receiver_will_have_been_sent() -> None:
    transport, clock = FakeTransport(), ManualClock()
    lost: list[tuple[str, str]] = []

    async def run() -> None:
        links = links_with(transport, clock, lost)
        links.send(RISK, ["a"])
        links.continue_after({STRATEGY: 7})
        assert links.next_fence([STRATEGY]) == {RISK: (5, 1), STRATEGY: (5, 8)}

    asyncio.run(run())
