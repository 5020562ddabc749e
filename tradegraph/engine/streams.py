"""Market-data streams for a replay: whole columns of historical bars and trade ticks, validated
at once (vectorised, the boundary check for replays) and merged across instruments into one
stream ordered by (close time, instrument order). Bad rows are dropped and counted, never
passed on. The streamed ``md`` core of paper and live sessions is in
:mod:`tradegraph.engine.market_data`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tradegraph.contracts import (
    Bar,
    Instrument,
    TradeTick,
)
from tradegraph.data.catalog import BarArrays, TradeArrays
from tradegraph.errors import DataError
from tradegraph.observability import get_logger

DROP_REASONS = ("not_finite", "non_positive", "inconsistent_ohlc", "time_not_increasing")


@dataclass(frozen=True)
class BarStream:
    """Bars of several instruments merged into one stream, as columns.

    ``ts_ns`` is each bar's close time: when the graph may know it.
    """

    instrument_ids: tuple[str, ...]
    interval_ns: npt.NDArray[np.int64]
    instrument_index: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    @property
    def dropped_total(self) -> int:
        return sum(sum(c.values()) for c in self.dropped.values())

    @classmethod
    def empty(cls) -> BarStream:
        f = np.empty(0, dtype=np.float64)
        return cls(
            (), np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64), f, f, f, f, f
        )

    def rows(self, index: slice | npt.NDArray[np.intp]) -> BarStream:
        """The bars at ``index`` (a slice or positions, in stream order) as a stream of their own.

        A slice shares memory with this stream. The actor graph sends market data between
        processes in this columnar form: pickling columns costs next to nothing per bar.
        """
        return BarStream(
            instrument_ids=self.instrument_ids,
            interval_ns=self.interval_ns,
            instrument_index=self.instrument_index[index],
            ts_ns=self.ts_ns[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
        )

    def messages(self) -> Iterator[Bar]:
        """The stream's messages in order (the name every columnar stream shares)."""
        return self.bars()

    def bars(self) -> Iterator[Bar]:
        """Yield the stream as ``Bar`` messages (already validated, so built without checks)."""
        ids = self.instrument_ids
        intervals = self.interval_ns.tolist()
        for k, o, h, lo, c, v, ts in zip(
            self.instrument_index.tolist(),
            self.open.tolist(),
            self.high.tolist(),
            self.low.tolist(),
            self.close.tolist(),
            self.volume.tolist(),
            self.ts_ns.tolist(),
            strict=True,
        ):
            yield Bar.trusted(
                instrument_id=ids[k],
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                interval_ns=intervals[k],
                ts_event_ns=ts,
                ts_init_ns=ts,
            )


def validate_bar_arrays(bars: BarArrays) -> tuple[npt.NDArray[np.bool_], dict[str, int]]:
    """Return a keep-mask and drop counts by reason (each bad row counted once)."""
    o, h, lo, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
    counts: dict[str, int] = {}
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    keep = finite.copy()
    counts["not_finite"] = int((~finite).sum())
    with np.errstate(invalid="ignore"):
        positive = (o > 0) & (h > 0) & (lo > 0) & (c > 0) & (v >= 0)
        bad = keep & ~positive
        counts["non_positive"] = int(bad.sum())
        keep &= positive
        consistent = (h >= lo) & (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c))
        bad = keep & ~consistent
        counts["inconsistent_ohlc"] = int(bad.sum())
        keep &= consistent
    # A row must be strictly later than every earlier kept row; dropped rows never raise the bar.
    ts = bars.ts_open_ns
    masked = np.where(keep, ts, np.iinfo(np.int64).min)
    running_max = np.maximum.accumulate(masked)
    previous_max = np.concatenate(([np.iinfo(np.int64).min], running_max[:-1]))
    increasing = ts > previous_max
    bad = keep & ~increasing
    counts["time_not_increasing"] = int(bad.sum())
    keep &= increasing
    return keep, {k: n for k, n in counts.items() if n}


def prepare_bar_stream(
    datasets: Sequence[BarArrays], instruments: Mapping[str, Instrument]
) -> BarStream:
    """Validate each dataset, then merge them by (close time, dataset order)."""
    log = get_logger("md")
    if not datasets:
        raise DataError("no bar data: the data section lists no bars")
    ids: list[str] = []
    parts: list[tuple[int, BarArrays, npt.NDArray[np.bool_]]] = []
    dropped: dict[str, dict[str, int]] = {}
    for ds in datasets:
        if ds.instrument_id not in instruments:
            raise DataError(
                f"bars for {ds.instrument_id} have no instrument definition; "
                f"configured instruments: {sorted(instruments)}"
            )
        if ds.instrument_id in ids:
            raise DataError(
                f"bars for {ds.instrument_id} are given twice; a strategy gets longer bars of "
                "it from its strategies[].bars (e.g. bars: [5m, 1h])"
            )
        keep, counts = validate_bar_arrays(ds)
        if counts:
            dropped[ds.instrument_id] = counts | dict(ds.dropped)
            first_bad = np.flatnonzero(~keep)[:5].tolist()
            log.warning(
                "bars_dropped",
                instrument_id=ds.instrument_id,
                dropped=counts,
                first_bad_rows=first_bad,
            )
        elif ds.dropped:
            dropped[ds.instrument_id] = dict(ds.dropped)
        ids.append(ds.instrument_id)
        parts.append((len(ids) - 1, ds, keep))

    index = np.concatenate([np.full(int(k.sum()), i, dtype=np.int32) for i, _, k in parts])
    ts = np.concatenate([ds.ts_open_ns[k] + ds.interval_ns for _, ds, k in parts])
    order = np.lexsort((index, ts))

    def merged(name: str) -> npt.NDArray[np.float64]:
        return np.concatenate([getattr(ds, name)[k] for _, ds, k in parts])[order]

    return BarStream(
        instrument_ids=tuple(ids),
        interval_ns=np.array([ds.interval_ns for _, ds, _ in parts], dtype=np.int64),
        instrument_index=index[order],
        ts_ns=ts[order],
        open=merged("open"),
        high=merged("high"),
        low=merged("low"),
        close=merged("close"),
        volume=merged("volume"),
        dropped=dropped,
    )


