"""Longer bars built from shorter bars or trade ticks, as the data arrives.

A :class:`BarAggregator` builds the bars of one interval of one instrument. Bars are aligned to
the epoch: a bar of ``interval_ns`` covers ``[k * interval_ns, (k + 1) * interval_ns)``, so a 1h
bar covers ``[hh:00, hh+1:00)`` and a 1d bar a UTC day. Its OHLCV is the open of its first
input, the highest high, the lowest low, the close of its last input and the summed volume (for
trades: their prices and summed sizes). A bar is stamped with its close (``ts_event_ns`` is the
end of its interval) and is never handed out before that:

- from bars: it closes with the input bar whose close is its end, and is delivered right after
  that bar;
- when that input is missing (a gap in the data), or when it is built from trades, it closes
  with the first input at or past its end, and is delivered right before that input.

An interval without any input gives no bar; the inputs left over at the end of the data are
never delivered (a partial bar is never delivered).
"""

from __future__ import annotations

from tradegraph.contracts import Bar, TradeTick
from tradegraph.contracts.state import StateRecord


class BarAggregatorState(StateRecord):
    """A :class:`BarAggregator` as stored: its interval and the bar being built, if any.

    Attributes:
        instrument_id: The instrument the bars are of.
        interval_ns: Length of the bars it builds.
        start_ns: Open time of the bar being built; ``None`` when none is.
        open: Open of the bar being built.
        high: High so far.
        low: Low so far.
        close: Close so far.
        volume: Volume so far.
    """

    instrument_id: str
    interval_ns: int
    start_ns: int | None = None
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0


class BarAggregator:
    """Builds the bars of one interval of one instrument from shorter bars or from trades.

    Feed it each input in time order: first :meth:`close_before` with the input's time (a bar
    it returns is delivered before the input), then :meth:`add_bar` or :meth:`add_trade` (a bar
    ``add_bar`` returns is delivered after the input).

    Attributes:
        instrument_id: The instrument the bars are of.
        interval_ns: Length of the bars it builds.
    """

    __slots__ = (
        "_close",
        "_high",
        "_low",
        "_open",
        "_start_ns",
        "_volume",
        "instrument_id",
        "interval_ns",
    )

    def __init__(self, instrument_id: str, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, was {interval_ns}")
        self.instrument_id = instrument_id
        self.interval_ns = interval_ns
        self._start_ns: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0.0

    @property
    def building(self) -> bool:
        """Whether a bar has inputs and is not closed yet."""
        return self._start_ns is not None

    def close_before(self, ts_ns: int, ts_init_ns: int) -> Bar | None:
        """Close the bar being built if an input at ``ts_ns`` lies at or past its end.

        Args:
            ts_ns: Time of the next input: a bar's open time, or a trade's time.
            ts_init_ns: ``ts_init_ns`` given to the bar closed.

        Returns:
            The bar, stamped with its own close, or ``None`` if it is still open (or none is
            being built).
        """
        start = self._start_ns
        if start is None or ts_ns < start + self.interval_ns:
            return None
        return self._emit(ts_init_ns)

    def add_bar(self, bar: Bar) -> Bar | None:
        """Add a shorter bar; call :meth:`close_before` with its open time first.

        Args:
            bar: A bar of this instrument whose interval divides ``interval_ns``.

        Returns:
            The longer bar if ``bar`` is its last (its close is the longer bar's end), else
            ``None``.

        Raises:
            ValueError: ``bar``'s interval is not a whole fraction of ``interval_ns``, or ``bar``
                crosses a boundary of the longer bars (it is not aligned to the epoch).
        """
        interval = self.interval_ns
        if interval % bar.interval_ns or bar.interval_ns == interval:
            raise ValueError(
                f"{_seconds(interval)} bars of {self.instrument_id} cannot be built from its "
                f"{_seconds(bar.interval_ns)} bars: not a whole multiple"
            )
        ts_open = bar.ts_open_ns
        start = ts_open - ts_open % interval
        if bar.ts_event_ns > start + interval:
            raise ValueError(
                f"the {_seconds(bar.interval_ns)} bar of {self.instrument_id} opening at "
                f"{ts_open} ns crosses a {_seconds(interval)} boundary: bars must be aligned to "
                "the epoch to be aggregated"
            )
        self._add(start, bar.open, bar.high, bar.low, bar.close, bar.volume)
        if bar.ts_event_ns == start + interval:
            return self._emit(bar.ts_init_ns)
        return None

    def add_trade(self, tick: TradeTick) -> None:
        """Add a trade; call :meth:`close_before` with its time first.

        A trade never closes a bar: one at the very end of an interval opens the next.

        Args:
            tick: A trade of this instrument.
        """
        ts = tick.ts_event_ns
        price = tick.price
        self._add(ts - ts % self.interval_ns, price, price, price, price, tick.size)

    def _add(
        self, start: int, open_: float, high: float, low: float, close: float, volume: float
    ) -> None:
        current = self._start_ns
        if current is None:
            self._start_ns = start
            self._open, self._high, self._low = open_, high, low
            self._close, self._volume = close, volume
            return
        if start != current:
            raise ValueError(
                f"input of {self.instrument_id} at the {start} ns bar while the {current} ns "
                "bar is open: inputs must come in time order, each after close_before"
            )
        if high > self._high:
            self._high = high
        if low < self._low:
            self._low = low
        self._close = close
        self._volume += volume

    def _emit(self, ts_init_ns: int) -> Bar:
        start = self._start_ns
        assert start is not None
        end = start + self.interval_ns
        bar = Bar.trusted(
            instrument_id=self.instrument_id,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            interval_ns=self.interval_ns,
            ts_event_ns=end,
            ts_init_ns=max(ts_init_ns, end),
        )
        self._start_ns = None
        self._open = self._high = self._low = self._close = self._volume = 0.0
        return bar

    def snapshot(self) -> BarAggregatorState:
        """The aggregator's state: its interval and the bar being built."""
        return BarAggregatorState(
            instrument_id=self.instrument_id,
            interval_ns=self.interval_ns,
            start_ns=self._start_ns,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
        )

    def restore(self, state: BarAggregatorState) -> None:
        """Load a ``snapshot()``: the bar being built continues where it was.

        Raises:
            ValueError: The state is of another instrument or interval.
        """
        if (state.instrument_id, state.interval_ns) != (self.instrument_id, self.interval_ns):
            raise ValueError(
                f"state of the {state.interval_ns} ns bars of {state.instrument_id} cannot be "
                f"restored into the {self.interval_ns} ns bars of {self.instrument_id}"
            )
        self._start_ns = state.start_ns
        self._open, self._high, self._low = state.open, state.high, state.low
        self._close, self._volume = state.close, state.volume


def _seconds(interval_ns: int) -> str:
    return f"{interval_ns / 1e9:g} s"
