"""Comparing runs: equity curves aligned on common timestamps, and a bootstrap confidence
interval for the difference of two runs' Sharpe ratios.

The interval comes from the stationary bootstrap (Politis and Romano 1994): a resample is
built from blocks of consecutive periods that start at uniformly random periods and whose
lengths are geometric with mean ``mean_block`` (wrapping round the end), so the serial
dependence of returns within a block survives. Both runs are resampled with the same
indices, so their correlation survives too; that is what makes the interval of the
*difference* narrower than the two Sharpe ratios' own. The interval is the percentile one:
the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled
differences. Sharpe is ``mean / std`` (``ddof=1``) per period, times
``sqrt(periods_per_year)`` when that is given; a series with no spread has Sharpe 0, as in
``report/performance.py``. The statistics take numpy arrays; :func:`compare_runs` takes
loaded runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tradegraph.errors import DataError

if TYPE_CHECKING:
    from tradegraph.research.runs import Run

DEFAULT_RESAMPLES = 2_000
DEFAULT_CONFIDENCE = 0.95
MIN_PERIODS = 3
# Index matrices are built this many cells at a time, so memory stays flat for long curves.
_CELLS_PER_BATCH = 2_000_000


@dataclass(frozen=True)
class SharpeDifference:
    """A bootstrap confidence interval for ``Sharpe(a) - Sharpe(b)``.

    Attributes:
        difference: The difference on the returns as they are.
        low: Lower end of the interval.
        high: Upper end of the interval.
        confidence: The interval's confidence level, e.g. 0.95.
        resamples: Bootstrap resamples drawn.
        mean_block: Mean block length of the stationary bootstrap, in periods.
        periods: Aligned periods (returns) the statistic was computed on.
        seed: Seed of the resampling.
    """

    difference: float
    low: float
    high: float
    confidence: float
    resamples: int
    mean_block: float
    periods: int
    seed: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or below zero."""
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def sharpe(returns: npt.ArrayLike, periods_per_year: float = 1.0) -> float:
    """``mean / std`` (``ddof=1``) of ``returns``, times ``sqrt(periods_per_year)``; 0 when
    the returns have no spread."""
    values = np.asarray(returns, dtype=np.float64)
    return float(_sharpe_rows(values[np.newaxis, :])[0]) * math.sqrt(periods_per_year)


