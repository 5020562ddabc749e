"""The ``tradegraph`` command's grammar as a user meets it: a real subprocess each time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.data import read_bars


def tradegraph(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["paper", "--duration", "-1"], "--duration"),
        (["paper", "--duration", "0"], "--duration"),
        (["live", "--duration", "nan"], "--duration"),
        (["paper", "--speed", "-2"], "--speed"),
        (["paper", "--metrics-port", "70000"], "--metrics-port"),
        (["backtest", "--metrics-port", "-1"], "--metrics-port"),
        (["montecarlo", "--paths", "0"], "--paths"),
        (["montecarlo", "--paths", "-3"], "--paths"),
        (["montecarlo", "--bars-per-path", "0"], "--bars-per-path"),
        (["montecarlo", "--workers", "0"], "--workers"),
        (["montecarlo", "--seed", "-1"], "--seed"),
        (["stress", "--ruin-drawdown", "1.5"], "--ruin-drawdown"),
        (["stress", "--check-ray-engine", "-1"], "--check-ray-engine"),
    ],
)
def test_nonsense_numbers_are_refused_in_one_line(args: list[str], flag: str) -> None:
    done = tradegraph(*args)

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: tradegraph {args[0]}: argument {flag}: must be ")
    assert done.stdout == ""


def test_runs_get_their_own_folders_with_latest_at_the_newest(tmp_path: Path) -> None:
    short = ["backtest", "--set", "data.bars.0.limit=2000", "--no-html"]

    first = tradegraph(*short, cwd=tmp_path)
    second = tradegraph(*short, cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    base = tmp_path / "out" / "backtest"
    runs = sorted(p for p in base.iterdir() if not p.is_symlink())
    assert len(runs) == 2
    assert all(p.name.startswith("sma-btc-default-20") for p in runs)
    assert all((p / "summary.json").exists() for p in runs)
    assert (base / "latest").resolve() == runs[-1].resolve()
    assert f"outputs in {runs[-1].resolve()}" in second.stdout


def test_out_still_decides_where_a_run_goes(tmp_path: Path) -> None:
    done = tradegraph(
        "backtest", "--set", "data.bars.0.limit=2000", "--no-html", "--out", "mine", cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine" / "summary.json").exists()
    assert not (tmp_path / "out").exists()


def test_init_writes_a_starter_project_that_backtests_at_once(tmp_path: Path) -> None:
    made = tradegraph("init", "my-project", cwd=tmp_path)

    assert made.returncode == 0, made.stderr
    project = tmp_path / "my-project"
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "config.yaml", "strategy.py"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = tradegraph(
        "backtest", str(project / "config.yaml"), "--json", "--no-html", cwd=elsewhere
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["fills"] > 0
    assert "stopped:" not in done.stdout


def test_init_never_overwrites_a_project(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("mine\n")

    done = tradegraph("init", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {tmp_path / 'config.yaml'}: already exists; choose an empty or new folder"
    )
    assert (tmp_path / "config.yaml").read_text() == "mine\n"


def test_version() -> None:
    done = tradegraph("--version")

    assert done.returncode == 0
    assert done.stdout.strip() == "tradegraph 0.1.0"


@pytest.mark.parametrize("command", ["backtest", "montecarlo", "stress", "paper", "live"])
def test_every_command_with_a_config_takes_it_positionally_or_by_flag(command: str) -> None:
    done = tradegraph(command, "a.yaml", "--config", "b.yaml")

    assert done.returncode == 2
    assert done.stderr.strip() == "error: two configs given, a.yaml and --config b.yaml: give one"


def test_config_flag_and_log_level_after_the_subcommand(tmp_path: Path) -> None:
    default = Path(__file__).resolve().parents[2] / "tradegraph/config/defaults/backtest.yaml"
    config = tmp_path / "mine.yaml"
    config.write_text(default.read_text().replace("name: sma-btc-default", "name: by-flag"))
    # One malformed bar among real ones: dropped with a warning, shown at the default level.
    (bars,) = read_bars("sample:BTCUSDT_1m", limit=2_000)
    table = bars.to_table().drop_columns(["symbol", "venue"])
    bad = table.slice(0, 1).set_column(1, "open", pa.array([float("nan")]))
    bad = bad.set_column(0, "ts", pa.array([table["ts"][0].as_py() + 30_000_000_000], pa.int64()))
    data = tmp_path / "bars.parquet"
    pq.write_table(pa.concat_tables([table.slice(0, 1), bad, table.slice(1)]), data)
    run = ["backtest", "--config", str(config), "--data", str(data), "--no-html"]

    loud = tradegraph(*run, "--out", str(tmp_path / "loud"))
    quiet = tradegraph(*run, "--out", str(tmp_path / "quiet"), "--log-level", "ERROR")

    assert loud.returncode == 0, loud.stderr
    assert quiet.returncode == 0, quiet.stderr
    assert loud.stdout.startswith("backtest by-flag ")
    assert "dropped" in loud.stderr
    assert quiet.stderr == ""
