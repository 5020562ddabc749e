"""ccxt constructor config that points Binance's every URL at a fake exchange.

Only config is used: nothing in ccxt is patched. Every URL ccxt knows for Binance is replaced,
the ones the fake does not serve by ``<base>/unsupported/<name>``, so that no request of a test
can ever reach the real exchange.
"""

from __future__ import annotations

import functools
from typing import Any

# What the fake serves, by ccxt's name for the URL.
SERVED_REST = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "dapiPublic": "/dapi/v1",
}
SERVED_WS = {"spot": "/ws", "margin": "/ws", "linear": "/fws"}
SERVED_WS_API = {"spot": "/ws-api/v3"}

# ccxt options for a spot-only venue without the wallet (sapi) endpoints.
SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}

# ccxt options for a ``binanceusdm`` venue: USDⓈ-M (linear) perpetuals only, no wallet calls.
FUTURES_OPTIONS: dict[str, Any] = {
    "defaultType": "swap",
    "fetchMarkets": {"types": ["linear"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


@functools.cache
def _binance_urls() -> dict[str, Any]:
    """ccxt's own URL tree for Binance, websockets included."""
    import ccxt.pro

    urls: dict[str, Any] = ccxt.pro.binance().describe()["urls"]["api"]
    return urls


def _rewrite(
    tree: dict[str, Any], served: dict[str, str], base: str, prefix: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, str):
            out[name] = base + served.get(name, f"/unsupported/{prefix}{name}")
    return out


def ccxt_binance_config(
    http_base: str,
    *,
    api_key: str | None,
    secret: str | None,
    timeout_ms: int = 5_000,
    enable_rate_limit: bool = False,
    futures: bool = False,
) -> dict[str, Any]:
    """Constructor config for ``ccxt.binance`` / ``ccxt.async_support.binance`` /
    ``ccxt.pro.binance`` against the fake at ``http_base`` (``http://127.0.0.1:PORT``).

    The ``urls`` part can be given as is to a venue config's URL overrides; the ``options``
    part keeps ccxt to spot markets (with ``futures``: to USDⓈ-M perpetuals, for
    ``ccxt.binanceusdm``) and away from the wallet endpoints.
    """
    ws_base = "ws" + http_base.removeprefix("http")
    tree = _binance_urls()
    api = _rewrite(tree, SERVED_REST, http_base, "")
    ws_tree: dict[str, Any] = tree["ws"]
    ws = _rewrite(ws_tree, SERVED_WS, ws_base, "ws/")
    ws["ws-api"] = _rewrite(ws_tree["ws-api"], SERVED_WS_API, ws_base, "ws-api/")
    api["ws"] = ws
    config: dict[str, Any] = {
        "urls": {"api": api},
        "options": {**(FUTURES_OPTIONS if futures else SPOT_OPTIONS)},
        "timeout": timeout_ms,
        "enableRateLimit": enable_rate_limit,
    }
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    return config
