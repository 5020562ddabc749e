"""Reading and writing market data as Parquet (and reading CSV). This is the edge: components
never touch files.

Paths may be ``sample:NAME`` for the real Binance data bundled with the package (see
``tradegraph/data/sample/PROVENANCE.md``). Times are made int64 ns here, whatever unit the file
holds them in, and rows are put in time order (see :mod:`tradegraph.data.timestamps`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
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
from tradegraph.data.timestamps import (
    UNIT_NS,
    YEAR_2000_NS,
    describe_times,
    detect_time_unit,
    time_order,
)
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


def _numpy(col: pa.ChunkedArray | pa.Array) -> Any:
    """``col`` as numpy: a view of Arrow's buffer for numbers without nulls (one chunk), else
    Arrow's own conversion.

    The views are taken by hand because Arrow's ``to_numpy`` imports pandas, which costs a
    file read seconds and tens of MB when nothing else needs it.
    """
    kind = col.type
    if col.null_count or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return col.to_numpy(zero_copy_only=False)
    dtype = np.dtype(kind.to_pandas_dtype())
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    views = [
        np.frombuffer(c.buffers()[1], dtype=dtype)[c.offset : c.offset + len(c)]
        for c in chunks
        if len(c)
    ]
    if len(views) == 1:
        return views[0]
    return np.concatenate(views) if views else np.empty(0, dtype=dtype)


def _column(col: pa.ChunkedArray, name: str, dtype: type[np.generic], path: Path) -> Any:
    """``col`` as a numpy array of ``dtype``, without a copy when it already is one."""
    if col.null_count:
        # Nulls become NaN (floats) so that validation drops and counts those rows.
        if dtype is np.int64:
            raise DataError(f"{path}: column {name!r} has {col.null_count} null values")
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    try:
        return np.ascontiguousarray(_numpy(col), dtype=dtype)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{path}: column {name!r} cannot be read as {dtype.__name__}") from exc


# Rows per Parquet row group that write_parquet writes: small enough that a reader asking for a
# window of a long file skips most of it, large enough that the groups cost nothing to index.
ROW_GROUP_ROWS = 65_536
INT64_MIN = int(np.iinfo(np.int64).min)
INT64_MAX = int(np.iinfo(np.int64).max)
_PARQUET_TIME_UNIT_NS = {"milliseconds": 1_000_000, "microseconds": 1_000, "nanoseconds": 1}


@dataclass(frozen=True)
class _Piece:
    """What a reader reads at once: one row group of a Parquet file, or a whole CSV table.

    ``ts_nulls`` and ``ts_range`` (the bounds of ``ts`` in ns) come from the Parquet
    statistics, when the file has them; they let a reader skip pieces without opening them.
    """

    path: Path
    rows: int
    names: frozenset[str]
    file: pq.ParquetFile | None = None
    # Without an open file (the many day files of a dataset): opened for each read.
    metadata: pq.FileMetaData | None = None
    group: int = 0
    table: pa.Table | None = None
    # Columns the piece lacks but whose value its place tells (a dataset's symbol folder).
    constants: Mapping[str, str] = field(default_factory=dict)
    ts_nulls: int | None = None
    ts_range: tuple[int, int] | None = None

    def read(self, columns: Sequence[str]) -> pa.Table:
        """The piece's ``columns`` that it holds (the others are left out)."""
        present = [c for c in columns if c in self.names]
        if self.table is not None:
            return self.table.select(present)
        try:
            # One thread: the groups are small, and on a busy machine threads cost more
            # (time and per-thread memory) than they give.
            if self.file is not None:
                return self.file.read_row_group(self.group, columns=present, use_threads=False)
            with pq.ParquetFile(self.path, metadata=self.metadata) as handle:
                return handle.read_row_group(self.group, columns=present, use_threads=False)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{self.path}: not a readable Parquet file ({exc})") from exc


