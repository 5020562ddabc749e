"""The sending ends of a host's links: sequencing, resends after a peer restarts, hang detection.

Every batch a host sends goes out as the next of its link's sequence numbers and stays
unanswered until its receiver has taken it. A call that fails because the receiver is
restarting is sent again, under the same sequence number, once the receiver is back; the
receiver recovers what it had taken from its snapshot and journal and recognises the resend
(see ``inbox.py``). This is not a blind retry of an order-path call: the receiver decides, by
sequence number, whether it has seen the batch. A receiver that stays away, or leaves a batch
unanswered, for longer than the host's patience is given up, and the host is told.

Every call to a peer goes through a :class:`PeerTransport`; :class:`RayPeerTransport` is the
only place that calls Ray actor handles.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import ray

from tradegraph.actors.causal_order import CausalOrder
from tradegraph.actors.inbox import Fence
from tradegraph.actors.wire import Item
from tradegraph.contracts import PORTFOLIO, RISK
from tradegraph.observability import get_logger

_ORDER_PATH_PREFIXES = (RISK, PORTFOLIO, "broker:")
# A failed call is sent again once this long has passed (the receiver is being restarted).
_RESEND_AFTER_S = 0.1


def on_order_path(component_id: str) -> bool:
    """Whether orders or fills pass through ``component_id`` (risk, brokers, the portfolio)."""
    return component_id.startswith(_ORDER_PATH_PREFIXES)


class PeerFailure(Enum):
    """What a failed call to a peer means for its link."""

    RESTARTING = "restarting"  # the peer died and is being restarted: send again
    DEAD = "dead"  # the peer died for good
    FAILED = "failed"  # the peer raised while it took the batch


class PeerTransport(Protocol):
    """How a host reaches its peers."""

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
        """Deliver batch ``seq`` to ``destination``; the future resolves when it is taken."""
        ...

    def share(self, messages: list[Item]) -> Any:
        """A payload for ``messages`` that several receivers can take without a copy each."""
        ...

    def advance(self, destination: str, until_ns: int | None) -> Future[Any]:
        """Have ``destination`` fire its data-clock timers due by ``until_ns`` (see
        ``LiveHost.advance``); the future resolves with its answer."""
        ...

    def settle(
        self, destination: str, expected: dict[str, tuple[int, int]], alone: bool
    ) -> Future[Any]:
        """Have ``destination`` take the batches it holds up to ``expected`` (see
        ``LiveHost.settle``); the future resolves with its answer."""
        ...

    def failure(self, exc: BaseException) -> PeerFailure:
        """What ``exc``, raised by a call to a peer, means."""
        ...


class RayPeerTransport:
    """Peers are named actors of ``namespace``; calls are ``push`` on their handles."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._handles: dict[str, Any] = {}

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
        answer: Future[Any] = (
            self._handle(destination)
            .push.remote(sender, incarnation, seq, payload, origin_ns, fence, order)
            .future()
        )
        return answer

    def share(self, messages: list[Item]) -> Any:
        return ray.put(messages)

    def advance(self, destination: str, until_ns: int | None) -> Future[Any]:
        answer: Future[Any] = self._handle(destination).advance.remote(until_ns).future()
        return answer

    def settle(
        self, destination: str, expected: dict[str, tuple[int, int]], alone: bool
    ) -> Future[Any]:
        answer: Future[Any] = self._handle(destination).settle.remote(expected, alone).future()
        return answer

    def _handle(self, destination: str) -> Any:
        handle = self._handles.get(destination)
        if handle is None:
            handle = ray.get_actor(destination, namespace=self._namespace)
            self._handles[destination] = handle
        return handle

    def failure(self, exc: BaseException) -> PeerFailure:
        if isinstance(exc, ray.exceptions.ActorDiedError):
            return PeerFailure.DEAD
        if isinstance(exc, ray.exceptions.RayActorError):
            return PeerFailure.RESTARTING
        return PeerFailure.FAILED


@dataclass
class Pending:
    """A batch sent and not yet taken by its receiver. ``taken`` resolves with the receiver's
    answer when it is (with ``None`` when the link is given up)."""

    payload: Any
    sent_at: float
    answer: Future[Any] | None
    taken: asyncio.Future[Any]
    origin_ns: int = 0
    failed_at: float | None = None
    fence: Fence | None = None
    order: CausalOrder | None = None


@dataclass
class Link:
    """The sending end of one sender -> receiver link: sequence numbers and unanswered batches."""

    destination: str
    seq: int = 0
    unacked: dict[int, Pending] = field(default_factory=dict)
    sent_batches: int = 0
    resent_batches: int = 0
    dead_reason: str = ""


