"""Reading and writing market data as Parquet. This is the edge: components never touch files.

Paths may be ``sample:NAME`` for the real Binance data bundled with the package (see
``tradegraph/data/sample/PROVENANCE.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from tradegraph.contracts import Instrument
from tradegraph.errors import DataError

SAMPLES: dict[str, str] = {
    "BTCUSDT_1m": "binance_spot_BTCUSDT_1m_202507.parquet",
    "ETHUSDT_1m": "binance_spot_ETHUSDT_1m_202507.parquet",
    "BTCUSDT_trades": "binance_spot_BTCUSDT_trades_20240808T2354_20240809T0005.parquet",
    "exchangeinfo": "binance_spot_exchangeinfo_BTCUSDT_ETHUSDT_20211022.json",
}

BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def resolve_path(path: str | Path) -> Path:
    """Turn ``sample:NAME`` into the bundled file's path; other paths pass through."""
    text = str(path)
    if text.startswith("sample:"):
        name = text.removeprefix("sample:")
        if name not in SAMPLES:
            raise DataError(f"unknown sample {name!r}; bundled samples: {sorted(SAMPLES)}")
        return Path(str(resources.files("tradegraph.data").joinpath("sample", SAMPLES[name])))
    return Path(text).expanduser()


@dataclass(frozen=True)
class BarArrays:
    """Bars of one instrument as columns. ``ts_open_ns`` holds the bar open times."""

    symbol: str
    venue: str
    interval_ns: int
    ts_open_ns: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64

    @property
    def instrument_id(self) -> str:
        return f"{self.symbol}.{self.venue}"

    def __len__(self) -> int:
        return int(self.ts_open_ns.shape[0])

    def rows(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> BarArrays:
        """The bars at ``index`` (a slice, a mask or positions) as columns of their own."""
        return replace(
            self,
            ts_open_ns=self.ts_open_ns[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
        )

    def to_table(self) -> pa.Table:
        n = len(self)
        return pa.table(
            {
                "ts": self.ts_open_ns,
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
                "symbol": pa.array([self.symbol] * n, pa.string()),
                "venue": pa.array([self.venue] * n, pa.string()),
            }
        )


def parse_time_ns(text: str, field: str) -> int:
    """ISO date or date-time (UTC when no zone is given) to ns since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DataError(f"{field}: {text!r} is not an ISO date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _column(table: pa.Table, name: str, dtype: type[np.generic], path: Path) -> Any:
    col = table.column(name)
    if col.null_count:
        # Nulls become NaN (floats) so that validation drops and counts those rows.
        if dtype is np.int64:
            raise DataError(f"{path}: column {name!r} has {col.null_count} null values")
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    try:
        return np.ascontiguousarray(col.to_numpy(), dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: column {name!r} cannot be read as {dtype.__name__}") from exc


def _in_window(table: pa.Table, start_ns: int | None, end_ns: int | None) -> pa.Table:
    """The rows of ``table`` with ``start_ns <= ts < end_ns`` (either bound may be open)."""
    if start_ns is None and end_ns is None:
        return table
    ts_col = table.column("ts").to_numpy()
    keep = np.ones(ts_col.shape[0], dtype=bool)
    if start_ns is not None:
        keep &= ts_col >= start_ns
    if end_ns is not None:
        keep &= ts_col < end_ns
    return table.filter(pa.array(keep))


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


DAY_NS = 86_400_000_000_000


def _read_bar_dataset(
    root: Path, symbol: str | None, start_ns: int | None, end_ns: int | None
) -> pa.Table:
    """The bars of a hive-partitioned folder, ``symbol=S/date=YYYY-MM-DD/*.parquet``."""
    symbol_dirs = sorted(d for d in root.glob("symbol=*") if d.is_dir())
    known = [d.name.removeprefix("symbol=") for d in symbol_dirs]
    if symbol is not None:
        symbol_dirs = [d for d in symbol_dirs if d.name == f"symbol={symbol}"]
    if not symbol_dirs:
        wanted = f"symbol {symbol!r}" if symbol is not None else "any symbol"
        raise DataError(
            f"{root}: no bars for {wanted} (a dataset folder holds symbol=NAME/date=YYYY-MM-DD/"
            f"*.parquet; symbols here: {known or 'none'})"
        )
    tables: list[pa.Table] = []
    for symbol_dir in symbol_dirs:
        name = symbol_dir.name.removeprefix("symbol=")
        for day_dir in sorted(d for d in symbol_dir.glob("date=*") if d.is_dir()):
            day = day_dir.name.removeprefix("date=")
            try:
                day_start = parse_time_ns(day, str(day_dir))
            except DataError:
                continue
            if (end_ns is not None and day_start >= end_ns) or (
                start_ns is not None and day_start + DAY_NS <= start_ns
            ):
                continue
            for part in sorted(day_dir.glob("*.parquet")):
                table = _read_parquet(part)
                if "symbol" not in table.column_names:
                    table = table.append_column(
                        "symbol", pa.array([name] * table.num_rows, pa.string())
                    )
                tables.append(table)
    if not tables:
        return pa.table(
            {c: pa.array([], pa.int64() if c == "ts" else pa.float64()) for c in BAR_COLUMNS}
        )
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{root}: day files with different columns ({exc})") from exc
    return table.sort_by([("ts", "ascending")])


def read_bars(
    path: str | Path,
    *,
    symbol: str | None = None,
    venue: str | None = None,
    interval_ns: int = 60_000_000_000,
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
) -> list[BarArrays]:
    """Read a Parquet bar file, one ``BarArrays`` per symbol, in first-seen symbol order.

    Columns ``ts`` (int64 ns, bar open time), ``open``, ``high``, ``low``, ``close``, ``volume``;
    optionally ``symbol`` and ``venue``, which override the arguments. Rows are not validated
    here: the feed validates, drops and counts bad rows.

    ``path`` may also be a dataset folder as ``tradegraph data download`` writes it,
    ``symbol=BTCUSDT/date=2025-07-01/part.parquet``: then only ``symbol``'s bars are read when
    ``symbol`` is given (every symbol's otherwise), and only the days that ``start_ns`` and
    ``end_ns`` reach.
    """
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"bar file not found: {resolved}")
    if resolved.is_dir():
        table = _read_bar_dataset(resolved, symbol, start_ns, end_ns)
    else:
        table = _read_parquet(resolved)
    missing = [c for c in BAR_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{resolved}: missing bar columns {missing}; need {list(BAR_COLUMNS)} "
            "(ts = bar open time in int64 ns)"
        )
    if not pa.types.is_integer(table.schema.field("ts").type):
        raise DataError(f"{resolved}: column 'ts' must be int64 nanoseconds since the epoch")
    table = _in_window(table, start_ns, end_ns)

    if "symbol" in table.column_names:
        symbols = [str(s) for s in table.column("symbol").to_numpy(zero_copy_only=False)]
    else:
        if symbol is None:
            raise DataError(f"{resolved}: no 'symbol' column; give the symbol in the config")
        symbols = [symbol] * table.num_rows
    if "venue" in table.column_names:
        venues = [str(v) for v in table.column("venue").to_numpy(zero_copy_only=False)]
    else:
        venues = [venue or "BINANCE"] * table.num_rows

    ts = _column(table, "ts", np.int64, resolved)
    cols = {c: _column(table, c, np.float64, resolved) for c in BAR_COLUMNS[1:]}
    keys = np.array([f"{s}\x00{v}" for s, v in zip(symbols, venues, strict=True)], dtype=object)
    out: list[BarArrays] = []
    seen: dict[str, None] = dict.fromkeys(keys.tolist())
    for key in seen:
        sym, ven = key.split("\x00")
        idx = np.flatnonzero(keys == key)
        if limit is not None:
            idx = idx[:limit]
        out.append(
            BarArrays(
                symbol=sym,
                venue=ven,
                interval_ns=interval_ns,
                ts_open_ns=ts[idx],
                open=cols["open"][idx],
                high=cols["high"][idx],
                low=cols["low"][idx],
                close=cols["close"][idx],
                volume=cols["volume"][idx],
            )
        )
    return out


@dataclass(frozen=True)
class TradeArrays:
    symbol: str
    venue: str
    ts_ns: I64
    price: F64
    size: F64
    aggressor_buy: npt.NDArray[np.bool_]
    trade_id: I64

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


def read_trades(
    path: str | Path,
    *,
    symbol: str,
    venue: str = "BINANCE",
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
) -> TradeArrays:
    """Read trade ticks: ``ts`` (ns), ``price``, ``size``, ``side`` (buy/sell), ``trade_id``."""
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"trade file not found: {resolved}")
    table = pq.read_table(resolved)
    missing = [
        c for c in ("ts", "price", "size", "side", "trade_id") if c not in table.column_names
    ]
    if missing:
        raise DataError(f"{resolved}: missing trade columns {missing}")
    table = _in_window(table, start_ns, end_ns)
    if limit is not None:
        table = table.slice(0, limit)
    side = table.column("side").to_numpy(zero_copy_only=False)
    return TradeArrays(
        symbol=symbol,
        venue=venue,
        ts_ns=_column(table, "ts", np.int64, resolved),
        price=_column(table, "price", np.float64, resolved),
        size=_column(table, "size", np.float64, resolved),
        aggressor_buy=np.asarray(side == "buy", dtype=bool),
        trade_id=_column(table, "trade_id", np.int64, resolved),
    )


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write a table with zstd compression, creating parent folders.

    Written beside ``path`` and renamed over it: a reader, or a process killed mid-write,
    never sees half a file (outputs are rewritten while a session runs).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def _filter(filters: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for f in filters:
        if f.get("filterType") == kind:
            return f
    return None


def instruments_from_exchange_info(
    path: str | Path, *, venue: str = "BINANCE", maker_fee: float = 0.001, taker_fee: float = 0.001
) -> list[Instrument]:
    """Build instruments from a raw Binance ``exchangeInfo`` response."""
    resolved = resolve_path(path)
    try:
        payload = json.loads(resolved.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{resolved}: cannot read exchangeInfo JSON ({exc})") from exc
    out: list[Instrument] = []
    for sym in payload.get("symbols", []):
        filters = sym.get("filters", [])
        price_f = _filter(filters, "PRICE_FILTER")
        lot_f = _filter(filters, "LOT_SIZE")
        notional_f = _filter(filters, "NOTIONAL") or _filter(filters, "MIN_NOTIONAL")
        if price_f is None or lot_f is None:
            raise DataError(f"{resolved}: {sym.get('symbol')} lacks PRICE_FILTER or LOT_SIZE")
        out.append(
            Instrument(
                symbol=sym["symbol"],
                venue=venue,
                base=sym["baseAsset"],
                quote=sym["quoteAsset"],
                tick_size=float(price_f["tickSize"]),
                lot_size=float(lot_f["stepSize"]),
                min_quantity=float(lot_f["minQty"]),
                min_notional=float(notional_f["minNotional"]) if notional_f else 0.0,
                maker_fee=maker_fee,
                taker_fee=taker_fee,
            )
        )
    return out
