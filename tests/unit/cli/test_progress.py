"""The one progress line: in place on a terminal, plain lines or nothing elsewhere."""

from __future__ import annotations

import functools
import io

from tradegraph.cli.progress import ProgressLine


class _Stream(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_on_a_terminal_the_line_is_redrawn_in_place_and_closed_once() -> None:
    stream = _Stream(tty=True)
    line = ProgressLine(plain=False, stream=stream)

    line.update(lambda: "1/2 scenarios")
    line.update(lambda: "2/2 scenarios")
    line.close()
    line.close()

    assert line.shown
    assert stream.getvalue() == "\r\x1b[K1/2 scenarios\r\x1b[K2/2 scenarios\n"


def test_without_a_terminal_plain_lines_come_at_most_every_few_seconds() -> None:
    stream = _Stream(tty=False)
    clock = _Clock()
    rendered: list[int] = []
    line = ProgressLine(plain=True, every_s=5.0, stream=stream, clock=clock)

    def render(n: int) -> str:
        rendered.append(n)
        return f"update {n}"

    for n in range(4):
        line.update(functools.partial(render, n))
        clock.now_s += 2.0
    line.close()

    assert stream.getvalue() == "update 0\nupdate 3\n"
    assert rendered == [0, 3]  # a line not shown is not rendered


def test_without_a_terminal_and_without_plain_nothing_is_shown() -> None:
    stream = _Stream(tty=False)
    line = ProgressLine(plain=False, stream=stream)

    line.update(lambda: "never")
    line.close()

    assert not line.shown
    assert stream.getvalue() == ""


def test_run_timing_names_ray_start_up_only_when_there_was_one() -> None:
    from tradegraph.cli.progress import run_timing

    assert run_timing(9.62, 5.41, 12.0, "trials") == (
        "in 9.6 s (5.4 s of it starting Ray; 12.0 trials/s after)"
    )
    assert run_timing(1.24, 0.0, 5.2, "trials") == "in 1.2 s (5.2 trials/s)"
