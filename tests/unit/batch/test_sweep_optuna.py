"""``--search optuna`` in this process: Optuna distributions from the space, determinism,
resuming, constraints; and the overfitting odds every sweep reports."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tradegraph.batch.montecarlo import BatchProgress
from tradegraph.batch.optuna_search import distribution
from tradegraph.batch.sweep import (
    Sweep,
    parse_dimension,
    pbo_splits,
    plan_trials,
    run_trial_chunk,
)
from tradegraph.errors import ConfigError

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"
ONE_DAY = ["data.bars.0.limit=400"]
EIGHT_DAYS = ["data.bars.0.limit=11520"]
SPACE = [f"{FAST}=2:20:1", f"{SLOW}=25:60:5"]


def _optuna(
    trials: int, *, seed: int = 3, workers: int = 3, out_dir: Path | None = None, **kwargs: object
) -> Sweep:
    return Sweep(
        None,
        SPACE,
        overrides=ONE_DAY,
        search="optuna",
        trials=trials,
        seed=seed,
        workers=workers,
        in_process=True,
        out_dir=out_dir,
        **kwargs,  # type: ignore[arg-type]
    )


def _params(sweep: Sweep) -> list[tuple[int, int]]:
    rows = sweep.run().table.to_pylist()
    return [(r[f"param.{FAST}"], r[f"param.{SLOW}"]) for r in rows]


def test_distributions_follow_the_dimension() -> None:
    assert distribution(parse_dimension("a=10:100:10")) == IntDistribution(10, 100, step=10)
    assert distribution(parse_dimension("a=100:10:-10")) == IntDistribution(10, 100, step=10)
    assert distribution(parse_dimension("a=0.1:0.5:0.2")) == FloatDistribution(0.1, 0.5, step=0.2)
    assert distribution(parse_dimension("a=log:1e-4:1e-1:4")) == FloatDistribution(
        1e-4, 1e-1, log=True
    )
    assert distribution(parse_dimension("a=5,x,2.5")) == CategoricalDistribution([5, "x", 2.5])


def test_optuna_needs_a_number_of_trials_and_is_not_planned_ahead() -> None:
    with pytest.raises(ConfigError, match="--search optuna needs --trials N"):
        Sweep(None, SPACE, overrides=ONE_DAY, search="optuna", in_process=True)
    with pytest.raises(ConfigError, match="run it through Sweep"):
        plan_trials((parse_dimension(SPACE[0]),), search="optuna", trials=3)


def test_same_seed_same_trials_and_digest_whatever_the_chunking() -> None:
    first = _optuna(14).run()
    again = _optuna(14, chunk_size=1).run()
    other_seed = _optuna(14, seed=4).run()

    rows = first.table.to_pylist()
    assert [r["trial"] for r in rows] == list(range(14))
    assert all(r["status"] == "ok" for r in rows)
    assert again.table.drop_columns(["elapsed_s"]).equals(first.table.drop_columns(["elapsed_s"]))
    assert again.results_digest == first.results_digest
    assert other_seed.results_digest != first.results_digest
    assert first.summary["search"] == "optuna"
    assert first.summary["round_size"] == 3
    best = max(rows, key=lambda r: (r["sharpe"], -r["trial"]))
    assert first.summary["best"]["trial"] == best["trial"]


def test_an_interrupted_search_resumes_with_only_the_missing_trials(tmp_path: Path) -> None:
    whole = _optuna(14).run()

    def stop_after_eight(progress: BatchProgress) -> None:
        if progress.done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _optuna(14, out_dir=tmp_path, chunk_size=1, progress=stop_after_eight).run()
    resumed = _optuna(14, out_dir=tmp_path).run()

    assert resumed.summary["trials_run"] == 6
    assert resumed.results_digest == whole.results_digest


def test_a_larger_trials_extends_the_same_search(tmp_path: Path) -> None:
    _optuna(7, out_dir=tmp_path).run()

    extended = _optuna(12, out_dir=tmp_path).run()

    assert extended.summary["trials_run"] == 5
    assert extended.results_digest == _optuna(12).run().results_digest


def test_where_proposals_are_pruned_unrun_and_every_trial_obeys(tmp_path: Path) -> None:
    sweep = _optuna(12, where=["fast_period * 3 < slow_period"], out_dir=tmp_path)

    result = sweep.run()

    rows = result.table.to_pylist()
    assert len(rows) == 12
    assert all(r[f"param.{FAST}"] * 3 < r[f"param.{SLOW}"] for r in rows)
    assert result.summary["trials_pruned"] > 0
    distinct = len({(r[f"param.{FAST}"], r[f"param.{SLOW}"]) for r in rows})
    assert result.summary["duplicates_skipped"] == 12 - distinct
    assert result.summary["trials_run"] == distinct
    assert json.loads((tmp_path / "summary.json").read_text())["where"] == [
        "fast_period * 3 < slow_period"
    ]


def test_failed_trials_are_kept_and_the_search_goes_on() -> None:
    sweep = Sweep(
        None,
        [f"{FAST}=10,300", f"{SLOW}=40,240"],
        overrides=ONE_DAY,
        search="optuna",
        trials=6,
        workers=2,
        in_process=True,
    )

    rows = sweep.run().table.to_pylist()

    assert len(rows) == 6
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed
    assert all(r[f"param.{FAST}"] == 300 for r in failed)
    assert all("must be greater than fast_period" in r["error"] for r in failed)


@pytest.mark.parametrize(
    ("days", "splits"), [(0, None), (3, None), (4, 2), (9, 4), (31, 14), (33, 16), (400, 16)]
)
def test_pbo_blocks_are_the_largest_even_count_with_two_days_each(
    days: int, splits: int | None
) -> None:
    assert pbo_splits(days) == splits


def test_a_sweep_over_eight_days_reports_pbo_and_deflated_sharpe_in_range() -> None:
    sweep = Sweep(None, [f"{FAST}=5,10,20", f"{SLOW}=40,80"], overrides=EIGHT_DAYS, in_process=True)

    summary = sweep.run().summary

    assert 0.0 <= summary["pbo"] <= 1.0
    assert 0.0 <= summary["deflated_sharpe"] <= 1.0
    odds = summary["overfitting"]
    assert odds["pbo"]["trials"] == 6
    assert odds["pbo"]["n_splits"] == pbo_splits(odds["pbo"]["days"])
    assert odds["deflated_sharpe"]["trial"] == summary["best"]["trial"]


def test_a_one_day_sweep_has_no_pbo_and_says_why() -> None:
    summary = Sweep(None, [f"{FAST}=5,10"], overrides=ONE_DAY, in_process=True).run().summary

    assert summary["pbo"] is None
    assert summary["deflated_sharpe"] is None
    assert "had 1" in summary["overfitting"]["pbo"]["reason"]
    assert "had 1" in summary["overfitting"]["deflated_sharpe"]["reason"]


def test_a_repeated_proposal_reuses_the_earlier_row_and_is_still_told(tmp_path: Path) -> None:
    small = [f"{FAST}=5,10", f"{SLOW}=30,40"]  # four parameter sets, eight proposals
    sweep = Sweep(
        None,
        small,
        overrides=ONE_DAY,
        search="optuna",
        trials=8,
        seed=2,
        workers=2,
        in_process=True,
        out_dir=tmp_path / "s",
    )

    result = sweep.run()

    rows = result.table.to_pylist()
    keyed = [(r[f"param.{FAST}"], r[f"param.{SLOW}"]) for r in rows]
    distinct = len(set(keyed))
    assert [r["trial"] for r in rows] == list(range(8))
    assert result.summary["duplicates_skipped"] == 8 - distinct >= 4
    assert result.summary["trials_run"] == distinct
    for trial, key in enumerate(keyed):
        first = keyed.index(key)
        if first == trial:
            continue
        # The reused row is the row a second run gives, so the digest does not change.
        again = run_trial_chunk(sweep.plan, [trial]).to_pylist()[0]
        for column, value in again.items():
            if column in rows[trial] and column not in {"elapsed_s", "attempts"}:
                assert rows[trial][column] == value, column
        daily = result.daily.to_pylist()
        assert {**daily[trial], "trial": first} == daily[first]
        assert rows[trial]["elapsed_s"] == 0.0
    written = sum(pq.read_table(p).num_rows for p in (tmp_path / "s" / "chunks").iterdir())
    assert written == distinct
    # Every proposal, repeats included, was told: the study holds eight finished trials.
    rounds = Sweep(
        None,
        small,
        overrides=ONE_DAY,
        search="optuna",
        trials=8,
        seed=2,
        workers=2,
        in_process=True,
    ).begin_optuna()
    while (pending := rounds.ask()) is not None:
        for index in pending:
            rounds.on_chunk([index], run_trial_chunk(rounds.sweep.plan, [index]))
        rounds.tell()
    assert len(rounds.search.study.trials) == 8
    assert rounds.end().results_digest == result.results_digest

    resumed = Sweep(
        None,
        small,
        overrides=ONE_DAY,
        search="optuna",
        trials=8,
        seed=2,
        workers=2,
        in_process=True,
        out_dir=tmp_path / "s",
    ).run()
    assert resumed.summary["trials_run"] == 0
    assert resumed.results_digest == result.results_digest
