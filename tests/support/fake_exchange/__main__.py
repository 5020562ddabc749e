"""Run the fake exchange until interrupted: ``python -m tests.support.fake_exchange --port N``.

Prints the ccxt constructor config (JSON) that points ccxt at it; save it to a file for
``tradegraph data download --ccxt-config FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from .server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeExchange


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_exchange",
        description="A fake Binance-compatible exchange (spot, and USDⓈ-M futures under /fapi) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key it accepts")
    parser.add_argument("--secret", default=DEFAULT_SECRET, help="the secret of that key")
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="SYMBOL=PRICE",
        help="start a book around PRICE, e.g. --price BTCUSDT=60000 (repeatable)",
    )
    args = parser.parse_args(argv)
    fake = FakeExchange(port=args.port, api_key=args.api_key, secret=args.secret)
    fake.start()
    try:
        for item in args.price:
            symbol, _, price = item.partition("=")
            fake.set_price(symbol, price)
        print(f"fake exchange on {fake.base_url} (REST /api/v3, {fake.ws_url}, {fake.ws_api_url})")
        print(json.dumps(fake.ccxt_config(), indent=2), flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
