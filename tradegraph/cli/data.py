"""``tradegraph data download`` and ``tradegraph data instruments``: market data from an exchange.

The work is done by :mod:`tradegraph.adapters.ccxt.download` (paging bars into a Parquet
dataset) and :mod:`tradegraph.adapters.ccxt.instruments` (instrument definitions); this module
reads the command line and reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradegraph.adapters.ccxt.download import (
    DownloadReport,
    build_exchange,
    download_ohlcv,
    exchange_config,
)
from tradegraph.adapters.ccxt.funding import FundingReport, download_funding
from tradegraph.adapters.ccxt.instruments import fetch_instruments, instruments_yaml
from tradegraph.cli.progress import ProgressLine
from tradegraph.data.catalog import parse_time_ns
from tradegraph.errors import ConfigError, TradegraphError


def cmd_download(args: argparse.Namespace) -> int:
    if args.kind == "funding":
        return _download(
            args,
            "data/funding",
            "funding events",
            lambda r: f"{r.symbol} funding: {r.new_events:,} new events, {r.requests} requests",
            lambda exchange, common: download_funding(exchange, symbol=args.symbol, **common),
        )
    return _download(
        args,
        "data/bars",
        "bars",
        lambda r: f"{r.symbol} {r.timeframe}: {r.new_bars:,} new bars, {r.requests} requests",
        lambda exchange, common: download_ohlcv(
            exchange, symbol=args.symbol, timeframe=args.timeframe, **common
        ),
    )


def _download(
    args: argparse.Namespace,
    default_out: str,
    what: str,
    describe: Callable[[Any], str],
    fetch: Callable[[Any, dict[str, Any]], DownloadReport | FundingReport],
) -> int:
    """Page ``what`` from the exchange into ``--out`` (``default_out``), with a progress line;
    a refusal is a config error, any other exchange error keeps what was stored."""
    since_ns = parse_time_ns(args.since, "--since")
    until_ns = parse_time_ns(args.until, "--until") if args.until else time.time_ns()
    if args.page_limit < 1:
        raise ConfigError(f"--page-limit must be >= 1, was {args.page_limit}")
    config = exchange_config(
        config_file=args.ccxt_config, url_overrides=args.url_override, options=args.ccxt_option
    )
    exchange = build_exchange(args.exchange, config)
    out_dir = Path(args.out or default_out)
    line = ProgressLine(plain=False)

    def progress(report: Any) -> None:
        line.update(lambda: describe(report))

    import ccxt

    try:
        report = fetch(
            exchange,
            {
                "since_ns": since_ns,
                "until_ns": until_ns,
                "out_dir": out_dir,
                "page_limit": args.page_limit,
                "retries": args.retries,
                "progress": progress if line.shown else None,
            },
        )
    except ccxt.BadRequest as exc:
        raise ConfigError(f"{args.exchange} refused the request: {exc}") from exc
    except ccxt.BaseError as exc:
        raise TradegraphError(
            f"{args.exchange}: {type(exc).__name__}: {exc}; {what} stored so far in "
            f"{out_dir.resolve()} are kept"
        ) from exc
    finally:
        line.close()
    print(report.summary())
    return 0


def cmd_instruments(args: argparse.Namespace) -> int:
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise ConfigError("--symbols: give at least one market, e.g. BTC/USDT,ETH/USDT")
    config = exchange_config(
        config_file=args.ccxt_config, url_overrides=args.url_override, options=args.ccxt_option
    )
    exchange = build_exchange(args.exchange, config)
    venue = args.venue or args.exchange.upper()
    import ccxt

    try:
        instruments = fetch_instruments(exchange, symbols, venue)
    except ccxt.BaseError as exc:
        raise TradegraphError(f"{args.exchange}: {type(exc).__name__}: {exc}") from exc
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = instruments_yaml(
        instruments,
        f"Instrument definitions from {args.exchange}'s markets (ccxt {ccxt.__version__}), "
        f"{now}.\nInclude them in a graph config with `instruments_file: <this file>`.",
    )
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"{len(instruments)} instruments written to {out}")
    else:
        print(text, end="")
    return 0


def _add_exchange_args(p: argparse.ArgumentParser, option_help: str) -> None:
    """``--url-override``, ``--ccxt-option`` and ``--ccxt-config``: how the ccxt client is built."""
    p.add_argument(
        "--url-override",
        action="append",
        default=[],
        metavar="KEY=URL",
        help="override a ccxt URL, e.g. api.public=http://127.0.0.1:8765/api/v3 (repeatable)",
    )
    p.add_argument(
        "--ccxt-option", action="append", default=[], metavar="KEY=VALUE", help=option_help
    )


def add_data_commands(subparsers: Any) -> None:
    """Register ``data download`` and ``data instruments`` on the ``tradegraph`` command."""
    data = subparsers.add_parser(
        "data", help="market data: download bars and instrument definitions from an exchange"
    )
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser(
        "download",
        help="page an exchange's OHLCV bars (ccxt fetch_ohlcv) or a perpetual's funding rates "
        "(fetch_funding_rate_history) into Parquet",
        description="Historical bars, or a perpetual's funding-rate history, from an exchange "
        "through ccxt into Parquet.",
    )
    dl.add_argument(
        "--kind",
        choices=("bars", "funding"),
        default="bars",
        help="bars (default): a dataset of one file per day; funding: one file per perpetual, "
        "OUT/<SYMBOL>-PERP.parquet (ts, funding_rate, mark_price)",
    )
    dl.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    dl.add_argument(
        "--symbol",
        required=True,
        help="market, e.g. BTC/USDT or BTCUSDT; a perpetual: BTC/USDT:USDT",
    )
    dl.add_argument("--timeframe", default="1m", help="bar length, e.g. 1m, 1h (default 1m)")
    dl.add_argument("--since", required=True, help="first bar, ISO date or date-time (UTC)")
    dl.add_argument("--until", help="stop before this ISO date/time (default: now)")
    dl.add_argument(
        "--out", help="dataset folder (default data/bars, or data/funding with --kind funding)"
    )
    _add_exchange_args(
        dl,
        "set a ccxt option, VALUE read as --set reads it (YAML, so JSON too), e.g. "
        "'fetchMarkets.types=[\"spot\"]' (repeatable)",
    )
    dl.add_argument(
        "--ccxt-config",
        metavar="FILE",
        help="YAML/JSON ccxt constructor config (urls, options, timeout); keys are ignored",
    )
    dl.add_argument(
        "--page-limit", type=int, default=1000, help="bars or events per request (default 1000)"
    )
    dl.add_argument(
        "--retries", type=int, default=3, help="retries after a network error (default 3)"
    )
    dl.set_defaults(func=cmd_download)

    p = data_sub.add_parser(
        "instruments",
        help="write instrument definitions (tick, lot, minimums, fees) from an exchange's markets",
        description="Instrument definitions from an exchange's markets, as a YAML file configs "
        "can include.",
    )
    p.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    p.add_argument(
        "--symbols", required=True, help="comma-separated markets, e.g. BTC/USDT,ETH/USDT"
    )
    p.add_argument(
        "--venue", help="venue name in the definitions (default: the exchange id in capitals)"
    )
    p.add_argument("--out", metavar="FILE", help="YAML file to write (default: standard output)")
    _add_exchange_args(
        p, "set a ccxt option, VALUE read as --set reads it (YAML, so JSON too) (repeatable)"
    )
    p.add_argument("--ccxt-config", metavar="FILE", help="YAML/JSON ccxt constructor config")
    p.set_defaults(func=cmd_instruments)
