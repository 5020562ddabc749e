"""``instruments_file``: a config takes in instrument definitions from a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradegraph.config import config_from_mapping, load_config
from tradegraph.config.loader import default_config_text
from tradegraph.config.models import GraphConfig
from tradegraph.errors import ConfigError

ETH = {
    "symbol": "ETHUSDT",
    "venue": "BINANCE",
    "base": "ETH",
    "quote": "USDT",
    "tick_size": 0.01,
    "lot_size": 0.0001,
    "min_quantity": 0.0001,
    "min_notional": 10.0,
    "maker_fee": 0.001,
    "taker_fee": 0.001,
}


def _default_without_instruments() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    raw = yaml.safe_load(default_config_text())
    return raw, raw.pop("instruments")


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_included_instruments_are_read_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, instruments = _default_without_instruments()
    _write(tmp_path / "configs" / "defs" / "binance.yaml", {"instruments": instruments})
    config_path = _write(
        tmp_path / "configs" / "bt.yaml", {**raw, "instruments_file": "defs/binance.yaml"}
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder

    config = load_config(config_path)

    assert config == load_config()
    assert config.instruments_file is None


def test_included_instruments_come_before_the_configs_own(tmp_path: Path) -> None:
    raw, instruments = _default_without_instruments()
    _write(tmp_path / "instruments.yaml", {"instruments": instruments})
    config_path = _write(
        tmp_path / "bt.yaml", {**raw, "instruments_file": "instruments.yaml", "instruments": [ETH]}
    )

    config = load_config(config_path)

    assert [i.symbol for i in config.instruments] == ["BTCUSDT", "ETHUSDT"]


def test_invalid_included_instrument_names_the_file_and_the_field(tmp_path: Path) -> None:
    raw, instruments = _default_without_instruments()
    bad = [{**instruments[0], "tick_size": -1}]
    included = _write(tmp_path / "instruments.yaml", {"instruments": bad})
    config_path = _write(tmp_path / "bt.yaml", {**raw, "instruments_file": "instruments.yaml"})

    with pytest.raises(ConfigError) as info:
        load_config(config_path)

    assert str(info.value) == (
        f"{included}: instruments.0.tick_size: Input should be greater than 0 (got -1)"
    )


def test_missing_included_file_names_the_config_and_the_field(tmp_path: Path) -> None:
    raw, _ = _default_without_instruments()
    config_path = _write(tmp_path / "bt.yaml", {**raw, "instruments_file": "nope.yaml"})

    with pytest.raises(ConfigError, match=r"bt\.yaml: instruments_file nope\.yaml: file not found"):
        load_config(config_path)


def test_a_mapping_includes_relative_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, instruments = _default_without_instruments()
    _write(tmp_path / "instruments.yaml", {"instruments": instruments})
    monkeypatch.chdir(tmp_path)

    config = config_from_mapping({**raw, "instruments_file": "instruments.yaml"})

    assert config.instruments == load_config().instruments


def test_a_model_built_without_the_loader_refuses_an_unread_include() -> None:
    raw, instruments = _default_without_instruments()

    with pytest.raises(ValueError, match="instruments_file is read by the config loader"):
        GraphConfig.model_validate({**raw, "instruments": instruments, "instruments_file": "x"})
