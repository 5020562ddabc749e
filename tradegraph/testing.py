"""Helpers for testing components without a kernel or Ray: a recording outbox."""

from __future__ import annotations

from typing import TypeVar

from tradegraph.contracts import Message

M = TypeVar("M", bound=Message)


class RecordingOutbox:
    """An outbox that keeps everything published, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def publish(self, msg: Message) -> None:
        self.messages.append(msg)

    def of_type(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages if isinstance(m, kind)]

    def clear(self) -> None:
        self.messages.clear()
