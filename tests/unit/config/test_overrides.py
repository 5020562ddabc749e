from __future__ import annotations

from typing import Any

import pytest

from tradegraph.adapters.ccxt.download import exchange_config
from tradegraph.config import apply_overrides
from tradegraph.config.overrides import deep_merge, parse_value, set_dotted
from tradegraph.errors import ConfigError

VALUES = [
    "5",
    "0.25",
    "true",
    "null",
    '["spot"]',
    "[spot, margin]",
    "{a: 1}",
    '{"a": 1}',
    "x: y: z",
]


@pytest.mark.parametrize("text", VALUES)
def test_set_and_ccxt_option_read_a_value_the_same_way(text: str) -> None:
    via_set = apply_overrides({}, [f"k={text}"])["k"]
    via_option = exchange_config(options=[f"k={text}"])["options"]["k"]

    assert via_option == via_set


def test_a_value_is_yaml_so_json_and_flow_collections_both_parse() -> None:
    assert parse_value('["spot"]') == ["spot"]
    assert parse_value("[spot, margin]") == ["spot", "margin"]
    assert parse_value("{recvWindow: 5000}") == {"recvWindow": 5000}
    assert parse_value("x: y: z") == "x: y: z"  # no valid YAML: kept as text


def test_an_alias_bomb_in_a_value_is_refused_with_the_flag() -> None:
    bomb = "[" + ", ".join(["&a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"] + ["*a"] * 20_000) + "]"

    with pytest.raises(ConfigError, match=r"^--ccxt-option value .*aliases expanded"):
        parse_value(bomb, "--ccxt-option")


def test_set_dotted_makes_mappings_and_selects_list_elements_by_id() -> None:
    tree: dict[str, Any] = {"strategies": [{"id": "sma", "params": {}}]}

    set_dotted(tree, "strategies.sma.params.fast_period", 5)
    set_dotted(tree, "risk.limits.max_order_notional_usd", 100.0)

    assert tree == {
        "strategies": [{"id": "sma", "params": {"fast_period": 5}}],
        "risk": {"limits": {"max_order_notional_usd": 100.0}},
    }


def test_set_dotted_errors_name_the_flag_and_the_path() -> None:
    with pytest.raises(ConfigError, match=r"^--ccxt-option a\.b: cannot descend into a int$"):
        exchange_config(options=["a=1", "a.b=2"])
    with pytest.raises(ConfigError, match=r"^--url-override '\.': empty key$"):
        exchange_config(url_overrides=[".=http://127.0.0.1:1"])


def test_deep_merge_merges_mappings_in_both_and_replaces_the_rest() -> None:
    base = {"options": {"defaultType": "spot", "types": ["spot"]}, "timeout": 1000}

    merged = deep_merge(base, {"options": {"types": ["margin"]}, "timeout": 3000})

    assert merged == {"options": {"defaultType": "spot", "types": ["margin"]}, "timeout": 3000}
    assert base["timeout"] == 1000  # the base is left as it was
