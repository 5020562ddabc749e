"""Timestamp columns at the edge: which unit they are in, and which rows are out of line.

Files written by ccxt, by Binance's dumps or by pandas hold times in seconds, milliseconds,
microseconds or nanoseconds; the graph runs on int64 nanoseconds. :func:`detect_time_unit`
tells the unit from the dates the values give (a market-data file from before 2000 is taken to
be a unit mistake) and from the spacing of bars against their interval. :func:`time_order`
sorts rows that are merely out of order and finds rows whose time is far out of line with the
rest of the file: after the local clock, or cut off from the bulk of the rows by a gap that
nothing in the file comes near.

Pure functions of their inputs (the caller passes the clock reading), so tests need no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from tradegraph.errors import DataError

I64 = npt.NDArray[np.int64]

UNIT_NS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
YEAR_2000_NS = 946_684_800 * 1_000_000_000
YEAR_2100_NS = 4_102_444_800 * 1_000_000_000
DAY_NS = 86_400_000_000_000
# A row is "far out of line" when a gap this many typical spacings wide (and at least
# OUTLIER_GAP_MIN_NS) cuts it off from the bulk of the file.
OUTLIER_GAP_SPACINGS = 10_000
OUTLIER_GAP_MIN_NS = 30 * DAY_NS
# Rows cut off that way are dropped only while they are a small part of the file: a segment
# holding more than this share of the rows is real data with a gap in it.
OUTLIER_MAX_SHARE = 0.01
# Times up to this far after the local clock pass (clock skew, a bar that opened just now).
FUTURE_TOLERANCE_NS = DAY_NS


def _date(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{rest:09d}".rstrip("0") if rest else "")


def median_spacing(ts: I64) -> int | None:
    """The median gap between distinct sorted values, or None with fewer than two."""
    distinct = np.unique(ts)
    if distinct.shape[0] < 2:
        return None
    return int(np.median(np.diff(distinct)))


def detect_time_unit(ts: I64, spacing_ns: int | None, where: str) -> str:
    """The unit (``s``, ``ms``, ``us`` or ``ns``) that the integer times ``ts`` are in.

    Args:
        ts: the raw column values.
        spacing_ns: the bar interval when ``ts`` are bar open times (None for trades).
        where: file and column, for the error message.

    Raises:
        DataError: when neither the dates nor the spacing tell the unit.
    """
    if ts.shape[0] == 0:
        return "ns"
    middle = int(np.median(ts))
    if middle >= YEAR_2000_NS:
        return "ns"
    spacing = median_spacing(ts)
    by_date = [u for u, f in UNIT_NS.items() if YEAR_2000_NS <= middle * f < YEAR_2100_NS]
    by_spacing = (
        [u for u, f in UNIT_NS.items() if spacing * f == spacing_ns]
        if spacing is not None and spacing_ns is not None
        else []
    )
    if "ns" in by_spacing:
        # Synthetic data near the epoch, spaced exactly as its interval says.
        return "ns"
    if len(by_date) == 1:
        return by_date[0]
    if len(by_spacing) == 1:
        return by_spacing[0]
    spacing_text = (
        f"; rows are {spacing} apart against an interval of {spacing_ns} ns"
        if spacing is not None and spacing_ns is not None
        else ""
    )
    raise DataError(
        f"{where}: cannot tell the time unit: the values (median {middle}) read as "
        f"{_date(middle)} in ns and fit no unit (s, ms, us, ns) with a date in 2000-2100"
        f"{spacing_text}; write times since the epoch as int64 ns or as an Arrow timestamp"
    )


@dataclass(frozen=True)
class TimeOrder:
    """What :func:`time_order` found: the rows to keep, in time order, and what it dropped."""

    keep: npt.NDArray[np.intp]
    out_of_order: int
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_ts: tuple[int, ...] = ()


def time_order(ts: I64, spacing_ns: int | None, now_ns: int) -> TimeOrder:
    """Positions of the rows to keep, sorted by time (stable: equal times keep file order).

    Dropped: rows later than ``now_ns`` plus :data:`FUTURE_TOLERANCE_NS` (``after_local_clock``)
    and rows cut off from the bulk of the file by a gap far wider than the typical spacing
    (``far_from_neighbours``; see the module constants). ``out_of_order`` counts rows earlier
    than the row before them in the file.
    """
    n = int(ts.shape[0])
    out_of_order = int(np.count_nonzero(ts[1:] < ts[:-1])) if n > 1 else 0
    if out_of_order:
        order = np.argsort(ts, kind="stable")
        sorted_ts = ts[order]
    else:
        # Already in order (the usual file): a stable sort would leave it as it is.
        order = np.arange(n)
        sorted_ts = ts
    dropped: dict[str, int] = {}
    future = sorted_ts > now_ns + FUTURE_TOLERANCE_NS
    if future.any():
        dropped["after_local_clock"] = int(future.sum())
    keep_mask = ~future
    candidates = sorted_ts[keep_mask]
    if candidates.shape[0] > 2:
        typical = spacing_ns if spacing_ns is not None else median_spacing(candidates)
        gap_limit = max(OUTLIER_GAP_SPACINGS * (typical or 0), OUTLIER_GAP_MIN_NS)
        cuts = np.flatnonzero(np.diff(candidates) > gap_limit) + 1
        if cuts.shape[0]:
            bounds = [0, *cuts.tolist(), int(candidates.shape[0])]
            sizes = np.diff(bounds)
            small = sizes <= OUTLIER_MAX_SHARE * candidates.shape[0]
            if small.any() and not small.all():
                far = np.zeros(candidates.shape[0], dtype=bool)
                for seg in np.flatnonzero(small).tolist():
                    far[bounds[seg] : bounds[seg + 1]] = True
                dropped["far_from_neighbours"] = int(far.sum())
                positions = np.flatnonzero(keep_mask)
                keep_mask[positions[far]] = False
    dropped_ts = tuple(int(t) for t in sorted_ts[~keep_mask][:5].tolist())
    return TimeOrder(order[keep_mask], out_of_order, dropped, dropped_ts)


def describe_times(values: tuple[int, ...]) -> list[str]:
    """Times as ISO date-times for a log line."""
    return [_date(v) for v in values]
