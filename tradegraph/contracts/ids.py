"""Deterministic id generation. Random ids would break run-to-run reproducibility."""

from __future__ import annotations


class IdGenerator:
    """Produces ``{prefix}-{n:06d}`` ids, counting from 1. Its state is one integer."""

    def __init__(self, prefix: str, start: int = 0) -> None:
        self.prefix = prefix
        self.count = start

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count:06d}"
