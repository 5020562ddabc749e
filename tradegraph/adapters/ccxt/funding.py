"""Funding-rate history of a perpetual, through ccxt, into one Parquet file per instrument.

``tradegraph data download --kind funding --exchange binanceusdm --symbol BTC/USDT:USDT
--since 2025-07-01`` pages ``fetch_funding_rate_history`` into::

    OUT/BTCUSDT-PERP.parquet

with the funding schema the backtests read: ``ts`` (int64 ns, time of the funding event),
``funding_rate`` (float64, fraction of position notional per interval; positive means longs
pay shorts) and, when the exchange gives it for every event, ``mark_price`` (float64).

Like the bar download it is resumable (a rerun fetches only the events before the first stored
one and after the last), every page is validated (non-finite rates and non-positive mark prices
are dropped and counted), deduplicated by ``ts`` and written atomically before the next page is
asked for. The command itself is in :mod:`tradegraph.cli.data`.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tradegraph.adapters.ccxt.download import NS_PER_MS, _iso, resolve_market, retrying_call
from tradegraph.errors import ConfigError

__all__ = ["FundingReport", "download_funding", "funding_path", "perpetual_symbol"]

FUNDING_DROP_REASONS = ("non-finite rate", "bad mark price")


@dataclass
class FundingReport:
    """What one funding download did."""

    exchange: str
    symbol: str
    path: Path
    requests: int = 0
    fetched_rows: int = 0
    new_events: int = 0
    duplicates: int = 0
    already_stored: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNDING_DROP_REASONS, 0))
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    events: int = 0
    has_mark_price: bool = False

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        """A few lines for a person."""
        lines = [
            f"{self.symbol} funding from {self.exchange}: {self.new_events:,} new events "
            f"({self.requests} {'request' if self.requests == 1 else 'requests'}, "
            f"{self.fetched_rows:,} rows fetched, {self.already_stored:,} already on disk, "
            f"{self.duplicates} duplicates)"
        ]
        if self.dropped_total:
            detail = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v)
            lines.append(f"dropped {self.dropped_total} invalid rows ({detail})")
        if self.first_ts_ns is not None and self.last_ts_ns is not None:
            lines.append(
                f"{self.events:,} stored events span {_iso(self.first_ts_ns)} .. "
                f"{_iso(self.last_ts_ns)}"
                + ("" if self.has_mark_price else " (no mark price from this exchange)")
            )
        lines.append(f"file: {self.path.resolve()}")
        return "\n".join(lines)


def perpetual_symbol(market: Mapping[str, Any]) -> str:
    """The instrument symbol of a ccxt swap market: ``BTCUSDT-PERP``."""
    return f"{market['base']}{market['quote']}-PERP"


def funding_path(out_dir: Path, symbol: str) -> Path:
    """Where the funding history of ``symbol`` (``BTCUSDT-PERP``) is stored."""
    return out_dir / f"{symbol}.parquet"


def _read(path: Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``(ts, rate, mark)`` on disk (``mark`` all NaN when the file has none)."""
    if not path.exists():
        empty = np.empty(0, dtype=np.float64)
        return np.empty(0, dtype=np.int64), empty, empty
    table = pq.read_table(path)
    ts = table.column("ts").to_numpy().astype(np.int64)
    rate = table.column("funding_rate").to_numpy().astype(np.float64)
    mark = (
        table.column("mark_price").to_numpy().astype(np.float64)
        if "mark_price" in table.column_names
        else np.full(ts.size, np.nan)
    )
    return ts, rate, mark


def _write(
    path: Path,
    ts: np.ndarray[Any, Any],
    rate: np.ndarray[Any, Any],
    mark: np.ndarray[Any, Any],
) -> None:
    columns: dict[str, Any] = {
        "ts": pa.array(ts, type=pa.int64()),
        "funding_rate": pa.array(rate, type=pa.float64()),
    }
    if ts.size and bool(np.isfinite(mark).all()):
        columns["mark_price"] = pa.array(mark, type=pa.float64())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns), tmp, compression="zstd")
    os.replace(tmp, path)


def _mark_of(row: Mapping[str, Any]) -> float:
    """The mark price of a ccxt funding-rate history row: unified field, else Binance's
    ``info.markPrice``; NaN when the exchange gives none."""
    for value in (row.get("markPrice"), (row.get("info") or {}).get("markPrice")):
        if value not in (None, ""):
            try:
                return float(value)
            except (TypeError, ValueError):
                return math.nan
    return math.nan


