"""Market data a session published, written to a Parquet catalog as it goes.

The ``md`` component of a paper or live session hands everything it publishes (after its
checks, so exactly what the strategies saw) to a :class:`MarketRecorder`. The recorder keeps
rows in memory and writes them out as part files every ``flush_rows`` rows, at each
:meth:`MarketRecorder.flush` the host calls when it snapshots, and when the session stops, so a
crash loses at most what arrived since the last part. Part files are never rewritten.

Layout under the recording folder (the files the catalog readers take, so any session can be
replayed as a backtest, see ``tradegraph twin``)::

    bars/<interval>s/symbol=<SYMBOL>/date=<YYYY-MM-DD>/part-<writer>-<n>.parquet
        ts (bar open, int64 ns), open, high, low, close, volume, venue
    trades/symbol=<SYMBOL>/part-<writer>-<n>.parquet
        ts (int64 ns), price, size, side ("buy"/"sell"), trade_id (int64), venue
    quotes/symbol=<SYMBOL>/part-<writer>-<n>.parquet
        ts, bid_price, bid_size, ask_price, ask_size, venue

An order book snapshot is recorded as a quote of its best levels. A venue trade id that is not
an integer is stored as a stable 63-bit hash of its text. ``<writer>`` is the recorder's own
start time, so a restarted ``md`` (which may publish a few rows again after recovering) never
overwrites a part: :func:`recorded_trades` and the bar reader drop the repeats.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tradegraph.config.models import GraphConfig
from tradegraph.contracts import Bar, Message, OrderBookSnapshot, QuoteTick, TradeTick
from tradegraph.data.catalog import write_parquet
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import DataError

__all__ = [
    "RECORDED_DIR",
    "SESSION_CONFIG",
    "MarketRecorder",
    "RecordedData",
    "prepare_session_folder",
    "recorded_data",
    "recorded_trades",
]

RECORDED_DIR = "recorded"
"""A session folder's recording, unless ``session.record_dir`` names another."""
SESSION_CONFIG = "session_config.json"
"""A session folder's resolved configuration (and the path of the file it came from)."""
NS_PER_S = 1_000_000_000
_BAR_KEYS = ("ts", "open", "high", "low", "close", "volume")
_TRADE_KEYS = ("ts", "price", "size", "side", "trade_id")
_QUOTE_KEYS = ("ts", "bid_price", "bid_size", "ask_price", "ask_size")


def trade_id_number(trade_id: str) -> int:
    """A venue trade id as the int64 the catalog holds: the number itself, else a hash."""
    text = trade_id.strip()
    if text.isdigit() and len(text) < 19:
        return int(text)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _split(instrument_id: str) -> tuple[str, str]:
    symbol, _, venue = instrument_id.rpartition(".")
    return (symbol, venue) if symbol else (instrument_id, "")