@dataclass(frozen=True)
class _Source:
    """A file or dataset folder as pieces, with the union of their columns."""

    path: Path
    types: Mapping[str, pa.DataType]
    pieces: tuple[_Piece, ...]
    # Rows are put in ts order before anything else (a dataset of day files).
    sort: bool = False

    @property
    def names(self) -> list[str]:
        return list(self.types)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pieces)


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _ts_statistics(
    meta: pq.FileMetaData, group: int, leaf: int, ts_type: pa.DataType
) -> tuple[int | None, tuple[int, int] | None]:
    """Null count and ns bounds of ``ts`` in one row group, as far as its statistics tell."""
    stats = meta.row_group(group).column(leaf).statistics
    if stats is None or not stats.has_null_count:
        return None, None
    nulls = int(stats.null_count)
    if not stats.has_min_max:
        return nulls, None
    if pa.types.is_timestamp(ts_type) and stats.physical_type == "INT64":
        unit = json.loads(meta.schema.column(leaf).logical_type.to_json()).get("timeUnit")
        factor = _PARQUET_TIME_UNIT_NS.get(str(unit))
        if factor is None:
            return nulls, None
    elif pa.types.is_signed_integer(ts_type) and stats.physical_type in ("INT32", "INT64"):
        factor = 1
    else:
        return nulls, None
    low, high = int(stats.min_raw) * factor, int(stats.max_raw) * factor
    if low < INT64_MIN or high > INT64_MAX:
        return nulls, None
    return nulls, (low, high)


def _parquet_pieces(
    path: Path, constants: Mapping[str, str] | None = None, *, keep_open: bool = True
) -> tuple[pa.Schema, list[_Piece]]:
    """The schema of a Parquet file and its row groups as pieces; without ``keep_open`` the
    file is closed until a piece is read (a dataset may hold more day files than a process
    may keep open)."""
    handle = _open_parquet(path)
    schema = handle.schema_arrow
    meta = handle.metadata
    if not keep_open:
        handle.close()
    names = frozenset(schema.names)
    leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]
    ts_leaf = leaves.index("ts") if "ts" in leaves and "ts" in names else None
    pieces: list[_Piece] = []
    for group in range(meta.num_row_groups):
        nulls, bounds = (
            _ts_statistics(meta, group, ts_leaf, schema.field("ts").type)
            if ts_leaf is not None
            else (None, None)
        )
        pieces.append(
            _Piece(
                path=path,
                rows=meta.row_group(group).num_rows,
                names=names,
                file=handle if keep_open else None,
                metadata=meta,
                group=group,
                constants=constants or {},
                ts_nulls=nulls,
                ts_range=bounds,
            )
        )
    return schema, pieces


