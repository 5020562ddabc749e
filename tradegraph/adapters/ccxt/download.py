"""Historical bars from an exchange, through ccxt, into a Parquet dataset.

``tradegraph data download --exchange binance --symbol BTCUSDT --timeframe 1m --since 2025-07-01``
pages ``fetch_ohlcv`` into one file per symbol and UTC day, hive style::

    OUT/symbol=BTCUSDT/date=2025-07-01/part.parquet

with the bar schema of :mod:`tradegraph.data.catalog` (``ts`` int64 ns bar open time, ``open``,
``high``, ``low``, ``close``, ``volume``, ``symbol``, ``venue``). ``backtest``, ``montecarlo`` and
``stress`` read such a folder wherever they take a bar file.

A download is resumable: what is on disk for the requested span is not fetched again; a rerun
fetches only the bars before the first stored bar and after the last one. Every page is
validated (non-finite, non-positive, inconsistent OHLC and misaligned rows are dropped and
counted), deduplicated by ``ts`` and written atomically before the next page is asked for, so an
interrupted download keeps everything fetched so far. Only closed bars are stored.

The command itself is in :mod:`tradegraph.cli.data`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from tradegraph.config.overrides import deep_merge, parse_value, set_dotted
from tradegraph.data.catalog import BarArrays
from tradegraph.errors import ConfigError, TradegraphError

NS_PER_MS = 1_000_000
DAY_NS = 86_400_000_000_000

DROP_REASONS = ("non-finite", "non-positive", "bad OHLC", "misaligned")


@dataclass
class DownloadReport:
    """What one download did."""

    exchange: str
    symbol: str
    venue: str
    timeframe: str
    out_dir: Path
    requests: int = 0
    fetched_rows: int = 0
    new_bars: int = 0
    duplicates: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    already_stored: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        """A few lines for a person."""
        lines = [
            f"{self.symbol} {self.timeframe} from {self.exchange}: {self.new_bars:,} new bars "
            f"({self.requests} {'request' if self.requests == 1 else 'requests'}, "
            f"{self.fetched_rows:,} rows fetched, "
            f"{self.already_stored:,} already on disk, {self.duplicates} duplicates)"
        ]
        if self.dropped_total:
            detail = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v)
            lines.append(f"dropped {self.dropped_total} invalid rows ({detail})")
        if self.first_ts_ns is not None and self.last_ts_ns is not None:
            lines.append(
                f"stored bars now span {_iso(self.first_ts_ns)} .. {_iso(self.last_ts_ns)}"
            )
        lines.append(f"dataset: {self.out_dir.resolve()}")
        return "\n".join(lines)


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")


def partition_dir(out_dir: Path, symbol: str) -> Path:
    return out_dir / f"symbol={symbol}"


def _day(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")


def _day_start_ns(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def stored_timestamps(
    out_dir: Path, symbol: str, start_ns: int, end_ns: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Sorted bar open times on disk for ``symbol`` within ``[start_ns, end_ns)``."""
    chunks = []
    for day_dir in sorted(partition_dir(out_dir, symbol).glob("date=*")):
        day_start = _day_start_ns(day_dir.name.removeprefix("date="))
        if day_start >= end_ns or day_start + DAY_NS <= start_ns:
            continue
        for part in sorted(day_dir.glob("*.parquet")):
            chunks.append(pq.read_table(part, columns=["ts"]).column("ts").to_numpy())
    if not chunks:
        return np.empty(0, dtype=np.int64)
    ts = np.unique(np.concatenate(chunks).astype(np.int64))
    return ts[(ts >= start_ns) & (ts < end_ns)]


