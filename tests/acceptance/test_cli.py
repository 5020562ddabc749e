"""The ``tradegraph`` command as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.data import read_bars


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    out = tmp_path_factory.mktemp("default")
    proc = _cli("backtest", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return summary, out


def test_default_backtest_prints_table_and_json_last_line(
    default_run: tuple[dict[str, object], Path],
) -> None:
    summary, _ = default_run
    for key in (
        "bars",
        "orders",
        "fills",
        "final_equity",
        "pnl",
        "fees",
        "total_return",
        "sharpe",
        "max_drawdown",
        "elapsed_s",
        "bars_per_s",
        "fills_digest",
    ):
        assert key in summary, key
    assert summary["bars"] == 44_640
    assert isinstance(summary["fills"], int)
    assert summary["fills"] > 0
    assert summary["pnl"] == pytest.approx(
        float(summary["final_equity"]) - float(summary["starting_cash"])  # type: ignore[arg-type]
    )


def test_default_backtest_writes_parquet_and_html(
    default_run: tuple[dict[str, object], Path],
) -> None:
    summary, out = default_run
    fills = pq.read_table(out / "fills.parquet")
    orders = pq.read_table(out / "orders.parquet")
    equity = pq.read_table(out / "equity.parquet")
    assert fills.num_rows == summary["fills"]
    assert set(orders.column("status").to_pylist()) <= {
        "filled",
        "partially_filled",
        "accepted",
        "cancelled",
        "rejected",
        "risk_rejected",
        "submitted",
    }
    assert orders.num_rows == summary["intents"]
    assert equity.num_rows == summary["bars"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 2
    assert json.loads((out / "summary.json").read_text())["fills_digest"] == summary["fills_digest"]


def test_rerun_gives_the_same_fills_digest(
    default_run: tuple[dict[str, object], Path], tmp_path: Path
) -> None:
    summary, _ = default_run
    proc = _cli("backtest", "--out", str(tmp_path), "--json", "--no-html")
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout.strip().splitlines()[-1])
    assert again["fills_digest"] == summary["fills_digest"]
    assert again["final_equity"] == summary["final_equity"]


def test_bad_config_value_names_field_exits_2_without_traceback() -> None:
    proc = _cli("backtest", "--set", "risk.max_order_notional=-5")
    assert proc.returncode == 2
    assert "risk.max_order_notional" in proc.stderr
    assert "greater than 0" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_yaml_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies:\n  - id: x\n    class_path: sma_cross\n    instruments: [NOPE.X]\n")
    proc = _cli("backtest", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_strategy_class_exits_2() -> None:
    proc = _cli("backtest", "--set", "strategies.sma.class_path=nowhere.module:Nope")
    assert proc.returncode == 2
    assert "nowhere.module" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_strategy_param_names_the_field() -> None:
    proc = _cli("backtest", "--set", "strategies.sma.params.fast_period=0")
    assert proc.returncode == 2
    assert "strategies.sma.params.fast_period" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_file_exits_3(tmp_path: Path) -> None:
    proc = _cli("backtest", "--data", str(tmp_path / "absent.parquet"))
    assert proc.returncode == 3
    assert "not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_rows_are_dropped_counted_and_logged_without_changing_fills(
    tmp_path: Path,
) -> None:
    (bars,) = read_bars("sample:BTCUSDT_1m", limit=6_000)
    clean = bars.to_table().drop_columns(["symbol", "venue"])
    clean_path = tmp_path / "clean.parquet"
    pq.write_table(clean, clean_path)
    # Garbage rows between the real ones: NaN, a negative price, a bar whose high is below its
    # low, and a repeated timestamp. All must be dropped; the real bars must trade as before.
    half_minute = 30_000_000_000
    ts = bars.ts_open_ns
    bad = pa.table(
        {
            "ts": pa.array(
                [ts[100] + half_minute, ts[200] + half_minute, ts[300] + half_minute, ts[400]],
                pa.int64(),
            ),
            "open": [float("nan"), 100.0, 100.0, 1.0],
            "high": [1.0, 100.0, 90.0, 1.0],
            "low": [1.0, -5.0, 110.0, 1.0],
            "close": [1.0, 100.0, 100.0, 1.0],
            "volume": [1.0, 1.0, 1.0, 1.0],
        }
    )
    dirty = pa.concat_tables([clean, bad])
    order = np.argsort(dirty.column("ts").to_numpy(), kind="stable")
    dirty_path = tmp_path / "dirty.parquet"
    pq.write_table(dirty.take(pa.array(order)), dirty_path)

    runs = []
    for path in (clean_path, dirty_path):
        proc = _cli(
            "backtest",
            "--data",
            str(path),
            "--out",
            str(tmp_path / path.stem),
            "--json",
            "--no-html",
            "--set",
            "strategies.sma.params.fast_period=10",
            "--set",
            "strategies.sma.params.slow_period=30",
        )
        assert proc.returncode == 0, proc.stderr
        runs.append((json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr))

    (clean_summary, _), (dirty_summary, dirty_log) = runs
    assert clean_summary["dropped_rows"] == 0
    assert dirty_summary["dropped_rows"] == 4
    assert dirty_summary["bars"] == clean_summary["bars"] == 6_000
    assert dirty_summary["fills"] == clean_summary["fills"] > 0
    assert dirty_summary["fills_digest"] == clean_summary["fills_digest"]
    assert "bars_dropped" in dirty_log