def _sharpe_rows(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mean = values.mean(axis=1)
    std = values.std(axis=1, ddof=1)
    # A spread below rounding noise of the mean is no spread: identical values give 0.
    flat = std <= 1e-14 * np.maximum(np.abs(mean), 1e-300)
    out: npt.NDArray[np.float64] = np.where(flat, 0.0, mean / np.where(flat, 1.0, std))
    return out


def default_mean_block(periods: int) -> float:
    """``periods ** (1/3)``, at least 1: the rate at which the optimal mean block length of
    the stationary bootstrap grows with the sample (Politis and White 2004)."""
    return max(1.0, round(math.pow(periods, 1.0 / 3.0), 1))


def stationary_bootstrap_indices(
    periods: int, resamples: int, mean_block: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``resamples`` x ``periods`` indices of stationary-bootstrap resamples of ``periods``
    observations: each position starts a new block with probability ``1 / mean_block``, at a
    uniformly random period; otherwise it takes the period after the previous one (wrapping)."""
    positions = np.arange(periods, dtype=np.int64)
    new_block = rng.random((resamples, periods)) < 1.0 / mean_block
    new_block[:, 0] = True
    block_start = np.maximum.accumulate(np.where(new_block, positions, 0), axis=1)
    origins = np.take_along_axis(
        rng.integers(0, periods, size=(resamples, periods), dtype=np.int64), block_start, axis=1
    )
    indices: npt.NDArray[np.int64] = (origins + positions - block_start) % periods
    return indices


def sharpe_difference_interval(
    returns_a: npt.ArrayLike,
    returns_b: npt.ArrayLike,
    *,
    periods_per_year: float = 1.0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    mean_block: float | None = None,
    seed: int = 0,
) -> SharpeDifference:
    """A stationary-bootstrap confidence interval for ``Sharpe(a) - Sharpe(b)``.

    Args:
        returns_a: Per-period returns of the first run.
        returns_b: Per-period returns of the second, on the same periods as ``returns_a``.
        periods_per_year: Annualises both Sharpe ratios (1: per period).
        resamples: Bootstrap resamples.
        confidence: Confidence level of the interval, in (0, 1).
        mean_block: Mean block length in periods (default :func:`default_mean_block`).
        seed: Seed of the resampling; the same seed gives the same interval.

    Raises:
        DataError: The series differ in length, are too short, or hold a non-finite value;
            or an argument is out of range.
    """
    a = np.asarray(returns_a, dtype=np.float64)
    b = np.asarray(returns_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise DataError(f"returns must be two series of one length, got {a.shape} and {b.shape}")
    if a.size < MIN_PERIODS:
        raise DataError(f"need at least {MIN_PERIODS} common periods to compare, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("returns hold a NaN or infinite value")
    if not 0.0 < confidence < 1.0:
        raise DataError(f"confidence must be in (0, 1), was {confidence}")
    if resamples < 1:
        raise DataError(f"resamples must be >= 1, was {resamples}")
    if not periods_per_year > 0.0:
        raise DataError(f"periods_per_year must be > 0, was {periods_per_year}")
    block = default_mean_block(a.size) if mean_block is None else float(mean_block)
    if not block >= 1.0:
        raise DataError(f"mean_block must be >= 1, was {mean_block}")
    scale = math.sqrt(periods_per_year)
    rng = np.random.default_rng(seed)
    batch = max(1, _CELLS_PER_BATCH // a.size)
    differences = []
    for done in range(0, resamples, batch):
        indices = stationary_bootstrap_indices(a.size, min(batch, resamples - done), block, rng)
        differences.append(_sharpe_rows(a[indices]) - _sharpe_rows(b[indices]))
    spread = np.concatenate(differences) * scale
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return SharpeDifference(
        difference=(float(_sharpe_rows(a[np.newaxis])[0]) - float(_sharpe_rows(b[np.newaxis])[0]))
        * scale,
        low=float(low),
        high=float(high),
        confidence=confidence,
        resamples=resamples,
        mean_block=block,
        periods=int(a.size),
        seed=seed,
    )


def aligned_returns(
    timestamps: Sequence[npt.ArrayLike], equities: Sequence[npt.ArrayLike]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per-period returns of several equity curves on the timestamps they all share.

    Args:
        timestamps: Each curve's timestamps (ns), increasing.
        equities: Each curve's equity at those timestamps.

    Returns:
        The common timestamps after the first (each return's period end), and a
        periods x curves matrix of simple returns between consecutive common timestamps.

    Raises:
        DataError: A curve's lengths differ, or fewer than two timestamps are common.
    """
    if len(timestamps) != len(equities) or not timestamps:
        raise DataError("give one equity series per timestamp series, at least one")
    series = []
    for number, (ts, eq) in enumerate(zip(timestamps, equities, strict=True), start=1):
        t = np.asarray(ts, dtype=np.int64)
        e = np.asarray(eq, dtype=np.float64)
        if t.shape != e.shape:
            raise DataError(f"curve {number}: {t.size} timestamps but {e.size} equity values")
        series.append((t, e))
    common = series[0][0]
    for t, _ in series[1:]:
        common = np.intersect1d(common, t, assume_unique=False)
    if common.size < 2:
        raise DataError(
            f"the equity curves share {common.size} timestamp(s); runs over different periods "
            "cannot be compared"
        )
    columns = []
    for t, e in series:
        values = e[np.searchsorted(t, common)]
        previous = values[:-1]
        columns.append(
            np.where(
                previous != 0.0, values[1:] / np.where(previous != 0.0, previous, 1.0) - 1.0, 0.0
            )
        )
    return common[1:], np.column_stack(columns)


# -- runs -----------------------------------------------------------------------------------

COMPARED_METRICS = (
    "status",
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "round_trips",
    "orders",
    "fills",
    "final_equity",
    "pnl",
    "fees",
)
"""The summary fields ``tradegraph compare`` puts side by side, in order."""

METHOD = (
    "Sharpe difference: first run minus each other, annualised, on per-period returns of the "
    "equity curves at the timestamps all runs share; {confidence:.0%} percentile interval of "
    "{resamples:,} stationary-bootstrap resamples (Politis and Romano 1994, mean block "
    "{mean_block:g} periods, both runs resampled with the same indices, seed {seed})."
)


def run_labels(names: Sequence[str], folders: Sequence[str]) -> list[str]:
    """A distinct label per run: its name, with its folder when names repeat, and its
    position when that still repeats."""
    labels = [
        f"{name} ({folder})" if names.count(name) > 1 else name
        for name, folder in zip(names, folders, strict=True)
    ]
    return [
        f"{label} #{number}" if labels.count(label) > 1 else label
        for number, label in enumerate(labels, start=1)
    ]


def compare_runs(
    runs: Sequence[Run],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    mean_block: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The runs' metrics side by side and, for each run after the first, the bootstrap
    interval of the first run's Sharpe minus its own (see :func:`sharpe_difference_interval`).

    Returns:
        ``runs`` (label, path, name and :data:`COMPARED_METRICS` of each), ``aligned_periods``,
        ``periods_per_year``, ``sharpe_difference`` (one entry per other run) and ``method``.

    Raises:
        DataError: No run given, or two runs share too few timestamps to compare.
    """
    from tradegraph.report.performance import infer_periods_per_year

    if not runs:
        raise DataError("give at least one run to compare")
    labels = run_labels(
        [run.name for run in runs], [run.path.name if run.path else "-" for run in runs]
    )
    table = [
        {
            "label": label,
            "path": str(run.path) if run.path else None,
            "name": run.name,
            **{key: run.summary.get(key) for key in COMPARED_METRICS},
        }
        for label, run in zip(labels, runs, strict=True)
    ]
    out: dict[str, Any] = {"runs": table, "sharpe_difference": []}
    if len(runs) < 2:
        return out
    stamps, returns = aligned_returns(
        [run.equity.index.asi8 for run in runs], [run.equity["equity"].to_numpy() for run in runs]
    )
    spacing = int(np.median(np.diff(stamps))) if stamps.size > 1 else 0
    periods_per_year = infer_periods_per_year(spacing) if spacing > 0 else 1.0
    intervals = [
        sharpe_difference_interval(
            returns[:, 0],
            returns[:, k],
            periods_per_year=periods_per_year,
            resamples=resamples,
            confidence=confidence,
            mean_block=mean_block,
            seed=seed,
        )
        for k in range(1, len(runs))
    ]
    out["aligned_periods"] = int(returns.shape[0])
    out["periods_per_year"] = periods_per_year
    out["sharpe_difference"] = [
        {"baseline": labels[0], "run": labels[k], **ci.to_dict()}
        for k, ci in enumerate(intervals, start=1)
    ]
    out["method"] = METHOD.format(
        confidence=confidence, resamples=resamples, mean_block=intervals[0].mean_block, seed=seed
    )
    return out