def _validate(
    rows: Sequence[Sequence[Any]], interval_ns: int, report: DownloadReport
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Rows ``[ts_ms, o, h, l, c, v]`` to (ts ns, values[n, 5]) with bad rows dropped, counted."""
    ts = np.array([int(r[0]) for r in rows], dtype=np.int64) * NS_PER_MS
    values = np.array(
        [[np.nan if x is None else float(x) for x in r[1:6]] for r in rows], dtype=np.float64
    ).reshape(len(rows), 5)
    o, h, low, c, v = values.T
    with np.errstate(invalid="ignore"):
        non_finite = ~np.isfinite(values).all(axis=1)
        non_positive = ~non_finite & (((values[:, :4] <= 0).any(axis=1)) | (v < 0))
        bad_ohlc = (
            ~non_finite
            & ~non_positive
            & ((h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low))
        )
    misaligned = ~non_finite & ~non_positive & ~bad_ohlc & (ts % interval_ns != 0)
    for reason, mask in zip(
        DROP_REASONS, (non_finite, non_positive, bad_ohlc, misaligned), strict=True
    ):
        report.dropped[reason] += int(mask.sum())
    keep = ~(non_finite | non_positive | bad_ohlc | misaligned)
    return ts[keep], values[keep]


def _write_day(
    path: Path,
    symbol: str,
    venue: str,
    interval_ns: int,
    ts: np.ndarray[Any, np.dtype[np.int64]],
    values: np.ndarray[Any, np.dtype[np.float64]],
) -> tuple[int, int]:
    """Merge bars into one day file (bars on disk win), atomically. Returns (new, duplicates)."""
    if path.exists():
        old = pq.read_table(path)
        old_ts = old.column("ts").to_numpy().astype(np.int64)
        old_values = np.column_stack(
            [
                old.column(c).to_numpy().astype(np.float64)
                for c in ("open", "high", "low", "close", "volume")
            ]
        )
    else:
        old_ts = np.empty(0, dtype=np.int64)
        old_values = np.empty((0, 5), dtype=np.float64)
    all_ts = np.concatenate([old_ts, ts])
    all_values = np.concatenate([old_values, values])
    # np.unique keeps the first occurrence: what is already stored.
    unique_ts, first = np.unique(all_ts, return_index=True)
    duplicates = int(all_ts.size - unique_ts.size)
    new = int(unique_ts.size - old_ts.size)
    if new == 0:
        return 0, duplicates
    kept = all_values[first]
    table = BarArrays(
        symbol=symbol,
        venue=venue,
        interval_ns=interval_ns,
        ts_open_ns=unique_ts,
        open=kept[:, 0].copy(),
        high=kept[:, 1].copy(),
        low=kept[:, 2].copy(),
        close=kept[:, 3].copy(),
        volume=kept[:, 4].copy(),
    ).to_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return new, duplicates


def _store(
    out_dir: Path,
    report: DownloadReport,
    interval_ns: int,
    ts: np.ndarray[Any, np.dtype[np.int64]],
    values: np.ndarray[Any, np.dtype[np.float64]],
) -> None:
    days = ts - ts % DAY_NS
    for day_start in np.unique(days):
        mask = days == day_start
        path = (
            partition_dir(out_dir, report.symbol) / f"date={_day(int(day_start))}" / "part.parquet"
        )
        new, duplicates = _write_day(
            path, report.symbol, report.venue, interval_ns, ts[mask], values[mask]
        )
        report.new_bars += new
        report.duplicates += duplicates


_MAX_WAIT_S = 60.0
"""Longest wait between two attempts, a venue's ``Retry-After`` included."""


def retrying_call(
    exchange: Any,
    what: str,
    fn: Callable[[], Any],
    *,
    retries: int,
    retry_delay_s: float,
    sleep: Callable[[float], None],
    rand: Callable[[], float] | None,
    kept: Callable[[], str],
) -> Any:
    """``fn()``, tried again after a network error (rate limits included) up to ``retries``
    times with full-jitter backoff, never sooner than the venue's ``Retry-After`` (at most
    60 s either way).

    Raises:
        TradegraphError: still failing after the last try; says what ``kept()`` says was stored.
    """
    # ccxt loads on first use only: the rest of the command line starts without it.
    from tradegraph.adapters.ccxt.retry import Backoff, is_retryable, retry_after_from_headers
    from tradegraph.config.models import RetryConfig

    # Only its delays are used: the download waits with the synchronous ``sleep``.
    backoff = Backoff(RetryConfig(base_delay_s=retry_delay_s, max_delay_s=_MAX_WAIT_S), rand=rand)
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            if attempt == retries:
                raise TradegraphError(
                    f"network failure talking to {exchange.id} ({what}) after "
                    f"{attempt + 1} attempt{'s' if attempt else ''}: "
                    f"{type(exc).__name__}: {exc}; "
                    f"{kept()} and are kept; rerun the same command to resume"
                ) from exc
            headers = getattr(exchange, "last_response_headers", None)
            retry_after_s = retry_after_from_headers(headers, time.time())
            sleep(min(backoff.delay_s(attempt, retry_after_s), _MAX_WAIT_S))
    raise AssertionError("unreachable")


def download_ohlcv(
    exchange: Any,
    *,
    symbol: str,
    timeframe: str,
    since_ns: int,
    until_ns: int,
    out_dir: Path,
    page_limit: int = 1000,
    retries: int = 3,
    retry_delay_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] | None = None,
    progress: Callable[[DownloadReport], None] | None = None,
) -> DownloadReport:
    """Page ``exchange.fetch_ohlcv`` for ``[since_ns, until_ns)`` into ``out_dir``.

    Args:
        exchange: a synchronous ccxt exchange (``ccxt.binance(...)``).
        symbol: a market as the user named it: ``BTC/USDT``, ``BTCUSDT`` or the exchange's id.
        timeframe: a ccxt timeframe such as ``1m``.
        since_ns: first bar open time wanted.
        until_ns: bars opening at or after this are not fetched.
        out_dir: the dataset folder.
        page_limit: bars asked for per request.
        retries: attempts after a network error (rate limits included) before giving up.
        retry_delay_s: cap of the first back-off; doubles each attempt, up to 60 s (full
            jitter, as :class:`~tradegraph.adapters.ccxt.retry.Backoff`); never shorter than
            the venue's ``Retry-After`` (at most 60 s either way).
        sleep: how to wait between attempts.
        rand: uniform random numbers in ``[0, 1)`` for the jitter.
        progress: called after every stored page.

    Raises:
        ConfigError: the symbol or timeframe is unknown to the exchange.
        TradegraphError: the exchange stayed unreachable; what was fetched is kept.
    """
    report = DownloadReport(
        exchange=exchange.id,
        symbol=symbol,
        venue=exchange.id.upper(),
        timeframe=timeframe,
        out_dir=out_dir,
    )
    call = functools.partial(
        retrying_call,
        exchange,
        retries=retries,
        retry_delay_s=retry_delay_s,
        sleep=sleep,
        rand=rand,
        kept=lambda: f"{report.new_bars:,} new bars were stored in {out_dir.resolve()}",
    )

    call("load_markets", exchange.load_markets)
    market = resolve_market(exchange, symbol)
    timeframes = getattr(exchange, "timeframes", None) or {}
    if timeframes and timeframe not in timeframes:
        raise ConfigError(
            f"--timeframe {timeframe!r} is not offered by {exchange.id}; it has {', '.join(timeframes)}"
        )
    interval_ns = int(exchange.parse_timeframe(timeframe)) * 1_000_000_000
    report.symbol = f"{market['base']}{market['quote']}"
    # Only closed bars: the one in progress would be stored half-made and never refetched.
    now_ns = time.time_ns()
    until_ns = min(until_ns, now_ns - now_ns % interval_ns)
    since_ns = since_ns + (-since_ns) % interval_ns
    if since_ns >= until_ns:
        raise ConfigError(
            f"nothing to download: --since {_iso(since_ns)} is not before --until {_iso(until_ns)}"
        )

    stored = stored_timestamps(out_dir, report.symbol, since_ns, until_ns)
    report.already_stored = int(stored.size)
    spans = [(since_ns, until_ns)]
    if stored.size:
        spans = []
        if stored[0] > since_ns:
            spans.append((since_ns, int(stored[0])))
        if stored[-1] + interval_ns < until_ns:
            spans.append((int(stored[-1]) + interval_ns, until_ns))

    for start, end in spans:
        cursor = start
        while cursor < end:
            rows = call(
                f"fetch_ohlcv {market['symbol']} {timeframe} since {_iso(cursor)}",
                functools.partial(
                    exchange.fetch_ohlcv,
                    market["symbol"],
                    timeframe,
                    since=cursor // NS_PER_MS,
                    limit=page_limit,
                ),
            )
            report.requests += 1
            report.fetched_rows += len(rows)
            rows = [r for r in rows if cursor <= int(r[0]) * NS_PER_MS < end]
            if not rows:
                break
            last_ns = max(int(r[0]) for r in rows) * NS_PER_MS
            ts, values = _validate(rows, interval_ns, report)
            if ts.size:
                _store(out_dir, report, interval_ns, ts, values)
            if progress is not None:
                progress(report)
            cursor = last_ns + interval_ns

    final = stored_timestamps(out_dir, report.symbol, since_ns, until_ns)
    if final.size:
        report.first_ts_ns, report.last_ts_ns = int(final[0]), int(final[-1])
    return report


