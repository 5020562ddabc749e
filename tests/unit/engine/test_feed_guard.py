"""The md core's checks on live frames: prices against a band around recent prices, times
against the component's clock. Bad frames are dropped, counted (also as a metric) and logged;
none of them blocks the frames after it."""

from __future__ import annotations

from tests.support.stubs import btcusdt, instruments
from tradegraph.config.models import MarketDataChecksConfig
from tradegraph.contracts import Bar, TradeTick
from tradegraph.engine.clock import SimClock
from tradegraph.engine.market_data import MarketDataFeed
from tradegraph.observability.metrics import MARKET_DATA_DROPPED, GraphMetrics, InMemorySink
from tradegraph.testing import RecordingOutbox

MIN = 60_000_000_000


INSTRUMENTS = instruments(
    btcusdt(
        symbol="AAA",
        venue="V",
        base="AAA",
        quote="USD",
        lot_size=0.001,
        min_quantity=0.0,
        min_notional=0.0,
    )
)
NOW = 1_750_000_000_000_000_000
YEAR_NS = 365 * 86_400_000_000_000


def _feed(
    checks: MarketDataChecksConfig | None = None,
) -> tuple[MarketDataFeed, RecordingOutbox, SimClock, GraphMetrics, InMemorySink]:
    out = RecordingOutbox()
    clock = SimClock(NOW)
    sink = InMemorySink()
    metrics = GraphMetrics(sink)
    return MarketDataFeed(INSTRUMENTS, clock, out, checks, metrics), out, clock, metrics, sink


def _prices(out: RecordingOutbox) -> list[float]:
    return [m.price for m in out.messages if isinstance(m, TradeTick)]


def test_absurd_prices_are_dropped_counted_and_later_good_ones_pass() -> None:
    feed, out, _, metrics, sink = _feed()
    for i, price in enumerate([60_000.0, 60_010.0, 1e-6, 1e12, 60_020.0]):
        feed.offer_trade("AAA.V", NOW - 1_000 + i, price, 0.1, True, f"t{i}")
    metrics.flush()

    assert _prices(out) == [60_000.0, 60_010.0, 60_020.0]
    assert feed.dropped == {"price_out_of_band": 2}
    assert sink.total(MARKET_DATA_DROPPED, reason="price_out_of_band", instrument="AAA.V") == 2


def test_bar_with_one_absurd_wick_is_dropped() -> None:
    feed, out, _, _, _ = _feed()
    assert feed.offer_bar("AAA.V", NOW - 3 * MIN, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    assert not feed.offer_bar("AAA.V", NOW - 2 * MIN, (100.0, 1e12, 99.0, 100.0, 1.0), MIN)
    assert feed.offer_bar("AAA.V", NOW - 1 * MIN, (100.0, 102.0, 99.0, 101.0, 1.0), MIN)
    assert [m.high for m in out.messages if isinstance(m, Bar)] == [101.0, 102.0]


def test_frame_a_year_ahead_is_dropped_and_blocks_nothing_after_it() -> None:
    feed, out, clock, metrics, sink = _feed()
    assert feed.offer_trade("AAA.V", NOW - 10, 100.0, 1.0, True, "a")
    assert not feed.offer_trade("AAA.V", NOW + YEAR_NS, 100.0, 1.0, True, "future")
    assert feed.offer_trade("AAA.V", NOW - 5, 100.5, 1.0, False, "b")
    clock.advance_to(NOW + 10 * MIN)
    assert feed.offer_trade("AAA.V", NOW + 9 * MIN, 100.4, 1.0, False, "c")
    assert not feed.offer_bar("AAA.V", NOW + YEAR_NS, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    assert feed.offer_bar("AAA.V", NOW + 8 * MIN, (100.0, 101.0, 99.0, 100.0, 1.0), MIN)
    metrics.flush()

    assert _prices(out) == [100.0, 100.5, 100.4]
    assert feed.dropped == {"ahead_of_clock": 2}
    assert sink.total(MARKET_DATA_DROPPED, reason="ahead_of_clock") == 2


def test_tolerance_lets_a_slightly_fast_exchange_clock_through() -> None:
    feed, out, _, _, _ = _feed(MarketDataChecksConfig(max_ahead_s=2.0))
    assert feed.offer_trade("AAA.V", NOW + 1_900_000_000, 100.0, 1.0, True, "a")
    assert not feed.offer_trade("AAA.V", NOW + 2_100_000_000, 100.0, 1.0, True, "b")
    assert _prices(out) == [100.0]


def test_a_real_jump_is_accepted_after_consistent_prints() -> None:
    feed, out, _, _, _ = _feed(MarketDataChecksConfig(price_band_pct=10.0, reanchor_after=3))
    feed.offer_trade("AAA.V", NOW - 100, 100.0, 1.0, True, "a")
    # Scattered outliers never agree with each other: all dropped.
    for i, price in enumerate([1e-6, 1e12, 1e-6]):
        assert not feed.offer_trade("AAA.V", NOW - 90 + i, price, 1.0, True, f"x{i}")
    # A market that really moved 30% prints there again and again: the third print is taken.
    taken = [
        feed.offer_trade("AAA.V", NOW - 80 + i, p, 1.0, True, f"j{i}")
        for i, p in enumerate([130.0, 131.0, 130.5, 131.5])
    ]
    assert taken == [False, False, True, True]
    assert _prices(out) == [100.0, 130.5, 131.5]


def test_quotes_and_books_are_held_to_the_same_band() -> None:
    feed, out, _, _, _ = _feed()
    assert feed.offer_quote("AAA.V", NOW - 3, (99.9, 1.0), (100.1, 1.0))
    assert not feed.offer_quote("AAA.V", NOW - 2, (0.000001, 1.0), (100.1, 1.0))
    assert not feed.offer_book("AAA.V", NOW - 1, [(99.9, 1.0)], [(1e12, 1.0)])
    assert feed.offer_book("AAA.V", NOW, [(99.9, 1.0)], [(100.2, 1.0)])
    assert feed.dropped == {"price_out_of_band": 2}
    assert len(out.messages) == 2


def test_reference_prices_survive_a_snapshot() -> None:
    feed, _, _, _, _ = _feed()
    feed.offer_trade("AAA.V", NOW - 10, 100.0, 1.0, True, "a")
    restored, out, _, _, _ = _feed()
    restored.restore(feed.snapshot())
    assert not restored.offer_trade("AAA.V", NOW - 5, 1e12, 1.0, True, "b")
    assert out.messages == []
