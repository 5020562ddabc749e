"""The receiving end of a host's links: per-sender order, dedupe and causal fences. Pure.

Batches carry ``(sender, incarnation, seq)``. The inbox hands a sender's batches out in ``seq``
order (holding any that arrive early) and drops one it has already handed out, so a batch may be
sent again safely: delivery is exactly-once over an at-least-once link. A sender that restarted
comes back with a higher incarnation and a stream that starts at 1 again.

Causal fences: a batch from anyone but ``md`` may name, for this receiver, the last ``md`` batch
(``md``'s incarnation and its sequence number on the md -> receiver link) that went out before
the market data that caused it. The inbox holds such a batch until it has handed out that ``md``
batch, so a broker never sees an order before the bar that caused it, nor a strategy a fill
before the bar it was filled on.

A batch of a causal session sent ``HOLD`` (see ``causal_order.py``) is handed out like any
other; the host keeps it until md's settle step merges it with what other senders sent.

No Ray, no I/O, no clock: the host feeds it what arrives and delivers what it hands out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradegraph.actors.causal_order import CausalOrder
from tradegraph.actors.wire import Item
from tradegraph.contracts import MARKET_DATA

# Receiver -> (md's incarnation, md's sequence number on the md -> receiver link).
Fence = dict[str, tuple[int, int]]


@dataclass(eq=False)
class Batch:
    """One batch of a sender's link, as it arrived (compared by identity)."""

    sender: str
    incarnation: int
    seq: int
    messages: list[Item]
    origin_ns: int = 0
    fence: Fence | None = None
    # In a causal session: the messages' causal keys and what to do with the batch.
    order: CausalOrder | None = None


@dataclass
class Arrival:
    """What offering a batch gave.

    Attributes:
        ready: Batches to deliver now, in order (the one offered and any held ones it let go).
        held: Whether the offered batch waits for its turn.
        dropped: Held batches that will never be delivered (their sender restarted since, or a
            resend took their place).
    """

    ready: list[Batch] = field(default_factory=list)
    held: bool = False
    dropped: list[Batch] = field(default_factory=list)


class Inbox:
    """Orders, dedupes and fences the batches ``receiver`` is sent.

    Args:
        receiver: The component id of the host the inbox belongs to (fences name it).
    """

    def __init__(self, receiver: str) -> None:
        self.receiver = receiver
        # Sender -> (incarnation, seq) of its last batch handed out.
        self.watermarks: dict[str, tuple[int, int]] = {}
        self._held: dict[str, dict[int, Batch]] = {}
        # The causal fence of what was handed out since the last ``take_fence``.
        self._fence: Fence = {}

    def mark(self, sender: str, incarnation: int, seq: int) -> None:
        """Record batch ``seq`` of ``sender`` as handed out (recovery)."""
        self.watermarks[sender] = (incarnation, seq)

    def offer(self, batch: Batch) -> Arrival:
        """Take in ``batch``: hand it out if it is next in turn and its fence is met."""
        arrival = Arrival()
        sender = batch.sender
        mark = self.watermarks.get(sender)
        if mark is not None and batch.incarnation < mark[0]:
            return arrival
        if mark is None or batch.incarnation > mark[0]:
            # A new sender, or one that restarted: its stream starts at 1. Batches held from
            # an earlier incarnation will never be followed up; early ones of this one stay.
            mark = (batch.incarnation, 0)
            waiting = self._held.get(sender, {})
            for stale in [s for s, b in waiting.items() if b.incarnation < batch.incarnation]:
                arrival.dropped.append(waiting.pop(stale))
        if batch.seq <= mark[1]:
            return arrival
        if batch.seq > mark[1] + 1 or not self.fence_met(sender, batch.fence):
            waiting = self._held.setdefault(sender, {})
            replaced = waiting.get(batch.seq)
            if replaced is not None:
                arrival.dropped.append(replaced)
            waiting[batch.seq] = batch
            arrival.held = True
            return arrival
        self._hand_out(batch, arrival.ready)
        self._release(sender, arrival.ready)
        if sender == MARKET_DATA:
            # Market data may meet the fences of batches other senders are held on.
            for other in [s for s, held in self._held.items() if held and s != sender]:
                self._release(other, arrival.ready)
        return arrival

    def fence_met(self, sender: str, fence: Fence | None) -> bool:
        """Whether the md batch that ``fence`` names for this receiver has been handed out."""
        if not fence or sender == MARKET_DATA:
            return True
        needed = fence.get(self.receiver)
        if needed is None:
            return True
        mark = self.watermarks.get(MARKET_DATA)
        # A newer md incarnation than the fence names: that md batch will never come.
        return mark is not None and mark >= needed

    def take_fence(self) -> Fence:
        """The merged fences of the batches handed out since the last call: what anything
        they caused must carry on."""
        fence, self._fence = self._fence, {}
        return fence

    def held_count(self) -> int:
        """Batches waiting for their turn."""
        return sum(len(h) for h in self._held.values())

    def _release(self, sender: str, ready: list[Batch]) -> None:
        """Hand out ``sender``'s held batches that are next in turn and whose fences are met."""
        held = self._held.get(sender)
        while held:
            incarnation, last = self.watermarks.get(sender, (0, 0))
            seq = last + 1
            batch = held.get(seq)
            if batch is None or batch.incarnation != incarnation:
                # The sender restarted: its new stream starts at 1.
                seq, batch = 1, held.get(1)
                if batch is None or batch.incarnation <= incarnation:
                    return
            if not self.fence_met(sender, batch.fence):
                return
            del held[seq]
            self._hand_out(batch, ready)

    def _hand_out(self, batch: Batch, ready: list[Batch]) -> None:
        if batch.fence:
            merged = self._fence
            for receiver, mark in batch.fence.items():
                if mark > merged.get(receiver, (0, 0)):
                    merged[receiver] = mark
        self.watermarks[batch.sender] = (batch.incarnation, batch.seq)
        ready.append(batch)
