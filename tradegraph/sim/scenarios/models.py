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

Randomness comes only from the ``numpy.random.Generator`` handed in; :func:`scenario_rng`
derives it from ``(root seed, scenario index)`` so a scenario never depends on which worker
runs it or in what order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from tradegraph.data.catalog import BarArrays
from tradegraph.errors import DataError
from tradegraph.sim.feed import validate_bar_arrays

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
    return replace(
        bars,
        ts_open_ns=bars.ts_open_ns[keep],
        open=bars.open[keep],
        high=bars.high[keep],
        low=bars.low[keep],
        close=bars.close[keep],
        volume=bars.volume[keep],
    )


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

    def draw(self, rng: np.random.Generator, n_bars: int) -> PathDraw: ...

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

    def draw(self, rng: np.random.Generator, n_bars: int) -> PathDraw:
        returns = self.mu + self.sigma * rng.standard_normal(n_bars)
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
        diffusive = np.ones(r.shape[0], dtype=bool)
        for _ in range(20):
            centre = float(np.median(r[diffusive]))
            spread = 1.4826 * float(np.median(np.abs(r[diffusive] - centre)))
            if spread <= 0.0:
                break
            updated = np.abs(r - centre) <= cls.THRESHOLD * spread
            if np.array_equal(updated, diffusive):
                break
            diffusive = updated
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

    def draw(self, rng: np.random.Generator, n_bars: int) -> PathDraw:
        diffusion = self.mu + self.sigma * rng.standard_normal(n_bars)
        counts = rng.poisson(self.jump_intensity, n_bars)
        jumps = counts * self.jump_mean + np.sqrt(counts) * self.jump_std * rng.standard_normal(
            n_bars
        )
        # A jump bar gets wicks as wide as its move relative to an ordinary bar.
        scale = np.where(counts > 0, 1.0 + np.abs(jumps) / max(self.sigma, 1e-12), 1.0)
        return PathDraw(diffusion + jumps, scale)

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

    def draw(self, rng: np.random.Generator, n_bars: int) -> PathDraw:
        z = rng.standard_normal(n_bars).tolist()
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

    def draw(self, rng: np.random.Generator, n_bars: int) -> PathDraw:
        index = stationary_bootstrap_index(rng, self.returns.shape[0], n_bars, self.mean_block)
        return PathDraw(self.returns[index], np.ones(n_bars), self.shape_of_return[index])

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
) -> BarArrays:
    """Draw one path of ``n_bars`` consistent OHLCV bars from ``model``.

    Bars open at ``start_ts_ns`` and every ``interval_ns`` after; the first opens at
    ``start_price`` and each later one at the previous close.

    Raises:
        ValueError: ``n_bars`` or ``interval_ns`` is not positive, or ``start_price`` is not a
            positive number.
    """
    if n_bars <= 0 or interval_ns <= 0:
        raise ValueError(f"n_bars and interval_ns must be > 0, were {n_bars} and {interval_ns}")
    if not (math.isfinite(start_price) and start_price > 0.0):
        raise ValueError(f"start_price must be a positive number, was {start_price}")
    path = model.draw(rng, n_bars)
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
