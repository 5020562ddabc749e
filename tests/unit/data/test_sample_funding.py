"""The bundled synthetic funding series is what its documented rule makes of the bundled bars."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from tradegraph.data.catalog import read_bars, read_funding, resolve_path
from tradegraph.data.synthetic import synthetic_funding

EIGHT_HOURS_NS = 8 * 3600 * 1_000_000_000


def test_sample_funding_regenerates_from_the_bars() -> None:
    bars = read_bars("sample:BTCUSDT_1m")[0]
    expected = synthetic_funding(bars)
    stored = pq.read_table(resolve_path("sample:BTCUSDT-PERP_funding"))
    assert stored.column_names == ["ts", "funding_rate"]
    assert stored.equals(expected)


def test_sample_funding_is_eight_hourly_and_capped() -> None:
    found = read_funding("sample:BTCUSDT-PERP_funding")
    assert len(found) == 92
    assert set(np.diff(found.ts_ns).tolist()) == {EIGHT_HOURS_NS}
    assert int(found.ts_ns[0]) % EIGHT_HOURS_NS == 0
    assert float(np.abs(found.rate).max()) <= 0.00075
    assert bool(np.isnan(found.mark_price).all())