def _open_file(path: Path, kind: str, columns: Sequence[str]) -> _Source:
    """A Parquet file, or a CSV file when the name ends in ``.csv`` (or ``.csv.gz``); of a CSV
    file only ``columns`` are read."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the {kind} file is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        try:
            header = pa_csv.open_csv(path).schema.names
            table = pa_csv.read_csv(
                path,
                convert_options=pa_csv.ConvertOptions(
                    include_columns=[c for c in header if c in columns]
                ),
            )
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
        piece = _Piece(path, table.num_rows, frozenset(table.column_names), table=table)
        return _Source(
            path, dict(zip(table.column_names, table.schema.types, strict=True)), (piece,)
        )
    schema, pieces = _parquet_pieces(path)
    return _Source(path, dict(zip(schema.names, schema.types, strict=True)), tuple(pieces))


def _ts_kind(source: _Source) -> pa.DataType:
    kind = source.types["ts"]
    if not (pa.types.is_timestamp(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise DataError(
            f"{source.path}: column 'ts' must hold times since the epoch (int64 ns, or s/ms/us) "
            f"or Arrow timestamps, not {kind}"
        )
    return kind


def _pieces_for(
    source: _Source, start_ns: int | None, end_ns: int | None
) -> tuple[_Piece, ...] | None:
    """The pieces that can hold rows with ``start_ns <= ts < end_ns``, when their statistics
    tell it without changing what the reader finds; None when every piece must be read.

    Integer times are taken as ns (and so comparable with the statistics) only when every
    piece's smallest value is after 2000 in ns, which is what :func:`detect_time_unit` says of
    such a column; other units are told from all the values, so all pieces are read.
    """
    ranges = [p.ts_range for p in source.pieces]
    if not ranges or any(r is None for r in ranges):
        return None
    known = [r for r in ranges if r is not None]
    if not pa.types.is_timestamp(source.types["ts"]) and min(r[0] for r in known) < YEAR_2000_NS:
        return None
    return tuple(
        p
        for p, (low, high) in zip(source.pieces, known, strict=True)
        if (end_ns is None or low < end_ns) and (start_ns is None or high >= start_ns)
    )


Extractor = Callable[[_Piece, pa.Table, str], Any]


@dataclass(frozen=True)
class _Scan:
    """The ``ts`` (int64 ns) of the rows in the window, in file order (time order for a
    dataset), with the other columns read so far; ``origin`` gives each row's position in the
    concatenation of ``pieces`` (None: the positions are 0, 1, 2, ...)."""

    pieces: tuple[_Piece, ...]
    ts: I64
    origin: I64 | None
    extra: dict[str, Any]


def _times_ns(source: _Source, chunks: list[pa.ChunkedArray], spacing_ns: int | None) -> I64:
    """The ``ts`` chunks as one int64 ns array, whatever unit they held.

    Arrow timestamps (what pandas writes) are cast; integers in s, ms or us are scaled, with a
    warning naming the unit found (see :func:`detect_time_unit`).
    """
    path = source.path
    where = f"{path}: column 'ts'"
    nulls = sum(c.null_count for c in chunks)
    if nulls:
        raise DataError(f"{where} has {nulls} null values")
    kind = _ts_kind(source)
    rows = sum(len(c) for c in chunks)
    values = np.empty(rows, dtype=np.int64)
    at = 0
    for col in chunks:
        if pa.types.is_timestamp(kind):
            try:
                part = _numpy(col.cast(pa.timestamp("ns", tz=kind.tz)).cast(pa.int64()))
            except pa.ArrowException as exc:
                raise DataError(f"{where}: times out of the int64 ns range ({exc})") from exc
        else:
            part = _numpy(col)
            if pa.types.is_floating(kind) and not bool(
                np.all(np.isfinite(part) & (part == np.round(part)) & (np.abs(part) < 2.0**63))
            ):
                raise DataError(f"{where}: times must be whole numbers since the epoch")
        values[at : at + len(col)] = part
        at += len(col)
    if pa.types.is_timestamp(kind):
        return values
    unit = detect_time_unit(values, spacing_ns, where)
    if unit != "ns":
        factor = UNIT_NS[unit]
        if int(np.abs(values).max()) > INT64_MAX // factor:
            raise DataError(f"{where}: times in {unit} out of the int64 ns range")
        values *= factor
        get_logger("catalog").warning(
            "ts_unit_converted",
            file=str(path),
            column="ts",
            unit=unit,
            first=describe_times((int(values[0]),))[0],
            detail=f"times read as {unit} since the epoch and converted to ns",
        )
    return values


def _joined(parts: list[Any], rows: list[int]) -> Any:
    """The pieces' values as one array, or one number when every piece gave that number."""
    if parts and all(isinstance(p, int) for p in parts) and len(set(parts)) == 1:
        return int(parts[0])
    if not parts:
        return np.empty(0)
    arrays = [np.full(n, p) if isinstance(p, int) else p for p, n in zip(parts, rows, strict=True)]
    return np.concatenate(arrays)


