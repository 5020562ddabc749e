"""Price-path models calibrated from real bars, and the synthetic bars they produce.

Four models of the per-bar log return of the close:

* ``gbm``: geometric Brownian motion, ``r = mu + sigma * z``.
* ``jump``: Merton jump diffusion, a Brownian part plus a Poisson number of normal jumps.
* ``garch``: GARCH(1,1) volatility clustering, fitted by Gaussian likelihood on a coarse-to-fine
  grid with variance targeting (numpy only).
* ``bootstrap``: the stationary block bootstrap (Politis and Romano) of the real returns.

Every model keeps a :class:`BarShape`: the real bars' intrabar wicks and volumes, resampled to
dress each synthetic close in a high, a low and a volume. A synthetic path is consistent by
construction: ``open`` is the previous close, ``high >= max(open, close)``,
``low <= min(open, close)`` and volume is positive.

Several instruments move together: :func:`calibrate_joint` fits one model per instrument and
the correlation of their returns on the bar times they share, and :class:`JointModel` draws
their paths jointly. GBM and jump diffusion get Brownian shocks correlated through the Cholesky
factor of the return correlation (the jumps stay independent); GARCH gets correlated
innovations (constant conditional correlation: the correlation of the standardised residuals);
the bootstrap resamples the same blocks of bar times for every instrument, so whatever
dependence the real returns had comes along.

Randomness comes only from the ``numpy.random.Generator`` handed in; :func:`scenario_rng`
derives it from ``(root seed, scenario index)`` so a scenario never depends on which worker
runs it or in what order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from tradegraph.data.catalog import BarArrays
from tradegraph.engine.streams import validate_bar_arrays
from tradegraph.errors import DataError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MODEL_NAMES = ("gbm", "jump", "garch", "bootstrap")
MIN_CALIBRATION_BARS = 30


def scenario_rng(root_seed: int, index: int) -> np.random.Generator:
    """The random generator of scenario ``index`` in a batch seeded with ``root_seed``.

    Raises:
        ValueError: either number is negative.
    """
    if root_seed < 0 or index < 0:
        raise ValueError(f"root_seed and index must be >= 0, were {root_seed} and {index}")
    return np.random.default_rng(np.random.SeedSequence([root_seed, index]))


def scenario_seed(root_seed: int, index: int) -> int:
    """A 63-bit integer naming the seed of scenario ``index`` (for tables and logs)."""
    words = np.random.SeedSequence([root_seed, index]).generate_state(2, np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def clean_bars(bars: BarArrays) -> BarArrays:
    """The rows of ``bars`` the feed would keep (finite, positive, consistent, increasing)."""
    keep, _ = validate_bar_arrays(bars)
    if keep.all():
        return bars
    return bars.rows(keep)


def log_returns(bars: BarArrays) -> F64:
    """Close-to-close log returns of the valid rows of ``bars``.

    Raises:
        DataError: fewer than ``MIN_CALIBRATION_BARS`` valid bars.
    """
    valid = clean_bars(bars)
    if len(valid) < MIN_CALIBRATION_BARS:
        raise DataError(
            f"{bars.instrument_id}: calibration needs at least {MIN_CALIBRATION_BARS} valid bars, "
            f"got {len(valid)}"
        )
    return np.diff(np.log(valid.close))


@dataclass(frozen=True)
class BarShape:
    """The intrabar shape of real bars, resampled row by row to dress synthetic closes.

    Attributes:
        upper_wick: ``log(high / max(open, close))`` per bar, >= 0.
        lower_wick: ``log(min(open, close) / low)`` per bar, >= 0.
        volume: bar volume, > 0 (bars without volume are left out).
    """

    upper_wick: F64
    lower_wick: F64
    volume: F64

    def __len__(self) -> int:
        return int(self.volume.shape[0])

    @classmethod
    def from_bars(cls, bars: BarArrays) -> BarShape:
        """Collect wicks and volumes of the valid, traded bars of ``bars``.

        Raises:
            DataError: no valid bar has a positive volume.
        """
        valid = clean_bars(bars)
        traded = valid.volume > 0.0
        if not traded.any():
            raise DataError(f"{bars.instrument_id}: no valid bar with a positive volume")
        o, h, lo, c = (
            valid.open[traded],
            valid.high[traded],
            valid.low[traded],
            valid.close[traded],
        )
        upper = np.maximum(np.log(h / np.maximum(o, c)), 0.0)
        lower = np.maximum(np.log(np.minimum(o, c) / lo), 0.0)
        return cls(upper_wick=upper, lower_wick=lower, volume=valid.volume[traded].copy())


@dataclass(frozen=True)
class PathDraw:
    """One model draw: per-bar log returns, a wick scale per bar, and optionally which real bars
    lend their shape (a bootstrap keeps returns and shapes together)."""

    log_returns: F64
    wick_scale: F64
    shape_index: I64 | None = None


class PriceModel(Protocol):
    """A calibrated model of log returns that can draw paths."""

    name: ClassVar[str]

    @property
    def shape(self) -> BarShape: ...

    def draw(self, rng: np.random.Generator, n_bars: int, shocks: F64 | None = None) -> PathDraw:
        """Draw ``n_bars`` returns; ``shocks`` (standard normal, one per bar) replaces the
        model's own Gaussian draws when given, which is how paths are correlated."""
        ...

    def describe(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class GbmModel:
    """Geometric Brownian motion: per-bar log returns ``mu + sigma * z``."""

    name: ClassVar[str] = "gbm"
    mu: float
    sigma: float
    shape: BarShape

    @classmethod
    def calibrate(cls, bars: BarArrays) -> GbmModel:
        """Mean and sample standard deviation of the real log returns."""
        r = log_returns(bars)
        return cls(mu=float(r.mean()), sigma=float(r.std(ddof=1)), shape=BarShape.from_bars(bars))

    def draw(self, rng: np.random.Generator, n_bars: int, shocks: F64 | None = None) -> PathDraw:
        z = rng.standard_normal(n_bars) if shocks is None else shocks
        returns = self.mu + self.sigma * z
        return PathDraw(returns, np.ones(n_bars))

    def describe(self) -> dict[str, float]:
        return {"mu": self.mu, "sigma": self.sigma}


@dataclass(frozen=True)
class JumpDiffusionModel:
    """Merton jump diffusion: ``mu + sigma * z + sum of N ~ Poisson(intensity) normal jumps``.

    ``jump_intensity`` is the expected number of jumps per bar.
    """

    name: ClassVar[str] = "jump"
    mu: float
    sigma: float
    jump_intensity: float
    jump_mean: float
    jump_std: float
    shape: BarShape

    # Returns further than this many robust deviations from the median count as jumps.
    THRESHOLD: ClassVar[float] = 4.0

    @classmethod
    def calibrate(cls, bars: BarArrays) -> JumpDiffusionModel:
        """Separate jumps from diffusion by an iterated robust threshold, then take moments.

        Returns beyond ``THRESHOLD`` times the median absolute deviation (scaled to a normal
        standard deviation) are jumps; the rest fit the diffusion. A moment fit, not maximum
        likelihood: robust, and good for jumps several diffusion deviations wide.
        """
        r = log_returns(bars)
        diffusive = cls.diffusive_returns(r)
        body = r[diffusive]
        jumps = r[~diffusive]
        mu = float(body.mean())
        sigma = float(body.std(ddof=1)) if body.size > 1 else 0.0
        excess = jumps - mu
        return cls(
            mu=mu,
            sigma=sigma,
            jump_intensity=jumps.size / r.size,
            jump_mean=float(excess.mean()) if excess.size else 0.0,
            jump_std=float(excess.std(ddof=1)) if excess.size > 1 else 0.0,
            shape=BarShape.from_bars(bars),
        )

    def draw(self, rng: np.random.Generator, n_bars: int, shocks: F64 | None = None) -> PathDraw:
        z = rng.standard_normal(n_bars) if shocks is None else shocks
        diffusion = self.mu + self.sigma * z
        counts = rng.poisson(self.jump_intensity, n_bars)
        jumps = counts * self.jump_mean + np.sqrt(counts) * self.jump_std * rng.standard_normal(
            n_bars
        )
        # A jump bar gets wicks as wide as its move relative to an ordinary bar.
        scale = np.where(counts > 0, 1.0 + np.abs(jumps) / max(self.sigma, 1e-12), 1.0)
        return PathDraw(diffusion + jumps, scale)

    @classmethod
    def diffusive_returns(cls, returns: F64) -> npt.NDArray[np.bool_]:
        """Which returns are diffusion, not jumps: within ``THRESHOLD`` robust deviations
        (median absolute deviation scaled to a normal standard deviation) of the median,
        iterated until the split settles."""
        diffusive = np.ones(returns.shape[0], dtype=bool)
        for _ in range(20):
            centre = float(np.median(returns[diffusive]))
            spread = 1.4826 * float(np.median(np.abs(returns[diffusive] - centre)))
            if spread <= 0.0:
                break
            updated = np.abs(returns - centre) <= cls.THRESHOLD * spread
            if np.array_equal(updated, diffusive):
                break
            diffusive = updated
        return diffusive

    def describe(self) -> dict[str, float]:
        return {
            "mu": self.mu,
            "sigma": self.sigma,
            "jump_intensity": self.jump_intensity,
            "jump_mean": self.jump_mean,
            "jump_std": self.jump_std,
        }


def _geometric_sums(
    squared_residuals: F64, beta: float, spectrum: npt.NDArray[np.complex128] | None = None
) -> F64:
    """``S[t] = sum_{k<t} beta**k * e2[t-1-k]`` for every ``t`` (``S[0] = 0``), by one FFT."""
    n = squared_residuals.shape[0]
    if n < 2:
        return np.zeros(n)
    size = 1 << math.ceil(math.log2(2 * n))
    if spectrum is None:
        spectrum = np.fft.rfft(squared_residuals, size)
    decay = beta ** np.arange(n, dtype=np.float64)
    conv = np.fft.irfft(spectrum * np.fft.rfft(decay, size), size)[: n - 1]
    return np.concatenate(([0.0], conv))


def garch_variance(
    squared_residuals: F64, initial_variance: float, omega: float, alpha: float, beta: float
) -> F64:
    """Conditional variances of GARCH(1,1), ``s2[t] = omega + alpha e2[t-1] + beta s2[t-1]``.

    ``s2[0]`` is ``initial_variance``. Computed in closed form, the geometric sum of past
    squared residuals being one FFT convolution, so that a grid of fits stays fast in numpy.
    """
    return _variance_from_sums(
        _geometric_sums(squared_residuals, beta), initial_variance, omega, alpha, beta
    )


def _variance_from_sums(
    sums: F64, initial_variance: float, omega: float, alpha: float, beta: float
) -> F64:
    t = np.arange(sums.shape[0], dtype=np.float64)
    decay = beta**t
    base = omega * t if beta == 1.0 else omega * (1.0 - decay) / (1.0 - beta)
    variance = base + alpha * sums + decay * initial_variance
    # The FFT leaves rounding noise; a variance is never below a sliver of the sample variance.
    floor: float = initial_variance * 1e-6
    return np.maximum(variance, floor)


def _garch_logliks(e2: F64, var0: float, sums: F64, alphas: F64, beta: float) -> F64:
    """Gaussian log likelihood (up to a constant) for each of ``alphas`` at one ``beta``."""
    t = np.arange(sums.shape[0], dtype=np.float64)
    decay = beta**t
    geometric = (1.0 - decay) / (1.0 - beta)
    held = decay * var0
    floor = var0 * 1e-6
    out = np.full(alphas.shape[0], -np.inf)
    for i, alpha in enumerate(alphas.tolist()):
        omega = var0 * (1.0 - alpha - beta)
        s2 = np.maximum(omega * geometric + alpha * sums + held, floor)
        out[i] = -0.5 * float(np.sum(np.log(s2) + e2 / s2))
    return out


@dataclass(frozen=True)
class GarchModel:
    """GARCH(1,1): ``r = mu + e``, ``e = s * z``, ``s2[t] = omega + alpha e2[t-1] + beta s2[t-1]``."""

    name: ClassVar[str] = "garch"
    mu: float
    omega: float
    alpha: float
    beta: float
    shape: BarShape

    MAX_PERSISTENCE: ClassVar[float] = 0.999

    @property
    def unconditional_variance(self) -> float:
        return self.omega / (1.0 - self.alpha - self.beta)

    @classmethod
    def calibrate(cls, bars: BarArrays) -> GarchModel:
        """Gaussian maximum likelihood on a grid, refined twice around the best point.

        Variance targeting fixes ``omega = var * (1 - alpha - beta)`` with ``var`` the sample
        variance, leaving a two-parameter search; ``alpha + beta`` stays below
        ``MAX_PERSISTENCE`` so the process is stationary.
        """
        r = log_returns(bars)
        mu = float(r.mean())
        e2 = (r - mu) ** 2
        var0 = float(e2.mean())
        if var0 <= 0.0:
            return cls(mu=mu, omega=0.0, alpha=0.0, beta=0.0, shape=BarShape.from_bars(bars))
        alphas = np.linspace(0.01, 0.40, 14)
        betas = np.linspace(0.40, 0.99, 14)
        size = 1 << math.ceil(math.log2(2 * e2.shape[0]))
        spectrum = np.fft.rfft(e2, size)
        best = (-math.inf, 0.05, 0.90)
        for _ in range(3):
            for beta in betas:
                if beta <= 0.0:
                    continue
                allowed = alphas[(alphas > 0.0) & (alphas + beta < cls.MAX_PERSISTENCE)]
                if allowed.size == 0:
                    continue
                sums = _geometric_sums(e2, float(beta), spectrum)
                logliks = _garch_logliks(e2, var0, sums, allowed, float(beta))
                top = int(np.argmax(logliks))
                if logliks[top] > best[0]:
                    best = (float(logliks[top]), float(allowed[top]), float(beta))
            step_a = float(alphas[1] - alphas[0])
            step_b = float(betas[1] - betas[0])
            alphas = np.linspace(best[1] - step_a, best[1] + step_a, 9)
            betas = np.linspace(best[2] - step_b, best[2] + step_b, 9)
        _, alpha, beta = best
        return cls(
            mu=mu,
            omega=var0 * (1.0 - alpha - beta),
            alpha=alpha,
            beta=beta,
            shape=BarShape.from_bars(bars),
        )

    def standardized_residuals(self, returns: F64) -> F64:
        """``(r - mu) / s`` with ``s`` the fitted model's conditional deviation, filtered from
        the unconditional variance."""
        e = returns - self.mu
        if self.omega <= 0.0:
            return e
        s2 = garch_variance(e * e, self.unconditional_variance, self.omega, self.alpha, self.beta)
        standardized: F64 = e / np.sqrt(s2)
        return standardized

    def draw(self, rng: np.random.Generator, n_bars: int, shocks: F64 | None = None) -> PathDraw:
        z = (rng.standard_normal(n_bars) if shocks is None else shocks).tolist()
        omega, alpha, beta = self.omega, self.alpha, self.beta
        variance = self.unconditional_variance if self.omega > 0.0 else 0.0
        residuals = [0.0] * n_bars
        deviations = [0.0] * n_bars
        # The recursion is sequential; plain floats beat numpy element access here.
        for t in range(n_bars):
            s = math.sqrt(variance)
            e = s * z[t]
            residuals[t] = e
            deviations[t] = s
            variance = omega + alpha * e * e + beta * variance
        base = math.sqrt(self.unconditional_variance) if self.omega > 0.0 else 0.0
        sd = np.asarray(deviations)
        scale = sd / base if base > 0.0 else np.ones(n_bars)
        return PathDraw(self.mu + np.asarray(residuals), scale)

    def describe(self) -> dict[str, float]:
        return {"mu": self.mu, "omega": self.omega, "alpha": self.alpha, "beta": self.beta}


@dataclass(frozen=True)
class BlockBootstrapModel:
    """Stationary block bootstrap of the real log returns (Politis and Romano, 1994).

    Blocks start at uniform positions and have geometric lengths of mean ``mean_block``; the
    series wraps around. Returns keep the volatility clustering and fat tails of the data within
    a block. Each return keeps its own bar's wicks and volume.
    """

    name: ClassVar[str] = "bootstrap"
    returns: F64
    mean_block: float
    shape: BarShape
    # Row of ``shape`` belonging to each return (the bar the return ends at).
    shape_of_return: I64

    @classmethod
    def calibrate(cls, bars: BarArrays, mean_block: float | None = None) -> BlockBootstrapModel:
        """Keep the real returns; the mean block length defaults to ``n ** (1/3)`` bars."""
        valid = clean_bars(bars)
        r = log_returns(valid)
        shape = BarShape.from_bars(valid)
        # Map each return to the shape row of the bar it ends at (untraded bars borrow the
        # nearest earlier traded bar's shape).
        traded = np.flatnonzero(valid.volume > 0.0)
        ends = np.arange(1, len(valid))
        shape_row = np.searchsorted(traded, ends, side="right") - 1
        shape_row = np.clip(shape_row, 0, len(shape) - 1).astype(np.int64)
        block = mean_block if mean_block is not None else max(1.0, round(r.size ** (1.0 / 3.0)))
        if block < 1.0:
            raise ValueError(f"mean_block must be >= 1, was {block}")
        return cls(returns=r, mean_block=float(block), shape=shape, shape_of_return=shape_row)

    def draw(self, rng: np.random.Generator, n_bars: int, shocks: F64 | None = None) -> PathDraw:
        """A resampled path; ``shocks`` has no meaning here (blocks are shared through
        :meth:`draw_at` instead) and must be ``None``."""
        if shocks is not None:
            raise ValueError("the bootstrap resamples returns and takes no Gaussian shocks")
        return self.draw_at(
            stationary_bootstrap_index(rng, self.returns.shape[0], n_bars, self.mean_block)
        )

    def draw_at(self, index: I64) -> PathDraw:
        """The path made of the real returns at positions ``index``."""
        return PathDraw(self.returns[index], np.ones(index.shape[0]), self.shape_of_return[index])

    def describe(self) -> dict[str, float]:
        return {
            "mean_block": self.mean_block,
            "mu": float(self.returns.mean()),
            "sigma": float(self.returns.std(ddof=1)),
        }


def stationary_bootstrap_index(
    rng: np.random.Generator, n_source: int, n_out: int, mean_block: float
) -> I64:
    """Indices into a series of ``n_source`` values for a stationary bootstrap of ``n_out``.

    Each position starts a new block with probability ``1 / mean_block``; otherwise it takes the
    next value of the source (wrapping around).
    """
    starts_new = rng.random(n_out) < 1.0 / mean_block
    starts_new[0] = True
    block_id = np.cumsum(starts_new) - 1
    block_first = np.flatnonzero(starts_new)
    block_origin = rng.integers(0, n_source, block_first.size)
    offset = np.arange(n_out) - block_first[block_id]
    index: I64 = ((block_origin[block_id] + offset) % n_source).astype(np.int64)
    return index


_MODELS: dict[str, type[GbmModel | JumpDiffusionModel | GarchModel | BlockBootstrapModel]] = {
    "gbm": GbmModel,
    "jump": JumpDiffusionModel,
    "garch": GarchModel,
    "bootstrap": BlockBootstrapModel,
}


def calibrate(bars: BarArrays, model: str = "gbm") -> PriceModel:
    """Fit the model named ``model`` (one of ``MODEL_NAMES``) to real bars.

    Raises:
        ValueError: unknown model name.
        DataError: too few valid bars.
    """
    try:
        cls = _MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown price model {model!r}; choose one of {list(MODEL_NAMES)}"
        ) from None
    return cls.calibrate(bars)


