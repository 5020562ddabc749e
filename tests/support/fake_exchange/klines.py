"""Historical klines the fake serves: the real bars bundled with tradegraph, or any given."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tradegraph.data.catalog import BarArrays, read_bars

from .book import BinanceError

MINUTE_MS = 60_000

INTERVALS_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}

BAR_FIELDS = ("open", "high", "low", "close", "volume")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@functools.cache
def _bundled() -> tuple[BarArrays, ...]:
    return tuple(d for name in ("sample:BTCUSDT_1m", "sample:ETHUSDT_1m") for d in read_bars(name))


def bundled_bars() -> dict[str, BarArrays]:
    """The July 2025 one-minute bars of BTCUSDT and ETHUSDT shipped with tradegraph."""
    return {d.symbol: d for d in _bundled()}


@dataclass
class _Series:
    open_ms: I64
    values: dict[str, F64]


def _fmt(value: float) -> str:
    return f"{value:.8f}"


class KlineStore:
    """One-minute bars by symbol, served as Binance klines of any interval up to a day.

    Args:
        bars: one-minute bars by symbol; copied, so ``corrupt`` never touches the originals.
    """

    def __init__(self, bars: Mapping[str, BarArrays]) -> None:
        self._minute: dict[str, _Series] = {
            symbol: _Series(
                open_ms=(d.ts_open_ns // 1_000_000).astype(np.int64),
                values={f: np.array(getattr(d, f), dtype=np.float64) for f in BAR_FIELDS},
            )
            for symbol, d in bars.items()
        }
        self._cache: dict[tuple[str, int], _Series] = {}

    def symbols(self) -> list[str]:
        return sorted(self._minute)

    def corrupt(self, symbol: str, open_time_ms: int, **values: float) -> None:
        """Overwrite fields of one one-minute bar (e.g. ``close=float('nan')``) to serve bad data."""
        series = self._minute[symbol]
        index = np.flatnonzero(series.open_ms == open_time_ms)
        if index.size == 0:
            raise KeyError(f"{symbol} has no bar opening at {open_time_ms}")
        for name, value in values.items():
            series.values[name][index[0]] = value
        self._cache = {k: v for k, v in self._cache.items() if k[0] != symbol}

    def _series(self, symbol: str, interval_ms: int) -> _Series:
        key = (symbol, interval_ms)
        if key in self._cache:
            return self._cache[key]
        minute = self._minute[symbol]
        if interval_ms == MINUTE_MS:
            series = minute
        else:
            buckets = minute.open_ms - minute.open_ms % interval_ms
            starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
            ends = np.r_[starts[1:], buckets.size] - 1
            v = minute.values
            series = _Series(
                open_ms=buckets[starts],
                values={
                    "open": v["open"][starts],
                    "high": np.maximum.reduceat(v["high"], starts),
                    "low": np.minimum.reduceat(v["low"], starts),
                    "close": v["close"][ends],
                    "volume": np.add.reduceat(v["volume"], starts),
                },
            )
        self._cache[key] = series
        return series

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[list[Any]]:
        """Binance ``GET /api/v3/klines`` rows: open times in ``[start_ms, end_ms]``, at most
        ``limit``, the earliest first; without ``start_ms``, the latest ``limit`` up to
        ``end_ms``."""
        if symbol not in self._minute:
            raise BinanceError(-1121, "Invalid symbol.")
        interval_ms = INTERVALS_MS.get(interval)
        if interval_ms is None:
            raise BinanceError(-1120, "Invalid interval.")
        series = self._series(symbol, interval_ms)
        lo = 0 if start_ms is None else int(np.searchsorted(series.open_ms, start_ms, "left"))
        hi = (
            series.open_ms.size
            if end_ms is None
            else int(np.searchsorted(series.open_ms, end_ms, "right"))
        )
        if start_ms is None:
            lo = max(lo, hi - limit)
        else:
            hi = min(hi, lo + limit)
        v = series.values
        rows: list[list[Any]] = []
        for i in range(lo, hi):
            open_ms = int(series.open_ms[i])
            rows.append(
                [
                    open_ms,
                    _fmt(v["open"][i]),
                    _fmt(v["high"][i]),
                    _fmt(v["low"][i]),
                    _fmt(v["close"][i]),
                    _fmt(v["volume"][i]),
                    open_ms + interval_ms - 1,
                    # Not in the bundled data: quote volume, trade count, taker volumes.
                    "0.00000000",
                    0,
                    "0.00000000",
                    "0.00000000",
                    "0",
                ]
            )
        return rows
