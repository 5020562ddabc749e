"""Risk limits changed on a running session (``tradegraph limits --set risk.KEY=VALUE``).

One validator for the command line and for Risk: a change is laid over the limits in force and
the result validated by :class:`~tradegraph.config.models.RiskConfig`, the model the
configuration file is validated by, so a value the config would refuse is refused here too,
with the field named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from tradegraph.config.models import RiskConfig
from tradegraph.config.overrides import parse_value
from tradegraph.contracts import LimitChange
from tradegraph.errors import ConfigError

PREFIX = "risk."

RUNTIME_LIMITS: tuple[str, ...] = tuple(
    name
    for name, info in RiskConfig.model_fields.items()
    if info.annotation not in (dict[str, float], "dict[str, float]")
)
"""``RiskConfig`` fields a running session takes (every scalar limit; per-instrument position
quantities stay with the configuration file)."""


def parse_limit_settings(items: Iterable[str]) -> tuple[LimitChange, ...]:
    """``risk.KEY=VALUE`` texts as limit changes, each value checked alone by ``RiskConfig``.

    Raises:
        ConfigError: not ``risk.KEY=VALUE``, an unknown or unsupported key, or a value the
            configuration would refuse; the message names the field.
    """
    changes: dict[str, LimitChange] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected risk.KEY=VALUE")
        path, _, text = item.partition("=")
        path = path.strip()
        if not path.startswith(PREFIX):
            raise ConfigError(
                f"--set {path}: only risk limits change on a running session (risk.KEY)"
            )
        name = path.removeprefix(PREFIX)
        if name not in RUNTIME_LIMITS:
            raise ConfigError(
                f"--set {path}: not a limit a running session takes; "
                f"known: {', '.join(PREFIX + n for n in RUNTIME_LIMITS)}"
            )
        value = parse_value(text)
        if isinstance(value, str) and value.strip().lower() in ("null", "none", "~"):
            value = None
        _validate({name: value})
        changes[name] = _change(name, value)
    if not changes:
        raise ConfigError("--set: give at least one risk.KEY=VALUE")
    return tuple(changes.values())


def apply_limit_changes(config: RiskConfig, changes: Iterable[LimitChange]) -> RiskConfig:
    """``config`` with ``changes`` laid over it, validated as a whole.

    Raises:
        ConfigError: the result is no valid ``RiskConfig`` (the message names the field).
    """
    values = config.model_dump()
    for change in changes:
        if change.field not in RUNTIME_LIMITS:
            raise ConfigError(f"risk.{change.field}: not a limit a running session takes")
        values[change.field] = change.value
    return _validate(values)


def limit_values(config: RiskConfig, fields: Iterable[str]) -> tuple[LimitChange, ...]:
    """The values ``fields`` have in ``config``, as changes (what a change replaced)."""
    return tuple(_change(name, getattr(config, name)) for name in fields)


def _change(name: str, value: Any) -> LimitChange:
    try:
        return LimitChange(field=name, value=value)
    except ValidationError:
        raise ConfigError(f"risk.{name}: {value!r} is not a number, true/false or null") from None


def _validate(values: dict[str, Any]) -> RiskConfig:
    try:
        return RiskConfig.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            problems.append(f"risk.{loc}: {err['msg'].removeprefix('Value error, ')}{shown}")
        raise ConfigError("; ".join(problems)) from None