def download_funding(
    exchange: Any,
    *,
    symbol: str,
    since_ns: int,
    until_ns: int,
    out_dir: Path,
    page_limit: int = 1000,
    retries: int = 3,
    retry_delay_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] | None = None,
    progress: Callable[[FundingReport], None] | None = None,
) -> FundingReport:
    """Page ``exchange.fetch_funding_rate_history`` for ``[since_ns, until_ns)`` into
    ``out_dir`` (see the module docstring for the file and schema).

    Args:
        exchange: a synchronous ccxt exchange that has ``fetchFundingRateHistory``.
        symbol: a perpetual as the user named it: ``BTC/USDT:USDT``, ``BTCUSDT`` or the
            exchange's id; a swap market is preferred over a spot one of the same name.
        page_limit: events asked for per request.
        retries, retry_delay_s, sleep, rand: as for
            :func:`~tradegraph.adapters.ccxt.download.download_ohlcv`.
        progress: called after every stored page.

    Raises:
        ConfigError: the symbol is unknown or not a perpetual, or the exchange has no funding
            history.
        TradegraphError: the exchange stayed unreachable; what was fetched is kept.
    """
    has = getattr(exchange, "has", {}) or {}
    if not has.get("fetchFundingRateHistory"):
        raise ConfigError(f"{exchange.id} offers no funding-rate history through ccxt")
    report = FundingReport(exchange=exchange.id, symbol=symbol, path=out_dir)

    def stored_so_far() -> str:
        return f"{report.new_events:,} new funding events were stored in {report.path.resolve()}"

    call = functools.partial(
        retrying_call,
        exchange,
        retries=retries,
        retry_delay_s=retry_delay_s,
        sleep=sleep,
        rand=rand,
        kept=stored_so_far,
    )
    call("load_markets", exchange.load_markets)
    market = resolve_market(exchange, symbol, prefer="swap")
    if not market.get("swap"):
        raise ConfigError(
            f"--symbol {symbol!r} is {market['symbol']}, not a perpetual swap on {exchange.id} "
            "(funding exists for perpetuals only, e.g. BTC/USDT:USDT)"
        )
    report.symbol = perpetual_symbol(market)
    path = funding_path(out_dir, report.symbol)
    report.path = path
    until_ns = min(until_ns, time.time_ns())
    if since_ns >= until_ns:
        raise ConfigError(
            f"nothing to download: --since {_iso(since_ns)} is not before --until {_iso(until_ns)}"
        )

    ts, rate, mark = _read(path)
    in_span = (ts >= since_ns) & (ts < until_ns)
    report.already_stored = int(in_span.sum())
    spans = [(since_ns, until_ns)]
    if in_span.any():
        first, last = int(ts[in_span].min()), int(ts[in_span].max())
        spans = []
        if first > since_ns:
            spans.append((since_ns, first))
        if last + NS_PER_MS < until_ns:
            spans.append((last + NS_PER_MS, until_ns))

    for start, end in spans:
        cursor = start
        while cursor < end:
            rows = call(
                f"fetch_funding_rate_history {market['symbol']} since {_iso(cursor)}",
                functools.partial(
                    exchange.fetch_funding_rate_history,
                    market["symbol"],
                    since=cursor // NS_PER_MS,
                    limit=page_limit,
                ),
            )
            report.requests += 1
            report.fetched_rows += len(rows)
            page = [
                (int(r["timestamp"]) * NS_PER_MS, r.get("fundingRate"), _mark_of(r))
                for r in rows
                if r.get("timestamp") is not None
            ]
            past_end = any(p[0] >= end for p in page)
            page = [p for p in page if cursor <= p[0] < end]
            if not page:
                break
            ts, rate, mark = _merge(ts, rate, mark, page, report)
            _write(path, ts, rate, mark)
            if progress is not None:
                progress(report)
            if past_end or len(rows) < page_limit:
                break  # the span is covered, or the exchange has nothing later
            cursor = max(p[0] for p in page) + NS_PER_MS

    ts, rate, mark = _read(path)
    report.events = int(ts.size)
    if ts.size:
        report.first_ts_ns, report.last_ts_ns = int(ts[0]), int(ts[-1])
        report.has_mark_price = bool(np.isfinite(mark).all())
    return report


def _merge(
    ts: np.ndarray[Any, Any],
    rate: np.ndarray[Any, Any],
    mark: np.ndarray[Any, Any],
    page: list[tuple[int, Any, float]],
    report: FundingReport,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Stored events with the valid rows of ``page`` added (stored ones win), sorted by ``ts``."""
    keep_ts, keep_rate, keep_mark = [], [], []
    for t, raw_rate, m in page:
        try:
            r = float(raw_rate)
        except (TypeError, ValueError):
            r = math.nan
        if not math.isfinite(r):
            report.dropped["non-finite rate"] += 1
            continue
        if not math.isnan(m) and not (math.isfinite(m) and m > 0.0):
            report.dropped["bad mark price"] += 1
            continue
        keep_ts.append(t)
        keep_rate.append(r)
        keep_mark.append(m)
    all_ts = np.concatenate([ts, np.array(keep_ts, dtype=np.int64)])
    all_rate = np.concatenate([rate, np.array(keep_rate, dtype=np.float64)])
    all_mark = np.concatenate([mark, np.array(keep_mark, dtype=np.float64)])
    unique_ts, first = np.unique(all_ts, return_index=True)
    report.duplicates += int(all_ts.size - unique_ts.size)
    report.new_events += int(unique_ts.size - ts.size)
    return unique_ts, all_rate[first], all_mark[first]
