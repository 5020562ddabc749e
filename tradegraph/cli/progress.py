"""One progress line on stderr, shared by every command that reports while it runs.

On a terminal the line is redrawn in place; :meth:`ProgressLine.close` ends it. Elsewhere
(a pipe, a log file) it prints plain lines only when asked to, at most one every ``every_s``
seconds, or nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class ProgressLine:
    """A status line: rewritten in place on a terminal, else plain lines or nothing.

    Args:
        plain: without a terminal, print one plain line per update (else print nothing).
        every_s: without a terminal, at most one plain line this often (0: every update).
        stream: where to draw (default: stderr).
        clock: monotonic seconds, for ``every_s``.
    """

    def __init__(
        self,
        *,
        plain: bool,
        every_s: float = 0.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._tty = self._stream.isatty()
        self._every_s = every_s
        self._clock = clock
        self._last_s: float | None = None
        self._drawn = False
        self.shown = self._tty or plain
        """Whether updates print anything at all."""

    def update(self, render: Callable[[], str]) -> None:
        """Show the line ``render`` makes; it is called only when the line is shown now."""
        if not self.shown:
            return
        if not self._tty:
            now = self._clock()
            if self._last_s is not None and now - self._last_s < self._every_s:
                return
            self._last_s = now
            print(render(), file=self._stream, flush=True)
            return
        print(f"\r\x1b[K{render()}", end="", file=self._stream, flush=True)
        self._drawn = True

    def close(self) -> None:
        """End a line drawn in place, so what follows starts on a line of its own."""
        if self._drawn:
            print(file=self._stream, flush=True)
            self._drawn = False


def run_timing(elapsed_s: float, startup_s: float, rate: float, unit: str) -> str:
    """``in 9.6 s (5.4 s of it starting Ray; 12.0 trials/s after)``, or without the Ray part
    for a batch that ran in this process."""
    if startup_s > 0.0:
        return (
            f"in {elapsed_s:.1f} s ({startup_s:.1f} s of it starting Ray; "
            f"{rate:,.1f} {unit}/s after)"
        )
    return f"in {elapsed_s:.1f} s ({rate:,.1f} {unit}/s)"
