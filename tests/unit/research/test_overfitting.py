from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tradegraph.errors import ConfigError
from tradegraph.research import (
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_returns,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

# ----------------------------------------------------------------------------------------------
# Probability of backtest overfitting (Bailey, Borwein, López de Prado and Zhu 2015)


def test_pure_noise_gives_a_probability_near_one_half() -> None:
    # With i.i.d. noise the in-sample and out-of-sample rows are independent, so the out-of-sample
    # rank of the in-sample winner is uniform on 1..N and, for N even, P(λ <= 0) is exactly 1/2.
    # One matrix says little: its C(S, S/2) combinations share rows, and its PBO spreads with a
    # standard deviation near 0.2 across seeds. The mean over 200 seeded matrices has a standard
    # error near 0.015, so 0.05 is more than three of them.
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, size=(160, 10)), n_splits=8
        ).pbo
        for seed in range(200)
    ]

    assert abs(float(np.mean(pbos)) - 0.5) < 0.05


def test_pure_noise_with_the_papers_sixteen_splits_is_neither_near_zero_nor_near_one() -> None:
    returns = np.random.default_rng(7).normal(0.0, 0.01, size=(1600, 50))

    result = probability_of_backtest_overfitting(returns)

    assert result.n_combinations == math.comb(16, 8) == 12_870
    # Loose on purpose: one matrix's PBO has a standard deviation near 0.2 (see above).
    assert 0.1 < result.pbo < 0.9


def test_one_trial_with_a_real_edge_among_noise_gives_a_low_probability() -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, size=(1600, 50))
    returns[:, 17] += 0.002  # per-period Sharpe ratio 0.2; the best of 49 noise trials is ~0.08

    result = probability_of_backtest_overfitting(returns)

    assert result.pbo < 0.05
    assert result.probability_of_loss == 0.0
    assert float(np.median(result.logits)) == pytest.approx(math.log(50.0))


def test_columns_equal_up_to_a_positive_scale_tie_everywhere_and_count_as_overfit() -> None:
    # Scaling by powers of two is exact in binary floating point, so every Sharpe ratio ties:
    # the chosen trial takes the average rank (N+1)/2, ω̄ = 1/2, λ = 0, counted as overfit.
    base = np.random.default_rng(3).normal(0.0005, 0.01, size=(400, 1))
    returns = base * np.array([0.25, 0.5, 1.0, 2.0, 4.0])

    result = probability_of_backtest_overfitting(returns, n_splits=8)

    assert np.all(result.logits == 0.0)
    assert result.pbo == 1.0


def test_columns_equal_up_to_an_affine_change_keep_their_order_and_never_overfit() -> None:
    # Column j = a_j x + b_j, a_j > 0: its Sharpe ratio on any rows is SR(x) + b_j / (a_j s(x)),
    # so the trials rank by b_j / a_j in every half and the in-sample winner wins out of sample.
    base = np.random.default_rng(5).normal(0.0, 0.01, size=(400, 1))
    scale = np.array([1.0, 2.0, 0.5, 4.0])
    shift = np.array([0.0, 0.001, 0.003, -0.002])
    returns = base * scale + shift

    result = probability_of_backtest_overfitting(returns, n_splits=8)

    assert np.allclose(result.logits, math.log(4.0))
    assert result.pbo == 0.0
    assert result.n_trials == 4


