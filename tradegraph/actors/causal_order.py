"""The kernel's order of what one market event causes, as actors on several hosts keep it. Pure.

The in-process kernel delivers a market event to its receivers in router order, queues what
each of them publishes behind it, and then works through one FIFO queue: a breadth-first walk
of the causal tree. A delivery's place in that walk is its *causal key*, the path from the
event down to it: the receiver's position among the event's destinations, then, per step, the
publish index of the message within the handling of its parent (one message to several
receivers is one publish). The kernel hands a receiver its deliveries ordered by the key's
length (the *generation*) first, then by the key itself.

A causal data-clock session keeps that order across hosts (see ``live_host.py``):

* ``md`` sends one event at a time; every receiver takes it at once (generation 1) and numbers
  what it publishes by its own position among the event's destinations.
* Every batch a host sends while it handles a generation carries one key per message and a
  :class:`Mode`. A host that was the only one handling its generation (*alone*) sends
  ``HANDLE``: its receivers take the batch at once, since nobody else can send them anything
  of the next generation, and if it had one receiver only, that one is alone in turn
  (``ALONE``). Any other host sends ``HOLD``: the receiver keeps the batch, and the sender
  reports it (receiver -> sender -> last sequence number held) in its answer.
* ``md`` then *settles* the generation: it asks every holding host, at once, to take the
  batches reported to it, merged in key order (a host held by one sender is alone). What they
  send is held or taken in turn, until no host holds anything; then the next event goes out.

A single-sender chain (risk -> venue) thus costs no settle step; one settle step is paid where
several hosts handle one generation (the bar's receivers, a fill's receivers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

Key = tuple[int, ...]
"""A delivery's path in the causal tree of one market event (or timer)."""

Holding = dict[str, dict[str, tuple[int, int]]]
"""Receiver -> sender -> ``(incarnation, seq)`` of the last batch it holds for a settle step."""

TimerReport = dict[str, tuple[int, int | None]]
"""For a host and every host its sends reached in turn, ``component id -> (report number, when
its earliest pending timer comes due, or None)``. A host numbers its reports in order, so of two
reports on one host the later is the one with the larger number."""

T = TypeVar("T")


class Mode(IntEnum):
    """What the receiver of a batch of a causal session does with it."""

    HOLD = 0  # keep it until md's settle step
    HANDLE = 1  # take it now (its sender was alone in its generation)
    ALONE = 2  # take it now, and the receiver is alone in its generation


@dataclass(frozen=True)
class CausalOrder:
    """The causal keys of a batch's messages (none from ``md``: receivers key market data by
    their own position among its destinations) and what the receiver does with it."""

    mode: Mode
    keys: tuple[Key, ...] = ()


@dataclass
class CausalReport:
    """What a host of a causal session answers ``push``, ``advance`` and ``settle`` with: the
    timer reports and the held batches of everything the call caused."""

    timers: TimerReport = field(default_factory=dict)
    holding: Holding = field(default_factory=dict)

    def merge(self, other: CausalReport | None) -> None:
        """Add ``other``: each host's latest timer report, each sender's last held batch."""
        if other is None:
            return
        merge_timer_reports(self.timers, other.timers)
        merge_holding(self.holding, other.holding)


def merge_timer_reports(into: TimerReport, answer: TimerReport | None) -> None:
    """Add ``answer`` to ``into``, keeping each host's latest report."""
    if not answer:
        return
    for component_id, report in answer.items():
        known = into.get(component_id)
        if known is None or report[0] > known[0]:
            into[component_id] = report


def merge_holding(into: Holding, other: Holding) -> None:
    """Add ``other`` to ``into``, keeping each sender's last held batch per receiver."""
    for receiver, senders in other.items():
        known = into.setdefault(receiver, {})
        for sender, mark in senders.items():
            if mark > known.get(sender, (0, 0)):
                known[sender] = mark


def causal_runs(batches: Sequence[tuple[T, Sequence[Key]]]) -> list[tuple[T, list[int]]]:
    """The messages of ``batches`` (each with one key per message) in key order, as runs:
    ``(batch, positions of its messages)`` for each stretch taken from one batch.

    Equal keys keep the batches' order (they cannot come from two senders).
    """
    entries = sorted(
        (len(key), key, b, i) for b, (_, keys) in enumerate(batches) for i, key in enumerate(keys)
    )
    runs: list[tuple[T, list[int]]] = []
    last = -1
    for _, _, b, i in entries:
        if b != last:
            runs.append((batches[b][0], []))
            last = b
        runs[-1][1].append(i)
    return runs
