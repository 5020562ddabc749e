"""Faults a test arms on the fake exchange, each consumed by the requests it matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["status", "disconnect", "delay", "latency"]


@dataclass
class RequestFault:
    """What to do to the next ``count`` REST requests that match, after letting ``after`` pass.

    ``path`` (e.g. ``/api/v3/order``) and ``method`` (e.g. ``POST``) narrow the match; ``None``
    matches any.

    - ``status``: answer ``status`` (429, 418, 5xx...) with ``Retry-After: retry_after_s``
      instead of processing the request.
    - ``disconnect``: close the connection without an answer, before processing.
    - ``delay``: process the request (an order is accepted), then hold the answer ``delay_s``
      seconds, so that a client with a shorter timeout never learns the outcome.
    - ``latency``: hold the request ``delay_s`` seconds *before* processing it, as a slow
      network does: the market may move meanwhile, and the order meets the market as it is
      then.
    """

    kind: FaultKind
    count: int
    after: int = 0
    path: str | None = None
    method: str | None = None
    status: int = 429
    retry_after_s: int | None = None
    delay_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and (
            self.method is None or self.method.upper() == method
        )


class FaultPlan:
    """Armed request faults, consumed in the order they were armed."""

    def __init__(self) -> None:
        self._faults: list[RequestFault] = []

    def arm(self, fault: RequestFault) -> None:
        if fault.count < 1:
            raise ValueError(f"count must be >= 1, was {fault.count}")
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str, kinds: tuple[FaultKind, ...]) -> RequestFault | None:
        """The fault of one of ``kinds`` this request triggers, if any (consuming it)."""
        for fault in self._faults:
            if fault.kind not in kinds or not fault.matches(method, path):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            fault.count -= 1
            if fault.count == 0:
                self._faults.remove(fault)
            return fault
        return None


class AddressBan:
    """A ban of the client's address: every request is refused until it ends."""

    def __init__(self) -> None:
        self._until_ms = 0
        self._length_ms = 0
        self._escalate = False

    def start(self, now_ms: int, seconds: float, *, escalate: bool) -> None:
        self._length_ms = round(seconds * 1000)
        self._until_ms = now_ms + self._length_ms
        self._escalate = escalate

    def remaining_s(self, now_ms: int) -> float:
        return max(0, self._until_ms - now_ms) / 1000

    def refuse(self, now_ms: int) -> int | None:
        """``Retry-After`` seconds for a request now during the ban (lengthening it if the ban
        escalates), or ``None`` when there is no ban."""
        if now_ms >= self._until_ms:
            return None
        if self._escalate:
            self._length_ms *= 2
            self._until_ms = now_ms + self._length_ms
        return -(-(self._until_ms - now_ms) // 1000)