class Links:
    """The links of the host ``sender`` to its peers.

    Args:
        sender: The component id of the host.
        incarnation: Names this run of the host to its receivers.
        transport: How peers are reached.
        hang_timeout_s: How long a receiver on the order path may stay away or leave a batch
            unanswered (others get six times as long to come back from a restart).
        on_lost: Called with a receiver and the reason once its link is given up.
        monotonic: The host's monotonic clock, in seconds.
    """

    def __init__(
        self,
        sender: str,
        incarnation: int,
        transport: PeerTransport,
        hang_timeout_s: float,
        on_lost: Callable[[str, str], None],
        monotonic: Callable[[], float] = time.monotonic,
        session_id: str = "",
    ) -> None:
        self.sender = sender
        self.incarnation = incarnation
        self.transport = transport
        self.hang_timeout_s = hang_timeout_s
        self._on_lost = on_lost
        self._monotonic = monotonic
        self._links: dict[str, Link] = {}
        self._log = get_logger(sender, session_id=session_id)

    def __len__(self) -> int:
        return len(self._links)

    def link(self, destination: str) -> Link:
        link = self._links.get(destination)
        if link is None:
            link = Link(destination)
            self._links[destination] = link
        return link

    def lost(self, destination: str) -> bool:
        """Whether the link to ``destination`` was given up."""
        link = self._links.get(destination)
        return link is not None and bool(link.dead_reason)

    def seqs(self) -> dict[str, int]:
        """Each link's last sequence number."""
        return {d: link.seq for d, link in self._links.items()}

    def continue_after(self, seqs: dict[str, int]) -> None:
        """Number the next batches of each link after ``seqs`` (a restarted sender)."""
        for dest, seq in seqs.items():
            link = self.link(dest)
            link.seq = max(link.seq, seq)

    def next_fence(self, destinations: Iterable[str]) -> Fence:
        """For every receiver, the last batch it will have been sent once a batch to each of
        ``destinations`` is out (the fence ``md`` puts on what it sends)."""
        fence = {d: (self.incarnation, link.seq) for d, link in self._links.items()}
        for dest in destinations:
            fence[dest] = (self.incarnation, self.link(dest).seq + 1)
        return fence

    def send(
        self,
        destination: str,
        payload: Any,
        fence: Fence | None = None,
        seq: int | None = None,
        origin_ns: int = 0,
        order: CausalOrder | None = None,
    ) -> asyncio.Future[Any] | None:
        """Send ``payload`` as the link's next batch (or again as batch ``seq``).

        Returns a future that resolves with the receiver's answer when it has taken it, or
        ``None`` if the link was given up.
        """
        link = self.link(destination)
        if link.dead_reason:
            return None
        if seq is None:
            link.seq += 1
            seq = link.seq
        loop = asyncio.get_running_loop()
        pending = Pending(
            payload,
            self._monotonic(),
            None,
            loop.create_future(),
            origin_ns,
            fence=fence,
            order=order,
        )
        link.unacked[seq] = pending
        self._dispatch(link, seq, pending)
        link.sent_batches += 1
        return pending.taken

    def _dispatch(self, link: Link, seq: int, pending: Pending) -> None:
        loop = asyncio.get_running_loop()
        answer = self.transport.push(
            link.destination,
            self.sender,
            self.incarnation,
            seq,
            pending.payload,
            pending.origin_ns,
            pending.fence,
            pending.order,
        )
        pending.answer = answer
        pending.sent_at = self._monotonic()
        answer.add_done_callback(lambda f: loop.call_soon_threadsafe(self._on_answer, link, seq, f))

    def _on_answer(self, link: Link, seq: int, answer: Future[Any]) -> None:
        pending = link.unacked.get(seq)
        if pending is None or pending.answer is not answer:
            return
        exc = answer.exception()
        if exc is None:
            del link.unacked[seq]
            if not pending.taken.done():
                pending.taken.set_result(answer.result())
            return
        failure = self.transport.failure(exc)
        if failure is PeerFailure.FAILED:
            self._give_up(link, f"{link.destination} failed on a batch: {exc!r}")
            return
        if failure is PeerFailure.DEAD:
            self._give_up(link, f"{link.destination} is dead (no restarts left)")
            return
        pending.answer = None
        pending.failed_at = pending.failed_at or self._monotonic()
        self._log.warning(
            "receiver_unavailable",
            destination=link.destination,
            seq=seq,
            error=type(exc).__name__,
        )

    def in_flight(self) -> int:
        """Batches sent and not yet answered, on the busiest live link."""
        return max((len(k.unacked) for k in self._links.values() if not k.dead_reason), default=0)

    def check(self) -> None:
        """Resend to receivers that came back; give up on dead or hung ones."""
        now = self._monotonic()
        timeout = self.hang_timeout_s
        for link in list(self._links.values()):
            if not link.unacked or link.dead_reason:
                continue
            # Trading halts quickly when the order path is stuck; a strategy gets longer to
            # come back from a restart before it is given up.
            patience = timeout if on_order_path(link.destination) else 6 * timeout
            for seq in sorted(link.unacked):
                p = link.unacked[seq]
                answer = p.answer
                if answer is None and p.failed_at is not None:
                    if now - p.failed_at > patience:
                        self._give_up(
                            link, f"{link.destination} unreachable for more than {patience:g} s"
                        )
                        break
                    if now - p.failed_at > _RESEND_AFTER_S:
                        self._dispatch(link, seq, p)
                        link.resent_batches += 1
                elif answer is not None and now - p.sent_at > patience:
                    self._give_up(link, f"{link.destination} did not answer within {patience:g} s")
                    break

    def _give_up(self, link: Link, reason: str) -> None:
        link.dead_reason = reason
        for pending in link.unacked.values():
            if not pending.taken.done():
                pending.taken.set_result(None)
        link.unacked.clear()
        self._on_lost(link.destination, reason)


def split_by_destination(out: Sequence[tuple[tuple[str, ...], Item]]) -> dict[str, list[Item]]:
    """What each receiver gets of ``out`` (items queued with their destinations), in order."""
    per_dest: dict[str, list[Item]] = {}
    for dests, item in out:
        for dest in dests:
            per_dest.setdefault(dest, []).append(item)
    return per_dest
