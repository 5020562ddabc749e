"""How likely is the best of many backtests a fluke: PBO by CSCV, and the deflated Sharpe ratio.

Both statistics take per-period returns of the trials of a search (a parameter sweep, say) and use
the per-period Sharpe ratio, mean / standard deviation (``ddof=1``), never annualised. A trial whose
returns have no spread has Sharpe ratio 0, as in ``tradegraph.report.performance``.

References:
    D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu (2015), "The Probability of
    Backtest Overfitting", Journal of Computational Finance 20(4), 39-69.
    D. H. Bailey and M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
    Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
    40(5), 94-107.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from tradegraph.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

EULER_MASCHERONI = 0.5772156649015329
"""gamma in the expected maximum of N standard normals (Bailey and López de Prado 2014, eq. 2)."""

MAX_SPLITS = 20
"""The largest ``n_splits`` accepted: C(20, 10) = 184,756 combinations. The paper uses 16."""

_COMBINATIONS_PER_CHUNK = 2048
_NORMAL = NormalDist()


@dataclass(frozen=True, eq=False)
class BacktestOverfitting:
    """The result of combinatorially symmetric cross-validation (CSCV).

    Attributes:
        pbo: probability of backtest overfitting, the share of combinations whose logit is <= 0
            (the trial chosen in-sample ranks at or below the out-of-sample median).
        logits: λ_c = ln(ω̄_c / (1 - ω̄_c)) per combination, in the order of
            ``itertools.combinations(range(n_splits), n_splits // 2)``.
        n_combinations: C(n_splits, n_splits / 2).
        n_splits: S, the number of blocks the rows were cut into.
        n_trials: N, the number of columns.
        rows_used: rows that went into the blocks, S * (T // S).
        rows_dropped: the T mod S rows at the end that did not fill a block.
        in_sample_sharpe: per combination, the in-sample Sharpe ratio of the in-sample best trial.
        out_of_sample_sharpe: per combination, the out-of-sample Sharpe ratio of that same trial.
        degradation_slope: slope b of the least-squares line
            out_of_sample_sharpe = a + b in_sample_sharpe (NaN when the in-sample Sharpe ratios
            have no spread). b < 0 is the paper's sign of overfitting.
        degradation_intercept: a of that line (NaN with b).
        probability_of_loss: share of combinations whose out-of-sample Sharpe ratio of the
            in-sample best trial is < 0.
    """

    pbo: float
    logits: FloatArray
    n_combinations: int
    n_splits: int
    n_trials: int
    rows_used: int
    rows_dropped: int
    in_sample_sharpe: FloatArray
    out_of_sample_sharpe: FloatArray
    degradation_slope: float
    degradation_intercept: float
    probability_of_loss: float


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a selected trial and what went into it.

    Attributes:
        deflated_sharpe_ratio: DSR = PSR(SR0), the probability that the true Sharpe ratio of the
            selected trial exceeds the best Sharpe ratio expected from ``n_trials`` unskilled ones.
        sharpe: the observed per-period Sharpe ratio SR of the selected trial.
        expected_max_sharpe: SR0, the expected maximum per-period Sharpe ratio of ``n_trials``
            independent trials with no skill and Sharpe-ratio variance ``sharpe_variance``.
        n_trials: N.
        sharpe_variance: V[SR_n], the variance of the trials' per-period Sharpe ratios.
        n_observations: T, the number of returns behind ``sharpe``.
        skewness: g3 of the selected trial's returns.
        kurtosis: g4 of the selected trial's returns (not excess: 3 for a normal).
    """

    deflated_sharpe_ratio: float
    sharpe: float
    expected_max_sharpe: float
    n_trials: int
    sharpe_variance: float
    n_observations: int
    skewness: float
    kurtosis: float


def probability_of_backtest_overfitting(
    returns: npt.ArrayLike, n_splits: int = 16
) -> BacktestOverfitting:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado, Zhu 2015).

    The T x N matrix M of per-period returns (rows: periods in time order; columns: trials) is cut
    into S blocks of T // S consecutive rows; the last T mod S rows are dropped. For each of the
    C(S, S/2) combinations c of S/2 blocks, the blocks of c (in time order) are the in-sample set J
    and the rest the out-of-sample set J̄. With R and R̄ the trials' Sharpe ratios on J and J̄:

    - n* = argmax R, the trial chosen in-sample (the lowest column index among exact ties);
    - r̄ = rank of R̄_n* among R̄, 1 for the worst ... N for the best, exact ties taking their
      average rank;
    - ω̄_c = r̄ / (N + 1) and λ_c = ln(ω̄_c / (1 - ω̄_c));
    - PBO = #{c : λ_c <= 0} / C(S, S/2).

    λ_c = 0 (the chosen trial at the out-of-sample median, as when every trial ties) counts as
    overfit: the selection did no better than chance. Performance degradation is reported as the
    paper does: the least-squares line of R̄_n* on R_n* over the combinations, and the probability
    of out-of-sample loss, the share of combinations with R̄_n* < 0.

    Args:
        returns: per-period returns, periods x trials; at least 2 trials, finite values.
        n_splits: S, even, 2 <= S <= ``MAX_SPLITS``; every block needs at least 2 rows.

    Returns:
        The PBO, the logits and the degradation figures.

    Raises:
        ConfigError: naming the argument at fault.
    """
    matrix = _returns_matrix(returns, min_trials=2)
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise ConfigError(f"n_splits must be an even integer, was {n_splits!r}")
    n_splits = int(n_splits)
    if n_splits < 2 or n_splits % 2 != 0:
        raise ConfigError(f"n_splits must be an even integer >= 2, was {n_splits}")
    if n_splits > MAX_SPLITS:
        raise ConfigError(
            f"n_splits must be <= {MAX_SPLITS} (C(S, S/2) combinations grow fast), was {n_splits}"
        )
    n_rows, n_trials = matrix.shape
    block_rows = n_rows // n_splits
    if block_rows < 2:
        raise ConfigError(
            f"returns has {n_rows} rows, too few for n_splits={n_splits}: "
            f"each block needs at least 2 rows, so at least {2 * n_splits} rows"
        )
    rows_used = block_rows * n_splits
    used = matrix[:rows_used]

    # Sums per block of the returns less each trial's overall mean: the half-sample means and
    # variances follow from these without a pass per combination, and centring keeps the sum of
    # squares free of cancellation.
    centre = used.mean(axis=0)
    blocks = (used - centre).reshape(n_splits, block_rows, n_trials)
    block_sum = blocks.sum(axis=1)
    block_sum_sq = (blocks * blocks).sum(axis=1)

    half = n_splits // 2
    combos = np.array(list(itertools.combinations(range(n_splits), half)), dtype=np.intp)
    n_combinations = len(combos)
    half_rows = half * block_rows
    logits = np.empty(n_combinations)
    in_sharpe = np.empty(n_combinations)
    out_sharpe = np.empty(n_combinations)
    for start in range(0, n_combinations, _COMBINATIONS_PER_CHUNK):
        chunk = combos[start : start + _COMBINATIONS_PER_CHUNK]
        in_mask = np.zeros((len(chunk), n_splits))
        np.put_along_axis(in_mask, chunk, 1.0, axis=1)
        out_mask = 1.0 - in_mask
        r_in = _half_sharpe(in_mask @ block_sum, in_mask @ block_sum_sq, centre, half_rows)
        r_out = _half_sharpe(out_mask @ block_sum, out_mask @ block_sum_sq, centre, half_rows)
        chosen = np.argmax(r_in, axis=1)
        rows = np.arange(len(chunk))
        chosen_out = r_out[rows, chosen][:, None]
        below = (r_out < chosen_out).sum(axis=1)
        tied = (r_out == chosen_out).sum(axis=1)  # includes the chosen trial itself
        rank = below + (tied + 1) / 2.0
        omega = rank / (n_trials + 1)
        stop = start + len(chunk)
        logits[start:stop] = np.log(omega / (1.0 - omega))
        in_sharpe[start:stop] = r_in[rows, chosen]
        out_sharpe[start:stop] = chosen_out[:, 0]

    slope, intercept = _least_squares_line(in_sharpe, out_sharpe)
    for array in (logits, in_sharpe, out_sharpe):
        array.setflags(write=False)
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_combinations=n_combinations,
        n_splits=n_splits,
        n_trials=n_trials,
        rows_used=rows_used,
        rows_dropped=n_rows - rows_used,
        in_sample_sharpe=in_sharpe,
        out_of_sample_sharpe=out_sharpe,
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=float(np.mean(out_sharpe < 0.0)),
    )


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0, the expected maximum Sharpe ratio of N unskilled trials (Bailey and López de Prado 2014).

    SR0 = sqrt(V[SR_n]) * ((1 - gamma) Φ^-1(1 - 1/N) + gamma Φ^-1(1 - 1/(N e))), gamma the Euler-Mascheroni
    constant. With one trial nothing was selected and SR0 = 0 (the formula's limit is -inf).

    Args:
        n_trials: N >= 1, the number of independent trials.
        sharpe_variance: V[SR_n] >= 0, the variance of the trials' Sharpe ratios, in the units
            of the Sharpe ratio (per period squared for a per-period Sharpe ratio).

    Raises:
        ConfigError: naming the argument at fault.
    """
    n = _count("n_trials", n_trials, minimum=1)
    variance = _finite("sharpe_variance", sharpe_variance)
    if variance < 0.0:
        raise ConfigError(f"sharpe_variance must be >= 0, was {variance}")
    if n == 1:
        return 0.0
    z = (1.0 - EULER_MASCHERONI) * _NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_MASCHERONI * (
        _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    )
    return math.sqrt(variance) * z


def probabilistic_sharpe_ratio(
    sharpe: float,
    benchmark_sharpe: float,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """PSR(SR*): the probability that the true Sharpe ratio exceeds ``benchmark_sharpe``.

    PSR = Φ((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR²)), with SR the observed
    per-period Sharpe ratio over T returns of skewness g3 and kurtosis g4 (3 for a normal).

    Raises:
        ConfigError: naming the argument at fault, or when the variance term is not positive.
    """
    sr = _finite("sharpe", sharpe)
    benchmark = _finite("benchmark_sharpe", benchmark_sharpe)
    t = _count("n_observations", n_observations, minimum=2)
    g3 = _finite("skewness", skewness)
    g4 = _finite("kurtosis", kurtosis)
    spread = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if not spread > 0.0:
        raise ConfigError(
            f"1 - skewness*sharpe + (kurtosis-1)/4*sharpe^2 must be > 0, was {spread} "
            f"(sharpe={sr}, skewness={g3}, kurtosis={g4})"
        )
    return _NORMAL.cdf((sr - benchmark) * math.sqrt(t - 1) / math.sqrt(spread))


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    n_trials: int,
    sharpe_variance: float,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    """The deflated Sharpe ratio (Bailey and López de Prado 2014): PSR against SR0.

    DSR = Φ((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR²)), where
    SR0 = sqrt(V[SR_n]) ((1 - gamma) Φ^-1(1 - 1/N) + gamma Φ^-1(1 - 1/(N e))) is the expected maximum
    Sharpe ratio of N unskilled trials. Every Sharpe ratio is per period, not annualised: an
    annual SR of 2.5 on daily data (250 a year) is 2.5 / sqrt(250), and an annualised variance
    of 1/2 is 0.5 / 250.

    Args:
        sharpe: SR, the observed per-period Sharpe ratio of the selected (best) trial.
        n_trials: N >= 1, the number of trials tried.
        sharpe_variance: V[SR_n] >= 0, the variance of the trials' per-period Sharpe ratios.
        n_observations: T >= 2, the number of returns behind ``sharpe``.
        skewness: g3 of the selected trial's returns.
        kurtosis: g4 of the selected trial's returns, not excess (3 for a normal).

    Raises:
        ConfigError: naming the argument at fault.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    dsr = probabilistic_sharpe_ratio(sharpe, sr0, n_observations, skewness, kurtosis)
    return DeflatedSharpe(
        deflated_sharpe_ratio=dsr,
        sharpe=float(sharpe),
        expected_max_sharpe=sr0,
        n_trials=int(n_trials),
        sharpe_variance=float(sharpe_variance),
        n_observations=int(n_observations),
        skewness=float(skewness),
        kurtosis=float(kurtosis),
    )


def deflated_sharpe_ratio_from_returns(
    returns: npt.ArrayLike, selected: int | None = None
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of the best column of a periods x trials returns matrix.

    SR is the largest per-period Sharpe ratio among the columns (the lowest index among ties),
    or column ``selected``'s when the trial was chosen by another measure, N the number of
    columns, V[SR_n] the variance (ddof=1) of the columns' Sharpe ratios, T the
    number of rows, and g3, g4 the skewness and kurtosis (population moments, kurtosis not
    excess) of the best column's returns; a column with no spread has g3 = 0, g4 = 3.

    Args:
        returns: per-period returns, periods x trials; at least 2 trials, 2 rows, finite values.
        selected: the column of the selected trial (default: the one of largest Sharpe ratio).

    Raises:
        ConfigError: naming the argument at fault.
    """
    matrix = _returns_matrix(returns, min_trials=2)
    if selected is not None and not 0 <= selected < matrix.shape[1]:
        raise ConfigError(f"selected must be a column of returns, was {selected}")
    n_rows = matrix.shape[0]
    if n_rows < 2:
        raise ConfigError(f"returns must have at least 2 rows (periods), had {n_rows}")
    mean = matrix.mean(axis=0)
    std = matrix.std(axis=0, ddof=1)
    sharpes = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0.0)
    best = int(np.argmax(sharpes)) if selected is None else selected
    skewness, kurtosis = _moments(matrix[:, best])
    return deflated_sharpe_ratio(
        float(sharpes[best]),
        n_trials=matrix.shape[1],
        sharpe_variance=float(np.var(sharpes, ddof=1)),
        n_observations=n_rows,
        skewness=skewness,
        kurtosis=kurtosis,
    )


def _returns_matrix(returns: npt.ArrayLike, *, min_trials: int) -> FloatArray:
    try:
        matrix = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"returns must be a numeric periods x trials matrix: {exc}") from None
    if matrix.ndim != 2:
        raise ConfigError(
            f"returns must be a 2-D periods x trials matrix, had {matrix.ndim} dimension(s)"
        )
    if matrix.shape[1] < min_trials:
        raise ConfigError(
            f"returns must have at least {min_trials} trials (columns), had {matrix.shape[1]}"
        )
    if not np.isfinite(matrix).all():
        row, column = np.argwhere(~np.isfinite(matrix))[0]
        raise ConfigError(
            f"returns must be finite, row {row} column {column} is {matrix[row, column]}"
        )
    return matrix


def _half_sharpe(
    centred_sum: FloatArray, centred_sum_sq: FloatArray, centre: FloatArray, rows: int
) -> FloatArray:
    centred_mean = centred_sum / rows
    variance = np.maximum(centred_sum_sq - rows * centred_mean * centred_mean, 0.0) / (rows - 1)
    std = np.sqrt(variance)
    mean = centred_mean + centre
    result: FloatArray = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0.0)
    return result


def _least_squares_line(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    dx = x - x.mean()
    spread = float(np.dot(dx, dx))
    if not spread > 0.0:
        return math.nan, math.nan
    slope = float(np.dot(dx, y - y.mean())) / spread
    return slope, float(y.mean()) - slope * float(x.mean())


def _moments(values: FloatArray) -> tuple[float, float]:
    deviation = values - values.mean()
    variance = float(np.mean(deviation**2))
    if not variance > 0.0:
        return 0.0, 3.0
    skewness = float(np.mean(deviation**3)) / variance**1.5
    kurtosis = float(np.mean(deviation**4)) / variance**2
    return skewness, kurtosis


def _count(name: str, value: int, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer >= {minimum}, was {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, was {value}")
    return int(value)


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be finite, was {value}")
    return number
