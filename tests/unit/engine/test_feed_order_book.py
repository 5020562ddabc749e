"""MarketDataFeed.offer_book: order books from a live venue are checked before the graph sees them."""

from __future__ import annotations

import math

import pytest

from tests.support.stubs import btcusdt
from tradegraph.contracts import OrderBookSnapshot
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0)
BTC_ID = BTC.instrument_id


def _feed() -> tuple[MarketDataFeed, RecordingOutbox]:
    outbox = RecordingOutbox()
    return MarketDataFeed({BTC_ID: BTC}, SimClock(5), outbox), outbox


def test_sound_book_is_published_as_a_snapshot() -> None:
    feed, outbox = _feed()

    ok = feed.offer_book(BTC_ID, 1_000, [(100.0, 1.0), (99.5, 2.0)], [(100.5, 1.5)], sequence=7)

    assert ok
    [book] = outbox.of_type(OrderBookSnapshot)
    assert book.bids == ((100.0, 1.0), (99.5, 2.0))
    assert book.asks == ((100.5, 1.5),)
    assert (book.sequence, book.ts_event_ns, book.ts_init_ns) == (7, 1_000, 5)


@pytest.mark.parametrize(
    ("bids", "asks", "reason"),
    [
        ([(math.nan, 1.0)], [(101.0, 1.0)], "not_finite"),
        ([(100.0, math.inf)], [(101.0, 1.0)], "not_finite"),
        ([(100.0, 0.0)], [(101.0, 1.0)], "non_positive"),
        ([(-1.0, 1.0)], [(101.0, 1.0)], "non_positive"),
        ([(100.0, 1.0), (100.5, 1.0)], [(101.0, 1.0)], "unsorted_book"),
        ([(100.0, 1.0)], [(101.0, 1.0), (100.9, 1.0)], "unsorted_book"),
        ([(101.0, 1.0)], [(101.0, 1.0)], "crossed_book"),
        ([(102.0, 1.0)], [(101.0, 1.0)], "crossed_book"),
    ],
)
def test_unsound_book_is_dropped_and_counted(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], reason: str
) -> None:
    feed, outbox = _feed()

    ok = feed.offer_book(BTC_ID, 1_000, bids, asks)

    assert not ok
    assert outbox.messages == []
    assert feed.dropped == {reason: 1}


def test_book_whose_sequence_does_not_advance_is_dropped_as_stale() -> None:
    feed, outbox = _feed()
    feed.offer_book(BTC_ID, 1_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=10)

    repeated = feed.offer_book(BTC_ID, 2_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=10)
    older = feed.offer_book(BTC_ID, 3_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=9)
    newer = feed.offer_book(BTC_ID, 4_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=11)

    assert (repeated, older, newer) == (False, False, True)
    assert feed.dropped == {"stale_sequence": 2}
    assert [b.sequence for b in outbox.of_type(OrderBookSnapshot)] == [10, 11]


def test_book_going_back_in_time_is_dropped() -> None:
    feed, _ = _feed()
    feed.offer_book(BTC_ID, 2_000, [(100.0, 1.0)], [(101.0, 1.0)])

    ok = feed.offer_book(BTC_ID, 1_000, [(100.0, 1.0)], [(101.0, 1.0)])

    assert not ok
    assert feed.dropped == {"time_not_increasing": 1}


def test_book_sequence_guard_survives_snapshot_and_restore() -> None:
    feed, _ = _feed()
    feed.offer_book(BTC_ID, 1_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=10)
    restored, _ = _feed()
    restored.restore(feed.snapshot())

    ok = restored.offer_book(BTC_ID, 2_000, [(100.0, 1.0)], [(101.0, 1.0)], sequence=10)

    assert not ok
    assert restored.dropped["stale_sequence"] == 1
