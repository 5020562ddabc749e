"""Whatever a config file holds, loading it either gives a config that builds or raises the
project's ConfigError: never another exception, never unbounded time or memory."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradegraph.config import load_config
from tradegraph.config.loader import default_config_text
from tradegraph.config.yaml_text import MAX_NESTING, MAX_NODES, parse_yaml
from tradegraph.errors import ConfigError

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
yamlish_text = st.text(alphabet="[]{}:,-&*!|>'\"\n #?%@`ab1.e+\t\\", max_size=200)


def _load_or_refuse(path: Path) -> None:
    """Load ``path``; a config that loads must also build its instruments."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
    else:
        config.instrument_map()
        return
    assert message.strip(), "a ConfigError must say what is wrong"


@FUZZ
@given(data=st.binary(max_size=2_000))
def test_random_bytes_load_or_raise_config_error(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    _load_or_refuse(path)


@FUZZ
@given(text=yamlish_text)
def test_random_yaml_text_loads_or_raises_config_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    _load_or_refuse(path)


@FUZZ
@given(doc=documents)
def test_random_yaml_documents_load_or_raise_config_error(doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc))
    _load_or_refuse(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


DEFAULT = yaml.safe_load(default_config_text())
DEFAULT_PATHS = _paths(DEFAULT)


# Numbers at the edges of what fields accept, where most wrong values are met.
edge_numbers = st.sampled_from([-1, 0, -0.5, 2, 1e20, 10**20, 1e300, -1e300]) | st.floats(-10, 10)


@settings(FUZZ, max_examples=400)
@given(where=st.sampled_from(DEFAULT_PATHS), value=edge_numbers | documents)
def test_default_config_with_one_field_replaced_loads_or_raises_config_error(
    where: tuple[Any, ...], value: Any, tmp_path: Path
) -> None:
    raw = copy.deepcopy(DEFAULT)
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(raw))
    _load_or_refuse(path)


def test_alias_bomb_is_refused_before_it_is_built() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values with aliases expanded"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_deep_nesting_is_refused_also_through_an_alias() -> None:
    deep = "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1)
    with pytest.raises(ConfigError, match=f"nested more than {MAX_NESTING} levels deep"):
        parse_yaml(deep, "deep.yaml")
    half = MAX_NESTING // 2 + 2
    via_alias = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(ConfigError, match="nested more than"):
        parse_yaml(via_alias, "deep.yaml")
    assert parse_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "ok.yaml") == {"a": [1, 2], "b": [[1, 2]] * 2}
