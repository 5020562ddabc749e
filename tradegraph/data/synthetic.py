"""Synthetic data derived deterministically from the bundled bars (see
``tradegraph/data/sample/PROVENANCE.md``): nothing here is market data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tradegraph.data.catalog import BarArrays

FUNDING_INTERVAL_NS = 8 * 3600 * 1_000_000_000
BASE_RATE = 0.0001
"""Binance's default funding rate per 8 hours (interest component 0.01 %)."""
RATE_CAP = 0.00075
PREMIUM_WEIGHT = 0.05


def synthetic_funding(bars: BarArrays) -> pa.Table:
    """A funding series for a perpetual standing on ``bars`` (1-minute spot bars).

    Events every 8 hours on the UTC clock (00:00, 08:00, 16:00) from the first bar close to
    the last; at each, ``funding_rate = clip(0.0001 + 0.05 * r, -0.00075, 0.00075)`` rounded to
    1e-8, where ``r`` is the log return of the close over the 8 hours before the event (the
    close of the bar that closes at the event against the close 8 hours earlier). No
    ``mark_price`` column: the venue's mark proxy (the last bar close) applies.
    """
    close_ns = bars.ts_open_ns + bars.interval_ns
    first = int(close_ns[0])
    start = -(-first // FUNDING_INTERVAL_NS) * FUNDING_INTERVAL_NS
    times = np.arange(start + FUNDING_INTERVAL_NS, int(close_ns[-1]) + 1, FUNDING_INTERVAL_NS)
    at = np.searchsorted(close_ns, times, side="right") - 1
    before = np.searchsorted(close_ns, times - FUNDING_INTERVAL_NS, side="right") - 1
    keep = (at >= 0) & (before >= 0)
    times, at, before = times[keep], at[keep], before[keep]
    r = np.log(bars.close[at] / bars.close[before])
    rate = np.round(np.clip(BASE_RATE + PREMIUM_WEIGHT * r, -RATE_CAP, RATE_CAP), 8)
    return pa.table({"ts": pa.array(times, pa.int64()), "funding_rate": pa.array(rate)})
