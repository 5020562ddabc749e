"""Walk-forward windows, efficiency, stability and stitching."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tradegraph.batch.sweep import Sweep
from tradegraph.batch.walkforward import (
    Fold,
    WalkForward,
    efficiency,
    overfitting_summary,
    parameter_stability,
    parse_duration,
    plan_folds,
    stitch,
    walkforward_digest,
    window_overrides,
)
from tradegraph.errors import ConfigError

DAY = 86_400 * 1_000_000_000


def test_rolling_folds_slide_the_train_window_by_the_test_length() -> None:
    folds = plan_folds(0, 31 * DAY, train_ns=10 * DAY, test_ns=5 * DAY)

    assert folds == [
        Fold(0, 0, 10 * DAY, 10 * DAY, 15 * DAY),
        Fold(1, 5 * DAY, 15 * DAY, 15 * DAY, 20 * DAY),
        Fold(2, 10 * DAY, 20 * DAY, 20 * DAY, 25 * DAY),
        Fold(3, 15 * DAY, 25 * DAY, 25 * DAY, 30 * DAY),
    ]


def test_anchored_folds_keep_the_train_start_and_the_embargo_opens_a_gap() -> None:
    folds = plan_folds(
        0,
        31 * DAY,
        train_ns=10 * DAY,
        test_ns=5 * DAY,
        step_ns=7 * DAY,
        embargo_ns=DAY,
        anchored=True,
    )

    assert [(f.train_start_ns, f.train_end_ns) for f in folds] == [
        (0, 10 * DAY),
        (0, 17 * DAY),
        (0, 24 * DAY),
    ]
    assert all(f.test_start_ns == f.train_end_ns + DAY for f in folds)
    assert all(f.test_end_ns - f.test_start_ns == 5 * DAY for f in folds)
    assert folds[-1].test_end_ns <= 31 * DAY


def test_data_too_short_for_one_fold_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"need 36d of data, but the data spans only 31\.00d"):
        plan_folds(0, 31 * DAY, train_ns=30 * DAY, test_ns=5 * DAY, embargo_ns=DAY)


@pytest.mark.parametrize("text", ["7", "0d", "1.5d", "3w", "-2d", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--train"):
        parse_duration(text, "--train")


def test_durations() -> None:
    assert parse_duration("30d", "--train") == 30 * DAY
    assert parse_duration("12h", "--test") == DAY // 2
    assert parse_duration("90m", "--step") == 90 * 60 * 1_000_000_000


def test_efficiency_is_annualised_oos_over_annualised_is_and_undefined_for_a_losing_train() -> None:
    fold = Fold(0, 0, 10 * DAY, 10 * DAY, 20 * DAY)

    assert efficiency(0.01, 0.005, fold) == pytest.approx(
        ((1.005) ** 36.5 - 1) / ((1.01) ** 36.5 - 1)
    )
    assert efficiency(-0.01, 0.005, fold) is None


def test_parameter_stability_gives_the_modal_share_and_the_coefficient_of_variation() -> None:
    stability = parameter_stability(
        [{"fast": 10, "algo": "twap"}, {"fast": 20, "algo": "twap"}, {"fast": 10, "algo": "vwap"}]
    )

    assert stability["fast"]["modal_value"] == 10
    assert stability["fast"]["modal_share"] == pytest.approx(2 / 3)
    assert stability["fast"]["cv"] == pytest.approx(np.std([10, 20, 10]) / np.mean([10, 20, 10]))
    assert stability["algo"]["modal_value"] == "twap"
    assert stability["algo"]["cv"] is None


def test_stitching_compounds_each_fold_from_the_previous_folds_growth() -> None:
    curves = [
        (np.array([1, 2], np.int64), np.array([100.0, 110.0])),
        (np.array([3, 4], np.int64), np.array([100.0, 90.0])),
    ]

    table = stitch(curves, 100.0)

    assert table.column("equity").to_pylist() == pytest.approx([100.0, 110.0, 110.0, 99.0])
    assert table.column("fold").to_pylist() == [0, 0, 1, 1]


def _fold_row(fold: int, pbo: float | None, dsr: float | None, oos: float | None) -> dict[str, Any]:
    return {
        "fold": fold,
        "oos_total_return": oos,
        "is_pbo": pbo,
        "is_pbo_reason": None if pbo is not None else "needs at least 4 days of returns",
        "is_deflated_sharpe": dsr,
        "is_deflated_sharpe_reason": None if dsr is not None else "no best trial",
    }


def test_overfitting_summary_averages_defined_folds_and_counts_out_of_sample_losers() -> None:
    rows: list[dict[str, Any]] = [
        _fold_row(0, 0.2, 0.9, -0.01),
        _fold_row(1, None, 0.5, 0.02),
        _fold_row(2, 0.6, 0.4, -0.03),
        _fold_row(3, 0.4, None, 0.0),
    ]

    odds = overfitting_summary(rows)

    assert odds["pbo"] == {"mean": pytest.approx(0.4), "folds": 3}
    assert odds["deflated_sharpe"] == {"mean": pytest.approx(0.6), "folds": 3}
    assert odds["oos_loss_share"] == {"value": 0.5, "lost": 2, "folds": 4}


def test_overfitting_summary_is_null_with_the_reason_when_no_fold_has_it() -> None:
    odds = overfitting_summary([_fold_row(0, None, 0.7, 0.01), _fold_row(1, None, 0.8, 0.02)])

    assert odds["pbo"]["mean"] is None
    assert odds["pbo"]["folds"] == 0
    assert odds["pbo"]["reason"] == (
        "no fold's train sweep gave it (fold 0: needs at least 4 days of returns)"
    )
    assert odds["oos_loss_share"]["value"] == 0.0


def test_digest_hashes_canonical_fold_rows_whatever_their_order_or_json_round_trip() -> None:
    rows: list[dict[str, Any]] = [
        {"fold": 0, "param.fast": 10, "oos_total_return": 0.1 + 0.2, "is_pbo": None},
        {"fold": 1, "param.fast": 20, "oos_total_return": -1 / 3, "is_pbo": 0.25},
    ]
    curve = stitch([(np.array([1, 2], np.int64), np.array([100.0, 101.5]))], 100.0)
    reloaded = [json.loads(json.dumps(r)) for r in reversed(rows)]

    digest = walkforward_digest(pa.Table.from_pylist(rows), curve)

    assert walkforward_digest(pa.Table.from_pylist(reloaded), curve) == digest
    changed = [{**rows[0], "param.fast": 11}, rows[1]]
    assert walkforward_digest(pa.Table.from_pylist(changed), curve) != digest


def test_a_fold_whose_train_sweep_has_too_few_days_has_a_null_pbo_with_the_reason() -> None:
    wf = WalkForward(
        None,
        ["strategies.sma.params.fast_period=30,60"],
        train="2d",
        test="1d",
        overrides=["data.bars.0.end='2025-07-05T00:00:00'"],
        in_process=True,
        html=False,
    )

    result = wf.run()

    folds = result.folds.to_pylist()
    assert len(folds) == 2
    for row in folds:
        assert row["is_pbo"] is None
        assert row["is_pbo_reason"] == "needs at least 4 days of returns (2 blocks of 2), had 3"
        assert 0.0 <= row["is_deflated_sharpe"] <= 1.0
        assert row["is_deflated_sharpe_reason"] is None
    summary = result.summary
    assert summary["pbo"] is None
    assert summary["overfitting"]["pbo"]["reason"].startswith("no fold's train sweep gave it")
    dsrs = [row["is_deflated_sharpe"] for row in folds]
    assert summary["deflated_sharpe"] == pytest.approx(sum(dsrs) / len(dsrs))
    losers = [row["oos_total_return"] < 0 for row in folds]
    assert summary["oos_loss_share"] == sum(losers) / len(losers)


# -- one pool for every fold ---------------------------------------------------------------

SMALL_GRID = ["strategies.sma.params.fast_period=5,10", "strategies.sma.params.slow_period=20,40"]
FOUR_DAYS = ["data.bars.0.end='2025-07-05T00:00:00'"]
SMALL_DIGEST = "5a70ea88d64664c9af162e0c8db92211e4b5abe4ddf0d03e8dc8f2cc627f7c7b"
"""The digest of the small walk-forward when its folds still ran one after another."""


class ReversedRunner:
    """Runs chunks in this process, last chunk first, and records what the walk-forward asked
    of its pool (a stand-in for Ray's out-of-order completion)."""

    def __init__(self) -> None:
        self.pools = 0
        self.runs: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def pool(self, address: str | None, workers: int | None) -> Iterator[int]:
        self.pools += 1
        yield workers or 1

    def prepare(self, task: Callable[..., pa.Table], concurrency: int) -> None:
        pass

    def run(
        self,
        task: Callable[..., pa.Table],
        plan: Any,
        chunks: Sequence[list[int]],
        *,
        concurrency: int,
        on_done: Callable[[list[int], pa.Table], None],
        on_lost: Callable[[list[int], str], None],
    ) -> None:
        self.runs.append((task.__name__, len(chunks), concurrency))
        for chunk in reversed(chunks):
            on_done(chunk, task(plan, chunk))


def test_every_folds_train_sweep_is_one_batch_and_oos_runs_on_the_pool(tmp_path: Path) -> None:
    in_process = WalkForward(
        None, SMALL_GRID, train="2d", test="1d", overrides=FOUR_DAYS, in_process=True, html=False
    ).run()
    runner = ReversedRunner()
    pooled = WalkForward(
        None,
        SMALL_GRID,
        train="2d",
        test="1d",
        overrides=FOUR_DAYS,
        workers=2,
        runner=runner,
        out_dir=tmp_path / "wf",
        html=False,
    ).run()

    assert in_process.summary["results_digest"] == SMALL_DIGEST
    assert pooled.summary["results_digest"] == SMALL_DIGEST
    assert pooled.folds.equals(in_process.folds)
    assert pooled.oos_equity.equals(in_process.oos_equity)
    # One pool; both folds' 4 + 4 trials in one batch (chunks of 1: 8 trials, 2 workers);
    # then both out-of-sample backtests as tasks of the same pool.
    assert runner.pools == 1
    assert runner.runs == [("run_fold_trials", 8, 2), ("run_oos_chunk", 2, 2)]
    assert in_process.summary["startup_s"] == 0.0
    for k in (0, 1):
        chunks = sorted(
            p.name for p in (tmp_path / "wf" / "folds" / f"{k:03d}" / "train" / "chunks").iterdir()
        )
        assert chunks == [f"chunk-{i:07d}-00001.parquet" for i in range(4)]

    rerun_runner = ReversedRunner()
    (tmp_path / "wf" / "folds" / "001" / "fold.json").unlink()
    for chunk in list((tmp_path / "wf" / "folds" / "001" / "train" / "chunks").iterdir())[:2]:
        chunk.unlink()
    resumed = WalkForward(
        None,
        SMALL_GRID,
        train="2d",
        test="1d",
        overrides=FOUR_DAYS,
        workers=1,
        runner=rerun_runner,
        out_dir=tmp_path / "wf",
        html=False,
    ).run()

    assert resumed.summary["results_digest"] == SMALL_DIGEST
    assert resumed.summary["folds_run"] == 1
    assert rerun_runner.runs == [("run_fold_trials", 2, 1), ("run_oos_chunk", 1, 1)]


def test_optuna_folds_run_side_by_side_as_each_folds_search_alone() -> None:
    days = ["data.bars.0.end='2025-07-06T00:00:00'"]
    options: dict[str, Any] = {"search": "optuna", "trials": 6, "workers": 2, "seed": 1}
    wf = WalkForward(
        None,
        SMALL_GRID,
        train="2d",
        test="1d",
        overrides=days,
        in_process=True,
        html=False,
        **options,
    )

    result = wf.run()

    assert len(wf.folds) == 3
    for fold, row in zip(wf.folds, result.folds.to_pylist(), strict=True):
        alone = Sweep(
            None,
            SMALL_GRID,
            overrides=[*days, *window_overrides(wf.config, fold.train_start_ns, fold.train_end_ns)],
            in_process=True,
            html=False,
            **options,
        ).run()
        assert alone.summary["best"]["trial"] == row["is_trial"]
        assert alone.summary["best"]["params"] == {
            k.removeprefix("param."): v for k, v in row.items() if k.startswith("param.")
        }
        assert alone.summary["best"]["metrics"]["sharpe"] == row["is_sharpe"]
    # Six proposals over four parameter sets: at least two repeat in every fold.
    assert result.summary["duplicates_skipped"] >= 2 * len(wf.folds)
    assert result.summary["results_digest"] == (
        "cce85d1540ba78f5597ac4d23f625042880599125266e200ba4a00c5e9ddf66e"
    )
