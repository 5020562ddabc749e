"""Reading a funding-rate series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.data.catalog import read_funding
from tradegraph.errors import DataError

H8 = 8 * 3600 * 1_000_000_000
T0 = 1_751_328_000_000_000_000  # 2025-07-01T00:00Z


def _write(path: Path, columns: dict[str, object]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_reads_sorted_window_and_missing_marks_as_nan(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {
            "ts": pa.array([T0 + 2 * H8, T0, T0 + H8, T0 + 3 * H8], pa.int64()),
            "funding_rate": [0.0003, 0.0001, -0.0002, 0.0004],
        },
    )
    found = read_funding(path, T0, T0 + 3 * H8)
    assert found.ts_ns.tolist() == [T0, T0 + H8, T0 + 2 * H8]
    assert found.rate.tolist() == [0.0001, -0.0002, 0.0003]
    assert bool(np.isnan(found.mark_price).all())


def test_reads_marks_and_millisecond_times(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {
            "ts": pa.array([T0 // 1_000_000, (T0 + H8) // 1_000_000], pa.int64()),
            "funding_rate": [0.0001, 0.0001],
            "mark_price": [100.0, 101.5],
        },
    )
    found = read_funding(path)
    assert found.ts_ns.tolist() == [T0, T0 + H8]
    assert found.mark_price.tolist() == [100.0, 101.5]


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"ts": pa.array([T0], pa.int64()), "rate": [0.1]})
    with pytest.raises(DataError, match="funding_rate"):
        read_funding(path)


@pytest.mark.parametrize(
    ("column", "value"),
    [("funding_rate", float("nan")), ("funding_rate", 2.0), ("mark_price", -5.0)],
)
def test_bad_values_are_refused_naming_the_column(
    tmp_path: Path, column: str, value: float
) -> None:
    cols: dict[str, object] = {
        "ts": pa.array([T0], pa.int64()),
        "funding_rate": [0.0001],
        "mark_price": [100.0],
    }
    cols[column] = [value]
    path = _write(tmp_path / "f.parquet", cols)
    with pytest.raises(DataError, match=column):
        read_funding(path)
