"""Client order ids: valid for each venue, deterministic, distinct per order and per session."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.adapters.ccxt.client_ids import (
    CLIENT_ID_RULES,
    DEFAULT_CLIENT_ID_RULE,
    ClientIdFactory,
    ClientIdRule,
    client_id_rule,
)
from tradegraph.errors import ConfigError

BINANCE_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
ALL_RULES = [*CLIENT_ID_RULES.values(), DEFAULT_CLIENT_ID_RULE]
order_ids = st.text(min_size=1, max_size=80)
sessions = st.text(min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(session=sessions, order_id=order_ids, rule=st.sampled_from(ALL_RULES))
def test_every_id_is_accepted_by_its_venue(session: str, order_id: str, rule: ClientIdRule) -> None:
    client_id = ClientIdFactory(session, rule).make(order_id)

    assert rule.accepts(client_id), client_id


@settings(max_examples=200, deadline=None)
@given(session=sessions, order_id=order_ids)
def test_binance_ids_match_the_documented_pattern(session: str, order_id: str) -> None:
    client_id = ClientIdFactory(session, client_id_rule("binance")).make(order_id)

    assert BINANCE_PATTERN.match(client_id), client_id


@settings(max_examples=100, deadline=None)
@given(session=sessions, order_id=order_ids, rule=st.sampled_from(ALL_RULES))
def test_same_order_in_same_session_always_gets_the_same_id(
    session: str, order_id: str, rule: ClientIdRule
) -> None:
    first = ClientIdFactory(session, rule).make(order_id)
    again = ClientIdFactory(session, rule).make(order_id)

    assert first == again


@settings(max_examples=100, deadline=None)
@given(
    session=sessions,
    ids=st.lists(order_ids, min_size=2, max_size=30, unique=True),
    rule=st.sampled_from(ALL_RULES),
)
def test_distinct_orders_get_distinct_ids(session: str, ids: list[str], rule: ClientIdRule) -> None:
    factory = ClientIdFactory(session, rule)

    made = [factory.make(order_id) for order_id in ids]

    assert len(set(made)) == len(ids)


def test_near_identical_long_ids_that_share_a_readable_head_stay_distinct() -> None:
    factory = ClientIdFactory("s", client_id_rule("okx"))
    base = "sma_fast_and_very_long_strategy_name-0000"

    made = {factory.make(f"{base}{n:02d}") for n in range(100)}

    assert len(made) == 100


@settings(max_examples=100, deadline=None)
@given(a=sessions, b=sessions, order_id=order_ids)
def test_the_same_order_id_in_two_sessions_gets_two_ids(a: str, b: str, order_id: str) -> None:
    if a == b:
        return

    first = ClientIdFactory(a, client_id_rule("binance")).make(order_id)
    second = ClientIdFactory(b, client_id_rule("binance")).make(order_id)

    assert first != second


def test_short_valid_order_id_stays_readable() -> None:
    factory = ClientIdFactory("session-1", client_id_rule("binance"))

    client_id = factory.make("sma-000001")

    assert client_id == factory.session_tag + "sma-000001"
    assert factory.is_ours(client_id)


def test_order_id_with_characters_the_venue_refuses_is_hashed_but_keeps_a_readable_head() -> None:
    factory = ClientIdFactory("session-1", client_id_rule("okx"))

    client_id = factory.make("sma_fast-000001")

    assert client_id.startswith(factory.session_tag + "smafast0")
    assert len(client_id) == 32
    assert client_id.isalnum()


def test_gate_ids_carry_the_required_prefix() -> None:
    client_id = ClientIdFactory("s", client_id_rule("gate")).make("a" * 50)

    assert client_id.startswith("t-")
    assert len(client_id) <= 30


def test_other_sessions_ids_are_not_ours() -> None:
    ours = ClientIdFactory("today", client_id_rule("binance"))
    theirs = ClientIdFactory("yesterday", client_id_rule("binance"))

    assert not ours.is_ours(theirs.make("sma-000001"))
    assert not ours.is_ours("web_3f6286480b194b079870ac75fb6978b7")
    assert not ours.is_ours(None)


def test_unknown_exchange_gets_the_restrictive_default() -> None:
    assert client_id_rule("someexchange") is DEFAULT_CLIENT_ID_RULE


def test_rule_too_short_for_a_safe_id_is_a_config_error() -> None:
    rule = ClientIdRule(max_length=20, allowed=frozenset("0123456789abcdef"))

    with pytest.raises(ConfigError, match="at least 16"):
        ClientIdFactory("s", rule)


def test_empty_session_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="session id"):
        ClientIdFactory("", DEFAULT_CLIENT_ID_RULE)
