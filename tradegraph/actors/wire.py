"""What a batch between actors is made of: messages, and market data as columns.

Market data is most of what crosses the graph. Sent as pydantic objects, each bar costs a few
microseconds to pickle in the sender and as much again to unpickle in every receiver; sent as
the columns the replay already holds (a :class:`BarStream` or :class:`TradeStream` slice), a
batch of 512 bars pickles as a handful of arrays. The receiving host turns a block back into
messages, in order, just before its component handles them, so components still see one
``Bar`` or ``TradeTick`` at a time.

A batch is a list of items: :data:`Message` objects and :data:`MarketBlock` blocks, in the
order they were published.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tradegraph.contracts import Message, Router
from tradegraph.engine.streams import BarStream, TradeStream

MarketBlock = BarStream | TradeStream
Item = Message | MarketBlock

BLOCK_KINDS: dict[type[Any], str] = {BarStream: "bar", TradeStream: "trade"}
"""A block's market-event kind, as metrics name it."""


def expand(items: Iterable[Item]) -> Iterator[Message]:
    """The messages of ``items`` in order, blocks unrolled."""
    for item in items:
        if isinstance(item, Message):
            yield item
        else:
            yield from item.messages()


def message_count(items: Sequence[Item]) -> int:
    """How many messages ``items`` hold."""
    return sum(1 if isinstance(item, Message) else len(item) for item in items)


class BlockRouter:
    """Splits a market-data block by receiver, as the router sends each row's instrument.

    Each receiver gets the rows it subscribes to, in stream order; a receiver that gets every
    row of a block is handed the block itself. Receivers come in the router's order (the
    venue, risk, the portfolio, then strategies).
    """

    def __init__(self, router: Router) -> None:
        self._router = router
        self._tables: dict[tuple[str, ...], list[tuple[str, npt.NDArray[np.bool_]]]] = {}

    def _table(self, instrument_ids: tuple[str, ...]) -> list[tuple[str, npt.NDArray[np.bool_]]]:
        """Per receiver: which instrument positions of ``instrument_ids`` it takes."""
        table = self._tables.get(instrument_ids)
        if table is None:
            wanted: dict[str, npt.NDArray[np.bool_]] = {}
            for k, instrument_id in enumerate(instrument_ids):
                for dest in self._router.market_destinations(instrument_id):
                    takes = wanted.setdefault(dest, np.zeros(len(instrument_ids), dtype=np.bool_))
                    takes[k] = True
            table = list(wanted.items())
            self._tables[instrument_ids] = table
        return table

    def split(self, block: MarketBlock) -> list[tuple[str, MarketBlock]]:
        """``(receiver, rows of block for it)`` for every receiver that gets any row."""
        if not len(block):
            return []
        table = self._table(block.instrument_ids)
        index = block.instrument_index
        present = np.bincount(index, minlength=len(block.instrument_ids)) > 0
        out: list[tuple[str, MarketBlock]] = []
        for dest, takes in table:
            wanted = takes & present
            if not wanted.any():
                continue
            if not (present & ~takes).any():
                out.append((dest, block))
            else:
                out.append((dest, block.rows(np.flatnonzero(takes[index]))))
        return out


# ---- journal form ---------------------------------------------------------------------------

_BAR_COLUMNS = ("instrument_index", "ts_ns", "open", "high", "low", "close", "volume")
_TRADE_COLUMNS = ("instrument_index", "ts_ns", "price", "size", "aggressor_buy", "trade_id")
_DTYPES: dict[str, Any] = {
    "instrument_index": np.int32,
    "ts_ns": np.int64,
    "trade_id": np.int64,
    "aggressor_buy": np.bool_,
}


def encode_block(block: MarketBlock) -> list[Any]:
    """``["#bar" or "#trade", columns]``: a block as JSON-able plain data."""
    if isinstance(block, BarStream):
        columns: dict[str, Any] = {name: getattr(block, name).tolist() for name in _BAR_COLUMNS}
        columns["interval_ns"] = block.interval_ns.tolist()
    else:
        columns = {name: getattr(block, name).tolist() for name in _TRADE_COLUMNS}
    columns["instrument_ids"] = list(block.instrument_ids)
    return [f"#{BLOCK_KINDS[type(block)]}", columns]


def decode_block(raw: Sequence[Any]) -> MarketBlock:
    """The block :func:`encode_block` described.

    Raises:
        ValueError: the kind is unknown or the columns do not fit together.
    """
    kind, columns = raw[0], raw[1]
    names = {"#bar": _BAR_COLUMNS, "#trade": _TRADE_COLUMNS}.get(kind)
    if names is None:
        raise ValueError(f"unknown block kind {kind!r}")
    arrays = {
        name: np.asarray(columns[name], dtype=_DTYPES.get(name, np.float64)) for name in names
    }
    if len({a.shape for a in arrays.values()}) != 1:
        raise ValueError(f"{kind} block columns differ in length")
    ids = tuple(str(i) for i in columns["instrument_ids"])
    if len(arrays["instrument_index"]) and int(arrays["instrument_index"].max()) >= len(ids):
        raise ValueError(f"{kind} block names an instrument it does not list")
    a = arrays
    if kind == "#bar":
        return BarStream(
            ids,
            np.asarray(columns["interval_ns"], np.int64),
            a["instrument_index"],
            a["ts_ns"],
            a["open"],
            a["high"],
            a["low"],
            a["close"],
            a["volume"],
        )
    return TradeStream(
        ids,
        a["instrument_index"],
        a["ts_ns"],
        a["price"],
        a["size"],
        a["aggressor_buy"],
        a["trade_id"],
    )


def is_block(raw: Sequence[Any]) -> bool:
    """Whether a journaled item is a block (messages are named by their type)."""
    return isinstance(raw[0], str) and raw[0].startswith("#")