@dataclass(frozen=True)
class TradeStream:
    """Trade ticks of several instruments merged into one stream ordered by trade time."""

    instrument_ids: tuple[str, ...]
    instrument_index: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    aggressor_buy: npt.NDArray[np.bool_]
    trade_id: npt.NDArray[np.int64]
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def rows(self, index: slice | npt.NDArray[np.intp]) -> TradeStream:
        """The ticks at ``index`` (a slice or positions, in stream order) as a stream of their
        own; a slice shares memory with this stream."""
        return TradeStream(
            instrument_ids=self.instrument_ids,
            instrument_index=self.instrument_index[index],
            ts_ns=self.ts_ns[index],
            price=self.price[index],
            size=self.size[index],
            aggressor_buy=self.aggressor_buy[index],
            trade_id=self.trade_id[index],
        )

    def messages(self) -> Iterator[TradeTick]:
        """The ticks as ``TradeTick`` messages, in order (already validated)."""
        ids = self.instrument_ids
        for k, price, size, buy, trade_id, ts in zip(
            self.instrument_index.tolist(),
            self.price.tolist(),
            self.size.tolist(),
            self.aggressor_buy.tolist(),
            self.trade_id.tolist(),
            self.ts_ns.tolist(),
            strict=True,
        ):
            yield TradeTick.trusted(
                instrument_id=ids[k],
                price=price,
                size=size,
                aggressor_side="buy" if buy else "sell",
                trade_id=str(trade_id),
                ts_event_ns=ts,
                ts_init_ns=ts,
            )

    def trade(self, i: int) -> TradeTick:
        """The ``i``-th tick as a message (already validated, so built without checks)."""
        ts = int(self.ts_ns[i])
        return TradeTick.trusted(
            instrument_id=self.instrument_ids[int(self.instrument_index[i])],
            price=float(self.price[i]),
            size=float(self.size[i]),
            aggressor_side="buy" if self.aggressor_buy[i] else "sell",
            trade_id=str(int(self.trade_id[i])),
            ts_event_ns=ts,
            ts_init_ns=ts,
        )


def validate_trade_arrays(trades: TradeArrays) -> tuple[npt.NDArray[np.bool_], dict[str, int]]:
    """Keep-mask and drop counts for trades. Equal timestamps are fine (one match, many prints)."""
    counts: dict[str, int] = {}
    finite = np.isfinite(trades.price) & np.isfinite(trades.size)
    counts["not_finite"] = int((~finite).sum())
    keep = finite.copy()
    with np.errstate(invalid="ignore"):
        positive = (trades.price > 0) & (trades.size > 0)
    counts["non_positive"] = int((keep & ~positive).sum())
    keep &= positive
    ts = trades.ts_ns
    masked = np.where(keep, ts, np.iinfo(np.int64).min)
    previous_max = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(masked)[:-1]))
    in_order = ts >= previous_max
    counts["time_going_backwards"] = int((keep & ~in_order).sum())
    keep &= in_order
    return keep, {k: n for k, n in counts.items() if n}


def prepare_trade_stream(
    datasets: Sequence[TradeArrays], instruments: Mapping[str, Instrument]
) -> TradeStream:
    """Validate trade datasets and merge them by (trade time, dataset order, row order)."""
    log = get_logger("md")
    ids: list[str] = []
    masks: list[npt.NDArray[np.bool_]] = []
    dropped: dict[str, dict[str, int]] = {}
    for ds in datasets:
        inst = f"{ds.symbol}.{ds.venue}"
        if inst not in instruments:
            raise DataError(
                f"trades for {inst} have no instrument definition; "
                f"configured instruments: {sorted(instruments)}"
            )
        keep, counts = validate_trade_arrays(ds)
        if counts:
            log.warning("trades_dropped", instrument_id=inst, dropped=counts)
        if counts or ds.dropped:
            dropped[inst] = counts | dict(ds.dropped)
        ids.append(inst)
        masks.append(keep)
    if not datasets:
        empty_i = np.empty(0, dtype=np.int64)
        empty_f = np.empty(0, dtype=np.float64)
        return TradeStream(
            (), np.empty(0, dtype=np.int32), empty_i, empty_f, empty_f, np.empty(0, bool), empty_i
        )
    index = np.concatenate([np.full(int(k.sum()), i, dtype=np.int32) for i, k in enumerate(masks)])
    ts = np.concatenate([ds.ts_ns[k] for ds, k in zip(datasets, masks, strict=True)])
    order = np.lexsort((np.arange(ts.shape[0]), index, ts))

    def merged(name: str) -> Any:
        return np.concatenate(
            [getattr(ds, name)[k] for ds, k in zip(datasets, masks, strict=True)]
        )[order]

    return TradeStream(
        instrument_ids=tuple(ids),
        instrument_index=index[order],
        ts_ns=ts[order],
        price=merged("price"),
        size=merged("size"),
        aggressor_buy=merged("aggressor_buy"),
        trade_id=merged("trade_id"),
        dropped=dropped,
    )
