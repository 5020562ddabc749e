"""API keys never reach logs, error messages or reprs."""

from __future__ import annotations

import asyncio
import io
import logging

import ccxt
import pytest

from tests.support.stubs import bar
from tests.unit.adapters.ccxt_stub import StubExchange
from tests.unit.adapters.test_ccxt_broker import ENV, live_config, make_broker, submit
from tradegraph.adapters.ccxt.client import (
    Credentials,
    SecretScrubber,
    VenueError,
    create_exchange,
    load_credentials,
)
from tradegraph.config.models import LiveVenueConfig
from tradegraph.contracts import OrderRejected
from tradegraph.errors import ConfigError
from tradegraph.observability import configure_logging

KEY = ENV["K"]
SECRET = ENV["S"]


def test_credentials_come_from_the_named_variables_and_never_show() -> None:
    credentials = load_credentials(live_config(), ENV)

    assert credentials is not None
    assert (credentials.api_key, credentials.secret) == (KEY, SECRET)
    assert KEY not in repr(credentials)
    assert SECRET not in str(credentials)


def test_only_one_credential_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="given together"):
        load_credentials(LiveVenueConfig(api_key_env="K"), ENV)


def test_public_data_needs_no_credentials() -> None:
    assert load_credentials(LiveVenueConfig(), {}) is None


def test_scrubber_removes_secrets_signatures_and_key_headers() -> None:
    scrubber = SecretScrubber([KEY, SECRET])
    text = (
        f"binance POST https://x/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef0123 "
        f"{{'X-MBX-APIKEY': '{KEY}'}} secret {SECRET} apiKey={KEY}"
    )

    scrubbed = scrubber.scrub(text)

    assert KEY not in scrubbed
    assert SECRET not in scrubbed
    assert "abcdef0123" not in scrubbed
    assert "signature=***" in scrubbed


def test_venue_error_message_is_scrubbed() -> None:
    scrubber = SecretScrubber([KEY, SECRET])
    exc = ccxt.AuthenticationError(f'binance {{"msg":"Invalid API-key {KEY}"}}')

    error = VenueError.from_ccxt(exc, scrubber, "create_order")

    assert KEY not in str(error)
    assert error.kind == "AuthenticationError"
    assert not error.retryable


def test_ccxt_debug_log_of_a_real_client_never_shows_the_key() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    config = live_config(urls={"api": {"public": "http://127.0.0.1:9/api/v3"}})
    credentials = Credentials(KEY, SECRET)
    exchange = create_exchange(config, credentials, SecretScrubber([KEY, SECRET]))
    exchange.logger.addHandler(handler)
    exchange.logger.setLevel(logging.DEBUG)
    try:
        exchange.logger.debug(
            "%s %s, Request: %s %s", "GET", "http://x", {"X-MBX-APIKEY": KEY}, f"secret={SECRET}"
        )
    finally:
        exchange.logger.removeHandler(handler)
        asyncio.run(exchange.close())

    logged = stream.getvalue()
    assert "Request:" in logged
    assert KEY not in logged
    assert SECRET not in logged


def test_broker_logs_and_rejections_never_show_the_key_or_secret() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream)

    async def scenario() -> list[str]:
        broker, stub, _ = make_broker(StubExchange())
        await broker.start()
        broker.observe(bar(100.0, ts_ns=1, volume=10.0))
        stub.faults["create_order"] = [
            ccxt.ExchangeNotAvailable(f"binance GET https://x?apiKey={KEY}&signature=ffff"),
            ccxt.AuthenticationError(f"binance invalid key {KEY} / {SECRET}"),
        ]
        out = await broker.submit(submit())
        texts = [m.reason for m in out if isinstance(m, OrderRejected)]
        await broker.close()
        return texts

    try:
        reasons = asyncio.run(scenario())
    finally:
        configure_logging()

    logged = stream.getvalue()
    assert reasons
    assert all(KEY not in r and SECRET not in r for r in reasons)
    assert "venue_call_retry" in logged or "order_rejected" in logged
    assert KEY not in logged
    assert SECRET not in logged