def generate_bars(
    model: PriceModel,
    rng: np.random.Generator,
    n_bars: int,
    *,
    start_price: float,
    start_ts_ns: int,
    interval_ns: int,
    symbol: str,
    venue: str,
    draw: PathDraw | None = None,
) -> BarArrays:
    """Draw one path of ``n_bars`` consistent OHLCV bars from ``model``.

    Bars open at ``start_ts_ns`` and every ``interval_ns`` after; the first opens at
    ``start_price`` and each later one at the previous close. ``draw`` is the model's path when
    it was already drawn (jointly with other instruments, see :class:`JointModel`).

    Raises:
        ValueError: ``n_bars`` or ``interval_ns`` is not positive, or ``start_price`` is not a
            positive number.
    """
    if n_bars <= 0 or interval_ns <= 0:
        raise ValueError(f"n_bars and interval_ns must be > 0, were {n_bars} and {interval_ns}")
    if not (math.isfinite(start_price) and start_price > 0.0):
        raise ValueError(f"start_price must be a positive number, was {start_price}")
    path = model.draw(rng, n_bars) if draw is None else draw
    if path.log_returns.shape[0] != n_bars:
        raise ValueError(f"the drawn path has {path.log_returns.shape[0]} bars, not {n_bars}")
    shape = model.shape
    rows = (
        path.shape_index
        if path.shape_index is not None
        else rng.integers(0, len(shape), n_bars).astype(np.int64)
    )
    close = start_price * np.exp(np.cumsum(path.log_returns))
    open_ = np.empty(n_bars)
    open_[0] = start_price
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * np.exp(shape.upper_wick[rows] * path.wick_scale)
    low = np.minimum(open_, close) * np.exp(-shape.lower_wick[rows] * path.wick_scale)
    return BarArrays(
        symbol=symbol,
        venue=venue,
        interval_ns=interval_ns,
        ts_open_ns=start_ts_ns + interval_ns * np.arange(n_bars, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=shape.volume[rows].copy(),
    )


def align_bars(datasets: Sequence[BarArrays]) -> list[BarArrays]:
    """The valid bars of each dataset at the open times every dataset has.

    Raises:
        DataError: fewer than ``MIN_CALIBRATION_BARS`` common bar times.
    """
    valid = [clean_bars(d) for d in datasets]
    common = valid[0].ts_open_ns
    for d in valid[1:]:
        common = np.intersect1d(common, d.ts_open_ns, assume_unique=True)
    if common.shape[0] < MIN_CALIBRATION_BARS:
        names = ", ".join(d.instrument_id for d in datasets)
        raise DataError(
            f"{names} share only {common.shape[0]} bar times; correlated paths need at least "
            f"{MIN_CALIBRATION_BARS} (same interval, overlapping history)"
        )
    aligned = []
    for d in valid:
        rows = np.searchsorted(d.ts_open_ns, common)
        aligned.append(
            replace(
                d,
                ts_open_ns=common.copy(),
                open=d.open[rows],
                high=d.high[rows],
                low=d.low[rows],
                close=d.close[rows],
                volume=d.volume[rows],
            )
        )
    return aligned


def _factor(correlation: F64) -> F64:
    """The lower Cholesky factor of ``correlation``, after clipping any eigenvalue that rounding
    made negative (then the matrix is rescaled back to a unit diagonal)."""
    try:
        factor = np.linalg.cholesky(correlation)
        return np.asarray(factor, dtype=np.float64)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(correlation)
        fixed = (vectors * np.maximum(values, 1e-10)) @ vectors.T
        scale = 1.0 / np.sqrt(np.diag(fixed))
        repaired = np.linalg.cholesky(fixed * np.outer(scale, scale))
        return np.asarray(repaired, dtype=np.float64)


def _correlation(columns: Sequence[F64]) -> F64:
    matrix = np.corrcoef(np.vstack(columns))
    matrix = np.nan_to_num(np.atleast_2d(matrix), nan=0.0)
    np.fill_diagonal(matrix, 1.0)
    out: F64 = (matrix + matrix.T) / 2.0
    return out


@dataclass(frozen=True)
class JointModel:
    """Calibrated models of several instruments, drawn together with correlated shocks.

    Attributes:
        models: One model per instrument, in dataset order; all of the same kind.
        correlation: Correlation of the Gaussian shocks that drive them (``k x k``): of the
            returns (GBM), of the diffusive returns (jump), of the standardised residuals
            (GARCH); the bootstrap needs none (it shares blocks).
        cholesky: Lower Cholesky factor of ``correlation``.
        return_correlation: Correlation of the real returns on the shared bar times, which
            the drawn returns reproduce.
        common_jump_intensity: Jump diffusion only: expected jumps per bar that hit every
            instrument at once (the rest of each model's intensity stays its own).
        jump_cholesky: Jump diffusion only: Cholesky factor of the correlation of the sizes
            of those common jumps.
    """

    models: tuple[PriceModel, ...]
    correlation: F64
    cholesky: F64
    return_correlation: F64
    common_jump_intensity: float = 0.0
    jump_cholesky: F64 | None = None

    @property
    def name(self) -> str:
        return self.models[0].name

    @classmethod
    def single(cls, model: PriceModel) -> JointModel:
        one = np.eye(1)
        return cls((model,), one, one, one)

    def draw(self, rng: np.random.Generator, n_bars: int) -> tuple[PathDraw, ...]:
        """One path per instrument, drawn jointly from ``rng``.

        With one instrument this is exactly that model's own draw.
        """
        models = self.models
        k = len(models)
        if k == 1:
            return (models[0].draw(rng, n_bars),)
        first = models[0]
        if isinstance(first, BlockBootstrapModel):
            index = stationary_bootstrap_index(
                rng, first.returns.shape[0], n_bars, first.mean_block
            )
            return tuple(_as_bootstrap(m).draw_at(index) for m in models)
        shocks = rng.standard_normal((n_bars, k)) @ self.cholesky.T
        if isinstance(first, JumpDiffusionModel):
            return self._draw_jumps(rng, n_bars, shocks)
        return tuple(
            model.draw(rng, n_bars, np.ascontiguousarray(shocks[:, i]))
            for i, model in enumerate(models)
        )

    def _draw_jumps(
        self, rng: np.random.Generator, n_bars: int, shocks: F64
    ) -> tuple[PathDraw, ...]:
        """Correlated diffusion, common jumps with correlated sizes, and each instrument's own
        jumps on top."""
        common = rng.poisson(self.common_jump_intensity, n_bars)
        k = len(self.models)
        factor = self.jump_cholesky if self.jump_cholesky is not None else np.eye(k)
        sizes = rng.standard_normal((n_bars, k)) @ factor.T
        root = np.sqrt(common)
        draws = []
        for i, model in enumerate(self.models):
            jump = _as_jump(model)
            own = replace(
                jump, jump_intensity=max(jump.jump_intensity - self.common_jump_intensity, 0.0)
            )
            path = own.draw(rng, n_bars, np.ascontiguousarray(shocks[:, i]))
            joint_jump = common * jump.jump_mean + root * jump.jump_std * sizes[:, i]
            wide = 1.0 + np.abs(joint_jump) / max(jump.sigma, 1e-12)
            draws.append(
                PathDraw(
                    path.log_returns + joint_jump,
                    np.where(common > 0, np.maximum(path.wick_scale, wide), path.wick_scale),
                )
            )
        return tuple(draws)

    def describe(self) -> dict[str, object]:
        """Every model's parameters and the correlations, as plain data."""
        out: dict[str, object] = {
            "models": [m.describe() for m in self.models],
            "correlation": self.correlation.round(12).tolist(),
            "return_correlation": self.return_correlation.round(12).tolist(),
        }
        if self.common_jump_intensity > 0.0:
            out["common_jump_intensity"] = self.common_jump_intensity
        return out


def _as_bootstrap(model: PriceModel) -> BlockBootstrapModel:
    if not isinstance(model, BlockBootstrapModel):
        raise TypeError(f"cannot share bootstrap blocks with a {model.name} model")
    return model


def _as_jump(model: PriceModel) -> JumpDiffusionModel:
    if not isinstance(model, JumpDiffusionModel):
        raise TypeError(f"cannot share jumps with a {model.name} model")
    return model


def calibrate_joint(datasets: Sequence[BarArrays], model: str = "gbm") -> JointModel:
    """Fit ``model`` to every dataset and the dependence that ties their paths together.

    One dataset gives that model alone. With several, every dependence estimate comes from the
    bar times all datasets share: the correlation of the log returns (GBM); for jump
    diffusion, the correlation of the returns no instrument counts as a jump, the rate of bars
    where every instrument jumps and the correlation of those jumps; the correlation of the
    standardised GARCH residuals (GARCH). The bootstrap is fitted on the shared bar times only,
    so that one block of positions means the same bars for every instrument.

    Raises:
        ValueError: unknown model name.
        DataError: too few valid bars, or too few shared bar times.
    """
    if len(datasets) == 1:
        return JointModel.single(calibrate(datasets[0], model))
    aligned = align_bars(datasets)
    returns = [np.diff(np.log(d.close)) for d in aligned]
    return_correlation = _correlation(returns)
    if model == "bootstrap":
        resampled: tuple[PriceModel, ...] = tuple(BlockBootstrapModel.calibrate(d) for d in aligned)
        return JointModel(
            resampled, return_correlation, _factor(return_correlation), return_correlation
        )
    models = tuple(calibrate(d, model) for d in datasets)
    if model == "garch":
        residuals = [
            _as_garch(m).standardized_residuals(r) for m, r in zip(models, returns, strict=True)
        ]
        correlation = _correlation(residuals)
        return JointModel(models, correlation, _factor(correlation), return_correlation)
    if model == "jump":
        return _calibrate_joint_jumps(models, returns, return_correlation)
    return JointModel(models, return_correlation, _factor(return_correlation), return_correlation)


# Fewer common jumps than this in the shared history: their sizes take the return correlation.
_MIN_COMMON_JUMPS = 10
_MAX_SHOCK_CORRELATION = 0.999


def _calibrate_joint_jumps(
    models: tuple[PriceModel, ...], returns: list[F64], return_correlation: F64
) -> JointModel:
    """Dependence of jump-diffusion paths, fitted so the drawn returns correlate as the data do.

    Each instrument keeps its own model (so its marginal law is unchanged); jumps that hit every
    instrument at once take part of each model's intensity. Their sizes correlate as the real
    returns on bars where every instrument jumped. The common rate is the one that reproduces
    the real return correlation with the diffusion correlated as on bars where nobody jumped
    (at most the smallest intensity); the diffusion correlation is then set to match each pair
    exactly, within +-0.999.
    """
    jumps = [_as_jump(m) for m in models]
    diffusive = [JumpDiffusionModel.diffusive_returns(r) for r in returns]
    quiet = np.logical_and.reduce(diffusive)
    quiet_correlation = _correlation([r[quiet] for r in returns])
    everyone = np.logical_and.reduce([~d for d in diffusive])
    size_correlation = (
        _correlation([r[everyone] for r in returns])
        if int(everyone.sum()) >= _MIN_COMMON_JUMPS
        else return_correlation
    )
    sigma = np.array([j.sigma for j in jumps])
    intensity = np.array([j.jump_intensity for j in jumps])
    mean = np.array([j.jump_mean for j in jumps])
    std = np.array([j.jump_std for j in jumps])
    if not np.all(sigma > 0.0):
        return JointModel(models, quiet_correlation, _factor(quiet_correlation), return_correlation)
    variance = sigma**2 + intensity * (mean**2 + std**2)
    target = return_correlation * np.sqrt(np.outer(variance, variance))
    per_jump = np.outer(mean, mean) + size_correlation * np.outer(std, std)
    upper = np.triu_indices(len(jumps), 1)
    usable = per_jump[upper] > 0.0
    needed = (target[upper] - quiet_correlation[upper] * np.outer(sigma, sigma)[upper])[usable]
    needed = needed / per_jump[upper][usable]
    common = float(np.clip(needed.mean(), 0.0, intensity.min())) if needed.size else 0.0
    correlation = np.clip(
        (target - common * per_jump) / np.outer(sigma, sigma),
        -_MAX_SHOCK_CORRELATION,
        _MAX_SHOCK_CORRELATION,
    )
    np.fill_diagonal(correlation, 1.0)
    return JointModel(
        models,
        correlation,
        _factor(correlation),
        return_correlation,
        common_jump_intensity=common,
        jump_cholesky=_factor(size_correlation),
    )


def _as_garch(model: PriceModel) -> GarchModel:
    if not isinstance(model, GarchModel):
        raise TypeError(f"expected a garch model, got {model.name}")
    return model
