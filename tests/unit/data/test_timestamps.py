"""Telling the unit of a time column and finding rows out of line, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from tradegraph.data.timestamps import DAY_NS, detect_time_unit, time_order
from tradegraph.errors import DataError

MINUTE_NS = 60_000_000_000
JULY_1_NS = 1_751_328_000_000_000_000
NOW_NS = JULY_1_NS + 30 * DAY_NS


def _minutes(n: int, start_ns: int = JULY_1_NS) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return start_ns + np.arange(n, dtype=np.int64) * MINUTE_NS


@pytest.mark.parametrize(("unit", "factor"), [("s", 10**9), ("ms", 10**6), ("us", 10**3)])
def test_unit_is_told_from_the_dates(unit: str, factor: int) -> None:
    assert detect_time_unit(_minutes(100) // factor, MINUTE_NS, "f") == unit
    assert detect_time_unit(_minutes(100) // factor, None, "f") == unit


def test_ns_and_synthetic_epoch_data_spaced_by_the_interval_stay_ns() -> None:
    assert detect_time_unit(_minutes(10), MINUTE_NS, "f") == "ns"
    assert detect_time_unit(_minutes(10, start_ns=0), MINUTE_NS, "f") == "ns"


def test_spacing_tells_the_unit_of_dates_near_the_epoch() -> None:
    assert detect_time_unit(_minutes(10, start_ns=0) // 10**6, MINUTE_NS, "f") == "ms"


def test_no_unit_fits_is_an_error_naming_where() -> None:
    with pytest.raises(DataError, match=r"^bars.csv: column 'ts': cannot tell the time unit"):
        detect_time_unit(np.arange(10, dtype=np.int64) * 7, MINUTE_NS, "bars.csv: column 'ts'")


def test_unsorted_rows_are_sorted_and_counted() -> None:
    ts = _minutes(6)[[0, 2, 1, 3, 5, 4]]
    found = time_order(ts, MINUTE_NS, NOW_NS)
    assert ts[found.keep].tolist() == _minutes(6).tolist()
    assert found.out_of_order == 2
    assert found.dropped == {}


def test_equal_times_keep_file_order() -> None:
    ts = np.array([5, 3, 5, 3], dtype=np.int64) + JULY_1_NS
    assert time_order(ts, None, NOW_NS).keep.tolist() == [1, 3, 0, 2]


def test_row_after_the_local_clock_is_dropped_alone() -> None:
    ts = _minutes(2_000)
    ts[1_000] = NOW_NS + 2 * DAY_NS
    found = time_order(ts, MINUTE_NS, NOW_NS)
    assert found.dropped == {"after_local_clock": 1}
    assert found.keep.shape[0] == 1_999
    assert 1_000 not in found.keep.tolist()


def test_row_far_before_the_rest_is_dropped_but_a_real_gap_is_kept() -> None:
    ts = _minutes(2_000)
    ts[0] -= 400 * DAY_NS
    found = time_order(ts, MINUTE_NS, NOW_NS)
    assert found.dropped == {"far_from_neighbours": 1}
    assert found.dropped_ts == (int(ts[0]),)
    # Two halves two months apart are both real data.
    halves = np.concatenate([_minutes(1_000), _minutes(1_000, start_ns=JULY_1_NS - 60 * DAY_NS)])
    assert time_order(halves, MINUTE_NS, NOW_NS).keep.shape[0] == 2_000
