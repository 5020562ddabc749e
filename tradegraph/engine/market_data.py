"""The ``md`` component for streamed data (paper and live sessions): each message is checked as
it comes (finite, positive, in time order, inside a price band) and only good ones are published.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import ClassVar

from tradegraph.config.models import MarketDataChecksConfig
from tradegraph.contracts import (
    MARKET_DATA,
    Bar,
    Clock,
    Instrument,
    Message,
    OrderBookSnapshot,
    Outbox,
    QuoteTick,
    TradeTick,
)
from tradegraph.contracts.state import ComponentState
from tradegraph.observability import get_logger
from tradegraph.observability.metrics import GraphMetrics


class PriceBand:
    """Per instrument, whether a price is in line with the recently published ones.

    The reference is the median of the last ``reference_prices`` accepted prices; a price more
    than ``price_band_pct`` away from it (either way, as a ratio) is out of band. No reference
    yet: every price is in band. ``reanchor_after`` consecutive out-of-band prices that agree
    with each other within the band are a real move: the last one is accepted and the reference
    starts again from it, so that one bad frame, or a real jump, never blocks an instrument.
    """

    def __init__(self, checks: MarketDataChecksConfig) -> None:
        self._limit = 1.0 + checks.price_band_pct / 100.0
        self._size = checks.reference_prices
        self._reanchor_after = checks.reanchor_after
        self._recent: dict[str, deque[float]] = {}
        self._outside: dict[str, list[float]] = {}

    def _ratio(self, a: float, b: float) -> float:
        return max(a / b, b / a)

    def check(self, instrument_id: str, prices: Sequence[float]) -> str | None:
        """None if ``prices`` (all > 0) are in band, else why not. Out-of-band prices are
        remembered for re-anchoring; call :meth:`accept` once the frame is published."""
        recent = self._recent.get(instrument_id)
        if not recent:
            return None
        reference = statistics.median(recent)
        worst = max(prices, key=lambda p: self._ratio(p, reference))
        if self._ratio(worst, reference) <= self._limit:
            self._outside.pop(instrument_id, None)
            return None
        outside = self._outside.setdefault(instrument_id, [])
        outside.append(worst)
        del outside[: -self._reanchor_after]
        if len(outside) == self._reanchor_after and max(outside) / min(outside) <= self._limit:
            self._recent[instrument_id].clear()
            del self._outside[instrument_id]
            return None
        return (
            f"price {worst:g} is {self._ratio(worst, reference):.3g}x the reference {reference:g}"
        )

    def accept(self, instrument_id: str, price: float) -> None:
        recent = self._recent.setdefault(instrument_id, deque(maxlen=self._size))
        recent.append(price)

    def snapshot(self) -> dict[str, list[float]]:
        """The recent prices of each instrument, oldest first."""
        return {k: list(v) for k, v in self._recent.items()}

    def restore(self, state: Mapping[str, Sequence[float]]) -> None:
        self._recent = {k: deque(v, maxlen=self._size) for k, v in state.items()}
        self._outside = {}


class MarketDataState(ComponentState):
    """All of a :class:`MarketDataFeed`'s state.

    Attributes:
        last_ts: ``(instrument, data type, last event time)`` of each stream.
        last_sequence: Last order-book sequence number of each instrument.
        dropped: Messages dropped, by reason.
        published: Messages published.
        reference_prices: The price band's recent prices of each instrument.
    """

    last_ts: list[tuple[str, str, int]]
    last_sequence: dict[str, int] = {}
    dropped: dict[str, int]
    published: int
    reference_prices: dict[str, list[float]] = {}


class MarketDataFeed:
    """The ``md`` component: checks streamed market data and publishes only what is sound.

    Dropped (counted by reason, logged at most once per reason and instrument until reset):
    non-finite or non-positive values, inconsistent OHLC, a crossed book, an order book whose
    sequence number does not move forward, and time going backwards (or standing still for
    bars) per instrument and data type. Raw frames offered through ``offer_*`` are also dropped
    when stamped more than ``checks.max_ahead_s`` after this component's clock
    (``ahead_of_clock``) or priced out of line with the recent prices (``price_out_of_band``,
    see :class:`PriceBand`); such a frame moves nothing forward, so it blocks no later frame.
    Every drop is counted in ``dropped`` and, with ``metrics``, in the dropped-data counter.
    """

    State: ClassVar[type[MarketDataState]] = MarketDataState

    component_id = MARKET_DATA

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
        checks: MarketDataChecksConfig | None = None,
        metrics: GraphMetrics | None = None,
    ) -> None:
        self._instruments = instruments
        self._clock = clock
        self._outbox = outbox
        self._checks = checks or MarketDataChecksConfig()
        self._max_ahead_ns = round(self._checks.max_ahead_s * 1_000_000_000)
        self._band = PriceBand(self._checks)
        self._metrics = metrics
        self._last_ts: dict[tuple[str, str], int] = {}
        self._last_sequence: dict[str, int] = {}
        self.dropped: Counter[str] = Counter()
        self.published = 0
        self._log = get_logger(MARKET_DATA)
        self._logged: set[tuple[str, str]] = set()

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def reject(self, reason: str, instrument_id: str, detail: str) -> None:
        """Drop a frame the caller found unusable (``malformed``...): counted and logged."""
        self._drop(reason, instrument_id, detail)

    def ahead_of_clock(self, instrument_id: str, ts_ns: int) -> bool:
        """Whether ``ts_ns`` is too far after the clock; if so the frame is dropped here."""
        now = self._clock.now_ns()
        if ts_ns > now + self._max_ahead_ns:
            ahead_s = (ts_ns - now) / 1e9
            self._drop("ahead_of_clock", instrument_id, f"ts {ts_ns} is {ahead_s:.3g} s ahead")
            return True
        return False

    def _sound(self, instrument_id: str, ts_ns: int, prices: Sequence[float]) -> bool:
        """The checks on raw live frames: time against the clock, prices against the band."""
        if self.ahead_of_clock(instrument_id, ts_ns):
            return False
        reason = self._band.check(instrument_id, prices)
        if reason is not None:
            self._drop("price_out_of_band", instrument_id, reason)
            return False
        return True

    def _drop(self, reason: str, instrument_id: str, detail: str) -> None:
        self.dropped[reason] += 1
        if self._metrics is not None:
            self._metrics.observe_dropped(reason, instrument_id)
        if (reason, instrument_id) not in self._logged:
            self._logged.add((reason, instrument_id))
            self._log.warning(
                "market_data_dropped", reason=reason, instrument_id=instrument_id, detail=detail
            )

    def handle(self, msg: Message) -> None:
        if not isinstance(msg, Bar | TradeTick | QuoteTick | OrderBookSnapshot):
            return
        inst = msg.instrument_id
        if inst not in self._instruments:
            self._drop("unknown_instrument", inst, "no instrument definition")
            return
        key = (inst, type(msg).__name__)
        last = self._last_ts.get(key)
        ts = msg.ts_event_ns
        # Trades may share a millisecond timestamp; bars and book states must move forward.
        strict = isinstance(msg, Bar)
        if last is not None and (ts <= last if strict else ts < last):
            self._drop("time_not_increasing", inst, f"ts {ts} after {last}")
            return
        self._last_ts[key] = ts
        self.published += 1
        self._outbox.publish(msg)

    def offer_bar(
        self,
        instrument_id: str,
        ts_open_ns: int,
        values: tuple[float, float, float, float, float],
        interval_ns: int,
    ) -> bool:
        """Check raw bar values; publish a ``Bar`` if sound. Returns whether it was published."""
        o, h, lo, c, v = values
        if not all(math.isfinite(x) for x in values):
            self._drop("not_finite", instrument_id, f"values {values}")
            return False
        if min(o, h, lo, c) <= 0 or v < 0:
            self._drop("non_positive", instrument_id, f"values {values}")
            return False
        if h < lo or h < max(o, c) or lo > min(o, c):
            self._drop("inconsistent_ohlc", instrument_id, f"values {values}")
            return False
        ts_close = ts_open_ns + interval_ns
        if not self._sound(instrument_id, ts_close, (o, h, lo, c)):
            return False
        before = self.published
        self.handle(
            Bar.trusted(
                instrument_id=instrument_id,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                interval_ns=interval_ns,
                ts_event_ns=ts_close,
                ts_init_ns=self._clock.now_ns(),
            )
        )
        return self._published_since(before, instrument_id, c)

    def _published_since(self, before: int, instrument_id: str, price: float) -> bool:
        if self.published > before:
            self._band.accept(instrument_id, price)
            return True
        return False

    def offer_trade(
        self, instrument_id: str, ts_ns: int, price: float, size: float, buy: bool, trade_id: str
    ) -> bool:
        """Check a raw trade; publish a ``TradeTick`` if sound."""
        if not (math.isfinite(price) and math.isfinite(size)):
            self._drop("not_finite", instrument_id, f"price {price} size {size}")
            return False
        if price <= 0 or size <= 0:
            self._drop("non_positive", instrument_id, f"price {price} size {size}")
            return False
        if not self._sound(instrument_id, ts_ns, (price,)):
            return False
        before = self.published
        self.handle(
            TradeTick.trusted(
                instrument_id=instrument_id,
                price=price,
                size=size,
                aggressor_side="buy" if buy else "sell",
                trade_id=trade_id,
                ts_event_ns=ts_ns,
                ts_init_ns=self._clock.now_ns(),
            )
        )
        return self._published_since(before, instrument_id, price)

    def offer_quote(
        self,
        instrument_id: str,
        ts_ns: int,
        bid: tuple[float, float],
        ask: tuple[float, float],
    ) -> bool:
        """Check a raw best bid/ask; publish a ``QuoteTick`` if sound (crossed books dropped)."""
        values = (*bid, *ask)
        if not all(math.isfinite(x) for x in values):
            self._drop("not_finite", instrument_id, f"quote {values}")
            return False
        if bid[0] <= 0 or ask[0] <= 0 or bid[1] < 0 or ask[1] < 0:
            self._drop("non_positive", instrument_id, f"quote {values}")
            return False
        if bid[0] >= ask[0]:
            self._drop("crossed_book", instrument_id, f"bid {bid[0]} >= ask {ask[0]}")
            return False
        if not self._sound(instrument_id, ts_ns, (bid[0], ask[0])):
            return False
        before = self.published
        self.handle(
            QuoteTick.trusted(
                instrument_id=instrument_id,
                bid_price=bid[0],
                bid_size=bid[1],
                ask_price=ask[0],
                ask_size=ask[1],
                ts_event_ns=ts_ns,
                ts_init_ns=self._clock.now_ns(),
            )
        )
        return self._published_since(before, instrument_id, (bid[0] + ask[0]) / 2)

    def offer_book(
        self,
        instrument_id: str,
        ts_ns: int,
        bids: Sequence[tuple[float, float]],
        asks: Sequence[tuple[float, float]],
        sequence: int = 0,
    ) -> bool:
        """Check a raw order book (best levels first); publish an ``OrderBookSnapshot`` if sound.

        Dropped: non-finite or non-positive prices and sizes, sides not strictly sorted
        best-first, a crossed or locked book, and a ``sequence`` (when the venue gives one, i.e.
        above 0) not above the last published one for the instrument.
        """
        for side, levels, descending in (("bids", bids, True), ("asks", asks, False)):
            previous: float | None = None
            for price, size in levels:
                if not (math.isfinite(price) and math.isfinite(size)):
                    self._drop("not_finite", instrument_id, f"{side} level {price} x {size}")
                    return False
                if price <= 0 or size <= 0:
                    self._drop("non_positive", instrument_id, f"{side} level {price} x {size}")
                    return False
                if previous is not None and (
                    price >= previous if descending else price <= previous
                ):
                    self._drop("unsorted_book", instrument_id, f"{side} at {price}")
                    return False
                previous = price
        if bids and asks and bids[0][0] >= asks[0][0]:
            self._drop("crossed_book", instrument_id, f"bid {bids[0][0]} >= ask {asks[0][0]}")
            return False
        if sequence > 0:
            last_sequence = self._last_sequence.get(instrument_id)
            if last_sequence is not None and sequence <= last_sequence:
                self._drop("stale_sequence", instrument_id, f"{sequence} after {last_sequence}")
                return False
        best = [levels[0][0] for levels in (bids, asks) if levels]
        if not self._sound(instrument_id, ts_ns, best):
            return False
        before = self.published
        self.handle(
            OrderBookSnapshot.trusted(
                instrument_id=instrument_id,
                bids=tuple((float(p), float(q)) for p, q in bids),
                asks=tuple((float(p), float(q)) for p, q in asks),
                sequence=sequence,
                ts_event_ns=ts_ns,
                ts_init_ns=self._clock.now_ns(),
            )
        )
        published = self.published > before
        if published and sequence > 0:
            self._last_sequence[instrument_id] = sequence
        return published

    def snapshot(self) -> MarketDataState:
        return MarketDataState(
            last_ts=[(k[0], k[1], v) for k, v in self._last_ts.items()],
            last_sequence=dict(self._last_sequence),
            dropped=dict(self.dropped),
            published=self.published,
            reference_prices=self._band.snapshot(),
        )

    def restore(self, state: MarketDataState) -> None:
        self._last_ts = {(a, b): v for a, b, v in state.last_ts}
        self._last_sequence = dict(state.last_sequence)
        self.dropped = Counter(state.dropped)
        self.published = state.published
        self._band.restore(state.reference_prices)
