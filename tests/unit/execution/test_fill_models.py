"""Slippage models and fee lookup used by the simulated venue."""

from __future__ import annotations

import math

import pytest

from tests.support.stubs import btcusdt
from tradegraph.config.models import SlippageConfig, VenueConfig
from tradegraph.contracts import LiquiditySide, OrderSide
from tradegraph.execution import (
    FixedSlippage,
    LinearImpactSlippage,
    NoSlippage,
    SqrtImpactSlippage,
    apply_slippage,
    build_slippage_model,
    fee_rate,
    fill_fee,
)

BTC = btcusdt(
    lot_size=0.001, min_quantity=0.0, min_notional=0.0, maker_fee=0.0002, taker_fee=0.0007
)


@pytest.mark.parametrize(
    ("config", "expected_type"),
    [
        (SlippageConfig(), NoSlippage),
        (SlippageConfig(model="fixed", bps=3.0), FixedSlippage),
        (SlippageConfig(model="linear", bps=1.0, impact_bps=10.0), LinearImpactSlippage),
        (SlippageConfig(model="sqrt", bps=1.0, impact_bps=10.0), SqrtImpactSlippage),
    ],
)
def test_build_slippage_model_picks_the_named_model(
    config: SlippageConfig, expected_type: type[object]
) -> None:
    model = build_slippage_model(config)

    assert type(model) is expected_type


def test_no_slippage_is_zero_even_when_bps_is_configured() -> None:
    model = build_slippage_model(SlippageConfig(model="none", bps=5.0, impact_bps=5.0))

    assert model.slippage_bps(10.0, 100.0) == 0.0


def test_fixed_slippage_ignores_size() -> None:
    model = FixedSlippage(bps=2.5)

    assert model.slippage_bps(1.0, 1000.0) == 2.5
    assert model.slippage_bps(900.0, 1000.0) == 2.5


def test_linear_slippage_grows_with_participation() -> None:
    model = LinearImpactSlippage(bps=1.0, impact_bps=20.0)

    assert model.slippage_bps(25.0, 100.0) == pytest.approx(1.0 + 20.0 * 0.25)


def test_sqrt_slippage_grows_with_square_root_of_participation() -> None:
    model = SqrtImpactSlippage(bps=1.0, impact_bps=20.0)

    assert model.slippage_bps(25.0, 100.0) == pytest.approx(1.0 + 20.0 * 0.5)


def test_impact_with_no_volume_counts_as_full_participation() -> None:
    assert LinearImpactSlippage(bps=0.0, impact_bps=7.0).slippage_bps(3.0, 0.0) == 7.0
    assert SqrtImpactSlippage(bps=0.0, impact_bps=7.0).slippage_bps(3.0, 0.0) == 7.0


def test_apply_slippage_buy_pays_more_and_lands_on_tick() -> None:
    price = apply_slippage(100.0, OrderSide.BUY, 10.0, BTC)

    assert price == pytest.approx(100.10)
    assert math.isclose(round(price / BTC.tick_size) * BTC.tick_size, price)


def test_apply_slippage_sell_receives_less() -> None:
    assert apply_slippage(100.0, OrderSide.SELL, 10.0, BTC) == pytest.approx(99.90)


def test_apply_slippage_rounds_against_the_trader() -> None:
    # 1 bps of 100.00 is 0.01; 0.3 bps is 0.003, which must not round back to 100.00.
    assert apply_slippage(100.0, OrderSide.BUY, 0.3, BTC) == pytest.approx(100.01)
    assert apply_slippage(100.0, OrderSide.SELL, 0.3, BTC) == pytest.approx(99.99)


def test_apply_zero_slippage_keeps_the_price_as_is() -> None:
    assert apply_slippage(100.004, OrderSide.BUY, 0.0, BTC) == 100.004


def test_fee_rate_uses_instrument_rates_by_liquidity() -> None:
    venue = VenueConfig()

    assert fee_rate(BTC, LiquiditySide.MAKER, venue) == 0.0002
    assert fee_rate(BTC, LiquiditySide.TAKER, venue) == 0.0007


def test_fee_rate_venue_override_wins() -> None:
    venue = VenueConfig(maker_fee=-0.0001, taker_fee=0.001)

    assert fee_rate(BTC, LiquiditySide.MAKER, venue) == -0.0001
    assert fee_rate(BTC, LiquiditySide.TAKER, venue) == 0.001


def test_fill_fee_is_quantity_times_price_times_rate() -> None:
    assert fill_fee(2.0, 50_000.0, 0.001) == pytest.approx(100.0)
