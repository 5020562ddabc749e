"""Instrument definitions from an exchange's markets, as a YAML file configs can include.

``tradegraph data instruments --exchange binance --symbols BTC/USDT,ETH/USDT --out FILE``
reads ccxt's markets (tick size, lot size, minimum quantity and notional, maker and taker fees)
and writes ``instruments:`` entries that a graph config takes in with
``instruments_file: FILE`` (relative to the config's folder). The command itself is in
:mod:`tradegraph.cli.data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from tradegraph.adapters.ccxt.download import resolve_market
from tradegraph.config.loader import format_validation_error
from tradegraph.config.models import InstrumentConfig
from tradegraph.errors import DataError


def _step(exchange: Any, value: Any, what: str, symbol: str) -> float:
    """A ccxt precision (a step size, or a number of decimal places) as a step size."""
    import ccxt

    if value is None:
        raise DataError(f"{exchange.id} gives no {what} precision for {symbol}")
    mode = getattr(exchange, "precisionMode", ccxt.TICK_SIZE)
    if mode == ccxt.DECIMAL_PLACES:
        return float(10.0 ** -int(value))
    if mode == ccxt.SIGNIFICANT_DIGITS:
        raise DataError(
            f"{exchange.id} states {what} precision in significant digits, which gives no "
            f"fixed step for {symbol}"
        )
    return float(value)


def _limit(market: dict[str, Any], kind: str) -> float:
    value = ((market.get("limits") or {}).get(kind) or {}).get("min")
    return float(value) if value is not None and math.isfinite(float(value)) else 0.0


def instrument_from_market(exchange: Any, market: dict[str, Any], venue: str) -> InstrumentConfig:
    """One ccxt market as an instrument definition.

    Raises:
        DataError: The market lacks a precision or a fee, or a value is out of bounds.
    """
    symbol = str(market["symbol"])
    fees = {}
    for side in ("maker", "taker"):
        fee = market.get(side)
        if fee is None:
            raise DataError(f"{exchange.id} gives no {side} fee for {symbol}")
        fees[f"{side}_fee"] = float(fee)
    precision = market.get("precision") or {}
    raw = {
        "symbol": f"{market['base']}{market['quote']}",
        "venue": venue,
        "base": market["base"],
        "quote": market["quote"],
        "tick_size": _step(exchange, precision.get("price"), "price", symbol),
        "lot_size": _step(exchange, precision.get("amount"), "amount", symbol),
        "min_quantity": _limit(market, "amount"),
        "min_notional": _limit(market, "cost"),
        **fees,
    }
    try:
        return InstrumentConfig.model_validate(raw)
    except ValidationError as exc:
        raise DataError(format_validation_error(exc, f"{exchange.id} market {symbol}")) from None


def fetch_instruments(exchange: Any, symbols: Sequence[str], venue: str) -> list[InstrumentConfig]:
    """The instrument definitions of ``symbols`` (``BTC/USDT``, ``BTCUSDT`` or an exchange id).

    Raises:
        ConfigError: A symbol is unknown to the exchange.
        DataError: A market lacks what an instrument needs.
    """
    exchange.load_markets()
    return [instrument_from_market(exchange, resolve_market(exchange, s), venue) for s in symbols]


def instruments_yaml(instruments: Sequence[InstrumentConfig], header: str) -> str:
    """The ``instruments:`` file a config includes with ``instruments_file``."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    body = {"instruments": [i.model_dump() for i in instruments]}
    return comment + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
