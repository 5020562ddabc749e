from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.data.catalog import BarArrays
from tradegraph.errors import ConfigError
from tradegraph.sim.feed import validate_bar_arrays
from tradegraph.sim.scenarios import (
    PRESETS,
    ExchangeOutage,
    FeeShock,
    FlashCrash,
    GapMove,
    LatencySpike,
    LiquidityCrunch,
    StressScenario,
    load_stress_file,
    resolve_stress,
)

MIN = 60_000_000_000


def _flat(n: int = 200, price: float = 100.0, volume: float = 10.0) -> BarArrays:
    return BarArrays(
        symbol="BTCUSDT",
        venue="BINANCE",
        interval_ns=MIN,
        ts_open_ns=np.arange(n, dtype=np.int64) * MIN,
        open=np.full(n, price),
        high=np.full(n, price * 1.001),
        low=np.full(n, price * 0.999),
        close=np.full(n, price),
        volume=np.full(n, volume),
    )


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(None)


def _consistent(bars: BarArrays) -> bool:
    keep, _ = validate_bar_arrays(bars)
    return bool(keep.all())


def test_flash_crash_falls_then_recovers_part_of_the_drop() -> None:
    bars = _flat(200)

    bent = FlashCrash(drop_pct=20, at=0.5, duration_min=5, recovery_pct=50, recovery_min=10)
    out = bent.bend_bars(bars)

    assert out.close[99] == 100.0
    np.testing.assert_allclose(out.close[104], 80.0)
    np.testing.assert_allclose(out.close[114:], 90.0)
    assert out.close[100] < 100.0
    assert out.low.min() == pytest.approx(80.0 * 0.999)
    np.testing.assert_array_equal(out.open[1:], out.close[:-1])
    assert _consistent(out)


def test_gap_move_moves_every_price_from_the_gap_on() -> None:
    out = GapMove(move_pct=-10, at=0.25).bend_bars(_flat(100))

    np.testing.assert_allclose(out.close[:25], 100.0)
    np.testing.assert_allclose(out.open[25:], 90.0)
    np.testing.assert_allclose(out.close[25:], 90.0)
    assert _consistent(out)


def test_liquidity_crunch_thins_volume_and_raises_slippage(config: GraphConfig) -> None:
    crunch = LiquidityCrunch(factor=4, start=0.5, end=1.0)

    bars = crunch.bend_bars(_flat(100))
    bent = crunch.bend_config(config)

    np.testing.assert_allclose(bars.volume[:50], 10.0)
    np.testing.assert_allclose(bars.volume[50:], 2.5)
    assert config.venues[0].slippage.bps == 1.0
    assert bent.venues[0].slippage.bps == 4.0
    assert bent.venues[0].slippage.model == "fixed"


def test_liquidity_crunch_gives_a_venue_without_slippage_some(config: GraphConfig) -> None:
    bare = config.model_copy(
        update={
            "venues": (
                config.venues[0].model_copy(
                    update={
                        "slippage": config.venues[0].slippage.model_copy(
                            update={"model": "none", "bps": 0.0}
                        )
                    }
                ),
            )
        }
    )

    bent = LiquidityCrunch(factor=5, min_slippage_bps=2.0).bend_config(bare)

    assert bent.venues[0].slippage.model == "fixed"
    assert bent.venues[0].slippage.bps == 10.0


def test_exchange_outage_removes_the_window() -> None:
    out = ExchangeOutage(at=0.5, duration_min=30).bend_bars(_flat(200))

    assert len(out) == 170
    gap = np.diff(out.ts_open_ns)
    assert gap.max() == 31 * MIN
    assert int(np.argmax(gap)) == 99


def test_latency_spike_adds_to_venue_latency(config: GraphConfig) -> None:
    bent = LatencySpike(extra_latency_ms=1500).bend_config(config)

    assert bent.venues[0].latency_ms == config.venues[0].latency_ms + 1500


def test_fee_shock_scales_instrument_and_venue_fees(config: GraphConfig) -> None:
    with_override = config.model_copy(
        update={"venues": (config.venues[0].model_copy(update={"taker_fee": 0.002}),)}
    )

    bent = FeeShock(factor=3).bend_config(with_override)

    assert bent.instruments[0].taker_fee == pytest.approx(0.003)
    assert bent.instruments[0].maker_fee == pytest.approx(0.003)
    assert bent.venues[0].taker_fee == pytest.approx(0.006)
    assert bent.venues[0].maker_fee is None


def test_overlays_do_not_mutate_their_input(config: GraphConfig) -> None:
    bars = _flat(100)
    before = bars.close.copy(), bars.volume.copy()

    for preset in PRESETS.values():
        preset.bend_bars(bars)
        preset.bend_config(config)

    np.testing.assert_array_equal(bars.close, before[0])
    np.testing.assert_array_equal(bars.volume, before[1])
    assert config == load_config(None)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    drop=st.floats(min_value=0.1, max_value=95.0),
    at=st.floats(min_value=0.0, max_value=1.0),
    recovery=st.floats(min_value=0.0, max_value=100.0),
    gap=st.floats(min_value=-90.0, max_value=200.0),
)
def test_price_overlays_keep_random_bars_consistent(
    seed: int, drop: float, at: float, recovery: float, gap: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 120
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    bars = BarArrays(
        symbol="X",
        venue="V",
        interval_ns=MIN,
        ts_open_ns=np.arange(n, dtype=np.int64) * MIN,
        open=open_,
        high=np.maximum(open_, close) * (1 + rng.random(n) * 0.01),
        low=np.minimum(open_, close) * (1 - rng.random(n) * 0.01),
        close=close,
        volume=rng.random(n) + 0.1,
    )

    crashed = FlashCrash(drop_pct=drop, at=at, recovery_pct=recovery).bend_bars(bars)
    gapped = GapMove(move_pct=gap, at=at).bend_bars(crashed)

    assert _consistent(crashed)
    assert _consistent(gapped)


def test_yaml_form_round_trips_to_overlays(tmp_path: Path) -> None:
    path = tmp_path / "stress.yaml"
    path.write_text(
        "scenarios:\n"
        "  - name: crash_and_crunch\n"
        "    description: both at once\n"
        "    overlays:\n"
        "      - {kind: flash_crash, drop_pct: 30, duration_min: 10}\n"
        "      - {kind: liquidity_crunch, factor: 10}\n"
    )

    loaded = load_stress_file(path)

    scenario = loaded["crash_and_crunch"]
    assert isinstance(scenario.overlays[0], FlashCrash)
    assert scenario.overlays[0].drop_pct == 30
    assert isinstance(scenario.overlays[1], LiquidityCrunch)
    assert resolve_stress(["crash_and_crunch", "fee_shock"], loaded)[1] is PRESETS["fee_shock"]


def test_yaml_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "scenarios:\n  - name: bad\n    overlays:\n      - {kind: flash_crash, drop_pct: 120}\n"
    )

    with pytest.raises(ConfigError, match=r"scenarios\.0\.overlays\.0\.flash_crash\.drop_pct"):
        load_stress_file(path)


def test_unknown_overlay_key_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        StressScenario.model_validate(
            {"name": "x", "overlays": [{"kind": "fee_shock", "factr": 2}]}
        )


def test_unknown_scenario_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown stress scenario 'meteor'.*flash_crash"):
        resolve_stress(["meteor"])
