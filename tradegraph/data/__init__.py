"""Market data at the edge: the Parquet catalog and bundled samples."""

from __future__ import annotations

from tradegraph.data.catalog import (
    BarArrays,
    TradeArrays,
    instruments_from_exchange_info,
    read_bars,
    read_trades,
    resolve_path,
    write_parquet,
)

__all__ = [
    "BarArrays",
    "TradeArrays",
    "instruments_from_exchange_info",
    "read_bars",
    "read_trades",
    "resolve_path",
    "write_parquet",
]
