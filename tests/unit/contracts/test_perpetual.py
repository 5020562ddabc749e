"""Perpetual instruments, margin tiers and the margin-account messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradegraph.contracts import (
    FundingRate,
    Instrument,
    InstrumentKind,
    MarginTier,
)


def _perp(**kw: object) -> Instrument:
    fields: dict[str, object] = {
        "symbol": "BTCUSDT-PERP",
        "venue": "BINANCE",
        "base": "BTC",
        "quote": "USDT",
        "tick_size": 0.1,
        "lot_size": 0.001,
        "kind": "perpetual",
        "max_leverage": 20.0,
    }
    fields.update(kw)
    return Instrument(**fields)


def test_spot_defaults_are_unchanged() -> None:
    spot = Instrument(
        symbol="BTCUSDT", venue="BINANCE", base="BTC", quote="USDT", tick_size=0.01, lot_size=1e-5
    )
    assert spot.kind is InstrumentKind.SPOT
    assert spot.ccxt_symbol == "BTC/USDT"
    assert spot.settle_asset == "USDT"
    assert spot.margin_tier(1e9) is None


def test_perpetual_ccxt_symbol_names_the_settle_asset() -> None:
    assert _perp().ccxt_symbol == "BTC/USDT:USDT"
    assert _perp(settle="USDC").ccxt_symbol == "BTC/USDT:USDC"


def test_margin_tier_lookup_picks_the_first_covering_tier() -> None:
    tiers = (
        MarginTier(max_notional=50_000, initial_rate=0.01, maintenance_rate=0.004),
        MarginTier(
            max_notional=250_000, initial_rate=0.02, maintenance_rate=0.005, maintenance_amount=50
        ),
    )
    perp = _perp(margin_tiers=tiers)
    assert perp.margin_tier(10_000) == tiers[0]
    assert perp.margin_tier(50_000) == tiers[0]
    assert perp.margin_tier(50_001) == tiers[1]
    assert perp.margin_tier(10**9) == tiers[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("contract_size", 0.0),
        ("max_leverage", 0.5),
        ("funding_interval_h", 0.0),
        ("liquidation_fee", 0.5),
    ],
)
def test_bad_perpetual_fields_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        _perp(**{field: value})


def test_unsorted_tiers_are_refused() -> None:
    tiers = (
        MarginTier(max_notional=250_000, initial_rate=0.02, maintenance_rate=0.005),
        MarginTier(max_notional=50_000, initial_rate=0.01, maintenance_rate=0.004),
    )
    with pytest.raises(ValidationError, match="sorted"):
        _perp(margin_tiers=tiers)


def test_tier_maintenance_above_initial_is_refused() -> None:
    with pytest.raises(ValidationError, match="maintenance_rate"):
        MarginTier(max_notional=1.0, initial_rate=0.01, maintenance_rate=0.02)


def test_funding_rate_validates_rate_and_mark() -> None:
    ok = FundingRate(ts_event_ns=1, ts_init_ns=1, instrument_id="X", rate=0.0001)
    assert ok.mark_price is None
    with pytest.raises(ValidationError, match="funding rate"):
        FundingRate(ts_event_ns=1, ts_init_ns=1, instrument_id="X", rate=1.5)
    with pytest.raises(ValidationError, match="mark_price"):
        FundingRate(ts_event_ns=1, ts_init_ns=1, instrument_id="X", rate=0.0, mark_price=-1.0)
