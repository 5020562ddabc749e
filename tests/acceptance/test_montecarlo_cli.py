"""``tradegraph montecarlo`` and ``tradegraph stress`` as a user runs them (in process, no Ray)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

FAST = [
    "--set",
    "strategies.sma.params.fast_period=5",
    "--set",
    "strategies.sma.params.slow_period=20",
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_montecarlo_prints_summary_json_and_writes_results(tmp_path: Path) -> None:
    args = ["montecarlo", "--paths", "4", "--bars-per-path", "200", "--model", "bootstrap"]
    args += ["--stress", "gap_down", "--in-process", "--json", "--out", str(tmp_path), *FAST]

    proc = _cli(*args)

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["scenarios"] == 4
    assert summary["overlays"] == ["gap_down"]
    for key in ("var_95", "cvar_99", "prob_loss", "prob_ruin", "drawdown", "results_digest"):
        assert key in summary
    assert "4/4 scenarios" in proc.stderr
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 4
    assert "chart-fan" in (tmp_path / "report.html").read_text()

    again = _cli(*args)

    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert rerun["scenarios_run"] == 0
    assert rerun["results_digest"] == summary["results_digest"]


def test_stress_runs_each_named_scenario_on_history(tmp_path: Path) -> None:
    proc = _cli(
        "stress",
        "--scenario",
        "flash_crash",
        "fee_shock",
        "--in-process",
        "--json",
        "--out",
        str(tmp_path),
        "--set",
        "data.bars.0.limit=2000",
        *FAST,
    )

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    labels = [row["overlays"] for row in summary["scenarios_table"]]
    assert labels == ["none", "flash_crash", "fee_shock"]
    assert "fee_shock" in proc.stdout


def test_unknown_stress_name_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = _cli("montecarlo", "--paths", "1", "--stress", "meteor", "--out", str(tmp_path))

    assert proc.returncode == 2
    assert "unknown stress scenario 'meteor'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_backtest_under_an_outage_shows_the_rejected_order(tmp_path: Path) -> None:
    # An hour of latency: an order sent in the hour before the outage reaches the venue in it.
    proc = _cli(
        "backtest",
        "--stress",
        "exchange_outage",
        "--set",
        "data.bars.0.limit=1500",
        "--set",
        "venues.BINANCE.latency_ms=3600000",
        "--no-html",
        "--json",
        "--out",
        str(tmp_path),
        *FAST,
    )

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    orders = pq.read_table(tmp_path / "orders.parquet").to_pylist()
    rejected = [o for o in orders if o["status"] == "rejected"]
    assert summary["bars"] == 1_500  # market data goes on through the outage
    assert summary["venue_rejections"] == len(rejected) == 1
    assert rejected[0]["reason"] == "venue unavailable: exchange outage (exchange_outage)"
    assert summary["fills"] > 0


def test_backtest_under_an_outage_with_the_default_config_rejects_orders(tmp_path: Path) -> None:
    proc = _cli(
        "backtest", "--stress", "exchange_outage", "--no-html", "--json", "--out", str(tmp_path)
    )

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    rejected = [
        o
        for o in pq.read_table(tmp_path / "orders.parquet").to_pylist()
        if o["status"] == "rejected"
    ]
    reason = "venue unavailable: exchange outage (exchange_outage)"
    assert rejected
    assert {o["reason"] for o in rejected} == {reason}
    assert summary["venue_rejections"] == len(rejected)
    assert summary["rejection_reasons"] == [
        {"source": "venue", "reason": reason, "count": len(rejected)}
    ]
    assert f"{len(rejected)}  venue  {reason}" in proc.stdout
    assert f"venue rejections {len(rejected)}" in proc.stdout
