"""Loaders of run folders, on folders written by real backtests and batches."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.cli.run_folder import new_run_folder
from tradegraph.config import load_config
from tradegraph.engine.backtest import BacktestResult
from tradegraph.engine.backtest import run_backtest as run_engine
from tradegraph.errors import ConfigError, DataError
from tradegraph.report.outputs import write_outputs
from tradegraph.research import (
    MonteCarloRun,
    SweepRun,
    load,
    load_montecarlo,
    load_run,
    load_sweep,
    run_backtest,
)

SMALL = ["data.bars.0.limit=3000"]


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return run_engine(load_config(None, SMALL))


@pytest.fixture
def run_dir(result: BacktestResult, tmp_path: Path) -> Path:
    write_outputs(result, tmp_path / "run", html=False)
    return tmp_path / "run"


def test_a_backtest_folder_loads_as_frames_equal_to_the_run(
    result: BacktestResult, run_dir: Path
) -> None:
    run = load_run(run_dir)

    assert isinstance(run.equity.index, pd.DatetimeIndex)
    assert str(run.equity.index.tz) == "UTC"
    assert run.equity.index.name == "ts"
    assert run.equity["equity"].tolist() == result.equity.tolist()
    assert run.equity.index[0] == pd.Timestamp(int(result.ts_ns[0]), unit="ns", tz="UTC")
    assert len(run.fills) == len(result.fills) == run.summary["fills"] > 0
    assert run.fills["fill_id"].tolist() == [f.fill_id for f in result.fills]
    assert run.fills["ts"].iloc[0] == pd.Timestamp(result.fills[0].ts_event_ns, unit="ns", tz="UTC")
    assert len(run.orders) == result.orders
    assert run.summary["fills_digest"] == result.fills_digest
    assert (run.name, run.failed, run.session) == ("sma-btc-default", False, None)


def test_latest_link_and_base_folder_resolve_to_the_newest_run(
    result: BacktestResult, tmp_path: Path
) -> None:
    base = tmp_path / "out" / "backtest"
    older = new_run_folder(base, "a", now=datetime(2025, 1, 1, tzinfo=UTC))
    write_outputs(result, older, html=False)
    newer = new_run_folder(base, "b", now=datetime(2025, 1, 2, tzinfo=UTC))
    write_outputs(result, newer, html=False)
    os.utime(older / "summary.json", ns=(1, 1))  # written first

    assert load_run(base / "latest").path == newer.resolve()
    assert load_run(base).path == newer.resolve()
    (base / "latest").unlink()
    assert load_run(base).path == newer.resolve()


def test_a_failed_run_loads_and_says_it_failed(tmp_path: Path) -> None:
    # Every order above 1 USDT is refused: the run fails, and its folder says so.
    made = run_backtest(None, [*SMALL, "risk.max_order_notional=1"], out=tmp_path / "failed")

    run = load_run(tmp_path / "failed")

    assert run.summary["status"] == made.summary["status"] == "failed"
    assert run.failed
    assert run.summary["failure_reasons"]
    assert run.fills.empty


def test_run_backtest_from_python_matches_the_engine_and_writes_loadable_files(
    result: BacktestResult, tmp_path: Path
) -> None:
    run = run_backtest(None, SMALL, out=tmp_path / "py")

    assert run.result is not None
    assert run.summary["fills_digest"] == result.fills_digest
    assert run.equity["equity"].tolist() == result.equity.tolist()
    assert load_run(tmp_path / "py").summary["fills_digest"] == result.fills_digest
    assert not (tmp_path / "py" / "report.html").exists()


def test_run_backtest_applies_overrides_to_a_config_object() -> None:
    config = load_config(None, SMALL)

    run = run_backtest(config, ["strategies.sma.params.fast_period=30"])

    expected = run_engine(load_config(None, [*SMALL, "strategies.sma.params.fast_period=30"]))
    assert run.summary["fills_digest"] == expected.fills_digest
    assert run.config is not None
    assert run.config.strategies[0].params["fast_period"] == 30


def test_run_backtest_refuses_a_bad_override_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_order_notional"):
        run_backtest(load_config(None, SMALL), ["risk.max_order_notional=-5"])


# -- errors ---------------------------------------------------------------------------------


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: no such run folder"):
        load_run(tmp_path / "nowhere")


def test_a_folder_that_is_no_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(DataError, match=r"empty: not a run folder"):
        load_run(tmp_path / "empty")


def test_a_file_is_refused(run_dir: Path) -> None:
    with pytest.raises(DataError, match=r"equity.parquet: not a run folder \(a file"):
        load_run(run_dir / "equity.parquet")


def test_a_run_missing_a_file_names_it(run_dir: Path) -> None:
    (run_dir / "fills.parquet").unlink()

    with pytest.raises(DataError, match=r"not a complete run folder, missing fills.parquet"):
        load_run(run_dir)


def test_an_unreadable_summary_names_the_file(run_dir: Path) -> None:
    (run_dir / "summary.json").write_text("{not json")

    with pytest.raises(DataError, match=r"summary.json: cannot be read as JSON"):
        load_run(run_dir)


def test_an_unreadable_parquet_file_names_it(run_dir: Path) -> None:
    (run_dir / "orders.parquet").write_bytes(b"not parquet")

    with pytest.raises(DataError, match=r"orders.parquet: cannot be read as Parquet"):
        load_run(run_dir)


def test_a_session_that_wrote_no_outputs_is_refused_with_its_status(tmp_path: Path) -> None:
    (tmp_path / "session.json").write_text('{"status": "failed"}\n')

    with pytest.raises(DataError, match=r"session.json only, status 'failed'"):
        load_run(tmp_path)


# -- sweeps and batches ---------------------------------------------------------------------


def _sweep_folder(folder: Path, *, daily: bool) -> list[BacktestResult]:
    """A sweep folder in the format of ``tradegraph sweep`` from two real backtests."""
    fast = [30, 60]
    results = [
        run_engine(load_config(None, [*SMALL, f"strategies.sma.params.fast_period={p}"]))
        for p in fast
    ]
    folder.mkdir(parents=True)
    rows = [
        {
            "trial": i,
            "param.strategies.sma.params.fast_period": p,
            "status": "ok",
            "sharpe": r.metrics.sharpe,
            "total_return": r.metrics.total_return,
            "fills_digest": r.fills_digest,
        }
        for i, (p, r) in enumerate(zip(fast, results, strict=True))
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "results.parquet")
    if daily:
        pq.write_table(
            pa.table({"trial": [0, 1], "2025-07-01": [0.01, -0.02], "2025-07-02": [0.005, None]}),
            folder / "daily_returns.parquet",
        )
    (folder / "summary.json").write_text(
        '{"trials": 2, "best": {"trial": 0, "params": {"strategies.sma.params.fast_period": 30}},'
        ' "results_digest": "abc"}\n'
    )
    return results


def test_a_sweep_folder_loads_with_its_daily_returns_as_periods_by_trials(tmp_path: Path) -> None:
    results = _sweep_folder(tmp_path / "sweep", daily=True)

    sweep = load_sweep(tmp_path / "sweep")

    assert sweep.params == ["strategies.sma.params.fast_period"]
    assert sweep.results["fills_digest"].tolist() == [r.fills_digest for r in results]
    assert sweep.summary["trials"] == 2
    assert sweep.best is not None
    assert sweep.best["trial"] == 0
    assert sweep.daily_returns is not None
    assert list(sweep.daily_returns.columns) == [0, 1]
    assert str(sweep.daily_returns.index.tz) == "UTC"
    assert sweep.daily_returns.loc["2025-07-01", 1] == -0.02
    assert pd.isna(sweep.daily_returns.loc["2025-07-02", 1])
    assert isinstance(load(tmp_path / "sweep"), SweepRun)


def test_a_sweep_without_daily_returns_loads_without_them(tmp_path: Path) -> None:
    _sweep_folder(tmp_path / "sweep", daily=False)

    sweep = load_sweep(tmp_path / "sweep")

    assert sweep.daily_returns is None
    assert len(sweep.results) == 2


def test_a_sweep_folder_given_to_load_run_says_which_loader_to_use(tmp_path: Path) -> None:
    _sweep_folder(tmp_path / "sweep", daily=False)

    with pytest.raises(DataError, match=r"a sweep folder, not a run; use load_sweep\(\)"):
        load_run(tmp_path / "sweep")


def test_a_monte_carlo_folder_loads_its_scenarios_and_quantiles(tmp_path: Path) -> None:
    batch = MonteCarlo(
        load_config(None, SMALL),
        paths=2,
        bars_per_path=300,
        out_dir=tmp_path / "mc",
        in_process=True,
        html=False,
    )
    made = batch.run_batch()

    mc = load_montecarlo(tmp_path / "mc")

    assert isinstance(mc, MonteCarloRun)
    assert mc.results["index"].tolist() == [0, 1]
    assert mc.results["fills_digest"].tolist() == made.table.column("fills_digest").to_pylist()
    assert mc.summary["results_digest"] == made.summary["results_digest"]
    assert len(mc.quantiles) == made.quantiles.num_rows
    assert isinstance(load(tmp_path / "mc"), MonteCarloRun)
    with pytest.raises(DataError, match=r"a montecarlo folder, not a sweep"):
        load_sweep(tmp_path / "mc")


def test_the_command_starts_without_pandas() -> None:
    code = "import sys, tradegraph.cli.main, tradegraph.research; print('pandas' in sys.modules)"

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "False"


def test_load_sweep_reads_a_folder_tradegraph_sweep_wrote(tmp_path: Path) -> None:
    from tradegraph.batch.sweep import Sweep

    fast, slow = "strategies.sma.params.fast_period", "strategies.sma.params.slow_period"
    result = Sweep(
        None,
        [f"{fast}=10,20", f"{slow}=40,80"],
        overrides=["data.bars.0.limit=3000"],
        in_process=True,
        out_dir=tmp_path,
    ).run()

    sweep = load_sweep(tmp_path)

    assert sweep.params == [fast, slow]
    assert sweep.results["trial"].tolist() == [0, 1, 2, 3]
    assert sweep.summary["results_digest"] == result.summary["results_digest"]
    assert sweep.daily_returns is not None
    assert list(sweep.daily_returns.columns) == [0, 1, 2, 3]
    assert len(sweep.daily_returns) >= 2
    assert str(sweep.daily_returns.index.tz) == "UTC"
