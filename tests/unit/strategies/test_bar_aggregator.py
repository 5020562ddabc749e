"""BarAggregator: epoch alignment, delivery at the close, gaps, trades to bars, state."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.stubs import BTC_ID, MINUTE_NS, bar, trade
from tradegraph.contracts import Bar
from tradegraph.strategies.bar_aggregator import BarAggregator, BarAggregatorState

FIVE_MIN_NS = 5 * MINUTE_NS
HOUR_NS = 60 * MINUTE_NS


def feed(aggregator: BarAggregator, inputs: list[Bar]) -> list[tuple[str, Bar]]:
    """Each input and each longer bar in the order a strategy sees them."""
    seen: list[tuple[str, Bar]] = []
    for b in inputs:
        overdue = aggregator.close_before(b.ts_open_ns, b.ts_init_ns)
        if overdue is not None:
            seen.append(("long", overdue))
        seen.append(("base", b))
        closed = aggregator.add_bar(b)
        if closed is not None:
            seen.append(("long", closed))
    return seen


def minute(k: int, close: float, **kw: float) -> Bar:
    """The 1m bar opening at minute ``k`` of the epoch (it closes at ``k + 1``)."""
    return bar(close, ts_ns=(k + 1) * MINUTE_NS, **kw)  # type: ignore[arg-type]


def test_five_minute_bar_is_ohlcv_of_its_minutes_and_closes_with_the_last() -> None:
    aggregator = BarAggregator(BTC_ID, FIVE_MIN_NS)
    minutes = [
        minute(0, 101.0, open_=100.0, high=102.0, low=99.0, volume=1.0),
        minute(1, 104.0, open_=101.0, high=105.0, low=100.0, volume=2.0),
        minute(2, 103.0, open_=104.0, high=104.0, low=98.0, volume=3.0),
        minute(3, 103.5, open_=103.0, high=104.0, low=102.0, volume=4.0),
        minute(4, 102.0, open_=103.5, high=103.5, low=101.0, volume=5.0),
    ]

    seen = feed(aggregator, minutes)

    assert [kind for kind, _ in seen] == ["base"] * 5 + ["long"]
    five = seen[-1][1]
    assert (five.open, five.high, five.low, five.close, five.volume) == (
        100.0,
        105.0,
        98.0,
        102.0,
        15.0,
    )
    assert five.ts_event_ns == 5 * MINUTE_NS == minutes[-1].ts_event_ns
    assert five.interval_ns == FIVE_MIN_NS
    assert five.instrument_id == BTC_ID
    assert not aggregator.building


def test_bars_align_to_the_epoch_not_to_the_first_input() -> None:
    # The run starts at minute 62: the first hour bar covers [01:00, 02:00) and holds 58 minutes.
    aggregator = BarAggregator(BTC_ID, HOUR_NS)
    minutes = [minute(k, 100.0 + k) for k in range(62, 62 + 120)]

    longs = [b for kind, b in feed(aggregator, minutes) if kind == "long"]

    assert [b.ts_event_ns for b in longs] == [2 * HOUR_NS, 3 * HOUR_NS]
    assert longs[0].open == 162.0
    assert longs[0].close == 219.0
    assert longs[0].volume == 58.0
    assert longs[1].open == 220.0
    assert longs[1].volume == 60.0
    assert aggregator.building  # minutes 180 and 181 wait for the rest of their hour


def test_gap_closes_the_bar_before_the_first_input_past_its_end() -> None:
    # Minute 4 (closing 00:05) is missing: the 00:00 bar closes when minute 7 arrives, before it.
    aggregator = BarAggregator(BTC_ID, FIVE_MIN_NS)
    minutes = [minute(k, 100.0 + k) for k in (0, 1, 2, 3, 7, 8, 9)]

    seen = feed(aggregator, minutes)

    kinds = [(kind, b.ts_event_ns // MINUTE_NS) for kind, b in seen]
    assert kinds == [
        ("base", 1),
        ("base", 2),
        ("base", 3),
        ("base", 4),
        ("long", 5),
        ("base", 8),
        ("base", 9),
        ("base", 10),
        ("long", 10),
    ]
    first = seen[4][1]
    assert first.close == 103.0
    assert first.volume == 4.0
    second = seen[-1][1]
    assert second.open == 107.0
    assert second.volume == 3.0


def test_an_interval_without_inputs_gives_no_bar() -> None:
    aggregator = BarAggregator(BTC_ID, FIVE_MIN_NS)
    minutes = [minute(k, 100.0) for k in (*range(5), *range(20, 25))]

    longs = [b.ts_event_ns // MINUTE_NS for kind, b in feed(aggregator, minutes) if kind == "long"]

    assert longs == [5, 25]


def test_input_interval_that_does_not_divide_is_refused() -> None:
    aggregator = BarAggregator(BTC_ID, 5 * MINUTE_NS)
    three_minutes = bar(100.0, ts_ns=3 * MINUTE_NS, interval_ns=3 * MINUTE_NS)

    with pytest.raises(ValueError, match="not a whole multiple"):
        aggregator.add_bar(three_minutes)


def test_input_bar_crossing_a_boundary_is_refused() -> None:
    # A 1m bar opening at 00:04:30 holds data from after 00:05.
    aggregator = BarAggregator(BTC_ID, FIVE_MIN_NS)
    straddling = bar(100.0, ts_ns=5 * MINUTE_NS + 30 * 10**9)

    with pytest.raises(ValueError, match="aligned to the epoch"):
        aggregator.add_bar(straddling)


def test_trades_build_bars_delivered_with_the_first_trade_past_the_end() -> None:
    aggregator = BarAggregator(BTC_ID, MINUTE_NS)
    second = 10**9
    ticks = [
        trade(100.0, size=1.0, ts_ns=5 * second),
        trade(103.0, size=2.0, ts_ns=20 * second),
        trade(99.0, size=0.5, ts_ns=59 * second),
        trade(101.0, size=1.5, ts_ns=60 * second),  # exactly at the end: opens the next bar
        trade(102.0, size=1.0, ts_ns=200 * second),
    ]

    closed: list[tuple[int, Bar]] = []
    for i, tick in enumerate(ticks):
        done = aggregator.close_before(tick.ts_event_ns, tick.ts_init_ns)
        if done is not None:
            closed.append((i, done))
        aggregator.add_trade(tick)

    assert [i for i, _ in closed] == [3, 4]
    first, second_bar = closed[0][1], closed[1][1]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        100.0,
        103.0,
        99.0,
        99.0,
        3.5,
    )
    assert first.ts_event_ns == MINUTE_NS
    assert first.interval_ns == MINUTE_NS
    assert (second_bar.open, second_bar.close, second_bar.volume) == (101.0, 101.0, 1.5)
    assert second_bar.ts_event_ns == 2 * MINUTE_NS


def test_state_round_trip_through_json_resumes_mid_bar() -> None:
    minutes = [minute(k, 100.0 + k, volume=1.0 + k) for k in range(10)]
    uninterrupted = BarAggregator(BTC_ID, FIVE_MIN_NS)
    expected = feed(uninterrupted, minutes)

    first = BarAggregator(BTC_ID, FIVE_MIN_NS)
    seen = feed(first, minutes[:7])
    stored = json.loads(json.dumps(first.snapshot().model_dump(mode="json")))
    resumed = BarAggregator(BTC_ID, FIVE_MIN_NS)
    resumed.restore(BarAggregatorState.model_validate(stored))
    seen += feed(resumed, minutes[7:])

    assert stored["start_ns"] == FIVE_MIN_NS
    assert seen == expected


def test_restore_into_another_interval_is_refused() -> None:
    state = BarAggregator(BTC_ID, FIVE_MIN_NS).snapshot()

    with pytest.raises(ValueError, match="cannot be restored"):
        BarAggregator(BTC_ID, HOUR_NS).restore(state)


@given(
    present=st.lists(st.booleans(), min_size=1, max_size=200),
    factor=st.sampled_from([2, 3, 5, 15, 60]),
)
def test_longer_bars_never_hold_data_from_after_their_close(
    present: list[bool], factor: int
) -> None:
    interval = factor * MINUTE_NS
    aggregator = BarAggregator(BTC_ID, interval)
    minutes = [minute(k, 100.0 + k, volume=1.0) for k, keep in enumerate(present) if keep]

    seen = feed(aggregator, minutes)

    base_before = 0
    total = 0.0
    for kind, b in seen:
        if kind == "base":
            base_before = b.ts_event_ns
            continue
        assert b.ts_event_ns % interval == 0
        assert base_before <= b.ts_event_ns  # delivered only once its close is known
        inside = [m for m in minutes if b.ts_event_ns - interval < m.ts_event_ns <= b.ts_event_ns]
        assert b.volume == float(len(inside))
        assert b.close == inside[-1].close
        assert b.open == inside[0].open
        total += b.volume
    pending = sum(
        1 for m in minutes if m.ts_open_ns >= (minutes[-1].ts_open_ns // interval) * interval
    )
    assert total + (pending if aggregator.building else 0) == float(len(minutes))
