"""A run that failed says so: a stopped strategy or refused orders are not a result.

The command runs as a user runs it (a subprocess); ``--strict`` turns a failed run into a
non-zero exit that scripts and sweeps can rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tradegraph.cli import STRICT_EXIT_CODE

SHORT = ("--set", "data.bars.0.limit=5000", "--no-html", "--json")

RAISING_STRATEGY = """
from tradegraph.strategies.sma_cross import SmaCross


class Raising(SmaCross):
    def on_bar(self, bar):
        if bar.ts_event_ns > self.first_ns + 3_000 * 60_000_000_000:
            raise ValueError("signal went bad")
        super().on_bar(bar)

    @property
    def first_ns(self):
        if not hasattr(self, "_first_ns"):
            self._first_ns = self.clock.now_ns()
        return self._first_ns
"""


def _backtest(
    out: Path, *args: str, pythonpath: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", "backtest", "--out", str(out), *SHORT, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(summary))
    return proc, summary


def test_a_strategy_that_raises_marks_the_run_failed(tmp_path: Path) -> None:
    (tmp_path / "raising_strategy.py").write_text(RAISING_STRATEGY)
    args = ("--set", "strategies.sma.class_path=raising_strategy:Raising")

    plain, summary = _backtest(tmp_path / "plain", *args, pythonpath=tmp_path)
    strict, strict_summary = _backtest(tmp_path / "strict", *args, "--strict", pythonpath=tmp_path)

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE == 5
    assert summary["status"] == strict_summary["status"] == "failed"
    [reason] = summary["failure_reasons"]
    assert reason.startswith("strategy sma stopped: ValueError: signal went bad")
    assert summary["strategy_errors"] == ["sma"]
    assert "RUN FAILED" in plain.stdout
    assert "strategy sma stopped: ValueError: signal went bad" in plain.stdout
    assert "run failed: strategy sma stopped" in plain.stderr


def test_risk_refusing_every_order_marks_the_run_failed_with_the_reason(tmp_path: Path) -> None:
    args = ("--set", "risk.max_order_notional=5")

    plain, summary = _backtest(tmp_path / "plain", *args)
    strict, _ = _backtest(tmp_path / "strict", *args, "--strict")

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE
    orders = pq.read_table(tmp_path / "plain" / "orders.parquet").to_pylist()
    assert {o["status"] for o in orders} == {"risk_rejected"}
    assert summary["intents"] == len(orders) > 0
    assert summary["fills"] == 0
    assert summary["rejection_reasons"] == [
        {"source": "risk", "reason": "max_order_notional", "count": len(orders)}
    ]
    assert summary["status"] == "failed"
    assert summary["failure_reasons"] == [
        f"every order refused: {len(orders)} of {len(orders)} intents, no fill"
    ]
    assert f"{len(orders)}  risk   max_order_notional" in plain.stdout
    assert "RUN FAILED" in plain.stdout


def test_a_clean_run_is_ok_and_strict_exits_zero(tmp_path: Path) -> None:
    proc, summary = _backtest(tmp_path, "--strict")

    assert proc.returncode == 0, proc.stderr
    assert summary["status"] == "ok"
    assert summary["failure_reasons"] == []
    assert summary["kill_switch_trips"] == 0
    assert summary["fills"] > 0
    assert "RUN FAILED" not in proc.stdout


def test_stress_strict_exits_non_zero_when_the_kill_switch_halted_a_scenario(
    tmp_path: Path,
) -> None:
    args = [
        "stress",
        "--scenario",
        "gap_down",
        "--in-process",
        "--no-html",
        "--set",
        "data.bars.0.limit=2000",
        "--set",
        "strategies.sma.params.fast_period=5",
        "--set",
        "strategies.sma.params.slow_period=20",
        "--set",
        "strategies.sma.params.quantity=0.4",
        "--set",
        "risk.max_drawdown_pct=2",
    ]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradegraph", *args, *extra],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    plain = run("--out", str(tmp_path / "plain"))
    strict = run("--out", str(tmp_path / "strict"), "--strict")

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE, strict.stderr
    rows = pq.read_table(tmp_path / "strict" / "results.parquet").to_pylist()
    assert all(row["kill_switch_trips"] > 0 for row in rows)


def _batch(
    command: str, out: Path, *args: str, pythonpath: Path
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], dict[str, Any]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "tradegraph", command, "--out", str(out), "--in-process"),
            *("--no-html", "--set", "strategies.sma.class_path=raising_strategy:Raising", *args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    rows = pq.read_table(out / "results.parquet").to_pylist()
    summary = json.loads((out / "summary.json").read_text())
    return proc, rows, summary


def _assert_every_scenario_had_sma_stopped(
    rows: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "ok"
        assert row["kill_switch_trips"] == 0
        assert row["strategies_stopped"] == 1
        assert row["run_status"] == "failed"
        [reason] = row["failure_reasons"]
        assert reason.startswith("strategy sma stopped: ValueError: signal went bad")
    assert summary["scenarios_failed"] == 0
    assert summary["kill_switch_trips"] == 0
    assert summary["scenarios_run_failed"] == 2
    assert summary["scenarios_with_stopped_strategy"] == 2
    assert summary["strategies_stopped"] == 2


def test_montecarlo_records_stopped_strategies_and_strict_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "raising_strategy.py").write_text(RAISING_STRATEGY)
    args = ("--paths", "2", "--bars-per-path", "4000", "--set", "data.bars.0.limit=3000")

    plain, rows, summary = _batch("montecarlo", tmp_path / "plain", *args, pythonpath=tmp_path)
    strict, _, strict_summary = _batch(
        "montecarlo", tmp_path / "strict", *args, "--strict", pythonpath=tmp_path
    )

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE, strict.stderr
    _assert_every_scenario_had_sma_stopped(rows, summary)
    assert strict_summary["results_digest"] == summary["results_digest"]
    assert "RUNS FAILED: 2 of 2 scenarios (a strategy stopped in 2" in plain.stdout
    assert "scenario 0 (none): strategy sma stopped: ValueError: signal went bad" in plain.stdout


def test_stress_records_stopped_strategies_and_strict_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "raising_strategy.py").write_text(RAISING_STRATEGY)
    args = ("--scenario", "gap_down", "--set", "data.bars.0.limit=5000")

    plain, rows, summary = _batch("stress", tmp_path / "plain", *args, pythonpath=tmp_path)
    strict, _, _ = _batch("stress", tmp_path / "strict", *args, "--strict", pythonpath=tmp_path)

    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == STRICT_EXIT_CODE, strict.stderr
    _assert_every_scenario_had_sma_stopped(rows, summary)
    lines = plain.stdout.splitlines()
    [header] = [i for i, line in enumerate(lines) if line.startswith("scenario ")]
    table = lines[header:]
    assert table[0].split()[-2:] == ["stopped", "run"]
    assert [line.split()[0] for line in table[1:3]] == ["none", "gap_down"]
    assert all(line.split()[-2:] == ["1", "failed"] for line in table[1:3])
