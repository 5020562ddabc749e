"""Deterministic client order ids that every venue accepts.

The id a venue sees is derived only from the session id and our order id (``SubmitOrder``'s
``client_order_id``), so a retried submit of the same intent carries the same id and the venue
can never hold two orders for it; an order whose outcome is unknown is found again by that id.

Layout: ``{venue prefix}{session tag}{order part}``.

* The session tag (``tg`` + 6 hex digits of a SHA-256 of the session id) keeps ids of different
  sessions apart (intent counters restart with each session) and lets reconciliation tell this
  session's orders from anyone else's.
* The order part is the order id itself when it is shorter than the room left and uses only
  characters the venue allows; otherwise a readable head of its allowed characters followed by
  hex digits of a SHA-256 of the whole order id, filling the room exactly. A verbatim part is
  always shorter than a hashed one, so two order ids map to the same venue id only on a hash
  collision (at least 64 bits).
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tradegraph.errors import ConfigError

__all__ = [
    "CLIENT_ID_RULES",
    "DEFAULT_CLIENT_ID_RULE",
    "ClientIdFactory",
    "ClientIdRule",
    "client_id_rule",
]

_ALNUM = string.ascii_letters + string.digits
_SESSION_TAG_HEX = 6
_MIN_HASH_HEX = 16
_MAX_READABLE = 12


@dataclass(frozen=True)
class ClientIdRule:
    """What a venue accepts as a client order id.

    Attributes:
        max_length: Longest id, prefix included.
        allowed: Every character an id may contain.
        prefix: Text every id must start with (e.g. Gate's ``t-``).
    """

    max_length: int
    allowed: frozenset[str]
    prefix: str = ""

    def accepts(self, client_id: str) -> bool:
        """Whether the venue would take ``client_id``."""
        return (
            0 < len(client_id) <= self.max_length
            and client_id.startswith(self.prefix)
            and all(ch in self.allowed for ch in client_id[len(self.prefix) :])
        )


def _rule(max_length: int, allowed: str, prefix: str = "") -> ClientIdRule:
    return ClientIdRule(max_length=max_length, allowed=frozenset(allowed), prefix=prefix)


_BINANCE = _rule(36, _ALNUM + ".:/_-")  # ^[\.A-Z\:/a-z0-9_-]{1,36}$

CLIENT_ID_RULES: Mapping[str, ClientIdRule] = MappingProxyType(
    {
        "binance": _BINANCE,
        "binanceus": _BINANCE,
        "binanceusdm": _BINANCE,
        "binancecoinm": _BINANCE,
        "bybit": _rule(36, _ALNUM + "_-"),
        "okx": _rule(32, _ALNUM),
        "gate": _rule(30, _ALNUM + "._-", prefix="t-"),
    }
)
"""Client order id rules of the venues we know, by ccxt exchange id."""

DEFAULT_CLIENT_ID_RULE = _rule(32, _ALNUM)
"""For venues not in the table: letters and digits, at most 32, which the others all accept."""


def client_id_rule(exchange_id: str) -> ClientIdRule:
    """The client order id rule of a ccxt exchange, or the safe default."""
    return CLIENT_ID_RULES.get(exchange_id, DEFAULT_CLIENT_ID_RULE)


def _hex_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ClientIdFactory:
    """Makes the venue client order ids of one session.

    Args:
        session_id: Identifies the trading session; must stay the same across restarts of the
            session (so restarted gateways find their orders) and differ between sessions.
        rule: What the venue accepts.

    Raises:
        ConfigError: The rule leaves too little room for a collision-proof id.
    """

    def __init__(self, session_id: str, rule: ClientIdRule) -> None:
        if not session_id:
            raise ConfigError("a live session needs a non-empty session id")
        self.rule = rule
        self.session_tag = "tg" + _hex_digest(session_id)[:_SESSION_TAG_HEX]
        self._head = rule.prefix + self.session_tag
        self._room = rule.max_length - len(self._head)
        if self._room < _MIN_HASH_HEX:
            raise ConfigError(
                f"client order ids of at most {rule.max_length} characters leave "
                f"{self._room} for the order part; at least {_MIN_HASH_HEX} are needed"
            )
        if not set("0123456789abcdef") <= rule.allowed or not set(self.session_tag) <= (
            rule.allowed
        ):
            raise ConfigError("the venue's client order id characters exclude hex digits")

    def make(self, order_id: str) -> str:
        """The venue client order id for ``order_id``; the same input always gives the same id."""
        allowed = self.rule.allowed
        if len(order_id) < self._room and order_id and all(ch in allowed for ch in order_id):
            return self._head + order_id
        readable = "".join(ch for ch in order_id if ch in allowed)[:_MAX_READABLE]
        hex_len = self._room - len(readable)
        if hex_len < _MIN_HASH_HEX:
            readable = readable[: self._room - _MIN_HASH_HEX]
            hex_len = self._room - len(readable)
        return self._head + readable + _hex_digest(order_id)[:hex_len]

    def is_ours(self, venue_client_id: str | None) -> bool:
        """Whether a venue client order id was made by this session's factory."""
        return bool(venue_client_id) and str(venue_client_id).startswith(self._head)
