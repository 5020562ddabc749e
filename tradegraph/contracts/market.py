"""Market-data messages: bars, trade ticks, quote ticks and order-book snapshots."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from tradegraph.contracts.base import (
    Message,
    require_finite_non_negative,
    require_finite_positive,
)


class Bar(Message):
    """An OHLCV bar.

    ``ts_event_ns`` is the bar's *close* time: a bar becomes known to the graph only when its
    interval has ended, so nothing can look ahead. Files store the open time;
    ``ts_event_ns - interval_ns`` recovers it.
    """

    instrument_id: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval_ns: int

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("open", "high", "low", "close"):
            require_finite_positive(name, getattr(self, name))
        require_finite_non_negative("volume", self.volume)
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise ValueError(
                f"inconsistent OHLC: open={self.open} high={self.high} "
                f"low={self.low} close={self.close}"
            )
        if self.interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, was {self.interval_ns}")
        return self

    @property
    def ts_open_ns(self) -> int:
        return self.ts_event_ns - self.interval_ns

    @property
    def msg_id(self) -> str:
        return f"bar:{self.instrument_id}@{self.ts_event_ns}"


class TradeTick(Message):
    """One trade printed by the venue."""

    instrument_id: str
    price: float
    size: float
    aggressor_side: Literal["buy", "sell"]
    trade_id: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        require_finite_positive("price", self.price)
        require_finite_positive("size", self.size)
        return self

    @property
    def msg_id(self) -> str:
        return f"trade:{self.instrument_id}:{self.trade_id}"


class QuoteTick(Message):
    """Best bid and offer."""

    instrument_id: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        require_finite_positive("bid_price", self.bid_price)
        require_finite_positive("ask_price", self.ask_price)
        require_finite_non_negative("bid_size", self.bid_size)
        require_finite_non_negative("ask_size", self.ask_size)
        if self.bid_price >= self.ask_price:
            raise ValueError(
                f"crossed or locked quote: bid {self.bid_price} >= ask {self.ask_price}"
            )
        return self

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid_price + self.ask_price)

    @property
    def msg_id(self) -> str:
        return f"quote:{self.instrument_id}@{self.ts_event_ns}"


class OrderBookSnapshot(Message):
    """Price levels of one side each, best first: bids descending, asks ascending."""

    instrument_id: str
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    sequence: int = 0

    @model_validator(mode="after")
    def _check(self) -> Self:
        for side, levels, descending in (("bids", self.bids, True), ("asks", self.asks, False)):
            prev: float | None = None
            for price, size in levels:
                require_finite_positive(f"{side} price", price)
                require_finite_positive(f"{side} size", size)
                if prev is not None and ((price >= prev) if descending else (price <= prev)):
                    raise ValueError(f"{side} are not strictly sorted best-first at {price}")
                prev = price
        if self.bids and self.asks and self.bids[0][0] >= self.asks[0][0]:
            raise ValueError(
                f"crossed book: best bid {self.bids[0][0]} >= best ask {self.asks[0][0]}"
            )
        return self

    @property
    def msg_id(self) -> str:
        return f"book:{self.instrument_id}#{self.sequence}@{self.ts_event_ns}"


class FundingRate(Message):
    """A perpetual's funding event: at ``ts_event_ns`` every open position pays
    ``quantity * contract_size * mark_price * rate`` (a long pays when ``rate`` is positive,
    a short receives it).

    ``mark_price`` is the venue's mark at the funding time when the data has one; ``None``
    means the receiver uses its own mark (the last trade or bar close, see
    :mod:`tradegraph.contracts.marks`).
    """

    instrument_id: str
    rate: float
    mark_price: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not -1.0 < self.rate < 1.0:
            raise ValueError(f"funding rate must be a fraction in (-1, 1), was {self.rate!r}")
        if self.mark_price is not None:
            require_finite_positive("mark_price", self.mark_price)
        return self

    @property
    def msg_id(self) -> str:
        return f"funding:{self.instrument_id}@{self.ts_event_ns}"


MarketData = Bar | TradeTick | QuoteTick | OrderBookSnapshot
