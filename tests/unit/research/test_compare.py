from __future__ import annotations

import numpy as np
import pytest

from tradegraph.errors import DataError
from tradegraph.research.compare import (
    aligned_returns,
    sharpe,
    sharpe_difference_interval,
    stationary_bootstrap_indices,
)


def _noise(seed: int, periods: int = 2_000, drift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(drift, 0.01, size=periods)


def test_identical_runs_give_an_interval_that_holds_zero_and_is_narrow() -> None:
    returns = _noise(1)

    ci = sharpe_difference_interval(returns, returns.copy(), seed=3)

    assert ci.difference == 0.0
    assert ci.low <= 0.0 <= ci.high
    assert ci.high - ci.low < 1e-12
    assert not ci.excludes_zero


def test_a_clearly_higher_sharpe_gives_an_interval_above_zero() -> None:
    # Per-period Sharpe near 0.2 against near 0 over 2,000 periods: the standard error of the
    # difference is about sqrt(2 / 2000) = 0.03, so the interval is far from zero.
    better, worse = _noise(1, drift=0.002), _noise(2)

    ci = sharpe_difference_interval(better, worse, seed=3)

    assert ci.difference == pytest.approx(sharpe(better) - sharpe(worse))
    assert ci.low > 0.0
    assert ci.low < ci.difference < ci.high
    assert ci.excludes_zero
    assert (ci.resamples, ci.confidence, ci.periods) == (2_000, 0.95, 2_000)


def test_the_interval_of_two_similar_noise_runs_holds_zero() -> None:
    ci = sharpe_difference_interval(_noise(5), _noise(6), seed=0)

    assert ci.low < 0.0 < ci.high


def test_the_same_seed_gives_the_same_interval_and_another_seed_a_different_one() -> None:
    a, b = _noise(1, drift=0.001), _noise(2)

    first = sharpe_difference_interval(a, b, seed=11, resamples=300)
    again = sharpe_difference_interval(a, b, seed=11, resamples=300)
    other = sharpe_difference_interval(a, b, seed=12, resamples=300)

    assert first == again
    assert (other.low, other.high) != (first.low, first.high)


def test_annualising_scales_the_difference_and_the_interval_by_the_root_of_periods() -> None:
    a, b = _noise(1, drift=0.001), _noise(2)

    per_period = sharpe_difference_interval(a, b, seed=4, resamples=200)
    yearly = sharpe_difference_interval(a, b, seed=4, resamples=200, periods_per_year=365.0)

    assert yearly.difference == pytest.approx(per_period.difference * 365**0.5, rel=1e-12)
    assert yearly.low == pytest.approx(per_period.low * 365**0.5, rel=1e-12)


def test_stationary_bootstrap_keeps_runs_of_consecutive_periods() -> None:
    indices = stationary_bootstrap_indices(1_000, 50, 20.0, np.random.default_rng(0))

    steps = np.diff(indices, axis=1)
    continued = (steps == 1) | (steps == -999)  # the next period, or wrapping round the end
    # A new block starts with probability 1/20, so about 95 % of steps continue one.
    assert indices.shape == (50, 1_000)
    assert indices.min() >= 0
    assert indices.max() < 1_000
    assert 0.93 < continued.mean() < 0.97


def test_returns_are_aligned_on_the_timestamps_every_curve_shares() -> None:
    ts, returns = aligned_returns(
        [[1, 2, 3, 4], [2, 3, 4, 5]], [[100.0, 110.0, 121.0, 133.1], [50.0, 50.0, 25.0, 30.0]]
    )

    assert ts.tolist() == [3, 4]
    np.testing.assert_allclose(returns, [[0.1, 0.0], [0.1, -0.5]])


def test_curves_without_common_periods_are_refused_in_one_line() -> None:
    with pytest.raises(DataError, match="share 1 timestamp"):
        aligned_returns([[1, 2], [2, 3]], [[1.0, 1.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], "one length"),
        ([0.1, 0.2], [0.1, 0.2], "at least 3"),
        ([0.1, float("nan"), 0.3], [0.1, 0.2, 0.3], "NaN"),
    ],
)
def test_bad_return_series_are_refused(a: list[float], b: list[float], message: str) -> None:
    with pytest.raises(DataError, match=message):
        sharpe_difference_interval(a, b)
