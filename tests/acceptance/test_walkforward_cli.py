"""``tradegraph walkforward`` as a user runs it, on the packaged default config (31 days of
1-minute bars), in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"
ARGS = [
    "walkforward",
    "--grid",
    f"{FAST}=30,60",
    "--grid",
    f"{SLOW}=120,240",
    "--train",
    "10d",
    "--test",
    "5d",
    "--in-process",
    "--json",
]
DIGEST = "4ee2a748fa85f689b9ec9528296c19407dd474cb8af77c367c014712a0953ac7"
"""The digest of ``ARGS`` since walk-forward began (folds run one after another then)."""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return parsed


def test_walkforward_folds_summary_backtest_equality_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "wf"

    proc = _cli(*ARGS, "--out", str(out))

    assert proc.returncode == 0, proc.stderr
    summary = _last_json(proc)
    assert summary["folds"] == 4
    assert summary["folds_run"] == 4
    assert summary["results_digest"] == DIGEST
    assert summary["elapsed_s"] > 0
    assert summary["startup_s"] == 0.0
    assert set(summary["parameter_stability"]) == {FAST, SLOW}
    assert 0 < summary["parameter_stability"][SLOW]["modal_share"] <= 1
    assert set(summary["oos"]) >= {"total_return", "sharpe", "max_drawdown", "final_equity"}
    assert "walk_forward_efficiency" in summary
    folds = pq.read_table(out / "folds.parquet")
    assert folds.column("fold").to_pylist() == [0, 1, 2, 3]
    assert folds.column("test_start").to_pylist() == [
        "2025-07-11T00:00:00",
        "2025-07-16T00:00:00",
        "2025-07-21T00:00:00",
        "2025-07-26T00:00:00",
    ]
    for column in (f"param.{FAST}", f"param.{SLOW}", "is_sharpe", "oos_sharpe", "wfe"):
        assert column in folds.column_names
    # Ten-day train windows of four trials: every fold's sweep gives both overfitting odds.
    pbos = folds.column("is_pbo").to_pylist()
    dsrs = folds.column("is_deflated_sharpe").to_pylist()
    assert all(0.0 <= v <= 1.0 for v in [*pbos, *dsrs])
    assert summary["pbo"] == pytest.approx(sum(pbos) / 4)
    assert summary["deflated_sharpe"] == pytest.approx(sum(dsrs) / 4)
    losers = sum(r < 0 for r in folds.column("oos_total_return").to_pylist())
    assert summary["oos_loss_share"] == losers / 4
    assert summary["overfitting"]["oos_loss_share"] == {
        "value": losers / 4,
        "lost": losers,
        "folds": 4,
    }
    assert "overfitting odds: mean PBO" in proc.stdout
    stitched = pq.read_table(out / "oos_equity.parquet")
    assert stitched.column("fold").to_pylist()[0] == 0
    assert stitched.num_rows == sum(folds.column("oos_bars").to_pylist())
    report = (out / "report.html").read_text()
    assert "chart-oos-equity" in report
    assert report.count("fold-boundary") == 4
    assert "stability-table" in report
    assert "overfitting-table" in report
    assert "overfitting-note" in report

    # Fold 2 out of sample is exactly `tradegraph backtest` on its window, params and warm-up.
    fold = json.loads((out / "folds" / "002" / "fold.json").read_text())
    assert fold["warmup_bars"] == fold[f"param.{SLOW}"]
    sets = [arg for entry in fold["oos_set"] for arg in ("--set", entry)]
    backtest = _cli("backtest", *sets, "--json", "--out", str(tmp_path / "bt"))
    assert backtest.returncode == 0, backtest.stderr
    alone = _last_json(backtest)
    assert alone["fills_digest"] == fold["oos_fills_digest"]
    for metric in ("total_return", "sharpe", "max_drawdown", "fills", "final_equity"):
        assert alone[metric] == fold[f"oos_{metric}"], metric
    assert alone["bars"] == fold["oos_bars"] == 5 * 24 * 60

    rerun = _cli(*ARGS, "--out", str(out))

    assert rerun.returncode == 0, rerun.stderr
    again = _last_json(rerun)
    assert again["folds_run"] == 0
    assert again["results_digest"] == summary["results_digest"]


def test_walkforward_refuses_data_too_short_for_one_fold(tmp_path: Path) -> None:
    proc = _cli(
        "walkforward",
        "--grid",
        f"{FAST}=30,60",
        "--train",
        "30d",
        "--test",
        "5d",
        "--out",
        str(tmp_path / "wf"),
    )

    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --train 30d")
    assert "not one fold fits" in proc.stderr
    assert "Traceback" not in proc.stderr
