"""The Strategy API reference is generated from the docstrings and committed up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tradegraph.strategies import api_reference
from tradegraph.strategies.api_reference import render_reference, undocumented_members
from tradegraph.strategies.base import Strategy

PAGE = Path(__file__).resolve().parents[3] / "docs" / "strategy-api.md"


def test_every_public_member_of_the_strategy_api_is_documented() -> None:
    assert undocumented_members() == []


def test_a_public_method_without_a_docstring_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def flatten(self: Strategy) -> None:
        pass

    monkeypatch.setattr(Strategy, "flatten", flatten, raising=False)
    monkeypatch.setattr(
        api_reference,
        "SECTIONS",
        (*api_reference.SECTIONS, ("Extra", "", ("flatten",))),
    )

    assert undocumented_members() == ["Strategy.flatten: no docstring"]


def test_a_public_method_in_no_section_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def flatten(self: Strategy) -> None:
        """Close every position."""

    monkeypatch.setattr(Strategy, "flatten", flatten, raising=False)

    assert undocumented_members() == ["Strategy.flatten: in no section"]


def test_reference_renders_google_sections_as_markdown() -> None:
    page = render_reference()

    submit = page.split("### `submit_order(", 1)[1].split("\n### ", 1)[0]
    assert "**Args:**" in submit
    assert "- `limit_price`: Required for the limit types, forbidden for the others." in submit
    assert "- `OrderPathError`: The strategy is stopped." in submit
    assert "order_type: OrderType = OrderType.MARKET" in submit


def test_committed_reference_is_up_to_date() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "tradegraph.strategies.api_reference"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert PAGE.read_text() == generated, (
        "docs/strategy-api.md is stale: run `make docs` "
        "(python -m tradegraph.strategies.api_reference > docs/strategy-api.md)"
    )
