"""Load a ``GraphConfig`` from YAML, apply ``--set`` overrides, and explain every error.

Errors name the file and the field, e.g.
``examples/x.yaml: risk.max_order_notional: Input should be greater than 0 (got -5)``.

What the loader accepts is bounded (see :mod:`tradegraph.config.yaml_text`), so that a hostile
or broken file fails at once instead of eating memory. The ``--set`` overrides are parsed by
:mod:`tradegraph.config.overrides`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tradegraph.config.models import GraphConfig, InstrumentConfig
from tradegraph.config.overrides import apply_overrides
from tradegraph.config.yaml_text import MAX_CONFIG_BYTES, parse_yaml
from tradegraph.errors import ConfigError

DEFAULT_CONFIG = "backtest.yaml"


def default_config_text(name: str = DEFAULT_CONFIG) -> str:
    return resources.files("tradegraph.config").joinpath("defaults", name).read_text()


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: dotted.field: message (got value)``."""
    lines = []
    errors = exc.errors()
    nested = {e["loc"][:k] for e in errors for k in range(len(e["loc"]))}
    for err in errors:
        if err["type"] == "too_short" and err["loc"] in nested:
            # A list whose bad element was dropped is then "too short": the element says why.
            continue
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{shown}")
    return "\n".join(lines)


def read_raw(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """The raw mapping and a source label (the file path, or the packaged default)."""
    if path is None:
        text, source = default_config_text(), f"<default {DEFAULT_CONFIG}>"
    else:
        p = Path(path)
        source = str(p)
        try:
            with p.open("rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            raise ConfigError(f"{source}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config ({exc.strerror})") from None
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES:,} bytes; not a config")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{source}: not UTF-8 text (byte {exc.start}); a config is a YAML text file"
            ) from None
    raw = parse_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    return raw, source


INSTRUMENTS_FILE = "instruments_file"


class _InstrumentsFile(BaseModel):
    """What a file named by ``instruments_file`` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    instruments: tuple[InstrumentConfig, ...]


def include_instruments(raw: dict[str, Any], base_dir: Path, source: str) -> dict[str, Any]:
    """Add the instruments of the file named by ``instruments_file`` to ``instruments``.

    The file (as ``tradegraph data instruments`` writes it) holds one mapping,
    ``instruments: [...]``; a relative path is taken from ``base_dir``, the config's folder.
    The entries are validated here, so an error names the included file; they come before
    the config's own ``instruments``, and ``instruments_file`` is cleared.

    Raises:
        ConfigError: the file is missing, unreadable or holds an invalid instrument.
    """
    name = raw.get(INSTRUMENTS_FILE)
    if name is None:
        return raw
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: {INSTRUMENTS_FILE}: expected a file path (got {name!r})")
    path = (base_dir / Path(name).expanduser()).resolve()
    label = f"{source}: {INSTRUMENTS_FILE} {name}"
    try:
        included = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found ({path})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{label}: invalid YAML") from None
    if not isinstance(included, dict):
        raise ConfigError(f"{label}: expected a mapping, instruments: [...]")
    try:
        _InstrumentsFile.model_validate(included)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    entries = included["instruments"]
    if not entries:
        raise ConfigError(f"{label}: instruments: the list is empty")
    own = raw.get("instruments") or []
    if not isinstance(own, list):
        raise ConfigError(f"{source}: instruments: expected a list (got {own!r})")
    # The loaded config holds the instruments themselves, so it can be dumped and reloaded.
    return {**raw, INSTRUMENTS_FILE: None, "instruments": [*entries, *own]}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> GraphConfig:
    """Read, override and validate a graph configuration.

    Raises:
        ConfigError: with one line per problem, naming the source and the field.
    """
    raw, source = read_raw(path)
    raw = apply_overrides(raw, overrides or [])
    raw = include_instruments(raw, Path(path).parent if path is not None else Path.cwd(), source)
    try:
        return GraphConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def config_from_mapping(raw: dict[str, Any], source: str = "<mapping>") -> GraphConfig:
    raw = include_instruments(raw, Path.cwd(), source)
    try:
        return GraphConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
