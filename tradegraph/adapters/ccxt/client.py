"""Building ccxt exchange clients from configuration, and keeping their secrets secret.

Credentials come only from the environment variables the configuration names. They are held
in :class:`Credentials` (whose ``repr`` shows nothing) and handed to ccxt, and every way text
can leave a gateway passes through a :class:`SecretScrubber`: ccxt's own debug log (which
prints request headers, where most venues put the API key), error messages (which quote URLs
with signatures and response bodies), and our log lines. Gateways raise :class:`VenueError`
with scrubbed text instead of ccxt's exceptions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import ccxt
import ccxt.async_support
import ccxt.pro

from tradegraph.config.models import LiveVenueConfig
from tradegraph.errors import ConfigError, OrderPathError

__all__ = [
    "Credentials",
    "ScrubbingFilter",
    "SecretScrubber",
    "VenueError",
    "create_exchange",
    "load_credentials",
    "scrubbed_logger",
]

_REDACTED = "***"
# Query-string signatures and API-key headers as ccxt prints them in errors and debug logs.
_SIGNATURE = re.compile(r"(?i)(signature|sign|apikey|api_key|api-key)=([^&\s'\"]+)")
_KEY_HEADER = re.compile(r"(?i)('?(?:x-mbx-apikey|[a-z-]*api-?key)'?\s*:\s*')([^']+)(')")


class Credentials:
    """An API key and secret. Neither ``repr`` nor ``str`` shows them."""

    __slots__ = ("api_key", "secret")

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self.secret = secret

    def __repr__(self) -> str:
        return "Credentials(api_key=***, secret=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("credentials are not pickled; read them from the environment where used")


def load_credentials(config: LiveVenueConfig, environ: Mapping[str, str]) -> Credentials | None:
    """Read the API key and secret from the environment variables the configuration names.

    Returns:
        ``None`` when the configuration names neither variable (public data only).

    Raises:
        ConfigError: Only one variable is named, or a named variable is unset or empty. The
            message names the variable, never a value.
    """
    names = (config.api_key_env, config.api_secret_env)
    if names == (None, None):
        return None
    if None in names:
        raise ConfigError("live.api_key_env and live.api_secret_env must be given together")
    values: list[str] = []
    for field, name in zip(("api_key_env", "api_secret_env"), names, strict=True):
        assert name is not None
        value = environ.get(name, "")
        if not value:
            raise ConfigError(
                f"live.{field} names the environment variable {name}, which is not set or empty"
            )
        values.append(value)
    return Credentials(values[0], values[1])


class SecretScrubber:
    """Removes secrets from text: the given values, and signatures and API-key headers."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Scrub these values too."""
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({*self._secrets, *(s for s in secrets if s)}, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    @classmethod
    def for_credentials(cls, credentials: Credentials | None) -> SecretScrubber:
        if credentials is None:
            return cls()
        return cls((credentials.api_key, credentials.secret))

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        text = _SIGNATURE.sub(lambda m: f"{m.group(1)}={_REDACTED}", text)
        return _KEY_HEADER.sub(lambda m: f"{m.group(1)}{_REDACTED}{m.group(3)}", text)

    def describe(self, exc: BaseException) -> str:
        """``ErrorType: message`` with secrets removed."""
        return self.scrub(f"{type(exc).__name__}: {exc}")


class ScrubbingFilter(logging.Filter):
    """A logging filter that rewrites each record's message through a scrubber."""

    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrubber.scrub(record.getMessage())
        record.args = None
        if record.exc_info is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrubber.scrub(formatted)
            record.exc_info = None
        return True


def scrubbed_logger(name: str, scrubber: SecretScrubber) -> logging.Logger:
    """The logger ``name`` with a filter that scrubs ``scrubber``'s secrets (and those of every
    other client that logs there) from each record."""
    logger = logging.getLogger(name)
    for existing in logger.filters:
        if isinstance(existing, ScrubbingFilter):
            existing.scrubber.add(scrubber.secrets)
            return logger
    logger.addFilter(ScrubbingFilter(SecretScrubber(scrubber.secrets)))
    return logger


class VenueError(OrderPathError):
    """A ccxt call failed. The message is scrubbed of secrets.

    Attributes:
        kind: The ccxt error class name (``InvalidOrder``, ``RequestTimeout``, ...).
        retryable: Whether another try may succeed.
    """

    def __init__(self, message: str, *, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable

    @classmethod
    def from_ccxt(cls, exc: BaseException, scrubber: SecretScrubber, operation: str) -> VenueError:
        from tradegraph.adapters.ccxt.retry import is_retryable

        return cls(
            f"{operation} failed: {scrubber.describe(exc)}",
            kind=type(exc).__name__,
            retryable=is_retryable(exc),
        )


def _merge(base: Any, override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, nested mappings merged key by key."""
    merged: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _any_tls(urls: Any) -> bool:
    if isinstance(urls, str):
        return urls.startswith(("https://", "wss://"))
    if isinstance(urls, Mapping):
        return any(_any_tls(value) for value in urls.values())
    return False


def create_exchange(
    config: LiveVenueConfig,
    credentials: Credentials | None,
    scrubber: SecretScrubber,
    *,
    websockets: bool = True,
) -> Any:
    """A ccxt async exchange client for ``config`` (a ccxt.pro client when it has one).

    Applies, in order: credentials, request timeout, ``enable_rate_limit``, ``options``; sandbox
    mode;
    then ``urls`` merged over the client's own. Debug output of the client goes to a logger
    named ``tradegraph.ccxt.<exchange>`` that scrubs secrets; ccxt's ``verbose`` printing is
    forced off.

    Raises:
        ConfigError: ccxt has no exchange of that id, or it has no sandbox.
    """
    module: Any = ccxt.pro if websockets and hasattr(ccxt.pro, config.exchange) else None
    if module is None:
        module = ccxt.async_support
    exchange_class = getattr(module, config.exchange, None)
    if exchange_class is None:
        raise ConfigError(f"live.exchange: ccxt has no exchange {config.exchange!r}")
    params: dict[str, Any] = {
        "enableRateLimit": config.enable_rate_limit,
        "timeout": round(config.request_timeout_s * 1000),
        "options": dict(config.options),
    }
    if credentials is not None:
        params["apiKey"] = credentials.api_key
        params["secret"] = credentials.secret
    exchange = exchange_class(params)
    if config.sandbox:
        try:
            exchange.set_sandbox_mode(True)
        except ccxt.NotSupported as exc:
            raise ConfigError(
                f"live.sandbox: {config.exchange} has no sandbox in ccxt ({scrubber.describe(exc)})"
            ) from None
    if config.urls:
        exchange.urls = _merge(exchange.urls, config.urls)
    if not _any_tls(exchange.urls.get("api")):
        # ccxt pauses on close() so TLS sessions can wind down; plain-HTTP endpoints (a local
        # test server) have none to wait for.
        exchange.timeout_on_exit = 0
    exchange.verbose = False
    exchange.logger = scrubbed_logger(f"tradegraph.ccxt.{config.exchange}", scrubber)
    return exchange
