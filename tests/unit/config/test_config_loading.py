from __future__ import annotations

from pathlib import Path

import pytest

from tradegraph.config import apply_overrides, load_config
from tradegraph.config.loader import default_config_text
from tradegraph.errors import ConfigError


def test_default_config_loads_and_is_self_consistent() -> None:
    config = load_config()
    assert config.strategies[0].class_path == "sma_cross"
    assert "BTCUSDT.BINANCE" in config.instrument_map()


def test_override_by_list_id_and_index() -> None:
    config = load_config(
        None, ["strategies.sma.params.fast_period=5", "venues.0.latency_ms=25", "seed=11"]
    )
    assert config.strategies[0].params["fast_period"] == 5
    assert config.venues[0].latency_ms == 25
    assert config.seed == 11


def test_bad_value_names_the_field_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(default_config_text())
    with pytest.raises(ConfigError) as info:
        load_config(path, ["risk.max_order_notional=-5"])
    message = str(info.value)
    assert str(path) in message
    assert "risk.max_order_notional" in message
    assert "-5" in message


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_leverage: Extra inputs are not permitted"):
        load_config(None, ["risk.max_leverage=3"])


def test_strategy_on_unknown_instrument_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown instrument 'ETHUSDT\.BINANCE'"):
        load_config(None, ["strategies.sma.instruments=[ETHUSDT.BINANCE]"])


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nrisk: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_override_syntax_errors() -> None:
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="no list element"):
        apply_overrides({"strategies": [{"id": "a"}]}, ["strategies.b.params.x=1"])
