"""Load a ``GraphConfig`` from YAML, apply ``--set`` overrides, and explain every error.

Errors name the file and the field, e.g.
``examples/x.yaml: risk.max_order_notional: Input should be greater than 0 (got -5)``.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tradegraph.config.models import GraphConfig
from tradegraph.errors import ConfigError

DEFAULT_CONFIG = "backtest.yaml"


def default_config_text(name: str = DEFAULT_CONFIG) -> str:
    return resources.files("tradegraph.config").joinpath("defaults", name).read_text()


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: dotted.field: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{shown}")
    return "\n".join(lines)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _select(container: Any, key: str, path: str) -> tuple[Any, Any]:
    """Resolve one path element: dict key, list index, or list element by id/name/symbol."""
    if isinstance(container, dict):
        return container, key
    if isinstance(container, list):
        if key.lstrip("-").isdigit():
            index = int(key)
            if not -len(container) <= index < len(container):
                raise ConfigError(f"--set {path}: index {index} is out of range")
            return container, index
        for i, item in enumerate(container):
            if isinstance(item, dict) and key in (
                item.get("id"),
                item.get("name"),
                item.get("symbol"),
            ):
                return container, i
        raise ConfigError(f"--set {path}: no list element with id, name or symbol {key!r}")
    raise ConfigError(f"--set {path}: cannot descend into a {type(container).__name__}")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a raw config mapping.

    List elements are addressed by index (``strategies.0``) or by their ``id``/``name``/``symbol``
    (``strategies.sma.params.fast_period=5``).
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        path, _, value_text = item.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--set {item!r}: empty key")
        node: Any = out
        for key in keys[:-1]:
            parent, sel = _select(node, key, path)
            if isinstance(parent, dict) and sel not in parent:
                parent[sel] = {}
            node = parent[sel]
        parent, sel = _select(node, keys[-1], path)
        parent[sel] = _parse_value(value_text)
    return out


def read_raw(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """The raw mapping and a source label (the file path, or the packaged default)."""
    if path is None:
        text, source = default_config_text(), f"<default {DEFAULT_CONFIG}>"
    else:
        p = Path(path)
        source = str(p)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise ConfigError(f"{source}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: invalid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    return raw, source


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> GraphConfig:
    """Read, override and validate a graph configuration.

    Raises:
        ConfigError: with one line per problem, naming the source and the field.
    """
    raw, source = read_raw(path)
    raw = apply_overrides(raw, overrides or [])
    try:
        return GraphConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def config_from_mapping(raw: dict[str, Any], source: str = "<mapping>") -> GraphConfig:
    try:
        return GraphConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
