"""Data files that parse but are wrong, as a user meets them: ``tradegraph backtest --data FILE``
on real Parquet and CSV files made from the bundled sample. Each run must equal the run on the
clean ns file (same fills) or stop with one line naming the file, exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tradegraph.data import read_bars, read_trades

BARS = 3_000
FAST = ("--set", "strategies.sma.params.fast_period=10")
SLOW = ("--set", "strategies.sma.params.slow_period=30")
YEAR_NS = 365 * 86_400_000_000_000

Summary = dict[str, Any]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _backtest(
    path: Path, out: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Summary]:
    proc = _cli(
        "backtest",
        "--data",
        str(path),
        "--out",
        str(out),
        "--json",
        "--no-html",
        *FAST,
        *SLOW,
        *extra,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return proc, summary


@pytest.fixture(scope="module")
def clean_table() -> pa.Table:
    (bars,) = read_bars("sample:BTCUSDT_1m", limit=BARS)
    return bars.to_table().drop_columns(["symbol", "venue"])


@pytest.fixture(scope="module")
def reference(clean_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Summary:
    where = tmp_path_factory.mktemp("reference")
    path = where / "clean.parquet"
    pq.write_table(clean_table, path)
    proc, summary = _backtest(path, where / "out")
    assert proc.returncode == 0, proc.stderr
    assert summary["fills"] > 0
    assert summary["bars"] == BARS
    return summary


def _with_ts(table: pa.Table, ts: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index("ts"), "ts", ts)


def _ns(table: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(table.column("ts").to_numpy(), dtype=np.int64)


VARIANTS: dict[str, Callable[[pa.Table], pa.Table]] = {
    "seconds": lambda t: _with_ts(t, pa.array(_ns(t) // 1_000_000_000, pa.int64())),
    "milliseconds": lambda t: _with_ts(t, pa.array(_ns(t) // 1_000_000, pa.int64())),
    "microseconds": lambda t: _with_ts(t, pa.array(_ns(t) // 1_000, pa.int64())),
    "arrow_ms_utc": lambda t: _with_ts(
        t, pa.array(_ns(t) // 1_000_000, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    ),
    "arrow_us_paris": lambda t: _with_ts(
        t, pa.array(_ns(t) // 1_000, pa.int64()).cast(pa.timestamp("us", tz="Europe/Paris"))
    ),
    "arrow_ns_naive": lambda t: _with_ts(t, pa.array(_ns(t), pa.int64()).cast(pa.timestamp("ns"))),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_times_in_any_unit_run_as_the_ns_file(
    variant: str,
    suffix: str,
    clean_table: pa.Table,
    reference: Summary,
    tmp_path: Path,
) -> None:
    # In CSV, Arrow timestamps are written as ISO date-times and read back as timestamps.
    table = VARIANTS[variant](clean_table)
    path = tmp_path / f"bars{suffix}"
    if suffix == ".csv":
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)

    proc, summary = _backtest(path, tmp_path / "out")

    assert proc.returncode == 0, proc.stderr
    assert summary["bars"] == BARS
    assert summary["fills_digest"] == reference["fills_digest"]
    if variant in ("seconds", "milliseconds", "microseconds"):
        assert "ts_unit_converted" in proc.stderr


def test_csv_in_ns_runs_as_the_parquet_file(
    clean_table: pa.Table,
    reference: Summary,
    tmp_path: Path,
) -> None:
    path = tmp_path / "bars.csv"
    pa_csv.write_csv(clean_table, path)
    proc, summary = _backtest(path, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert summary["fills_digest"] == reference["fills_digest"]
    assert "ts_unit_converted" not in proc.stderr


def test_times_of_no_known_unit_stop_with_one_line_naming_file_and_column(
    clean_table: pa.Table, tmp_path: Path
) -> None:
    # Small counters 7 apart: no unit puts them after 2000, no unit spaces them 60 s apart.
    path = tmp_path / "counter.parquet"
    pq.write_table(_with_ts(clean_table, pa.array(np.arange(BARS) * 7, pa.int64())), path)

    proc, _ = _backtest(path, tmp_path / "out")

    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert str(path) in proc.stderr
    assert "column 'ts'" in proc.stderr
    assert "cannot tell the time unit" in proc.stderr


def test_empty_bar_file_says_it_is_empty(clean_table: pa.Table, tmp_path: Path) -> None:
    no_rows = tmp_path / "no_rows.parquet"
    pq.write_table(clean_table.slice(0, 0), no_rows)
    no_bytes = tmp_path / "no_bytes.parquet"
    no_bytes.write_bytes(b"")

    for path in (no_rows, no_bytes):
        proc, _ = _backtest(path, tmp_path / "out")
        assert proc.returncode == 3
        assert proc.stderr.startswith(f"error: {path}: the bar file is empty"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_unsorted_bar_file_is_sorted_and_runs_as_the_sorted_one(
    clean_table: pa.Table,
    reference: Summary,
    tmp_path: Path,
) -> None:
    order = np.random.default_rng(3).permutation(clean_table.num_rows)
    path = tmp_path / "shuffled.parquet"
    pq.write_table(clean_table.take(pa.array(order)), path)

    proc, summary = _backtest(path, tmp_path / "out")

    assert proc.returncode == 0, proc.stderr
    assert summary["bars"] == BARS
    assert summary["dropped_rows"] == 0
    assert summary["fills_digest"] == reference["fills_digest"]
    assert "bars_sorted" in proc.stderr


@pytest.mark.parametrize(
    ("offset_ns", "reason"),
    [(80 * YEAR_NS, "after_local_clock"), (-3 * YEAR_NS, "far_from_neighbours")],
)
def test_one_far_out_row_is_dropped_not_everything_after_it(
    offset_ns: int,
    reason: str,
    clean_table: pa.Table,
    reference: Summary,
    tmp_path: Path,
) -> None:
    ts = _ns(clean_table).copy()
    ts[BARS // 2] += offset_ns
    path = tmp_path / "outlier.parquet"
    pq.write_table(_with_ts(clean_table, pa.array(ts, pa.int64())), path)
    (kept,) = read_bars(path, symbol="BTCUSDT")
    expected_fills = reference["fills"]

    proc, summary = _backtest(path, tmp_path / "out")

    assert proc.returncode == 0, proc.stderr
    assert len(kept) == BARS - 1
    assert summary["bars"] == BARS - 1
    assert summary["dropped_rows"] == 1
    assert summary["dropped"] == {"BTCUSDT.BINANCE": {reason: 1}}
    assert "bars_out_of_line_dropped" in proc.stderr
    # One minute missing mid-file moves the averages a little, never the whole run.
    assert abs(summary["fills"] - expected_fills) <= 4


def _trade_config(path: Path, tmp_path: Path) -> Path:
    config = tmp_path / "trades.yaml"
    config.write_text(
        "name: trades\n"
        "instruments:\n"
        "  - {symbol: BTCUSDT, venue: BINANCE, base: BTC, quote: USDT, tick_size: 0.01,\n"
        "     lot_size: 0.00001, min_quantity: 0.00001, min_notional: 10.0}\n"
        "venues: [{name: BINANCE}]\n"
        f"data: {{trades: [{{path: '{path}', symbol: BTCUSDT}}]}}\n"
        "strategies:\n"
        "  - {id: sma, class_path: sma_cross, instruments: [BTCUSDT.BINANCE],\n"
        "     params: {fast_period: 10, slow_period: 30, quantity: 0.01}}\n"
        "report: {out_dir: " + str(tmp_path / "out") + ", html: false}\n"
    )
    return config


def test_trade_file_in_ms_unsorted_with_a_repeat_reads_as_the_clean_one(tmp_path: Path) -> None:
    clean = pq.read_table(read_trades_path())
    ts = clean.column("ts").to_numpy()
    messy = _with_ts(clean, pa.array(ts // 1_000_000, pa.int64()))
    order = np.random.default_rng(5).permutation(messy.num_rows)
    messy = pa.concat_tables([messy.take(pa.array(order)), messy.slice(100, 1)])
    path = tmp_path / "trades.csv"
    pa_csv.write_csv(messy.drop_columns(["ts_recv"]), path)
    expected = read_trades("sample:BTCUSDT_trades", symbol="BTCUSDT")

    proc = _cli("backtest", str(_trade_config(path, tmp_path)), "--json", "--no-html")

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["trade_ticks"] == len(expected)
    assert summary["dropped"] == {"BTCUSDT.BINANCE": {"duplicate_trade_id": 1}}
    assert "trades_sorted" in proc.stderr
    assert "ts_unit_converted" in proc.stderr


def read_trades_path() -> Path:
    from tradegraph.data import resolve_path

    return resolve_path("sample:BTCUSDT_trades")


def test_garbage_trade_file_is_a_one_line_data_error(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4)

    proc = _cli("backtest", str(_trade_config(path, tmp_path)))

    assert proc.returncode == 3
    assert proc.stderr.startswith(f"error: {path}: not a readable Parquet file")
    assert proc.stderr.count("\n") == 1, proc.stderr
