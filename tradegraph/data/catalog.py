"""Reading and writing market data as Parquet (and reading CSV). This is the edge: components
never touch files.

Paths may be ``sample:NAME`` for the real Binance data bundled with the package (see
``tradegraph/data/sample/PROVENANCE.md``). Times are made int64 ns here, whatever unit the file
holds them in, and rows are put in time order (see :mod:`tradegraph.data.timestamps`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tradegraph.contracts import Instrument
from tradegraph.data.timestamps import UNIT_NS, describe_times, detect_time_unit, time_order
from tradegraph.errors import DataError
from tradegraph.observability import get_logger

SAMPLES: dict[str, str] = {
    "BTCUSDT_1m": "binance_spot_BTCUSDT_1m_202507.parquet",
    "ETHUSDT_1m": "binance_spot_ETHUSDT_1m_202507.parquet",
    "BTCUSDT_trades": "binance_spot_BTCUSDT_trades_20240808T2354_20240809T0005.parquet",
    "exchangeinfo": "binance_spot_exchangeinfo_BTCUSDT_ETHUSDT_20211022.json",
    "BTCUSDT-PERP_funding": "synthetic_BTCUSDT-PERP_funding_8h_202507.parquet",
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
    # Rows the reader left out (by reason), for the feed's drop counts.
    dropped: Mapping[str, int] = field(default_factory=dict)

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
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _read_file(path: Path, kind: str) -> pa.Table:
    """A Parquet file, or a CSV file when the name ends in ``.csv`` (or ``.csv.gz``)."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the {kind} file is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        try:
            return pa_csv.read_csv(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    return _read_parquet(path)


def _times_ns(table: pa.Table, path: Path, spacing_ns: int | None) -> pa.Table:
    """``table`` with its ``ts`` column as int64 ns since the epoch, whatever it held.

    Arrow timestamps (what pandas writes) are cast; integers in s, ms or us are scaled, with a
    warning naming the unit found (see :func:`detect_time_unit`).
    """
    where = f"{path}: column 'ts'"
    col = table.column("ts")
    kind = col.type
    if col.null_count:
        raise DataError(f"{where} has {col.null_count} null values")
    log = get_logger("catalog")
    if pa.types.is_timestamp(kind):
        try:
            ns = col.cast(pa.timestamp("ns", tz=kind.tz)).cast(pa.int64())
        except pa.ArrowException as exc:
            raise DataError(f"{where}: times out of the int64 ns range ({exc})") from exc
        values = np.ascontiguousarray(ns.to_numpy(), dtype=np.int64)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raw = col.to_numpy()
        if pa.types.is_floating(kind) and not bool(
            np.all(np.isfinite(raw) & (raw == np.round(raw)) & (np.abs(raw) < 2.0**63))
        ):
            raise DataError(f"{where}: times must be whole numbers since the epoch")
        values = np.ascontiguousarray(raw, dtype=np.int64)
        unit = detect_time_unit(values, spacing_ns, where)
        if unit != "ns":
            factor = UNIT_NS[unit]
            if int(np.abs(values).max()) > np.iinfo(np.int64).max // factor:
                raise DataError(f"{where}: times in {unit} out of the int64 ns range")
            values = values * factor
            log.warning(
                "ts_unit_converted",
                file=str(path),
                column="ts",
                unit=unit,
                first=describe_times((int(values[0]),))[0],
                detail=f"times read as {unit} since the epoch and converted to ns",
            )
    else:
        raise DataError(
            f"{where} must hold times since the epoch (int64 ns, or s/ms/us) or Arrow "
            f"timestamps, not {kind}"
        )
    index = table.column_names.index("ts")
    return table.set_column(index, "ts", pa.array(values, pa.int64()))


def _time_ordered(
    ts: I64, idx: npt.NDArray[np.intp], spacing_ns: int | None, now_ns: int, where: str, kind: str
) -> tuple[npt.NDArray[np.intp], dict[str, int]]:
    """``idx`` in time order, less the rows far out of line; logs what it sorted and dropped."""
    found = time_order(ts[idx], spacing_ns, now_ns)
    log = get_logger("catalog")
    if found.out_of_order:
        log.warning(
            f"{kind}_sorted",
            file=where,
            rows_out_of_order=found.out_of_order,
            detail=f"{kind} were not in time order; sorted them by ts",
        )
    if found.dropped:
        log.warning(
            f"{kind}_out_of_line_dropped",
            file=where,
            dropped=found.dropped,
            first_dropped_ts=describe_times(found.dropped_ts),
        )
    return idx[found.keep], dict(found.dropped)


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
    now_ns: int | None = None,
) -> list[BarArrays]:
    """Read a Parquet (or ``.csv``) bar file, one ``BarArrays`` per symbol, in first-seen
    symbol order.

    Columns ``ts`` (bar open time), ``open``, ``high``, ``low``, ``close``, ``volume``;
    optionally ``symbol`` and ``venue``, which override the arguments. ``ts`` may be int64 ns,
    integers in s, ms or us (the unit is told from the dates and the spacing against
    ``interval_ns``, and converted with a warning) or an Arrow timestamp column. Each symbol's
    rows are sorted by time (a warning says so when they were not), and rows far out of line
    with the rest (after ``now_ns``, the local clock by default, or cut off by a huge gap) are
    dropped and counted in ``dropped``. Values are not validated here: the feed validates,
    drops and counts bad rows.

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
        table = _read_file(resolved, "bar")
    missing = [c for c in BAR_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{resolved}: missing bar columns {missing}; need {list(BAR_COLUMNS)} "
            "(ts = bar open time in int64 ns)"
        )
    if table.num_rows == 0:
        what = "holds no bars for the days asked for" if resolved.is_dir() else "is empty"
        raise DataError(f"{resolved}: the bar file {what} (0 rows)")
    table = _in_window(_times_ns(table, resolved, interval_ns), start_ns, end_ns)
    if table.num_rows == 0:
        raise DataError(f"{resolved}: no bars between the configured start and end")
    now = time.time_ns() if now_ns is None else now_ns

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
        idx, dropped = _time_ordered(
            ts, np.flatnonzero(keys == key), interval_ns, now, f"{resolved} ({sym})", "bars"
        )
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
                dropped=dropped,
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
    # Rows the reader left out (by reason), for the feed's drop counts.
    dropped: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


TRADE_COLUMNS = ("ts", "price", "size", "side", "trade_id")


def read_trades(
    path: str | Path,
    *,
    symbol: str,
    venue: str = "BINANCE",
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
    now_ns: int | None = None,
) -> TradeArrays:
    """Read trade ticks (Parquet, or ``.csv``): ``ts``, ``price``, ``size``, ``side``
    (buy/sell), ``trade_id``.

    ``ts`` is read as :func:`read_bars` reads it (any unit, or Arrow timestamps). Rows are put
    in time order (equal times keep file order: one match prints several trades), rows far out
    of line are dropped, and so is every repeat of a ``trade_id`` after its first row; all
    counted in ``dropped``.
    """
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"trade file not found: {resolved}")
    if resolved.is_dir():
        raise DataError(f"{resolved}: a trade source must be one Parquet or CSV file")
    table = _read_file(resolved, "trade")
    missing = [c for c in TRADE_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{resolved}: missing trade columns {missing}; need {list(TRADE_COLUMNS)}")
    if table.num_rows == 0:
        raise DataError(f"{resolved}: the trade file is empty (0 rows)")
    side_type = table.column("side").type
    if not (pa.types.is_string(side_type) or pa.types.is_large_string(side_type)):
        raise DataError(f"{resolved}: column 'side' must hold the strings 'buy' or 'sell'")
    table = _in_window(_times_ns(table, resolved, None), start_ns, end_ns)
    if table.num_rows == 0:
        raise DataError(f"{resolved}: no trades between the configured start and end")
    now = time.time_ns() if now_ns is None else now_ns
    ts = _column(table, "ts", np.int64, resolved)
    trade_id = _column(table, "trade_id", np.int64, resolved)
    idx, dropped = _time_ordered(
        ts, np.arange(ts.shape[0]), None, now, f"{resolved} ({symbol})", "trades"
    )
    _, first = np.unique(trade_id[idx], return_index=True)
    repeats = int(idx.shape[0] - first.shape[0])
    if repeats:
        idx = idx[np.sort(first)]
        dropped["duplicate_trade_id"] = repeats
        get_logger("catalog").warning(
            "trades_duplicates_dropped", file=str(resolved), duplicate_trade_id=repeats
        )
    if limit is not None:
        idx = idx[:limit]
    side = table.column("side").to_numpy(zero_copy_only=False)
    return TradeArrays(
        symbol=symbol,
        venue=venue,
        ts_ns=ts[idx],
        price=_column(table, "price", np.float64, resolved)[idx],
        size=_column(table, "size", np.float64, resolved)[idx],
        aggressor_buy=np.asarray(side == "buy", dtype=bool)[idx],
        trade_id=trade_id[idx],
        dropped=dropped,
    )


FUNDING_COLUMNS = ("ts", "funding_rate")


@dataclass(frozen=True)
class FundingArrays:
    """A perpetual's funding events as columns, in time order.

    ``mark_price`` is NaN where the file gives none (or has no ``mark_price`` column): the
    receiver then uses its own mark.
    """

    ts_ns: I64
    rate: F64
    mark_price: F64

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


def read_funding(
    path: str | Path, start_ns: int | None = None, end_ns: int | None = None
) -> FundingArrays:
    """Read a funding-rate series (Parquet, or ``.csv``) for one perpetual.

    Columns ``ts`` (time of the funding event, int64 ns preferred; s, ms or us and Arrow
    timestamps are converted as :func:`read_bars` does), ``funding_rate`` (fraction of position
    notional per interval; positive means longs pay shorts) and optionally ``mark_price``.
    Only events with ``start_ns <= ts < end_ns`` are kept. Rows are sorted by time; a repeated
    time keeps its first row. Rates must be finite and inside (-1, 1), marks finite and > 0:
    anything else is a ``DataError`` naming the column, since a wrong funding payment cannot be
    dropped quietly the way a bad bar can.
    """
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"funding file not found: {resolved}")
    if resolved.is_dir():
        raise DataError(f"{resolved}: a funding source must be one Parquet or CSV file")
    table = _read_file(resolved, "funding")
    missing = [c for c in FUNDING_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{resolved}: missing funding columns {missing}; need {list(FUNDING_COLUMNS)} "
            "and optionally 'mark_price'"
        )
    if table.num_rows == 0:
        raise DataError(f"{resolved}: the funding file is empty (0 rows)")
    table = _in_window(_times_ns(table, resolved, None), start_ns, end_ns)
    ts = _column(table, "ts", np.int64, resolved)
    rate = _column(table, "funding_rate", np.float64, resolved)
    if "mark_price" in table.column_names:
        mark = _column(table, "mark_price", np.float64, resolved)
    else:
        mark = np.full(ts.shape[0], np.nan)
    bad_rate = ~(np.isfinite(rate) & (np.abs(rate) < 1.0))
    if bool(bad_rate.any()):
        row = int(np.flatnonzero(bad_rate)[0])
        raise DataError(
            f"{resolved}: column 'funding_rate' must hold finite fractions in (-1, 1); "
            f"row {row} holds {rate[row]!r}"
        )
    bad_mark = ~(np.isnan(mark) | (np.isfinite(mark) & (mark > 0)))
    if bool(bad_mark.any()):
        row = int(np.flatnonzero(bad_mark)[0])
        raise DataError(
            f"{resolved}: column 'mark_price' must be > 0 where given; row {row} holds "
            f"{mark[row]!r}"
        )
    order = np.argsort(ts, kind="stable")
    ts, rate, mark = ts[order], rate[order], mark[order]
    if ts.shape[0]:
        first = np.concatenate(([True], ts[1:] != ts[:-1]))
        ts, rate, mark = ts[first], rate[first], mark[first]
    return FundingArrays(
        ts_ns=np.ascontiguousarray(ts),
        rate=np.ascontiguousarray(rate),
        mark_price=np.ascontiguousarray(mark),
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
