from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.batch import (
    MODEL_NAMES,
    BarShape,
    BlockBootstrapModel,
    GarchModel,
    GbmModel,
    JointModel,
    JumpDiffusionModel,
    PriceModel,
    calibrate,
    calibrate_joint,
    generate_bars,
    scenario_rng,
    scenario_seed,
)
from tradegraph.batch.price_models import garch_variance, stationary_bootstrap_index
from tradegraph.data.catalog import BarArrays, read_bars
from tradegraph.errors import DataError

MIN = 60_000_000_000
SHAPE = BarShape(
    upper_wick=np.array([0.0, 0.0005, 0.001]),
    lower_wick=np.array([0.0002, 0.0, 0.001]),
    volume=np.array([1.0, 2.5, 4.0]),
)


def _path(model: PriceModel, n: int, seed: int = 1) -> BarArrays:
    return generate_bars(
        model,
        np.random.default_rng(seed),
        n,
        start_price=100.0,
        start_ts_ns=0,
        interval_ns=MIN,
        symbol="BTCUSDT",
        venue="BINANCE",
    )


@pytest.fixture(scope="module")
def real_like_bars() -> BarArrays:
    # A GARCH path with wicks: clustered volatility, like real minute bars.
    return _path(GarchModel(mu=0.0, omega=2e-8, alpha=0.1, beta=0.85, shape=SHAPE), 3_000, seed=9)


def _assert_consistent(bars: BarArrays) -> None:
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert np.all(bars.low > 0.0)
    assert np.all(bars.volume > 0.0)
    np.testing.assert_array_equal(bars.open[1:], bars.close[:-1])
    np.testing.assert_array_equal(np.diff(bars.ts_open_ns), np.full(len(bars) - 1, MIN))


def test_gbm_calibration_recovers_drift_and_volatility() -> None:
    truth = GbmModel(mu=2e-5, sigma=1e-3, shape=SHAPE)
    bars = _path(truth, 40_000)

    fitted = GbmModel.calibrate(bars)

    assert fitted.sigma == pytest.approx(1e-3, rel=0.02)
    assert abs(fitted.mu - 2e-5) < 4 * 1e-3 / math.sqrt(40_000)


def test_jump_calibration_recovers_jump_intensity_and_size() -> None:
    truth = JumpDiffusionModel(
        mu=0.0, sigma=1e-3, jump_intensity=0.01, jump_mean=-0.01, jump_std=0.003, shape=SHAPE
    )
    bars = _path(truth, 60_000)

    fitted = JumpDiffusionModel.calibrate(bars)

    assert fitted.sigma == pytest.approx(1e-3, rel=0.05)
    assert fitted.jump_intensity == pytest.approx(0.01, rel=0.2)
    assert fitted.jump_mean == pytest.approx(-0.01, abs=0.0015)
    assert fitted.jump_std == pytest.approx(0.003, abs=0.0015)


def test_jump_calibration_finds_few_jumps_in_a_pure_diffusion() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 20_000)

    fitted = JumpDiffusionModel.calibrate(bars)

    assert fitted.jump_intensity < 0.001


def test_garch_calibration_recovers_alpha_and_beta() -> None:
    truth = GarchModel(mu=0.0, omega=1e-7 * (1 - 0.1 - 0.85), alpha=0.1, beta=0.85, shape=SHAPE)
    bars = _path(truth, 30_000, seed=3)

    fitted = GarchModel.calibrate(bars)

    assert fitted.alpha == pytest.approx(0.1, abs=0.03)
    assert fitted.beta == pytest.approx(0.85, abs=0.04)
    assert fitted.unconditional_variance == pytest.approx(1e-7, rel=0.15)


