from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import btcusdt, instruments
from tradegraph.contracts import Bar, QuoteTick
from tradegraph.data.catalog import BarArrays
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.engine.streams import prepare_bar_stream, validate_bar_arrays
from tradegraph.errors import DataError
from tradegraph.testing import RecordingOutbox

MIN = 60_000_000_000


INSTRUMENTS = instruments(
    *(
        btcusdt(
            symbol=s,
            venue="V",
            base=s,
            quote="USD",
            lot_size=0.001,
            min_quantity=0.0,
            min_notional=0.0,
        )
        for s in ("AAA", "BBB")
    )
)


def _arrays(symbol: str, rows: list[tuple[int, float, float, float, float, float]]) -> BarArrays:
    a = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), 5)
    return BarArrays(
        symbol=symbol,
        venue="V",
        interval_ns=MIN,
        ts_open_ns=np.array([r[0] for r in rows], dtype=np.int64),
        open=a[:, 0].copy(),
        high=a[:, 1].copy(),
        low=a[:, 2].copy(),
        close=a[:, 3].copy(),
        volume=a[:, 4].copy(),
    )


def test_malformed_rows_are_dropped_and_counted_by_reason() -> None:
    rows = [
        (0 * MIN, 10.0, 11.0, 9.0, 10.5, 1.0),  # good
        (1 * MIN, math.nan, 11.0, 9.0, 10.5, 1.0),  # NaN
        (2 * MIN, 10.0, 11.0, -9.0, 10.5, 1.0),  # non-positive
        (3 * MIN, 10.0, 9.0, 11.0, 10.5, 1.0),  # high < low
        (4 * MIN, 10.0, 11.0, 9.0, 10.5, 1.0),  # good
        (2 * MIN, 10.0, 11.0, 9.0, 10.5, 1.0),  # time going backwards
        (4 * MIN, 10.0, 11.0, 9.0, 10.5, 1.0),  # time standing still
        (5 * MIN, 10.0, 11.0, 9.0, 12.0, 1.0),  # close above high
        (6 * MIN, 10.0, 11.0, 9.0, 10.5, 0.0),  # good (zero volume is allowed)
    ]
    stream = prepare_bar_stream([_arrays("AAA", rows)], INSTRUMENTS)
    assert stream.ts_ns.tolist() == [1 * MIN, 5 * MIN, 7 * MIN]
    assert stream.dropped == {
        "AAA.V": {
            "not_finite": 1,
            "non_positive": 1,
            "inconsistent_ohlc": 2,
            "time_not_increasing": 2,
        }
    }
    assert stream.dropped_total == 6


def test_streams_merge_by_close_time_then_config_order() -> None:
    a = _arrays("AAA", [(0, 1.0, 1.0, 1.0, 1.0, 1.0), (MIN, 2.0, 2.0, 2.0, 2.0, 1.0)])
    b = _arrays("BBB", [(0, 3.0, 3.0, 3.0, 3.0, 1.0), (2 * MIN, 4.0, 4.0, 4.0, 4.0, 1.0)])
    stream = prepare_bar_stream([b, a], INSTRUMENTS)
    bars = list(stream.bars())
    assert [(x.instrument_id, x.close) for x in bars] == [
        ("BBB.V", 3.0),
        ("AAA.V", 1.0),
        ("AAA.V", 2.0),
        ("BBB.V", 4.0),
    ]
    assert all(isinstance(x, Bar) and x.ts_event_ns == x.ts_open_ns + MIN for x in bars)


def test_unknown_instrument_in_data_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no instrument definition"):
        prepare_bar_stream([_arrays("ZZZ", [(0, 1.0, 1.0, 1.0, 1.0, 1.0)])], INSTRUMENTS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 50),
            st.sampled_from([math.nan, -1.0, 0.0, 5.0, 10.0, 15.0, math.inf]),
            st.sampled_from([5.0, 10.0, 15.0, 20.0]),
            st.sampled_from([1.0, 5.0, 10.0]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_no_kept_bar_is_malformed(rows: list[tuple[int, float, float, float]]) -> None:
    data = [(t * MIN, o, h, lo, (h + lo) / 2, 1.0) for t, o, h, lo in rows]
    arrays = _arrays("AAA", data)
    keep, counts = validate_bar_arrays(arrays)
    assert int((~keep).sum()) == sum(counts.values())
    kept_ts = arrays.ts_open_ns[keep]
    assert np.all(np.diff(kept_ts) > 0)
    for i in np.flatnonzero(keep):
        Bar(
            instrument_id="AAA.V",
            open=float(arrays.open[i]),
            high=float(arrays.high[i]),
            low=float(arrays.low[i]),
            close=float(arrays.close[i]),
            volume=float(arrays.volume[i]),
            interval_ns=MIN,
            ts_event_ns=int(arrays.ts_open_ns[i]) + MIN,
            ts_init_ns=0,
        )


def test_streaming_feed_drops_bad_ticks_and_passes_good_ones() -> None:
    out = RecordingOutbox()
    feed = MarketDataFeed(INSTRUMENTS, SimClock(10 * MIN), out)
    assert feed.offer_bar("AAA.V", 0, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    assert not feed.offer_bar("AAA.V", MIN, (math.nan, 101.0, 99.0, 100.0, 1.0), MIN)
    assert not feed.offer_bar("AAA.V", 0, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)  # backwards
    assert not feed.offer_quote("AAA.V", 5, (101.0, 1.0), (100.0, 1.0))  # crossed
    assert feed.offer_quote("AAA.V", 5, (100.0, 1.0), (100.5, 1.0))
    assert not feed.offer_trade("AAA.V", 6, -1.0, 1.0, True, "t1")
    assert feed.offer_trade("AAA.V", 6, 100.2, 0.5, True, "t2")
    assert not feed.offer_trade("AAA.V", 4, 100.2, 0.5, True, "t3")  # backwards
    assert [type(m).__name__ for m in out.messages] == ["Bar", "QuoteTick", "TradeTick"]
    assert dict(feed.dropped) == {
        "not_finite": 1,
        "time_not_increasing": 2,
        "crossed_book": 1,
        "non_positive": 1,
    }
    assert isinstance(out.messages[1], QuoteTick)


def test_streaming_feed_snapshot_round_trip_keeps_time_guard() -> None:
    feed = MarketDataFeed(INSTRUMENTS, SimClock(10 * MIN), RecordingOutbox())
    feed.offer_bar("AAA.V", MIN, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    out = RecordingOutbox()
    restored = MarketDataFeed(INSTRUMENTS, SimClock(10 * MIN), out)
    stored = feed.snapshot().model_dump_json()
    restored.restore(MarketDataFeed.State.model_validate_json(stored))
    assert restored.snapshot() == feed.snapshot()
    assert not restored.offer_bar("AAA.V", 0, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    assert out.messages == []
