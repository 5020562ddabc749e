"""Sweeps in this process: the space, constraints, trial order, and the batch (the Ray transport
and the command are covered by the acceptance and integration tests)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tradegraph.batch.sweep import (
    Sweep,
    parse_constraint,
    parse_dimension,
    parse_space,
    plan_trials,
)
from tradegraph.errors import ConfigError

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"
SHORT_DATA = ["data.bars.0.limit=400"]


def test_list_spec_parses_each_value_as_yaml() -> None:
    dim = parse_dimension(f"{FAST}=10,20,40")

    assert dim.key == FAST
    assert dim.name == "fast_period"
    assert dim.values == (10, 20, 40)


def test_int_range_includes_an_end_on_a_step_and_stops_before_one_off_it() -> None:
    assert parse_dimension("a=10:50:10").values == (10, 20, 30, 40, 50)
    assert parse_dimension("a=10:55:10").values == (10, 20, 30, 40, 50)


def test_float_range_gives_the_decimal_values_not_accumulated_error() -> None:
    values = parse_dimension("a=0.1:0.5:0.1").values

    assert values == (0.1, 0.2, 0.3, 0.4, 0.5)


def test_log_range_is_log_spaced_with_both_ends() -> None:
    dim = parse_dimension("a=log:1e-4:1e-1:4")

    assert dim.values == (0.0001, 0.001, 0.01, 0.1)
    assert dim.log


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("fast_period", "expected KEY=SPEC"),
        ("a=1:10", "a range is START:END:STEP"),
        ("a=1:10:0", "STEP must not be 0"),
        ("a=10:1:2", "never gets from 10 to 1"),
        ("a=1:x:2", "'x' is not a number"),
        ("a=log:0:1:3", "START and END > 0"),
        ("a=log:1:10:1", "COUNT must be a whole number >= 2"),
        ("a=1,,2", "an empty value"),
        ("a=1,2,1", "the value 1 is given twice"),
        ("a..b=1", "empty segment"),
    ],
)
def test_bad_spec_is_one_line_naming_the_entry(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_dimension(entry)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"--grid {FAST}: the key is given more than once"):
        parse_space([f"{FAST}=1,2", f"{FAST}=3"])


def test_constraint_uses_short_and_full_names() -> None:
    dims = parse_space([f"{FAST}=10,20", f"{SLOW}=15,30"])
    short = parse_constraint("fast_period * 2 <= slow_period and not fast_period == 20", dims)
    full = parse_constraint(f"{FAST} < {SLOW} - 1", dims)

    assert short.holds({FAST: 10, SLOW: 30})
    assert not short.holds({FAST: 10, SLOW: 15})
    assert not short.holds({FAST: 20, SLOW: 40})
    assert full.holds({FAST: 10, SLOW: 15})
    assert not full.holds({FAST: 20, SLOW: 15})


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "fast_period.__class__ == 1",
        "().__class__.__bases__",
        "fast_period < slow_period or open('x')",
        "[fast_period][0] < 3",
        "fast_period if 1 else 2",
        "lambda: 1",
        "fast_period ** 2 < 100",
        "fast_period < 'a'",
        "unknown_name < 3",
    ],
)
def test_constraint_refuses_everything_but_names_numbers_and_operators(text: str) -> None:
    dims = parse_space([f"{FAST}=10,20", f"{SLOW}=15,30"])

    with pytest.raises(ConfigError) as caught:
        parse_constraint(text, dims)

    assert str(caught.value).startswith("--where ")


def test_constraint_with_a_syntax_error_says_so() -> None:
    dims = parse_space([f"{FAST}=10"])

    with pytest.raises(ConfigError, match="not an expression"):
        parse_constraint("fast_period <", dims)


def test_grid_order_is_the_product_last_key_fastest_filtered_by_constraints() -> None:
    dims = parse_space([f"{FAST}=10,20,30", f"{SLOW}=15,25"])
    where = [parse_constraint("fast_period < slow_period", dims)]

    trials = plan_trials(dims, where)

    assert [(t[FAST], t[SLOW]) for t in trials] == [(10, 15), (10, 25), (20, 25)]


def test_random_search_is_deterministic_without_repeats_and_seed_dependent() -> None:
    dims = parse_space(["a=1:20:1", "b=1:20:1"])

    first = plan_trials(dims, search="random", trials=50, seed=11)
    again = plan_trials(dims, search="random", trials=50, seed=11)
    other = plan_trials(dims, search="random", trials=50, seed=12)

    assert first == again
    assert len({(t["a"], t["b"]) for t in first}) == 50
    assert first != other


def test_random_search_asking_more_than_the_grid_allows_is_refused() -> None:
    dims = parse_space(["a=1,2", "b=1,2"])

    with pytest.raises(ConfigError, match="only 4 distinct combinations"):
        plan_trials(dims, search="random", trials=5)


def test_unknown_key_is_refused_naming_it() -> None:
    with pytest.raises(
        ConfigError, match=r"--grid strategies\.sma\.params\.fast_perod: no such key"
    ):
        Sweep(None, ["strategies.sma.params.fast_perod=1,2"], overrides=SHORT_DATA)
    with pytest.raises(ConfigError, match=r"--grid risk\.max_order_notionl: no such key"):
        Sweep(None, ["risk.max_order_notionl=1,2"], overrides=SHORT_DATA)


def test_a_default_key_not_in_the_file_is_known() -> None:
    sweep = Sweep(None, ["risk.order_burst=5,10"], overrides=SHORT_DATA, in_process=True)

    assert sweep.trials == 2


def test_sweep_rows_params_metrics_and_a_failed_trial(tmp_path: Path) -> None:
    sweep = Sweep(
        None,
        [f"{FAST}=10,300", f"{SLOW}=40,240"],
        overrides=SHORT_DATA,
        in_process=True,
        out_dir=tmp_path,
        objective="total_return",
    )

    result = sweep.run()

    rows = result.table.to_pylist()
    assert [r["trial"] for r in rows] == [0, 1, 2, 3]
    assert [(r[f"param.{FAST}"], r[f"param.{SLOW}"]) for r in rows] == [
        (10, 40),
        (10, 240),
        (300, 40),
        (300, 240),
    ]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    assert "must be greater than fast_period" in rows[2]["error"]
    assert rows[2]["attempts"] == 1
    assert rows[0]["bars"] == 400
    assert rows[0]["fills"] > 0
    s = result.summary
    assert (s["trials"], s["trials_failed"]) == (4, 2)
    ok = [r for r in rows if r["status"] == "ok"]
    best = max(ok, key=lambda r: r["total_return"])
    assert s["best"]["trial"] == best["trial"]
    assert s["best"]["metrics"]["total_return"] == best["total_return"]
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 4
    daily = pq.read_table(tmp_path / "daily_returns.parquet")
    assert daily.column("trial").to_pylist() == [0, 1, 2, 3]
    assert daily.num_columns >= 2
    assert "chart-heatmap" in (tmp_path / "report.html").read_text()


def test_max_drawdown_objective_is_minimised() -> None:
    sweep = Sweep(
        None,
        [f"{FAST}=5,10", f"{SLOW}=20,40"],
        overrides=SHORT_DATA,
        in_process=True,
        objective="max_drawdown",
    )

    result = sweep.run()

    drawdowns = result.table.column("max_drawdown").to_pylist()
    assert result.summary["best"]["metrics"]["max_drawdown"] == min(drawdowns)


def test_digest_is_the_same_whatever_the_chunking_and_a_rerun_runs_nothing(
    tmp_path: Path,
) -> None:
    grid = [f"{FAST}=5,10,15", f"{SLOW}=20,40"]
    whole = Sweep(None, grid, overrides=SHORT_DATA, in_process=True).run()
    chunked = Sweep(
        None, grid, overrides=SHORT_DATA, in_process=True, chunk_size=1, out_dir=tmp_path
    ).run()

    rerun = Sweep(None, grid, overrides=SHORT_DATA, in_process=True, out_dir=tmp_path).run()

    assert chunked.results_digest == whole.results_digest
    assert rerun.summary["trials_run"] == 0
    assert rerun.results_digest == whole.results_digest


def test_an_out_folder_of_another_sweep_is_refused(tmp_path: Path) -> None:
    Sweep(None, [f"{FAST}=5"], overrides=SHORT_DATA, in_process=True, out_dir=tmp_path).run()

    with pytest.raises(ConfigError, match="holds results of a different batch"):
        Sweep(None, [f"{FAST}=6"], overrides=SHORT_DATA, in_process=True, out_dir=tmp_path).run()
