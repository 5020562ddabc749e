"""``strategies[].bars``: intervals are read, and checked against what can build them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tradegraph.config import load_config
from tradegraph.config.loader import default_config_text
from tradegraph.config.models import interval_seconds
from tradegraph.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1m", 60),
        ("5m", 300),
        ("15m", 900),
        ("1h", 3600),
        ("4h", 14400),
        ("1d", 86400),
        ("1w", 604800),
        ("300", 300),
    ],
)
def test_interval_text_is_read(text: str, seconds: int) -> None:
    assert interval_seconds(text) == seconds


def test_whole_multiples_of_the_data_interval_are_accepted() -> None:
    config = load_config(None, ["strategies.sma.bars=[5m, 1h, 86400]"])

    assert config.strategies[0].bars == ("5m", "1h", "86400s")
    assert config.strategies[0].bar_intervals_ns == (300 * 10**9, 3600 * 10**9, 86_400 * 10**9)


def test_an_interval_that_is_not_a_whole_multiple_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.sma\.bars: '90s': .*not a whole multiple"):
        load_config(None, ["strategies.sma.bars=[90s]"])


def test_the_data_interval_itself_is_not_a_longer_bar() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.sma\.bars: '1m'"):
        load_config(None, ["strategies.sma.bars=[1m]"])


def test_bars_from_trades_without_trades_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.sma\.bars: '5m': nothing builds it"):
        load_config(None, ["strategies.sma.bars=[5m]", "strategies.sma.bars_from=trades"])


def test_a_config_without_bars_has_none() -> None:
    config = load_config()

    assert config.strategies[0].bars == ()
    assert config.strategies[0].bar_intervals_ns == ()


def test_cli_refuses_a_bad_interval_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = default_config_text().replace(
        "    class_path: sma_cross\n", "    class_path: sma_cross\n    bars: [90s]\n", 1
    )
    path.write_text(text)

    result = subprocess.run(
        [sys.executable, "-m", "tradegraph", "backtest", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "strategies.sma.bars" in line]
    assert len(lines) == 1
    assert "not a whole multiple" in lines[0]
