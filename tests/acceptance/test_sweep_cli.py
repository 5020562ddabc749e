"""``tradegraph sweep`` as a user runs it, in this process (the Ray run is in
tests/integration/test_sweep_ray.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"
SHORT = ["--set", "data.bars.0.limit=400"]
GRID = ["--grid", f"{FAST}=5,10", "--grid", f"{SLOW}=20,40"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return parsed


def test_sweep_writes_one_row_per_trial_and_a_rerun_runs_nothing(tmp_path: Path) -> None:
    args = ["sweep", *SHORT, *GRID, "--in-process", "--json", "--out", str(tmp_path)]

    proc = _cli(*args)

    assert proc.returncode == 0, proc.stderr
    summary = _last_json(proc)
    assert summary["trials"] == 4
    assert summary["trials_failed"] == 0
    assert summary["trials_run"] == 4
    assert set(summary["best"]) >= {"params", "metrics"}
    assert set(summary["best"]["params"]) == {FAST, SLOW}
    assert len(summary["results_digest"]) == 64
    assert summary["elapsed_s"] > 0
    table = pq.read_table(tmp_path / "results.parquet")
    assert table.column("trial").to_pylist() == [0, 1, 2, 3]
    for column in (f"param.{FAST}", f"param.{SLOW}", "sharpe", "calmar", "fills_digest"):
        assert column in table.column_names
    assert pq.read_table(tmp_path / "daily_returns.parquet").num_rows == 4
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    report = (tmp_path / "report.html").read_text()
    assert "chart-heatmap" in report
    assert "top-trials" in report
    assert "http" not in report.replace("http://www.w3.org", "")
    assert "4/4 trials" in proc.stderr

    again = _cli(*args)

    assert again.returncode == 0, again.stderr
    rerun = _last_json(again)
    assert rerun["trials_run"] == 0
    assert rerun["results_digest"] == summary["results_digest"]


def test_a_trial_equals_the_backtest_with_the_same_params(tmp_path: Path) -> None:
    sweep = _cli("sweep", *SHORT, *GRID, "--in-process", "--json", "--out", str(tmp_path / "sweep"))
    assert sweep.returncode == 0, sweep.stderr
    row = pq.read_table(tmp_path / "sweep" / "results.parquet").to_pylist()[1]

    backtest = _cli(
        "backtest",
        *SHORT,
        "--set",
        f"{FAST}={row[f'param.{FAST}']}",
        "--set",
        f"{SLOW}={row[f'param.{SLOW}']}",
        "--json",
        "--no-html",
        "--out",
        str(tmp_path / "backtest"),
    )

    assert backtest.returncode == 0, backtest.stderr
    expected = _last_json(backtest)
    assert row["fills"] > 0
    assert row["fills_digest"] == expected["fills_digest"]
    for metric in ("final_equity", "total_return", "sharpe", "sortino", "max_drawdown", "calmar"):
        assert row[metric] == expected[metric], metric
    assert row["orders"] == expected["orders"]


def test_a_trial_the_strategy_refuses_is_a_failed_row_and_strict_exits_5(
    tmp_path: Path,
) -> None:
    args = ["sweep", *SHORT, "--grid", f"{FAST}=5,50", "--grid", f"{SLOW}=20", "--in-process"]

    proc = _cli(*args, "--json", "--out", str(tmp_path / "a"))
    strict = _cli(*args, "--strict", "--out", str(tmp_path / "b"))

    assert proc.returncode == 0, proc.stderr
    summary = _last_json(proc)
    assert summary["trials_failed"] == 1
    assert summary["best"]["params"][FAST] == 5
    rows = pq.read_table(tmp_path / "a" / "results.parquet").to_pylist()
    assert rows[1]["status"] == "failed"
    assert "slow_period: must be greater than fast_period" in rows[1]["error"]
    assert "trial 1 failed" in proc.stdout
    assert strict.returncode == 5


def test_bad_grid_and_where_are_one_line_errors_exit_2(tmp_path: Path) -> None:
    unknown = _cli("sweep", *SHORT, "--grid", "strategies.sma.params.fast=1,2")
    bad_spec = _cli("sweep", *SHORT, "--grid", f"{FAST}=1:10:0")
    unsafe = _cli("sweep", *SHORT, *GRID, "--where", "__import__('os').getcwd() == 1")

    for proc, text in (
        (unknown, "--grid strategies.sma.params.fast: no such key"),
        (bad_spec, "STEP must not be 0"),
        (unsafe, "--where"),
    ):
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0, proc.stderr
        assert text in proc.stderr
        assert "Traceback" not in proc.stderr


def test_optuna_search_runs_six_trials_reports_overfitting_odds_and_resumes(
    tmp_path: Path,
) -> None:
    args = [
        "sweep",
        "--set",
        "data.bars.0.limit=11520",
        "--grid",
        f"{FAST}=2:40:1",
        "--grid",
        f"{SLOW}=50:200:10",
        "--where",
        "fast_period < slow_period",
        "--search",
        "optuna",
        "--trials",
        "6",
        "--workers",
        "2",
        "--seed",
        "11",
        "--in-process",
        "--json",
        "--out",
        str(tmp_path),
    ]

    proc = _cli(*args)

    assert proc.returncode == 0, proc.stderr
    summary = _last_json(proc)
    assert (summary["search"], summary["trials"], summary["trials_run"]) == ("optuna", 6, 6)
    assert summary["round_size"] == 2
    assert 0.0 <= summary["pbo"] <= 1.0
    assert 0.0 <= summary["deflated_sharpe"] <= 1.0
    assert f"pbo {summary['pbo']:.2f} (CSCV" in proc.stdout
    assert "How likely is the winner a fluke" in (tmp_path / "report.html").read_text()
    rows = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert [r["trial"] for r in rows] == list(range(6))
    assert all(2 <= r[f"param.{FAST}"] <= 40 for r in rows)
    assert all(r[f"param.{SLOW}"] % 10 == 0 for r in rows)
    assert pq.read_table(tmp_path / "daily_returns.parquet").num_rows == 6

    again = _cli(*args)

    assert again.returncode == 0, again.stderr
    rerun = _last_json(again)
    assert rerun["trials_run"] == 0
    assert rerun["results_digest"] == summary["results_digest"]
