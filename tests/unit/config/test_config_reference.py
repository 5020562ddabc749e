"""The configuration reference is generated from the models and committed up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tradegraph.config.loader import default_config_text
from tradegraph.config.models import GraphConfig
from tradegraph.config.reference import render_reference

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "configuration.md"

# Fields where the packaged default config deliberately chooses something else than leaving
# the field out would: its identity, a realistic venue, and risk limits that are off unless set.
DELIBERATE_CHOICES = {
    "name",
    "seed",
    "venues.max_volume_share",
    "venues.slippage.model",
    "venues.slippage.bps",
    "risk.max_order_notional",
    "risk.max_position_notional",
    "risk.max_gross_exposure",
    "risk.daily_loss_limit",
    "risk.max_drawdown_pct",
    "risk.max_orders_per_s",
}


def _models(model: type[BaseModel], path: str = "") -> dict[str, type[BaseModel]]:
    found = {path: model}
    for name, info in model.model_fields.items():
        for sub in (info.annotation, *getattr(info.annotation, "__args__", ())):
            inner = getattr(sub, "__args__", (sub,))[0] if hasattr(sub, "__args__") else sub
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found |= _models(inner, f"{path}.{name}".lstrip("."))
    return found


def test_every_config_field_has_a_description() -> None:
    missing = [
        f"{path or '(top level)'}.{name}"
        for path, model in _models(GraphConfig).items()
        for name, info in model.model_fields.items()
        if not info.description
    ]

    assert missing == []


def test_reference_lists_every_section_and_field() -> None:
    page = render_reference()
    sections = {
        chunk.split("\n", 1)[0].strip("` ").replace("[]", ""): chunk
        for chunk in page.split("\n## ")[1:]
    }

    for path, model in _models(GraphConfig).items():
        section = sections[path or "Top level"]
        missing = [name for name in model.model_fields if f"| `{name}` |" not in section]
        assert missing == [], f"{path}: {missing}"


def test_committed_reference_is_up_to_date() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "tradegraph.config.reference"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert PAGE.read_text() == generated, (
        "docs/configuration.md is stale: run `make docs` "
        "(python -m tradegraph.config.reference > docs/configuration.md)"
    )


def _differences(raw: Any, model: type[BaseModel], path: str) -> list[str]:
    """Fields the raw mapping sets to something else than the model's default."""
    out: list[str] = []
    for name, value in raw.items():
        info = model.model_fields[name]
        key = f"{path}.{name}".lstrip(".")
        if info.is_required():
            continue  # what to trade and on which data: no default to agree with
        sub = _models(model).get(name)
        items = value if isinstance(value, list) else [value]
        if sub is not None and all(isinstance(v, dict) for v in items):
            for item in items:
                out += _differences(item, sub, key)
        else:
            default = info.get_default(call_default_factory=True)
            default = getattr(default, "value", default)
            if value != default:
                out.append(key)
    return out


def test_packaged_default_config_agrees_with_the_model_defaults() -> None:
    raw = yaml.safe_load(default_config_text())

    differing = set(_differences(raw, GraphConfig, "")) - DELIBERATE_CHOICES

    assert differing == set()
