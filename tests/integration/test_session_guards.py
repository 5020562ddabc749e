"""A runtime guard trips in a paper session on Ray: it halts trading, and says which
guard and the values (the memory guard, set below what any actor process holds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_paper_session import resting_config, wait_until
from tradegraph.actors.session import LiveSession
from tradegraph.config.models import GraphConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_memory_guard_halts_trading_naming_the_guard_and_its_values(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = resting_config(
        tmp_path,
        "paper-guards",
        "guards.interval_s=0.5",
        "guards.memory_mb.warn=1",
        "guards.memory_mb.halt=2",
    )
    session = started(config)
    wait_until(lambda: bool(session.status("risk").details["kill_switch_tripped"]), 30.0)
    ended_by = session.run(20.0)
    outcome = session.stop(ended_by)

    assert ended_by == "halted"
    reason = outcome.statuses["risk"].details["kill_switch_reason"]
    assert "guard memory_mb on " in reason
    assert "resident memory" in reason
    assert "MB reached its halt level 2 MB (halting trading)" in reason
    assert "guard memory_mb" in outcome.halted
    counts = outcome.statuses["control"].details["counts"]
    assert counts.get("GuardBreached", 0) >= 1