def resolve_market(exchange: Any, symbol: str, *, prefer: str = "spot") -> dict[str, Any]:
    """The ccxt market for ``BTC/USDT``, ``BTC/USDT:USDT``, ``BTCUSDT`` (an id),
    ``BTCUSDT-PERP`` or ``btc-usdt``; of markets with the same name, those of type ``prefer``
    (``spot`` or ``swap``) first."""
    markets: Mapping[str, dict[str, Any]] = exchange.markets or {}
    if symbol in markets:
        return markets[symbol]
    compact = "".join(ch for ch in symbol.upper().removesuffix("-PERP") if ch.isalnum())
    candidates = [
        m
        for m in markets.values()
        if m.get("id") == symbol or f"{m.get('base')}{m.get('quote')}" == compact
    ]
    if symbol.upper().endswith("-PERP"):
        prefer = "swap"
    candidates.sort(key=lambda m: (not m.get(prefer), m.get("symbol", "")))
    if candidates:
        return candidates[0]
    examples = ", ".join(sorted(markets)[:3])
    raise ConfigError(f"unknown symbol {symbol!r} on {exchange.id} (markets look like: {examples})")


# -- exchange construction ---------------------------------------------------------------------


def exchange_config(
    *,
    config_file: str | None = None,
    url_overrides: Sequence[str] = (),
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """ccxt constructor config from a YAML/JSON file (``urls``, ``options``, ``timeout``...),
    then ``KEY=URL`` overrides under ``urls`` and ``KEY=VALUE`` ones under ``options`` (the value
    read as ``--set`` reads it: :func:`tradegraph.config.overrides.parse_value`)."""
    config: dict[str, Any] = {}
    if config_file:
        try:
            loaded = yaml.safe_load(Path(config_file).expanduser().read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--ccxt-config {config_file}: cannot read it ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"--ccxt-config {config_file}: expected a mapping (urls, options...)")
        for secret_key in ("apiKey", "secret", "password", "privateKey"):
            loaded.pop(secret_key, None)
        config = deep_merge(config, loaded)
    for item in url_overrides:
        key, sep, url = item.partition("=")
        if not sep or not url:
            raise ConfigError(
                f"--url-override {item!r}: expected KEY=URL, e.g. api.public=http://127.0.0.1:8765/api/v3"
            )
        set_dotted(config.setdefault("urls", {}), key, url, "--url-override")
    for item in options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--ccxt-option {item!r}: expected KEY=VALUE (VALUE as YAML or JSON)")
        set_dotted(
            config.setdefault("options", {}),
            key,
            parse_value(value, "--ccxt-option"),
            "--ccxt-option",
        )
    return config


def build_exchange(exchange_id: str, config: Mapping[str, Any]) -> Any:
    """A synchronous ccxt exchange; public endpoints only, so no API keys."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ConfigError(
            f"unknown exchange {exchange_id!r}: not a ccxt exchange id (e.g. binance, kraken, okx)"
        )
    return getattr(ccxt, exchange_id)({"enableRateLimit": True, **config})