def _scan(
    source: _Source,
    start_ns: int | None,
    end_ns: int | None,
    spacing_ns: int | None,
    extract: Mapping[str, Extractor],
) -> _Scan:
    """Read ``ts`` and the ``extract`` columns of the pieces that can hold the window; keep
    the rows with ``start_ns <= ts < end_ns`` (either bound may be open)."""
    window = start_ns is not None or end_ns is not None
    chosen = _pieces_for(source, start_ns, end_ns) if window else None
    pieces = source.pieces if chosen is None else chosen
    known_nulls = [p.ts_nulls for p in source.pieces]
    if chosen is not None and all(n is not None for n in known_nulls):
        # The statistics count the nulls of the pieces left unread as well.
        nulls = sum(n for n in known_nulls if n is not None)
        if nulls:
            raise DataError(f"{source.path}: column 'ts' has {nulls} null values")
    chunks: list[pa.ChunkedArray] = []
    parts: dict[str, list[Any]] = {name: [] for name in extract}
    for piece in pieces:
        table = piece.read(["ts", *extract])
        chunks.append(
            table.column("ts")
            if "ts" in table.column_names
            else pa.chunked_array([pa.nulls(piece.rows, pa.int64())])
        )
        for name, get in extract.items():
            parts[name].append(get(piece, table, name))
    ts = _times_ns(source, chunks, spacing_ns)
    del chunks
    extra = {n: _joined(p, [piece.rows for piece in pieces]) for n, p in parts.items()}
    origin: I64 | None = None
    if source.sort:
        origin = np.argsort(ts, kind="stable")
        ts = ts[origin]
        extra = {n: a if isinstance(a, int) else a[origin] for n, a in extra.items()}
    if window:
        keep = np.ones(ts.shape[0], dtype=bool)
        if start_ns is not None:
            keep &= ts >= start_ns
        if end_ns is not None:
            keep &= ts < end_ns
        rows = np.flatnonzero(keep)
        del keep
        ts = ts[rows]
        extra = {n: a if isinstance(a, int) else a[rows] for n, a in extra.items()}
        origin = rows if origin is None else origin[rows]
    return _Scan(tuple(pieces), ts, origin, extra)


def _gather(
    scan: _Scan,
    selections: Sequence[npt.NDArray[np.intp]],
    columns: Mapping[str, tuple[Extractor, type[np.generic]]],
    read: Sequence[str],
) -> list[dict[str, Any]]:
    """The ``columns`` (made by their extractors from the ``read`` columns) at each selection
    of scan rows, reading only the pieces that hold them.

    Each piece is read once, straight into the output arrays (one copy of the selected rows).
    """
    offsets = np.cumsum([0, *(p.rows for p in scan.pieces)])
    plans = []
    for chosen in selections:
        rows = chosen if scan.origin is None else scan.origin[chosen]
        ascending = bool(rows.shape[0] < 2 or np.all(rows[1:] > rows[:-1]))
        order = None if ascending else np.argsort(rows, kind="stable")
        ordered = rows if order is None else rows[order]
        plans.append((ordered, order, np.searchsorted(ordered, offsets)))
    out: list[dict[str, Any]] = [
        {name: np.empty(ordered.shape[0], dtype=dtype) for name, (_, dtype) in columns.items()}
        for ordered, _, _ in plans
    ]
    for at, piece in enumerate(scan.pieces):
        spans = [(int(bounds[at]), int(bounds[at + 1])) for _, _, bounds in plans]
        if all(lo == hi for lo, hi in spans):
            continue
        table = piece.read(read)
        for name, (get, _) in columns.items():
            values = get(piece, table, name)
            for k, ((ordered, order, _), (lo, hi)) in enumerate(zip(plans, spans, strict=True)):
                if lo == hi:
                    continue
                target = out[k][name]
                src = ordered[lo:hi] - offsets[at]
                if order is None and int(src[-1] - src[0]) == hi - lo - 1:
                    target[lo:hi] = values[int(src[0]) : int(src[-1]) + 1]
                else:
                    target[order[lo:hi] if order is not None else slice(lo, hi)] = values[src]
        del table
    return out


def _take(values: Any, idx: npt.NDArray[np.intp]) -> Any:
    """``values[idx]``; ``values`` itself when ``idx`` takes every row in order."""
    n = int(values.shape[0])
    if idx.shape[0] == n and (n < 2 or bool(np.all(idx[1:] > idx[:-1]))):
        return values
    return values[idx]


