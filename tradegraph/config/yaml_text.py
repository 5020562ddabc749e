"""YAML text to Python values, within bounds: for config files and ``KEY=VALUE`` overrides.

What is accepted is bounded, so that a hostile or broken text fails at once instead of eating
memory: at most :data:`MAX_CONFIG_BYTES` of UTF-8 text, nesting at most :data:`MAX_NESTING`
deep, and at most :data:`MAX_NODES` values once YAML aliases are expanded (an alias bomb,
"billion laughs", is refused before it is built).
"""

from __future__ import annotations

from typing import Any

import yaml

from tradegraph.errors import ConfigError

MAX_CONFIG_BYTES = 1_048_576
MAX_NESTING = 32
MAX_NODES = 100_000


def _check_shape(text: str, source: str) -> None:
    """Refuse YAML nested deeper than MAX_NESTING or above MAX_NODES values with aliases
    expanded, from the parser's event stream (flat: no recursion, nothing built)."""
    # One frame per open collection: [anchor, expanded values so far, deepest level inside].
    stack: list[list[Any]] = []
    sizes: dict[str, tuple[int, int]] = {}
    total = 0

    def add(count: int, depth: int, anchor: str | None) -> None:
        nonlocal total
        total += count
        if anchor is not None:
            sizes[anchor] = (count, depth)
        if stack:
            stack[-1][1] += count
            stack[-1][2] = max(stack[-1][2], depth + 1)
        if total > MAX_NODES:
            raise ConfigError(
                f"{source}: more than {MAX_NODES:,} values with aliases expanded "
                "(a config is far smaller; is this an alias bomb?)"
            )
        if len(stack) + depth > MAX_NESTING:
            raise ConfigError(f"{source}: nested more than {MAX_NESTING} levels deep")

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 0, 0])
            if len(stack) > MAX_NESTING:
                raise ConfigError(f"{source}: nested more than {MAX_NESTING} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, count, depth = stack.pop()
            add(count + 1, depth, anchor)
        elif isinstance(event, yaml.ScalarEvent):
            add(1, 0, event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            count, depth = sizes.get(event.anchor or "", (1, 0))
            add(count, depth, None)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text to Python values, within the loader's bounds.

    Raises:
        ConfigError: invalid YAML, or text past the bounds.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES:,} bytes; not a config")
    try:
        _check_shape(text, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise ConfigError(f"{source}: invalid YAML{where}{detail}") from None
