"""Run folders: one per run, named by config and UTC time, with ``latest`` at the newest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from tradegraph.cli.run_folder import new_run_folder, run_folder

NOON = datetime(2025, 7, 1, 12, 0, 5, tzinfo=UTC)


def test_a_run_gets_a_folder_named_by_config_and_utc_time(tmp_path: Path) -> None:
    in_paris = NOON.astimezone(timezone(timedelta(hours=2)))

    folder = new_run_folder(tmp_path / "out" / "backtest", "sma btc/1", now=in_paris)

    assert folder == tmp_path / "out" / "backtest" / "sma_btc_1-20250701T120005Z"
    assert folder.is_dir()
    latest = tmp_path / "out" / "backtest" / "latest"
    assert latest.is_symlink()
    assert latest.readlink() == Path("sma_btc_1-20250701T120005Z")


def test_runs_in_the_same_second_do_not_share_a_folder(tmp_path: Path) -> None:
    first = new_run_folder(tmp_path, "demo", now=NOON)
    second = new_run_folder(tmp_path, "demo", now=NOON)
    third = new_run_folder(tmp_path, "demo", now=NOON + timedelta(seconds=1))

    assert len({first, second, third}) == 3
    assert second.name == "demo-20250701T120005Z-2"
    assert (tmp_path / "latest").resolve() == third.resolve()


def test_out_wins_and_makes_no_latest_link(tmp_path: Path) -> None:
    chosen = run_folder(str(tmp_path / "mine"), tmp_path / "out" / "paper", "demo")

    assert chosen == tmp_path / "mine"
    assert not (tmp_path / "out").exists()
