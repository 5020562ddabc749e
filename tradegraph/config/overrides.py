"""``KEY=VALUE`` overrides from the command line: one value parser, one dotted setter, one merge.

``--set`` (a graph config) and ``data download --ccxt-option`` (ccxt's constructor options)
read a value the same way, as a YAML scalar or flow collection (so JSON works too):
``5`` is an int, ``true`` a bool, ``[spot]`` and ``["spot"]`` a list, and text that is no valid
YAML stays text.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tradegraph.config.yaml_text import parse_yaml
from tradegraph.errors import ConfigError


def parse_value(text: str, flag: str = "--set") -> Any:
    """The value of one ``KEY=VALUE`` override, parsed as YAML; text that is no YAML stays text.

    Raises:
        ConfigError: the value is past the YAML bounds (see :mod:`tradegraph.config.yaml_text`).
    """
    try:
        return parse_yaml(text, f"{flag} value {text[:40]!r}")
    except ConfigError as exc:
        if "invalid YAML" in str(exc):
            return text
        raise


def _select(container: Any, key: str, path: str, flag: str) -> tuple[Any, Any]:
    """Resolve one path element: dict key, list index, or list element by id/name/symbol."""
    if isinstance(container, dict):
        return container, key
    if isinstance(container, list):
        if key.lstrip("-").isdigit():
            index = int(key)
            if not -len(container) <= index < len(container):
                raise ConfigError(f"{flag} {path}: index {index} is out of range")
            return container, index
        for i, item in enumerate(container):
            if isinstance(item, dict) and key in (
                item.get("id"),
                item.get("name"),
                item.get("symbol"),
            ):
                return container, i
        raise ConfigError(f"{flag} {path}: no list element with id, name or symbol {key!r}")
    raise ConfigError(f"{flag} {path}: cannot descend into a {type(container).__name__}")


def set_dotted(tree: dict[str, Any], path: str, value: Any, flag: str = "--set") -> None:
    """Set ``value`` at the dotted ``path`` in ``tree``, making mappings on the way.

    List elements are addressed by index (``strategies.0``) or by their ``id``/``name``/``symbol``
    (``strategies.sma.params.fast_period``).

    Raises:
        ConfigError: the path is empty or runs through something that is no mapping or list;
            the message starts with ``flag``.
    """
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"{flag} {path!r}: empty key")
    node: Any = tree
    for key in keys[:-1]:
        parent, sel = _select(node, key, path, flag)
        if isinstance(parent, dict) and sel not in parent:
            parent[sel] = {}
        node = parent[sel]
    parent, sel = _select(node, keys[-1], path, flag)
    parent[sel] = value


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it; mappings present in both are merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (``--set``) to a copy of a raw config mapping.

    Raises:
        ConfigError: an override is not ``dotted.key=value`` or names no place in the config.
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        path, _, value_text = item.partition("=")
        set_dotted(out, path, parse_value(value_text))
    return out
