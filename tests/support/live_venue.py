"""The live venue section that points ccxt at the fake exchange, shared by the live tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support.fake_exchange import FakeExchange
from tradegraph.config.models import (
    AccountConfig,
    CircuitBreakerConfig,
    InstrumentConfig,
    LiveMode,
    LiveVenueConfig,
)
from tradegraph.contracts import AccountKind, InstrumentKind


def fake_live_venue(
    fake: FakeExchange,
    *,
    key_env: str,
    secret_env: str,
    futures: bool = False,
    **fields: Any,
) -> LiveVenueConfig:
    """A ``binance`` live venue (with ``futures``: ``binanceusdm``, USDⓈ-M perpetuals) whose
    every URL is the fake's, keys read from ``key_env`` and ``secret_env``, ccxt's own rate
    limiter off (tests meet the fake's limits instead) and a circuit that opens only after 10
    failures; ``fields`` set or override the rest."""
    ccxt_config = fake.ccxt_config(futures=futures)
    values: dict[str, Any] = {
        "mode": LiveMode.LIVE,
        "exchange": "binanceusdm" if futures else "binance",
        "api_key_env": key_env,
        "api_secret_env": secret_env,
        "urls": ccxt_config["urls"],
        "options": ccxt_config["options"],
        "enable_rate_limit": False,
        "circuit_breaker": CircuitBreakerConfig(failure_threshold=10, cooldown_s=1.0),
    }
    values.update(fields)
    return LiveVenueConfig(**values)


def margin_account(
    live: LiveVenueConfig, instruments: Sequence[InstrumentConfig], venue: str = "BINANCE"
) -> AccountConfig:
    """A margin account whose leverage per perpetual of ``instruments`` is what ``live`` sets
    at the exchange."""
    return AccountConfig(
        kind=AccountKind.MARGIN,
        leverage={
            f"{i.symbol}.{venue}": float(live.leverage.get(i.symbol, live.default_leverage))
            for i in instruments
            if i.kind is InstrumentKind.PERPETUAL
        },
    )
