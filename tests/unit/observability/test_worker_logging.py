from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tradegraph.engine.clock import SimClock
from tradegraph.observability import bind_process_context, configure_logging, get_logger
from tradegraph.observability.logging import (
    COMPONENT_ENV,
    LOG_FILE_ENV,
    LOG_LEVEL_ENV,
    SESSION_ID_ENV,
    WORKER_SETUP_HOOK,
    clear_process_context,
    setup_worker_logging,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    clear_process_context()
    configure_logging()


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_worker_hook_writes_json_lines_bound_to_session_and_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "worker.jsonl"
    monkeypatch.setenv(SESSION_ID_ENV, "paper-7")
    monkeypatch.setenv(COMPONENT_ENV, "risk")
    monkeypatch.setenv(LOG_LEVEL_ENV, "info")
    monkeypatch.setenv(LOG_FILE_ENV, str(log_file))

    setup_worker_logging()
    structlog.get_logger().info("from_a_plain_logger")
    get_logger("portfolio").debug("below_the_level")
    get_logger("portfolio").warning("from_a_component_logger", detail=3)

    plain, named = _events(log_file.read_text())
    assert plain["event"] == "from_a_plain_logger"
    assert plain["component"] == "risk"
    assert plain["session_id"] == "paper-7"
    assert isinstance(plain["wall_time"], str)
    assert named["component"] == "portfolio"  # a logger's own component wins
    assert named["session_id"] == "paper-7"
    assert named["level"] == "warning"
    assert named["detail"] == 3


def test_a_bound_sim_clock_puts_sim_time_on_every_event() -> None:
    out = io.StringIO()
    configure_logging("INFO", out)
    clock = SimClock(start_ns=1_000)

    bind_process_context(clock=clock, session_id="bt")
    get_logger("kernel").info("first")
    clock.set_time(2_000)
    get_logger("kernel").info("second")
    get_logger("kernel").info("explicit", sim_time_ns=5)

    first, second, explicit = _events(out.getvalue())
    assert (first["sim_time_ns"], second["sim_time_ns"]) == (1_000, 2_000)
    assert explicit["sim_time_ns"] == 5
    assert first["session_id"] == "bt"


def test_a_field_bound_to_none_is_removed() -> None:
    out = io.StringIO()
    configure_logging("INFO", out)

    bind_process_context(session_id="a")
    bind_process_context(session_id=None)
    get_logger("x").info("e")

    assert "session_id" not in _events(out.getvalue())[0]


def test_hook_path_names_the_hook_function() -> None:
    module, _, name = WORKER_SETUP_HOOK.rpartition(".")

    assert module == setup_worker_logging.__module__
    assert name == setup_worker_logging.__name__