def test_garch_variance_matches_the_recursion() -> None:
    rng = np.random.default_rng(5)
    e2 = rng.standard_normal(500) ** 2 * 1e-6
    omega, alpha, beta, var0 = 1e-8, 0.12, 0.8, 1e-6
    expected = np.empty(500)
    expected[0] = var0
    for t in range(1, 500):
        expected[t] = omega + alpha * e2[t - 1] + beta * expected[t - 1]

    got = garch_variance(e2, var0, omega, alpha, beta)

    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_bootstrap_draws_only_real_returns_in_blocks() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 2_000)
    model = BlockBootstrapModel.calibrate(bars, mean_block=20.0)

    draw = model.draw(np.random.default_rng(2), 5_000)

    assert np.isin(draw.log_returns, model.returns).all()
    assert draw.shape_index is not None
    index = stationary_bootstrap_index(np.random.default_rng(2), 2_000, 50_000, 20.0)
    continues = np.diff(index) % 2_000 == 1
    assert 1.0 / (1.0 - continues.mean()) == pytest.approx(20.0, rel=0.1)


def test_bootstrap_default_block_is_cube_root_of_sample() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 1_001)

    model = BlockBootstrapModel.calibrate(bars)

    assert model.mean_block == 10.0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_makes_consistent_bars(name: str, real_like_bars: BarArrays) -> None:
    model = calibrate(real_like_bars, name)

    bars = generate_bars(
        model,
        scenario_rng(7, 0),
        2_000,
        start_price=50_000.0,
        start_ts_ns=1_000 * MIN,
        interval_ns=MIN,
        symbol="X",
        venue="V",
    )

    _assert_consistent(bars)
    assert bars.open[0] == 50_000.0
    assert bars.ts_open_ns[0] == 1_000 * MIN
    assert np.isin(bars.volume, real_like_bars.volume).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_paths_depend_only_on_root_seed_and_index(name: str, real_like_bars: BarArrays) -> None:
    model = calibrate(real_like_bars, name)

    def path(index: int) -> BarArrays:
        return generate_bars(
            model,
            scenario_rng(11, index),
            300,
            start_price=1.0,
            start_ts_ns=0,
            interval_ns=MIN,
            symbol="X",
            venue="V",
        )

    later_first = path(3)
    path(1)
    again = path(3)
    other = path(4)

    np.testing.assert_array_equal(later_first.close, again.close)
    np.testing.assert_array_equal(later_first.volume, again.volume)
    assert not np.array_equal(later_first.close, other.close)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    mu=st.floats(min_value=-1e-3, max_value=1e-3),
    sigma=st.floats(min_value=0.0, max_value=0.05),
)
def test_gbm_bars_are_consistent_for_any_parameters(seed: int, mu: float, sigma: float) -> None:
    bars = _path(GbmModel(mu=mu, sigma=sigma, shape=SHAPE), 200, seed=seed)

    _assert_consistent(bars)


def test_scenario_seed_is_stable_and_distinct() -> None:
    assert scenario_seed(1, 0) == scenario_seed(1, 0)
    assert scenario_seed(1, 0) != scenario_seed(1, 1)
    assert 0 <= scenario_seed(1, 0) < 2**63


def test_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="root_seed"):
        scenario_rng(-1, 0)


def test_calibration_needs_enough_bars() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 10)

    with pytest.raises(DataError, match="at least 30 valid bars"):
        GbmModel.calibrate(bars)


def test_unknown_model_is_named() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 100)

    with pytest.raises(ValueError, match="unknown price model 'heston'"):
        calibrate(bars, "heston")


def test_bar_shape_keeps_only_traded_bars() -> None:
    bars = _path(GbmModel(mu=0.0, sigma=1e-3, shape=SHAPE), 100)
    volume = bars.volume.copy()
    volume[:50] = 0.0
    thin = BarArrays(
        symbol="X",
        venue="V",
        interval_ns=MIN,
        ts_open_ns=bars.ts_open_ns,
        open=bars.open,
        high=bars.high,
        low=bars.low,
        close=bars.close,
        volume=volume,
    )

    shape = BarShape.from_bars(thin)

    assert len(shape) == 50
    assert np.all(shape.upper_wick >= 0.0)
    assert np.all(shape.lower_wick >= 0.0)


