"""The ``tradegraph`` command's grammar as a user meets it: a real subprocess each time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def tradegraph(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["paper", "--duration", "-1"], "--duration"),
        (["paper", "--duration", "0"], "--duration"),
        (["live", "--duration", "nan"], "--duration"),
        (["paper", "--speed", "-2"], "--speed"),
        (["paper", "--metrics-port", "70000"], "--metrics-port"),
        (["backtest", "--metrics-port", "-1"], "--metrics-port"),
        (["montecarlo", "--paths", "0"], "--paths"),
        (["montecarlo", "--paths", "-3"], "--paths"),
        (["montecarlo", "--bars-per-path", "0"], "--bars-per-path"),
        (["montecarlo", "--workers", "0"], "--workers"),
        (["montecarlo", "--seed", "-1"], "--seed"),
        (["stress", "--ruin-drawdown", "1.5"], "--ruin-drawdown"),
        (["stress", "--check-ray-engine", "-1"], "--check-ray-engine"),
    ],
)
def test_nonsense_numbers_are_refused_in_one_line(args: list[str], flag: str) -> None:
    done = tradegraph(*args)

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: tradegraph {args[0]}: argument {flag}: must be ")
    assert done.stdout == ""
