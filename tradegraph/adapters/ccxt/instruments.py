"""Instrument definitions from an exchange's markets, as a YAML file configs can include.

``tradegraph data instruments --exchange binance --symbols BTC/USDT,ETH/USDT --out FILE``
reads ccxt's markets (tick size, lot size, minimum quantity and notional, maker and taker fees)
and writes ``instruments:`` entries that a graph config takes in with
``instruments_file: FILE`` (relative to the config's folder). The command itself is in
:mod:`tradegraph.cli.data`.

A linear perpetual (``--exchange binanceusdm --symbols BTC/USDT:USDT``) becomes a
``kind: perpetual`` instrument ``BTCUSDT-PERP`` with its contract size, settlement asset,
funding interval (``fetch_funding_intervals`` where the exchange has it, else 8 hours) and,
where the exchange gives them to the client (Binance: only to an authenticated one), its margin
tiers and highest leverage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from tradegraph.adapters.ccxt.download import resolve_market
from tradegraph.config.loader import format_validation_error
from tradegraph.config.models import InstrumentConfig
from tradegraph.contracts import InstrumentKind
from tradegraph.errors import DataError

# The fields of a spot instrument definition (a perpetual has more).
_SPOT_FIELDS = frozenset(
    {
        "symbol",
        "venue",
        "base",
        "quote",
        "tick_size",
        "lot_size",
        "min_quantity",
        "min_notional",
        "maker_fee",
        "taker_fee",
    }
)


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


def margin_tiers(tiers: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """ccxt leverage tiers as ``margin_tiers`` entries (initial rate: 1 / max leverage)."""
    out = []
    for tier in tiers:
        cum = (tier.get("info") or {}).get("cum")
        out.append(
            {
                "max_notional": float(tier["maxNotional"]),
                "initial_rate": 1.0 / float(tier["maxLeverage"]),
                "maintenance_rate": float(tier["maintenanceMarginRate"]),
                "maintenance_amount": float(cum) if cum is not None else 0.0,
            }
        )
    return out


def _perpetual_fields(
    market: Mapping[str, Any],
    tiers: Sequence[Mapping[str, Any]],
    funding_interval_h: float,
) -> dict[str, Any]:
    """What makes a ccxt swap market a ``kind: perpetual`` instrument."""
    symbol = str(market["symbol"])
    if not market.get("linear"):
        raise DataError(
            f"{symbol} is an inverse (coin-margined) perpetual; only linear perpetuals are "
            "supported"
        )
    settle = str(market.get("settle") or market["quote"])
    fields: dict[str, Any] = {
        "symbol": f"{market['base']}{market['quote']}-PERP",
        "kind": "perpetual",
        "contract_size": float(market.get("contractSize") or 1.0),
        "settle": "" if settle == market["quote"] else settle,
        "funding_interval_h": funding_interval_h,
    }
    leverage = ((market.get("limits") or {}).get("leverage") or {}).get("max")
    if tiers:
        fields["margin_tiers"] = margin_tiers(tiers)
        leverage = max(float(t["maxLeverage"]) for t in tiers)
    if leverage is not None and math.isfinite(float(leverage)):
        fields["max_leverage"] = float(leverage)
    return fields


def instrument_from_market(
    exchange: Any,
    market: dict[str, Any],
    venue: str,
    *,
    tiers: Sequence[Mapping[str, Any]] = (),
    funding_interval_h: float = 8.0,
) -> InstrumentConfig:
    """One ccxt market as an instrument definition; a swap market as a perpetual, with
    ``tiers`` (ccxt leverage tiers) and its funding interval.

    Raises:
        DataError: The market lacks a precision or a fee, a value is out of bounds, or it is a
            kind of contract other than a linear perpetual.
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
    if market.get("swap"):
        raw.update(_perpetual_fields(market, tiers, funding_interval_h))
    elif market.get("contract"):
        raise DataError(f"{symbol} is a dated future or an option; only perpetuals are supported")
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
    markets = [resolve_market(exchange, s) for s in symbols]
    swaps = [str(m["symbol"]) for m in markets if m.get("swap")]
    intervals = _funding_intervals(exchange, swaps)
    tiers = _leverage_tiers(exchange, swaps)
    return [
        instrument_from_market(
            exchange,
            m,
            venue,
            tiers=tiers.get(str(m["symbol"]), ()),
            funding_interval_h=intervals.get(str(m["symbol"]), 8.0),
        )
        for m in markets
    ]


def _funding_intervals(exchange: Any, symbols: Sequence[str]) -> dict[str, float]:
    """Funding interval in hours by symbol, where the exchange says (others: 8 hours)."""
    has = getattr(exchange, "has", {}) or {}
    if not symbols or not has.get("fetchFundingIntervals"):
        return {}
    out = {}
    for symbol, row in (exchange.fetch_funding_intervals(list(symbols)) or {}).items():
        interval = str((row or {}).get("interval") or "")
        if interval.endswith("h") and interval[:-1].replace(".", "", 1).isdigit():
            out[str(symbol)] = float(interval[:-1])
    return out


def _leverage_tiers(exchange: Any, symbols: Sequence[str]) -> dict[str, Any]:
    """ccxt leverage tiers by symbol, or nothing when the exchange gives them only to an
    authenticated client (Binance) and this one has no keys."""
    import ccxt

    has = getattr(exchange, "has", {}) or {}
    if not symbols or not has.get("fetchLeverageTiers"):
        return {}
    try:
        return dict(exchange.fetch_leverage_tiers(list(symbols)) or {})
    except (ccxt.AuthenticationError, ccxt.NotSupported):
        return {}


def instruments_yaml(instruments: Sequence[InstrumentConfig], header: str) -> str:
    """The ``instruments:`` file a config includes with ``instruments_file``; a spot instrument
    is written without the perpetual fields."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    perpetual_only = set(InstrumentConfig.model_fields) - _SPOT_FIELDS
    body = {
        "instruments": [
            i.model_dump(
                mode="json", exclude=perpetual_only if i.kind is InstrumentKind.SPOT else None
            )
            for i in instruments
        ]
    }
    return comment + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
