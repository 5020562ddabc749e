"""A fake Binance-compatible exchange for tests: spot REST and websockets, USDⓈ-M futures
REST (``/fapi``), fault injection.

Start it in-process (``with FakeExchange() as fake: ...``) or as a process with
``python -m tests.support.fake_exchange --port 8765``.
"""

from __future__ import annotations

from .book import BinanceError, Fill, Order, PublicTrade, SymbolRules
from .ccxt_urls import FUTURES_OPTIONS, SPOT_OPTIONS, ccxt_binance_config
from .server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeExchange, RecordedRequest

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "FUTURES_OPTIONS",
    "SPOT_OPTIONS",
    "BinanceError",
    "FakeExchange",
    "Fill",
    "Order",
    "PublicTrade",
    "RecordedRequest",
    "SymbolRules",
    "ccxt_binance_config",
]