# ----------------------------------------------------------------------------- several instruments


def _head(bars: BarArrays, n: int) -> BarArrays:
    return replace(
        bars,
        ts_open_ns=bars.ts_open_ns[:n],
        open=bars.open[:n],
        high=bars.high[:n],
        low=bars.low[:n],
        close=bars.close[:n],
        volume=bars.volume[:n],
    )


@pytest.fixture(scope="module")
def btc_eth() -> list[BarArrays]:
    """Four days of the bundled real BTC and ETH minute bars (same bar times)."""
    return [
        _head(read_bars(f"sample:{s}_1m", symbol=s, venue="BINANCE", interval_ns=MIN)[0], 6_000)
        for s in ("BTCUSDT", "ETHUSDT")
    ]


def _joint_paths(joint: JointModel, n: int, seed: int) -> list[BarArrays]:
    rng = np.random.default_rng(seed)
    draws = joint.draw(rng, n)
    return [
        generate_bars(
            model,
            rng,
            n,
            start_price=100.0,
            start_ts_ns=0,
            interval_ns=MIN,
            symbol=f"X{i}",
            venue="V",
            draw=draw,
        )
        for i, (model, draw) in enumerate(zip(joint.models, draws, strict=True))
    ]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_joint_paths_correlate_like_the_real_returns(name: str, btc_eth: list[BarArrays]) -> None:
    real = np.corrcoef([np.diff(np.log(d.close)) for d in btc_eth])[0, 1]
    joint = calibrate_joint(btc_eth, name)

    paths = _joint_paths(joint, 20_000, seed=11)

    drawn = np.corrcoef([np.diff(np.log(p.close)) for p in paths])[0, 1]
    assert real > 0.5  # BTC and ETH move together: independent paths would fail below
    assert joint.return_correlation[0, 1] == pytest.approx(real)
    assert drawn == pytest.approx(real, abs=0.04)
    for path in paths:
        _assert_consistent(path)
    np.testing.assert_array_equal(paths[0].ts_open_ns, paths[1].ts_open_ns)


def test_joint_bootstrap_takes_the_same_bar_times_for_every_instrument(
    btc_eth: list[BarArrays],
) -> None:
    joint = calibrate_joint(btc_eth, "bootstrap")

    draws = joint.draw(np.random.default_rng(4), 500)

    btc, eth = (m for m in joint.models if isinstance(m, BlockBootstrapModel))
    positions = [int(np.flatnonzero(btc.returns == r)[0]) for r in draws[0].log_returns[:50]]
    np.testing.assert_array_equal(draws[1].log_returns[:50], eth.returns[positions])


def test_joint_jump_model_shares_part_of_the_jumps(btc_eth: list[BarArrays]) -> None:
    joint = calibrate_joint(btc_eth, "jump")

    jumps = [m for m in joint.models if isinstance(m, JumpDiffusionModel)]
    assert 0.0 < joint.common_jump_intensity <= min(j.jump_intensity for j in jumps)
    assert joint.jump_cholesky is not None
    assert np.all(np.abs(joint.correlation) <= 1.0)


def test_one_instrument_draws_exactly_as_its_model_alone(real_like_bars: BarArrays) -> None:
    model = calibrate(real_like_bars, "jump")

    [joint_draw] = calibrate_joint([real_like_bars], "jump").draw(np.random.default_rng(5), 300)
    alone = model.draw(np.random.default_rng(5), 300)

    np.testing.assert_array_equal(joint_draw.log_returns, alone.log_returns)


def test_instruments_without_shared_bar_times_cannot_be_correlated(
    btc_eth: list[BarArrays],
) -> None:
    later = replace(btc_eth[1], ts_open_ns=btc_eth[1].ts_open_ns + 10_000 * MIN)

    with pytest.raises(DataError, match="share only 0 bar times"):
        calibrate_joint([btc_eth[0], later], "gbm")
