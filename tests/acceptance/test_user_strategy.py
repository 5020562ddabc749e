"""A strategy module written next to a config, as in the README's "Writing a strategy"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.user_strategy import REPO_ROOT, write_breakout_project

DEFAULT_CONFIG = REPO_ROOT / "tradegraph" / "config" / "defaults" / "backtest.yaml"


def test_a_strategy_beside_the_config_runs_from_another_folder(tmp_path: Path) -> None:
    config = write_breakout_project(tmp_path / "project", DEFAULT_CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            str(config),
            "--json",
            "--no-html",
            "--set",
            "data.bars.0.limit=5000",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["fills"] > 0
    assert "stopped:" not in done.stdout


def test_a_strategy_in_the_working_directory_runs(tmp_path: Path) -> None:
    config = write_breakout_project(tmp_path / "project", DEFAULT_CONFIG)
    moved = tmp_path / "configs" / "config.yaml"
    moved.parent.mkdir()
    config.rename(moved)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            str(moved),
            "--json",
            "--no-html",
            "--set",
            "data.bars.0.limit=5000",
        ],
        cwd=tmp_path / "project",
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["fills"] > 0


def test_a_missing_strategy_module_says_where_it_was_looked_for(tmp_path: Path) -> None:
    config = write_breakout_project(tmp_path / "project", DEFAULT_CONFIG, module="nowhere")
    (tmp_path / "project" / "nowhere.py").unlink()

    done = subprocess.run(
        [sys.executable, "-m", "tradegraph", "backtest", str(config), "--no-html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no module named 'nowhere'" in done.stderr
    assert "next to the config file, in the working directory" in done.stderr
