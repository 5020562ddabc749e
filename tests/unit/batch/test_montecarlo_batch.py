"""Monte Carlo batches run in this process (the Ray transport is covered by integration tests)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tradegraph.batch import montecarlo
from tradegraph.batch.montecarlo import BatchPlan, BatchProgress, MonteCarlo, results_digest
from tradegraph.config import load_config
from tradegraph.config.models import AllocationConfig, GraphConfig, StrategyAllocationConfig
from tradegraph.engine.backtest import BacktestResult, run_backtest
from tradegraph.engine.streams import BarStream
from tradegraph.errors import ConfigError

FAST = ["strategies.sma.params.fast_period=5", "strategies.sma.params.slow_period=20"]


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(None, FAST)


def _batch(config: GraphConfig, **kwargs: Any) -> MonteCarlo:
    options: dict[str, Any] = {"paths": 6, "bars_per_path": 240, "in_process": True, "root_seed": 3}
    options.update(kwargs)
    return MonteCarlo(config, **options)


def test_one_row_per_scenario_with_results(config: GraphConfig) -> None:
    result = _batch(config).run_batch()

    table = result.table
    assert table.column("index").to_pylist() == list(range(6))
    assert set(table.column("status").to_pylist()) == {"ok"}
    assert set(table.column("bars").to_pylist()) == {240}
    assert sum(table.column("fills").to_pylist()) > 0
    assert len(set(table.column("final_equity").to_pylist())) == 6
    assert all(len(s) == 50 for s in table.column("equity_samples").to_pylist())
    assert result.summary["scenarios_failed"] == 0
    assert result.quantiles.num_rows == 50
    assert result.summary["results_digest"] == result.results_digest


def test_digest_does_not_depend_on_chunking(config: GraphConfig) -> None:
    one_by_one = _batch(config, chunk_size=1).run_batch()
    together = _batch(config, chunk_size=6).run_batch()

    assert one_by_one.results_digest == together.results_digest
    assert one_by_one.results_digest == results_digest(together.table.take([5, 0, 3, 1, 4, 2]))


def test_seed_and_model_change_the_results(config: GraphConfig) -> None:
    base = _batch(config).run_batch().results_digest

    assert _batch(config, root_seed=4).run_batch().results_digest != base
    assert _batch(config, model="bootstrap").run_batch().results_digest != base


@pytest.mark.parametrize("model", ["jump", "garch", "bootstrap"])
def test_every_model_runs_a_batch(config: GraphConfig, model: str) -> None:
    result = _batch(config, model=model, paths=2).run_batch()

    assert result.table.column("status").to_pylist() == ["ok", "ok"]
    assert result.table.column("model").to_pylist() == [model, model]


def test_rerun_into_the_same_folder_skips_finished_scenarios(
    config: GraphConfig, tmp_path: Path
) -> None:
    fresh = _batch(config).run_batch()
    _batch(config, paths=4, out_dir=tmp_path).run_batch()

    resumed = _batch(config, out_dir=tmp_path).run_batch()

    assert resumed.summary["scenarios_run"] == 2
    assert resumed.results_digest == fresh.results_digest
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 6
    assert (tmp_path / "report.html").exists()
    assert len(list((tmp_path / "chunks").glob("chunk-*.parquet"))) >= 2


def test_a_different_batch_in_the_same_folder_is_refused(
    config: GraphConfig, tmp_path: Path
) -> None:
    _batch(config, paths=1, out_dir=tmp_path).run_batch()

    with pytest.raises(ConfigError, match="different batch"):
        _batch(config, paths=1, out_dir=tmp_path, root_seed=99).run_batch()


def test_failing_scenario_is_retried_then_reported(
    config: GraphConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = montecarlo.run_scenario
    calls: dict[int, int] = {}

    def flaky(plan: BatchPlan, index: int) -> dict[str, Any]:
        calls[index] = calls.get(index, 0) + 1
        if index == 1 and calls[index] == 1:
            raise RuntimeError("transient")
        if index == 2:
            raise RuntimeError("always broken")
        return real(plan, index)

    monkeypatch.setattr(montecarlo, "run_scenario", flaky)

    result = _batch(config, paths=4).run_batch()

    rows = result.table.to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "ok"]
    assert rows[1]["attempts"] == 2
    assert rows[2]["attempts"] == 2
    assert "always broken" in rows[2]["error"]
    assert calls[2] == 2
    assert result.summary["scenarios_failed"] == 1
    assert result.summary["scenarios_ok"] == 3


def test_stress_sets_run_each_preset_on_history(config: GraphConfig) -> None:
    short = config.model_copy(
        update={
            "data": config.data.model_copy(
                update={"bars": (config.data.bars[0].model_copy(update={"limit": 600}),)}
            )
        }
    )

    result = MonteCarlo(
        short,
        paths=3,
        model="history",
        stress_sets=[[], ["flash_crash"], ["exchange_outage"]],
        in_process=True,
    ).run_batch()

    rows = result.table.to_pylist()
    assert [r["overlays"] for r in rows] == ["none", "flash_crash", "exchange_outage"]
    assert rows[0]["bars"] == 600
    assert rows[2]["bars"] == 600  # the outage refuses orders; market data goes on
    assert rows[1]["final_equity"] != rows[0]["final_equity"]


def test_kill_switch_trips_are_counted(config: GraphConfig) -> None:
    tight = load_config(None, [*FAST, "risk.max_drawdown_pct=0.001"])

    result = _batch(tight, paths=2, stress=["flash_crash"]).run_batch()

    assert all(t >= 1 for t in result.table.column("kill_switch_trips").to_pylist())
    assert result.summary["kill_switch_trips"] >= 2


def test_progress_reports_every_chunk(config: GraphConfig) -> None:
    seen: list[BatchProgress] = []

    _batch(config, chunk_size=2, progress=seen.append).run_batch()

    assert [p.done for p in seen] == [2, 4, 6]
    assert seen[-1].total == 6
    assert seen[-1].eta_s == 0.0


def test_bad_arguments_are_refused(config: GraphConfig) -> None:
    with pytest.raises(ConfigError, match="paths"):
        MonteCarlo(config, paths=0)
    with pytest.raises(ConfigError, match="unknown model"):
        MonteCarlo(config, paths=1, model="heston")
    with pytest.raises(ConfigError, match="unknown stress"):
        MonteCarlo(config, paths=1, stress=["meteor"])


def test_several_instruments_get_jointly_correlated_paths() -> None:
    both = load_config(Path(__file__).resolve().parents[3] / "examples" / "multi_strategy.yaml")
    batch = MonteCarlo(both, paths=2, bars_per_path=2_000, in_process=True, root_seed=1)

    _, (btc, eth) = montecarlo.scenario_inputs(batch.plan(), 0)
    result = MonteCarlo(both, paths=2, bars_per_path=200, in_process=True).run_batch()

    drawn = np.corrcoef(np.diff(np.log(btc.close)), np.diff(np.log(eth.close)))[0, 1]
    calibrated = result.summary["correlation"][0][1]
    assert calibrated > 0.5
    assert drawn == pytest.approx(calibrated, abs=0.1)
    np.testing.assert_array_equal(btc.ts_open_ns, eth.ts_open_ns)
    assert (btc.instrument_id, eth.instrument_id) == ("BTCUSDT.BINANCE", "ETHUSDT.BINANCE")
    assert result.table.column("status").to_pylist() == ["ok", "ok"]


def _two_allocated_strategies(config: GraphConfig) -> GraphConfig:
    params = {"fast_period": 5, "slow_period": 20, "capital_fraction": 0.2}
    slow = config.strategies[0].model_copy(
        update={"id": "slow", "params": {**params, "fast_period": 10, "slow_period": 40}}
    )
    fast = config.strategies[0].model_copy(update={"params": params})
    allocation = AllocationConfig(
        targets=(
            StrategyAllocationConfig(strategy="sma", weight=0.6),
            StrategyAllocationConfig(strategy="slow", weight=0.4),
        ),
        check_interval_s=600,
        drift_threshold=0.001,
    )
    return config.model_copy(update={"strategies": (fast, slow), "allocation": allocation})


def test_results_break_down_per_strategy_with_allocation_over_time(
    config: GraphConfig, tmp_path: Path
) -> None:
    allocated = _two_allocated_strategies(config)

    result = _batch(allocated, paths=3, out_dir=tmp_path).run_batch()

    for row in result.table.to_pylist():
        sma, slow = row["strategies"]
        assert (sma["strategy_id"], slow["strategy_id"]) == ("sma", "slow")
        assert sma["net_pnl"] + slow["net_pnl"] == pytest.approx(
            row["final_equity"] - row["starting_cash"], rel=1e-9, abs=1e-6
        )
        assert sma["fills"] + slow["fills"] == row["fills"]
        assert len(sma["allocation_samples"]) == 50
        assert sma["allocation_samples"][0] == pytest.approx(60_000.0)
        assert slow["allocation_samples"][0] == pytest.approx(40_000.0)
    stats = result.summary["per_strategy"]
    assert set(stats) == {"sma", "slow"}
    assert stats["sma"]["pnl_q05"] <= stats["sma"]["pnl_q50"] <= stats["sma"]["pnl_q95"]
    assert stats["slow"]["scenarios"] == 3
    assert "final_capital_q50" in stats["slow"]
    assert pq.read_table(tmp_path / "strategies.parquet").num_rows == 6
    bands = pq.read_table(tmp_path / "allocation_quantiles.parquet")
    assert sorted(set(bands.column("strategy_id").to_pylist())) == ["slow", "sma"]
    assert bands.num_rows == 100
    html = (tmp_path / "report.html").read_text()
    assert "chart-allocation-sma" in html
    assert "Strategies: net pnl across scenarios" in html


def test_without_an_allocator_strategies_have_no_allocation(config: GraphConfig) -> None:
    result = _batch(config, paths=2).run_batch()

    [entry] = result.table.column("strategies").to_pylist()[0]
    assert entry["strategy_id"] == "sma"
    assert entry["allocation_samples"] is None
    assert result.allocation_quantiles == {}
    assert result.summary["per_strategy"]["sma"]["scenarios"] == 2


def test_engine_check_finds_identical_runs_and_names_what_differs(config: GraphConfig) -> None:
    plan = _batch(config, paths=2, stress=["exchange_outage", "fee_shock"]).plan()

    def drops_last_fill(cfg: GraphConfig, stream: BarStream) -> BacktestResult:
        result = run_backtest(cfg, stream)
        return replace(result, fills=result.fills[:-1])

    same = montecarlo.check_engine(plan, [0, 1], run_backtest, engine="local-again")
    broken = montecarlo.check_engine(
        plan, [1], drops_last_fill, engine="broken", batch_digests={1: "not-the-digest"}
    )

    assert same.identical
    assert [s["fills"] > 0 for s in same.scenarios] == [True, True]
    assert same.to_dict()["scenarios_checked"] == 2
    assert not broken.identical
    assert broken.mismatched == [1]
    assert broken.scenarios[0]["differences"] == ["fills", "batch row"]


def test_engine_check_without_an_injected_runner_is_refused(config: GraphConfig) -> None:
    with pytest.raises(ConfigError, match="check_ray_engine needs ray_engine"):
        _batch(config, check_ray_engine=1)

    batch = _batch(config, check_ray_engine=1, ray_engine=run_backtest)

    assert batch.ray_engine is run_backtest


def test_a_batch_in_this_process_reports_no_start_up(config: GraphConfig) -> None:
    result = MonteCarlo(config, paths=3, bars_per_path=120, in_process=True).run_batch()

    summary = result.summary
    assert summary["startup_s"] == 0.0
    assert summary["scenarios_per_s"] == pytest.approx(3 / summary["elapsed_s"])
