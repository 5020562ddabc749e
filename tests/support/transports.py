"""Peer transports for driving a ``LiveHost`` without Ray."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from tradegraph.actors.causal_order import CausalOrder
from tradegraph.actors.inbox import Fence
from tradegraph.actors.links import PeerFailure
from tradegraph.actors.wire import Item


def _answered(value: Any = None) -> Future[Any]:
    answer: Future[Any] = Future()
    answer.set_result(value)
    return answer


class TakingTransport:
    """Peers that take every batch at once (and have no timers); records what each was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Item], Fence | None]] = []

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
        self.sent.append((destination, list(payload), fence))
        return _answered()

    def share(self, messages: list[Item]) -> Any:
        return messages

    def advance(self, destination: str, until_ns: int | None) -> Future[Any]:
        return _answered()

    def settle(
        self, destination: str, expected: dict[str, tuple[int, int]], alone: bool
    ) -> Future[Any]:
        return _answered()

    def failure(self, exc: BaseException) -> PeerFailure:
        return PeerFailure.FAILED
