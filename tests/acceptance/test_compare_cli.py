"""``tradegraph compare`` as a user runs it, on run folders written by real backtests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SHORT = ("--set", "data.bars.0.limit=3000", "--no-html")


def _tradegraph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("runs")
    slow, fast = base / "slow", base / "fast"
    for out, extra in ((slow, ()), (fast, ("--set", "strategies.sma.params.fast_period=20"))):
        proc = _tradegraph("backtest", "--out", str(out), *SHORT, *extra)
        assert proc.returncode == 0, proc.stderr
    return slow, fast


def test_compare_two_runs_prints_metrics_intervals_and_writes_a_self_contained_page(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    slow, fast = runs
    out = tmp_path / "cmp"

    proc = _tradegraph("compare", str(slow), str(fast), "--out", str(out), "--json")

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    slow_summary = json.loads((slow / "summary.json").read_text())
    fast_summary = json.loads((fast / "summary.json").read_text())
    assert [r["label"] for r in result["runs"]] == [
        "sma-btc-default (slow)",
        "sma-btc-default (fast)",
    ]
    assert [r["sharpe"] for r in result["runs"]] == [slow_summary["sharpe"], fast_summary["sharpe"]]
    assert [r["fills"] for r in result["runs"]] == [slow_summary["fills"], fast_summary["fills"]]
    (interval,) = result["sharpe_difference"]
    assert interval["low"] <= interval["difference"] <= interval["high"]
    assert (interval["resamples"], interval["confidence"], interval["seed"]) == (2000, 0.95, 0)
    assert interval["periods"] == result["aligned_periods"] == 2_999  # 3,000 bars in common
    assert result["periods_per_year"] == 525_600.0
    assert "stationary-bootstrap" in result["method"]
    assert json.loads((out / "compare.json").read_text()) == result
    page = (out / "compare.html").read_text()
    assert page.count('<polyline class="run-') == 2
    assert "sma-btc-default (fast)" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page
    value_ticks = re.findall(r'text-anchor="end">([0-9.]+)</text>', page)
    assert len(value_ticks) >= 3
    assert len(set(value_ticks)) == len(value_ticks)  # 0.9995 and 1.0005 do not both read "1"
    assert "sharpe" in proc.stdout
    assert "95% interval" in proc.stdout


def test_the_same_runs_compare_to_the_same_interval(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    slow, fast = runs

    first = _tradegraph("compare", str(slow), str(fast), "--out", str(tmp_path / "a"), "--json")
    again = _tradegraph("compare", str(slow), str(fast), "--out", str(tmp_path / "b"), "--json")

    a = json.loads(first.stdout.strip().splitlines()[-1])["sharpe_difference"]
    b = json.loads(again.stdout.strip().splitlines()[-1])["sharpe_difference"]
    assert a == b


def test_a_run_compared_with_itself_holds_zero(runs: tuple[Path, Path], tmp_path: Path) -> None:
    slow, _ = runs

    proc = _tradegraph("compare", str(slow), str(slow), "--out", str(tmp_path / "c"), "--json")

    (interval,) = json.loads(proc.stdout.strip().splitlines()[-1])["sharpe_difference"]
    assert interval["difference"] == interval["low"] == interval["high"] == 0.0
    assert not interval["excludes_zero"]


def test_a_folder_that_is_no_run_fails_in_one_line(runs: tuple[Path, Path], tmp_path: Path) -> None:
    slow, _ = runs
    (tmp_path / "empty").mkdir()

    proc = _tradegraph("compare", str(slow), str(tmp_path / "empty"), "--out", str(tmp_path / "d"))

    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:")
    assert "empty: not a run folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