@pytest.mark.parametrize("n_splits", [2, 4, 6, 8, 10])
def test_number_of_combinations_is_s_choose_half_s(n_splits: int) -> None:
    returns = np.random.default_rng(n_splits).normal(size=(10 * n_splits, 3))

    result = probability_of_backtest_overfitting(returns, n_splits=n_splits)

    assert result.n_combinations == math.comb(n_splits, n_splits // 2)
    assert result.logits.shape == (result.n_combinations,)
    assert result.in_sample_sharpe.shape == result.out_of_sample_sharpe.shape == result.logits.shape


def test_remainder_rows_at_the_end_are_dropped() -> None:
    returns = np.random.default_rng(2).normal(size=(35, 6))

    result = probability_of_backtest_overfitting(returns, n_splits=4)
    trimmed = probability_of_backtest_overfitting(returns[:32], n_splits=4)

    assert (result.rows_used, result.rows_dropped) == (32, 3)
    assert np.array_equal(result.logits, trimmed.logits)
    assert result.pbo == trimmed.pbo


def test_two_splits_match_a_direct_computation() -> None:
    returns = np.random.default_rng(9).normal(size=(20, 5))

    result = probability_of_backtest_overfitting(returns, n_splits=2)

    def sharpe(rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows.mean(axis=0) / rows.std(axis=0, ddof=1))

    first, second = returns[:10], returns[10:]
    expected = []
    for in_sample, out_of_sample in ((first, second), (second, first)):
        chosen = int(np.argmax(sharpe(in_sample)))
        rank = int(np.sum(sharpe(out_of_sample) <= sharpe(out_of_sample)[chosen]))
        expected.append(math.log(rank / (6 - rank)))
    assert result.logits == pytest.approx(expected, abs=1e-12)
    assert result.in_sample_sharpe[0] == pytest.approx(float(sharpe(first).max()), abs=1e-12)


def test_degradation_line_and_probability_of_loss_follow_the_selected_trials_sharpe() -> None:
    returns = np.random.default_rng(4).normal(0.0, 0.01, size=(800, 20))

    result = probability_of_backtest_overfitting(returns, n_splits=8)

    slope, intercept = np.polyfit(result.in_sample_sharpe, result.out_of_sample_sharpe, 1)
    assert result.degradation_slope == pytest.approx(slope, abs=1e-9)
    assert result.degradation_intercept == pytest.approx(intercept, abs=1e-9)
    assert result.probability_of_loss == float(np.mean(result.out_of_sample_sharpe < 0.0))
    # The in-sample winner of noise is the best of 20 in-sample: its Sharpe ratio is inflated.
    assert np.all(result.in_sample_sharpe > result.out_of_sample_sharpe.mean())


@settings(max_examples=40, deadline=None)
@given(
    returns=hnp.arrays(
        np.float64,
        shape=st.tuples(st.integers(8, 40), st.integers(2, 6)),
        elements=st.floats(-1.0, 1.0, allow_nan=False, width=32),
    ),
    n_splits=st.sampled_from([2, 4]),
    power=st.integers(-3, 3),
)
def test_pbo_is_the_share_of_non_positive_logits_and_ignores_the_scale_of_returns(
    returns: np.ndarray, n_splits: int, power: int
) -> None:
    result = probability_of_backtest_overfitting(returns, n_splits=n_splits)
    scaled = probability_of_backtest_overfitting(returns * 2.0**power, n_splits=n_splits)

    assert 0.0 <= result.pbo <= 1.0
    assert result.pbo == float(np.mean(result.logits <= 0.0))
    assert np.all(np.abs(result.logits) <= math.log(returns.shape[1]) + 1e-12)
    assert 0.0 <= result.probability_of_loss <= 1.0
    assert np.array_equal(result.logits, scaled.logits)


@pytest.mark.parametrize(
    ("returns", "n_splits", "message"),
    [
        (np.zeros((40, 1)), 4, "at least 2 trials"),
        (np.zeros(40), 4, "2-D"),
        (np.zeros((40, 3)), 5, "n_splits must be an even integer >= 2, was 5"),
        (np.zeros((40, 3)), 0, "n_splits must be an even integer >= 2, was 0"),
        (np.zeros((40, 3)), 2.0, "n_splits must be an even integer, was 2.0"),
        (np.zeros((400, 3)), 22, "n_splits must be <= 20"),
        (np.zeros((31, 3)), 16, "returns has 31 rows, too few for n_splits=16"),
        (np.array([[0.1, 0.2]] * 7 + [[math.nan, 0.0]]), 2, "row 7 column 0 is nan"),
        (np.array([[0.1, math.inf]] * 8), 2, "returns must be finite"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(
    returns: np.ndarray, n_splits: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        probability_of_backtest_overfitting(returns, n_splits=n_splits)


# ----------------------------------------------------------------------------------------------
# Deflated Sharpe ratio (Bailey and López de Prado 2014)

# The paper's numerical example: best annualised SR 2.5 after N = 100 trials whose annualised
# Sharpe ratios have variance 1/2, five years of daily returns (T = 1250, 250 a year), skewness -3,
# kurtosis 10. It reports SR0 = 0.1132 (per period) and DSR = 0.9004; N = 46 would give 0.9505,
# and with normal returns (skewness 0, kurtosis 3) N = 88 trials give 0.9505.
PAPER_SHARPE = 2.5 / math.sqrt(250)
PAPER_VARIANCE = 0.5 / 250


def test_the_papers_numerical_example() -> None:
    result = deflated_sharpe_ratio(
        PAPER_SHARPE,
        n_trials=100,
        sharpe_variance=PAPER_VARIANCE,
        n_observations=1250,
        skewness=-3.0,
        kurtosis=10.0,
    )

    assert round(result.expected_max_sharpe, 4) == 0.1132
    assert round(result.deflated_sharpe_ratio, 4) == 0.9004


@pytest.mark.parametrize(("n_trials", "skewness", "kurtosis"), [(46, -3.0, 10.0), (88, 0.0, 3.0)])
def test_the_papers_trial_counts_that_reach_095(
    n_trials: int, skewness: float, kurtosis: float
) -> None:
    result = deflated_sharpe_ratio(
        PAPER_SHARPE,
        n_trials=n_trials,
        sharpe_variance=PAPER_VARIANCE,
        n_observations=1250,
        skewness=skewness,
        kurtosis=kurtosis,
    )

    assert round(result.deflated_sharpe_ratio, 4) == 0.9505


def test_dsr_is_the_psr_against_sr0_computed_by_hand() -> None:
    gamma = 0.5772156649015329
    normal = NormalDist()
    sr0 = math.sqrt(0.01) * (
        (1 - gamma) * normal.inv_cdf(1 - 1 / 20) + gamma * normal.inv_cdf(1 - 1 / (20 * math.e))
    )
    z = (0.3 - sr0) * math.sqrt(99) / math.sqrt(1 - 0.5 * 0.3 + (4.0 - 1) / 4 * 0.3**2)

    result = deflated_sharpe_ratio(
        0.3, n_trials=20, sharpe_variance=0.01, n_observations=100, skewness=0.5, kurtosis=4.0
    )

    assert result.expected_max_sharpe == pytest.approx(sr0, abs=1e-15)
    assert result.deflated_sharpe_ratio == pytest.approx(normal.cdf(z), abs=1e-15)
    assert result.deflated_sharpe_ratio == probabilistic_sharpe_ratio(0.3, sr0, 100, 0.5, 4.0)


@settings(max_examples=60, deadline=None)
@given(
    sharpe=st.floats(-0.3, 0.5),
    n_trials=st.integers(1, 5_000),
    variance=st.floats(1e-6, 0.05),
    n_observations=st.integers(10, 5_000),
)
def test_dsr_falls_as_the_number_of_trials_rises(
    sharpe: float, n_trials: int, variance: float, n_observations: int
) -> None:
    fewer = deflated_sharpe_ratio(
        sharpe, n_trials=n_trials, sharpe_variance=variance, n_observations=n_observations
    )
    more = deflated_sharpe_ratio(
        sharpe, n_trials=n_trials + 1, sharpe_variance=variance, n_observations=n_observations
    )

    assert more.expected_max_sharpe > fewer.expected_max_sharpe
    assert more.deflated_sharpe_ratio <= fewer.deflated_sharpe_ratio
    assert 0.0 <= more.deflated_sharpe_ratio <= 1.0


def test_one_trial_deflates_nothing() -> None:
    result = deflated_sharpe_ratio(0.1, n_trials=1, sharpe_variance=0.02, n_observations=500)

    assert result.expected_max_sharpe == 0.0
    assert result.deflated_sharpe_ratio == probabilistic_sharpe_ratio(0.1, 0.0, 500)


def test_expected_max_sharpe_is_near_the_simulated_mean_maximum_of_normals() -> None:
    # The paper's approximation of E[max of N standard normals]; 100 trials: 2.508 exact.
    draws = np.random.default_rng(0).standard_normal(size=(20_000, 100)).max(axis=1)

    assert expected_max_sharpe(100, 1.0) == pytest.approx(float(draws.mean()), rel=0.02)


def test_dsr_from_a_returns_matrix_uses_the_best_column_and_the_spread_of_sharpes() -> None:
    rng = np.random.default_rng(21)
    returns = rng.normal(0.0, 0.01, size=(500, 30))
    returns[:, 4] += 0.002
    sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    best = returns[:, 4] - returns[:, 4].mean()
    skewness = float(np.mean(best**3) / np.mean(best**2) ** 1.5)
    kurtosis = float(np.mean(best**4) / np.mean(best**2) ** 2)

    result = deflated_sharpe_ratio_from_returns(returns)

    assert int(np.argmax(sharpes)) == 4
    expected = deflated_sharpe_ratio(
        float(sharpes[4]),
        n_trials=30,
        sharpe_variance=float(np.var(sharpes, ddof=1)),
        n_observations=500,
        skewness=skewness,
        kurtosis=kurtosis,
    )
    assert result.sharpe == pytest.approx(expected.sharpe, abs=1e-15)
    assert result.deflated_sharpe_ratio == pytest.approx(expected.deflated_sharpe_ratio, abs=1e-12)


def test_the_best_of_pure_noise_is_not_significant_after_deflation() -> None:
    returns = np.random.default_rng(8).normal(0.0, 0.01, size=(500, 50))

    result = deflated_sharpe_ratio_from_returns(returns)

    assert probabilistic_sharpe_ratio(result.sharpe, 0.0, 500) > 0.95
    assert result.deflated_sharpe_ratio < 0.95


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials must be >= 1, was 0"),
        ({"n_trials": 2.5}, "n_trials must be an integer >= 1, was 2.5"),
        ({"sharpe_variance": -0.1}, "sharpe_variance must be >= 0, was -0.1"),
        ({"sharpe_variance": math.nan}, "sharpe_variance must be finite"),
        ({"n_observations": 1}, "n_observations must be >= 2, was 1"),
        ({"skewness": 40.0}, "must be > 0"),
    ],
)
def test_bad_dsr_input_is_refused_naming_the_argument(
    kwargs: dict[str, float], message: str
) -> None:
    arguments: dict[str, float] = {
        "n_trials": 10,
        "sharpe_variance": 0.01,
        "n_observations": 100,
        "skewness": 0.0,
    }
    arguments.update(kwargs)

    with pytest.raises(ConfigError, match=message):
        deflated_sharpe_ratio(0.1, **arguments)  # type: ignore[arg-type]


def test_dsr_from_returns_refuses_a_single_trial_and_a_single_row() -> None:
    with pytest.raises(ConfigError, match="at least 2 trials"):
        deflated_sharpe_ratio_from_returns(np.zeros((10, 1)))
    with pytest.raises(ConfigError, match="at least 2 rows"):
        deflated_sharpe_ratio_from_returns(np.zeros((1, 5)))
