"""Broken and hostile configs, as a user meets them: ``tradegraph backtest CONFIG`` stops with one
line naming the file and the problem, exit 2, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tradegraph.config.loader import default_config_text


def _cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _assert_one_line_config_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert proc.stderr.count("\n") == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr


def _alias_bomb(levels: int) -> str:
    lines = ['        a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"        a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    # Under a strategy's free-form params, where nothing refuses unknown keys early.
    return default_config_text().replace(
        "      quantity: 0.05", "      quantity: 0.05\n      bomb:\n" + "\n".join(lines)
    )


def test_binary_file_as_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(bytes(range(256)) * 8)
    _assert_one_line_config_error(_cli("backtest", str(path)), str(path), "not UTF-8 text")


def test_deeply_nested_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    _assert_one_line_config_error(_cli("backtest", str(path)), str(path), "nested more than")


def test_alias_bomb_is_refused_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(_alias_bomb(9))
    proc = _cli("backtest", str(path), timeout_s=60)
    _assert_one_line_config_error(proc, str(path), "values with aliases expanded")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("instruments.0.maker_fee=-0.5", "instruments.0.maker_fee"),
        ("instruments.0.taker_fee=2", "instruments.0.taker_fee"),
        ("venues.0.taker_fee=1.5", "venues.0.taker_fee"),
        ("data.bars.0.interval_s=100000000000000000000", "data.bars.0.interval_s"),
    ],
)
def test_out_of_range_numbers(override: str, field: str, tmp_path: Path) -> None:
    proc = _cli("backtest", "--no-html", "--out", str(tmp_path), "--set", override)
    _assert_one_line_config_error(proc, field)


def test_out_of_range_numbers_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(default_config_text().replace("interval_s: 60", "interval_s: 1.0e+20"))
    _assert_one_line_config_error(_cli("backtest", str(path)), str(path), "data.bars.0.interval_s")


def test_ray_engine_refuses_trade_start_before_connecting_to_ray(tmp_path: Path) -> None:
    # An address where no Ray listens: had the command tried to connect, it would fail otherwise.
    proc = _cli(
        "backtest",
        "--engine",
        "ray",
        "--address",
        "127.0.0.1:9",
        "--set",
        "data.trade_start='2025-07-05T00:00:00'",
        "--out",
        str(tmp_path / "bt"),
        timeout_s=60,
    )

    _assert_one_line_config_error(proc, "--engine ray does not support data.trade_start yet")
    assert not (tmp_path / "bt").exists()