def _day(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")


@dataclass
class _Rows:
    """Rows of one file family (bars of one instrument and interval, or trades, or quotes)."""

    keys: tuple[str, ...]
    venue: str
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = {k: [] for k in self.keys}

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def add(self, *values: Any) -> None:
        for key, value in zip(self.keys, values, strict=True):
            self.columns[key].append(value)

    def extend(self, **arrays: Any) -> None:
        for key in self.keys:
            self.columns[key].extend(arrays[key].tolist())

    def take(self) -> pa.Table:
        columns = dict(self.columns)
        self.columns = {k: [] for k in self.keys}
        table = pa.table(
            {
                k: pa.array(v, pa.int64() if k in ("ts", "trade_id") else None)
                for k, v in columns.items()
            }
        )
        return table.append_column("venue", pa.array([self.venue] * table.num_rows, pa.string()))


class MarketRecorder:
    """Writes what ``md`` publishes under ``root`` (layout in the module docstring).

    Args:
        root: The recording folder; created on the first write.
        writer: A name unique to this recorder's life (part files carry it).
        flush_rows: Rows held in memory before they are written out on their own.
        flush_interval_s: Least time between two writes by :meth:`maybe_flush` (wall time:
            it paces file writes only, never what the graph sees).
    """

    def __init__(
        self,
        root: str | Path,
        writer: str,
        flush_rows: int = 50_000,
        flush_interval_s: float = 2.0,
    ) -> None:
        self.root = Path(root)
        self.writer = writer
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self._flushed_at = time.monotonic()
        self._rows: dict[tuple[str, str, int], _Rows] = {}
        self._held = 0
        self._parts: defaultdict[Path, int] = defaultdict(int)
        self.recorded = 0
        """Rows recorded so far (written or held)."""

    def _family(self, kind: str, instrument_id: str, interval_ns: int = 0) -> _Rows:
        key = (kind, instrument_id, interval_ns)
        rows = self._rows.get(key)
        if rows is None:
            keys = {"bars": _BAR_KEYS, "trades": _TRADE_KEYS, "quotes": _QUOTE_KEYS}[kind]
            rows = self._rows[key] = _Rows(keys, _split(instrument_id)[1])
        return rows

    def record(self, msg: Message) -> None:
        """Record one published market message (other messages are ignored)."""
        t = type(msg)
        if t is Bar:
            assert isinstance(msg, Bar)
            self._family("bars", msg.instrument_id, msg.interval_ns).add(
                msg.ts_event_ns - msg.interval_ns,
                msg.open,
                msg.high,
                msg.low,
                msg.close,
                msg.volume,
            )
        elif t is TradeTick:
            assert isinstance(msg, TradeTick)
            self._family("trades", msg.instrument_id).add(
                msg.ts_event_ns,
                msg.price,
                msg.size,
                "buy" if msg.aggressor_side == "buy" else "sell",
                trade_id_number(msg.trade_id),
            )
        elif t is QuoteTick:
            assert isinstance(msg, QuoteTick)
            self._family("quotes", msg.instrument_id).add(
                msg.ts_event_ns, msg.bid_price, msg.bid_size, msg.ask_price, msg.ask_size
            )
        elif t is OrderBookSnapshot:
            assert isinstance(msg, OrderBookSnapshot)
            if not (msg.bids and msg.asks):
                return
            self._family("quotes", msg.instrument_id).add(
                msg.ts_event_ns, *msg.bids[0], *msg.asks[0]
            )
        else:
            return
        self._count(1)

    def record_block(self, block: BarStream | TradeStream) -> None:
        """Record a columnar block of replayed bars or trades."""
        for k, instrument_id in enumerate(block.instrument_ids):
            rows = np.flatnonzero(block.instrument_index == k)
            if rows.shape[0] == 0:
                continue
            ts = block.ts_ns[rows]
            if isinstance(block, BarStream):
                interval = int(block.interval_ns[k])
                self._family("bars", instrument_id, interval).extend(
                    ts=ts - interval,
                    open=block.open[rows],
                    high=block.high[rows],
                    low=block.low[rows],
                    close=block.close[rows],
                    volume=block.volume[rows],
                )
            else:
                self._family("trades", instrument_id).extend(
                    ts=ts,
                    price=block.price[rows],
                    size=block.size[rows],
                    side=np.where(block.aggressor_buy[rows], "buy", "sell"),
                    trade_id=block.trade_id[rows],
                )
        self._count(len(block))

    def _count(self, n: int) -> None:
        self.recorded += n
        self._held += n
        if self._held >= self.flush_rows:
            self.flush()

    def maybe_flush(self, force: bool = False) -> list[Path]:
        """Write held rows out when ``flush_interval_s`` has passed since the last write."""
        if force or time.monotonic() - self._flushed_at >= self.flush_interval_s:
            return self.flush()
        return []

    def flush(self) -> list[Path]:
        """Write every held row out as new part files; returns the files written."""
        written: list[Path] = []
        for (kind, instrument_id, interval_ns), rows in self._rows.items():
            if not len(rows):
                continue
            symbol = _split(instrument_id)[0]
            table = rows.take()
            if kind == "bars":
                base = self.root / "bars" / f"{interval_ns // NS_PER_S}s" / f"symbol={symbol}"
                days = [_day(t) for t in table.column("ts").to_pylist()]
                for day in dict.fromkeys(days):
                    mask = pa.array([d == day for d in days])
                    written.append(self._write(base / f"date={day}", table.filter(mask)))
            else:
                written.append(self._write(self.root / kind / f"symbol={symbol}", table))
        self._held = 0
        self._flushed_at = time.monotonic()
        return written

    def _write(self, folder: Path, table: pa.Table) -> Path:
        self._parts[folder] += 1
        path = folder / f"part-{self.writer}-{self._parts[folder]:05d}.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        return write_parquet(table, path)


@dataclass(frozen=True)
class RecordedData:
    """What a recording folder holds: bar datasets and trade parts, per symbol."""

    bars: dict[tuple[str, int], Path]
    """(symbol, interval in seconds) -> the dataset folder of those bars."""
    trades: dict[str, list[Path]]
    """symbol -> its trade part files."""
    venues: dict[str, str]
    """symbol -> venue, as recorded."""

    @property
    def empty(self) -> bool:
        return not self.bars and not self.trades


def _parts(folder: Path) -> Iterator[Path]:
    return iter(sorted(folder.rglob("*.parquet")))


def _venue_of(paths: Iterator[Path]) -> str:
    for path in paths:
        venues = pq.read_table(path, columns=["venue"]).column("venue").to_pylist()
        if venues:
            return str(venues[0])
    return ""


def recorded_data(root: str | Path) -> RecordedData:
    """Index a recording folder (see the module docstring for its layout)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no recorded market data (the folder does not exist)")
    bars: dict[tuple[str, int], Path] = {}
    trades: dict[str, list[Path]] = {}
    venues: dict[str, str] = {}
    for interval_dir in sorted((root / "bars").glob("*s")):
        interval_s = int(interval_dir.name[:-1])
        for symbol_dir in sorted(interval_dir.glob("symbol=*")):
            symbol = symbol_dir.name.removeprefix("symbol=")
            bars[(symbol, interval_s)] = interval_dir
            venues.setdefault(symbol, _venue_of(_parts(symbol_dir)))
    for symbol_dir in sorted((root / "trades").glob("symbol=*")):
        symbol = symbol_dir.name.removeprefix("symbol=")
        trades[symbol] = list(_parts(symbol_dir))
        venues.setdefault(symbol, _venue_of(_parts(symbol_dir)))
    return RecordedData(bars=bars, trades=trades, venues=venues)


def recorded_trades(parts: list[Path], out: Path) -> Path:
    """Join a symbol's recorded trade parts into one trade file at ``out`` (time order,
    repeats of a trade id written again by a restarted ``md`` dropped)."""
    tables = [pq.read_table(p, columns=list(_TRADE_KEYS)) for p in parts]
    table = pa.concat_tables(tables).sort_by([("ts", "ascending")])
    ids = table.column("trade_id").to_numpy()
    _, first = np.unique(ids, return_index=True)
    if first.shape[0] < table.num_rows:
        table = table.take(pa.array(np.sort(first)))
    return write_parquet(table, out)


def prepare_session_folder(
    config: GraphConfig, out_dir: Path, config_path: str | Path | None
) -> GraphConfig:
    """Get a session's output folder ready for ``tradegraph twin``: record its market data
    under ``out_dir/recorded`` unless the config says where (or, with ``session.record_dir:
    null``, not to), and keep the resolved config (and the file it came from) beside it.

    Returns the config the session runs with.
    """
    if "record_dir" not in config.session.model_fields_set:
        record_dir = str((out_dir / RECORDED_DIR).resolve())
        session = config.session.model_copy(update={"record_dir": record_dir})
        config = config.model_copy(update={"session": session})
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {
        "config_path": str(Path(config_path).resolve()) if config_path else None,
        "config": config.model_dump(mode="json"),
    }
    (out_dir / SESSION_CONFIG).write_text(json.dumps(saved, indent=2) + "\n")
    return config