def _floats(piece: _Piece, table: pa.Table, name: str) -> Any:
    if name not in table.column_names:
        # A day file without the column (a dataset); its rows are dropped as invalid.
        return np.full(piece.rows, np.nan)
    return _column(table.column(name), name, np.float64, piece.path)


def _indices(encoded: pa.DictionaryArray, null: int) -> Any:
    """The dictionary indices of ``encoded`` as numpy, ``null`` where a value is null.

    Plain numpy on the index buffer, as in :func:`_numpy`.
    """
    indices = encoded.indices
    if not indices.null_count:
        return _numpy(indices)
    valid = np.asarray(indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    raw = np.frombuffer(indices.buffers()[1], dtype=indices.type.to_pandas_dtype())
    raw = raw[indices.offset : indices.offset + len(indices)]
    return np.where(valid, raw, null)


def _codes(index: dict[str, int]) -> Extractor:
    """Per row, the number of its string value in ``index`` (values added as first met);
    one number for the whole piece when its rows all hold the same value."""

    def get(piece: _Piece, table: pa.Table, name: str) -> Any:
        if name not in table.column_names:
            return index.setdefault(piece.constants.get(name, "None"), len(index))
        out = np.empty(piece.rows, dtype=np.int32)
        at = 0
        found: set[int] = set()
        for chunk in table.column(name).chunks:
            encoded = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
            words = [str(w) for w in encoded.dictionary.to_pylist()] + ["None"]
            numbers = np.array([index.setdefault(w, len(index)) for w in words], dtype=np.int32)
            positions = _indices(encoded, len(words) - 1)
            if len(words) == 2 and not encoded.null_count:
                out[at : at + len(chunk)] = numbers[0]
                found.add(int(numbers[0]))
            else:
                out[at : at + len(chunk)] = numbers[positions]
                found.update(np.unique(out[at : at + len(chunk)]).tolist())
            at += len(chunk)
        # One value for the whole piece (the usual file of one symbol) is kept as that value.
        return found.pop() if len(found) == 1 else out

    return get


def _time_ordered(
    ts: I64, idx: npt.NDArray[np.intp], spacing_ns: int | None, now_ns: int, where: str, kind: str
) -> tuple[npt.NDArray[np.intp], dict[str, int]]:
    """``idx`` in time order, less the rows far out of line; logs what it sorted and dropped."""
    found = time_order(_take(ts, idx), spacing_ns, now_ns)
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
) -> _Source:
    """The bars of a hive-partitioned folder, ``symbol=S/date=YYYY-MM-DD/*.parquet``: only
    the day files that the window reaches are opened."""
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
    schemas: list[pa.Schema] = []
    pieces: list[_Piece] = []
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
                schema, found = _parquet_pieces(part, {"symbol": name}, keep_open=False)
                if "symbol" not in schema.names:
                    schema = schema.append(pa.field("symbol", pa.string()))
                schemas.append(schema.remove_metadata())
                pieces.extend(found)
    if not schemas:
        types = {c: pa.int64() if c == "ts" else pa.float64() for c in BAR_COLUMNS}
        return _Source(root, types, (), sort=True)
    try:
        unified = pa.unify_schemas(schemas, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{root}: day files with different columns ({exc})") from exc
    return _Source(
        root, dict(zip(unified.names, unified.types, strict=True)), tuple(pieces), sort=True
    )


def _symbol_groups(
    scan: _Scan, symbols: list[str], venues: list[str]
) -> list[tuple[str, str, npt.NDArray[np.intp]]]:
    """(symbol, venue, scan rows) for each pair found, in first-seen order."""
    rows = int(scan.ts.shape[0])
    sym_codes = scan.extra.get("symbol", 0)
    ven_codes = scan.extra.get("venue", 0)
    if isinstance(sym_codes, int) and isinstance(ven_codes, int):
        return [(symbols[sym_codes], venues[ven_codes], np.arange(rows))]
    width = max(len(venues), 1)
    keys = np.zeros(rows, dtype=np.int64)
    keys += np.asarray(sym_codes, dtype=np.int64) * width
    keys += ven_codes
    distinct, first = np.unique(keys, return_index=True)
    groups = []
    for key in distinct[np.argsort(first)].tolist():
        code_sym, code_ven = divmod(int(key), width)
        idx = np.arange(rows) if distinct.shape[0] == 1 else np.flatnonzero(keys == key)
        groups.append((symbols[code_sym], venues[code_ven], idx))
    return groups


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

    Only the columns named here are read. Of a Parquet file, ``ts`` (and ``symbol``,
    ``venue``) are read from the row groups whose statistics reach ``start_ns``..``end_ns``,
    and the prices only from the row groups that hold the bars kept (after ``limit``).

    ``path`` may also be a dataset folder as ``tradegraph data download`` writes it,
    ``symbol=BTCUSDT/date=2025-07-01/part.parquet``: then only ``symbol``'s bars are read when
    ``symbol`` is given (every symbol's otherwise), and only the days that ``start_ns`` and
    ``end_ns`` reach.
    """
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"bar file not found: {resolved}")
    if resolved.is_dir():
        source = _read_bar_dataset(resolved, symbol, start_ns, end_ns)
    else:
        source = _open_file(resolved, "bar", (*BAR_COLUMNS, "symbol", "venue"))
    missing = [c for c in BAR_COLUMNS if c not in source.names]
    if missing:
        raise DataError(
            f"{resolved}: missing bar columns {missing}; need {list(BAR_COLUMNS)} "
            "(ts = bar open time in int64 ns)"
        )
    if source.rows == 0:
        what = "holds no bars for the days asked for" if resolved.is_dir() else "is empty"
        raise DataError(f"{resolved}: the bar file {what} (0 rows)")
    symbols: dict[str, int] = {}
    venues: dict[str, int] = {}
    extract = {
        c: _codes(index)
        for c, index in (("symbol", symbols), ("venue", venues))
        if c in source.names
    }
    scan = _scan(source, start_ns, end_ns, interval_ns, extract)
    rows = int(scan.ts.shape[0])
    if rows == 0:
        raise DataError(f"{resolved}: no bars between the configured start and end")
    now = time.time_ns() if now_ns is None else now_ns

    if "symbol" not in source.names:
        if symbol is None:
            raise DataError(f"{resolved}: no 'symbol' column; give the symbol in the config")
        symbols[symbol] = 0
    if "venue" not in source.names:
        venues[venue or "BINANCE"] = 0
    groups = _symbol_groups(scan, list(symbols), list(venues))
    chosen: list[npt.NDArray[np.intp]] = []
    drops: list[dict[str, int]] = []
    for sym, _, positions in groups:
        idx, dropped = _time_ordered(
            scan.ts, positions, interval_ns, now, f"{resolved} ({sym})", "bars"
        )
        if limit is not None:
            idx = idx[:limit]
        chosen.append(idx)
        drops.append(dropped)
    values = _gather(
        scan, chosen, dict.fromkeys(BAR_COLUMNS[1:], (_floats, np.float64)), BAR_COLUMNS[1:]
    )
    return [
        BarArrays(
            symbol=sym,
            venue=ven,
            interval_ns=interval_ns,
            ts_open_ns=_take(scan.ts, idx),
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            volume=cols["volume"],
            dropped=dropped,
        )
        for (sym, ven, _), idx, cols, dropped in zip(groups, chosen, values, drops, strict=True)
    ]


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


def _trade_ids(piece: _Piece, table: pa.Table, name: str) -> Any:
    """Trade ids as int64, a null as -1 (with ``trade_id_null`` marking it)."""
    col = table.column(name)
    if col.null_count:
        col = col.fill_null(-1)
    return _column(col, name, np.int64, piece.path)


def _nulls(piece: _Piece, table: pa.Table, name: str) -> Any:
    col = table.column(name.removesuffix("_null"))
    if not col.null_count:
        return np.zeros(piece.rows, dtype=bool)
    return col.is_null().to_numpy(zero_copy_only=False)


def _buys(piece: _Piece, table: pa.Table, name: str) -> Any:
    """True where ``side`` is ``buy`` (False for sell, anything else or null)."""
    out = np.empty(piece.rows, dtype=bool)
    at = 0
    for chunk in table.column("side").chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
        words = encoded.dictionary.to_pylist()
        is_buy = np.array([w == "buy" for w in words] + [False], dtype=bool)
        out[at : at + len(chunk)] = is_buy[_indices(encoded, len(words))]
        at += len(chunk)
    return out


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

    ``ts`` is read as :func:`read_bars` reads it (any unit, or Arrow timestamps), and as
    there only the columns and Parquet row groups needed are read. Rows are put in time order
    (equal times keep file order: one match prints several trades), rows far out of line are
    dropped, and so is every repeat of a ``trade_id`` after its first row; all counted in
    ``dropped``.
    """
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"trade file not found: {resolved}")
    if resolved.is_dir():
        raise DataError(f"{resolved}: a trade source must be one Parquet or CSV file")
    source = _open_file(resolved, "trade", TRADE_COLUMNS)
    missing = [c for c in TRADE_COLUMNS if c not in source.names]
    if missing:
        raise DataError(f"{resolved}: missing trade columns {missing}; need {list(TRADE_COLUMNS)}")
    if source.rows == 0:
        raise DataError(f"{resolved}: the trade file is empty (0 rows)")
    side_type = source.types["side"]
    if not (pa.types.is_string(side_type) or pa.types.is_large_string(side_type)):
        raise DataError(f"{resolved}: column 'side' must hold the strings 'buy' or 'sell'")
    scan = _scan(source, start_ns, end_ns, None, {"trade_id": _trade_ids, "trade_id_null": _nulls})
    if scan.ts.shape[0] == 0:
        raise DataError(f"{resolved}: no trades between the configured start and end")
    null_ids = int(np.count_nonzero(scan.extra["trade_id_null"]))
    if null_ids:
        raise DataError(f"{resolved}: column 'trade_id' has {null_ids} null values")
    now = time.time_ns() if now_ns is None else now_ns
    ts = scan.ts
    trade_id = scan.extra["trade_id"]
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
    (cols,) = _gather(
        scan,
        [idx],
        {
            "price": (_floats, np.float64),
            "size": (_floats, np.float64),
            "aggressor_buy": (_buys, np.bool_),
        },
        ("price", "size", "side"),
    )
    return TradeArrays(
        symbol=symbol,
        venue=venue,
        ts_ns=_take(ts, idx),
        price=cols["price"],
        size=cols["size"],
        aggressor_buy=cols["aggressor_buy"],
        trade_id=_take(trade_id, idx),
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
    source = _open_file(resolved, "funding", (*FUNDING_COLUMNS, "mark_price"))
    missing = [c for c in FUNDING_COLUMNS if c not in source.names]
    if missing:
        raise DataError(
            f"{resolved}: missing funding columns {missing}; need {list(FUNDING_COLUMNS)} "
            "and optionally 'mark_price'"
        )
    if source.rows == 0:
        raise DataError(f"{resolved}: the funding file is empty (0 rows)")
    marked = "mark_price" in source.names
    extract: dict[str, Extractor] = {"funding_rate": _floats}
    if marked:
        extract["mark_price"] = _floats
    scan = _scan(source, start_ns, end_ns, None, extract)
    ts = scan.ts
    rate = np.asarray(scan.extra["funding_rate"], dtype=np.float64)
    if marked:
        mark = np.asarray(scan.extra["mark_price"], dtype=np.float64)
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


def write_parquet(table: pa.Table, path: Path, *, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write a table with zstd compression, in row groups of ``row_group_rows`` rows (so that
    a reader of a time window skips the groups outside it), creating parent folders.

    Written beside ``path`` and renamed over it: a reader, or a process killed mid-write,
    never sees half a file (outputs are rewritten while a session runs).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows)
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
