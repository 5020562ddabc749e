"""Margin accounts, perpetuals and funding sources in the config: what is refused, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tradegraph.config.models import AccountConfig, GraphConfig
from tradegraph.contracts import AccountKind, InstrumentKind

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "perp_long_short.yaml"


def _example(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    raw.update(changes)
    return raw


def test_the_perpetual_example_validates() -> None:
    config = GraphConfig.model_validate(_example())
    (perp,) = config.instrument_map().values()
    assert perp.kind is InstrumentKind.PERPETUAL
    assert perp.ccxt_symbol == "BTC/USDT:USDT"
    assert config.venues[0].account.kind is AccountKind.MARGIN
    assert config.venues[0].account.leverage == {"BTCUSDT-PERP.BINANCE": 20.0}


def test_leverage_above_the_instruments_max_is_refused() -> None:
    raw = _example()
    raw["venues"][0]["account"]["leverage"] = {"BTCUSDT-PERP.BINANCE": 50}
    with pytest.raises(ValidationError, match=r"leverage\[BTCUSDT-PERP\.BINANCE\] 50 is above"):
        GraphConfig.model_validate(raw)


def test_leverage_for_an_unknown_instrument_is_refused() -> None:
    raw = _example()
    raw["venues"][0]["account"]["leverage"] = {"ETHUSDT-PERP.BINANCE": 5}
    with pytest.raises(ValidationError, match=r"unknown instrument 'ETHUSDT-PERP\.BINANCE'"):
        GraphConfig.model_validate(raw)


def test_a_perpetual_needs_a_margin_account() -> None:
    raw = _example()
    raw["venues"][0]["account"] = "cash"
    raw["data"].pop("funding")
    with pytest.raises(ValidationError, match="needs account: margin"):
        GraphConfig.model_validate(raw)


def test_funding_for_a_spot_instrument_is_refused() -> None:
    raw = _example()
    raw["instruments"][0]["kind"] = "spot"
    with pytest.raises(ValidationError, match="not a kind: perpetual instrument"):
        GraphConfig.model_validate(raw)


def test_leverage_on_a_cash_account_is_refused() -> None:
    with pytest.raises(ValidationError, match="margin accounts only"):
        AccountConfig(kind=AccountKind.CASH, leverage={"X.Y": 2.0})


def test_leverage_that_maintenance_would_liquidate_at_once_is_refused() -> None:
    with pytest.raises(ValidationError, match="at or below maintenance_margin_rate"):
        AccountConfig(kind=AccountKind.MARGIN, leverage={"X.Y": 200.0})


def test_live_and_account_leverage_must_agree() -> None:
    """The exchange is set to ``live.leverage``; Risk checks margin with ``account.leverage``:
    a config where they differ would trade at one leverage and check at another."""
    raw = _example()
    raw["venues"][0]["live"] = {"exchange": "binanceusdm", "leverage": {"BTCUSDT-PERP": 5}}
    with pytest.raises(
        ValidationError, match=r"leverage 5 at the exchange .* but 20 in the account"
    ):
        GraphConfig.model_validate(raw)

    raw["venues"][0]["live"]["leverage"] = {"BTCUSDT-PERP": 20}
    assert GraphConfig.model_validate(raw).venues[0].live is not None
