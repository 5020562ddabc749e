"""Runtime guards without Ray: levels, warn-then-halt, the latency window's p99, config checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tradegraph.config.models import GuardLevelsConfig, GuardsConfig, LatencyGuardConfig
from tradegraph.observability.guards import (
    CLOCK_DRIFT,
    MEMORY,
    TICK_TO_ORDER,
    Guard,
    GuardSet,
    LatencyWindow,
    resident_memory_mb,
)

S = 1_000_000_000


def test_a_guard_warns_once_then_halts_once_and_names_itself_and_the_values() -> None:
    guard = Guard(MEMORY, GuardLevelsConfig(warn=500, halt=800), "strategy:alpha")

    quiet = guard.judge(100.0, 1)
    warned = guard.judge(600.0, 2)
    again = guard.judge(650.0, 3)
    halted = guard.judge(812.5, 4)
    after = guard.judge(900.0, 5)

    assert quiet is None
    assert again is None
    assert after is None
    assert warned is not None
    assert halted is not None
    assert (warned.guard, warned.level, warned.value, warned.limit) == (MEMORY, "warn", 600.0, 500)
    assert (halted.level, halted.value, halted.limit) == ("halt", 812.5, 800)
    assert halted.component == "strategy:alpha"
    assert halted.detail == (
        "guard memory_mb on strategy:alpha: resident memory 812.5 MB reached its halt level "
        "800 MB (halting trading)"
    )


def test_a_guard_warns_again_after_the_value_came_back_below_its_warning() -> None:
    guard = Guard(CLOCK_DRIFT, GuardLevelsConfig(warn=100), "broker:BINANCE")

    first = guard.judge(150.0, 1)
    guard.judge(20.0, 2)
    second = guard.judge(120.0, 3)

    assert first is not None
    assert second is not None
    assert "clock drift from the exchange 120.0 ms" in second.detail


def test_a_guard_set_returns_the_first_halting_reason_and_skips_unmeasured_guards() -> None:
    config = GuardsConfig(
        memory_mb=GuardLevelsConfig(warn=10, halt=20),
        clock_drift_ms=GuardLevelsConfig(halt=1_000),
    )
    guards = GuardSet(config, "broker:BINANCE")

    messages, halt = guards.judge({MEMORY: 25.0, CLOCK_DRIFT: None, TICK_TO_ORDER: 9e9}, 7)

    assert [(m.guard, m.level) for m in messages] == [(MEMORY, "halt")]
    assert halt.startswith("guard memory_mb on broker:BINANCE: resident memory 25.0 MB")
    assert guards.last == {MEMORY: 25.0}  # tick-to-order is off: not even recorded


def test_latency_p99_over_the_window_needs_enough_samples() -> None:
    window = LatencyWindow(LatencyGuardConfig(window_s=10.0, min_samples=5))
    for k in range(4):
        window.add(k * S, 1.0)
    assert window.p99(4 * S) is None
    for k in range(96):
        window.add(5 * S, 2.0 if k < 95 else 50.0)

    assert window.p99(5 * S) == 2.0  # 100 samples: the 99th smallest
    window.add(6 * S, 80.0)
    assert window.p99(6 * S) == 50.0
    # Ten seconds later only the newest sample is in the window: too few.
    assert window.p99(16 * S + 1) is None


def test_tick_to_order_guard_halts_on_a_slow_p99() -> None:
    config = GuardsConfig(
        tick_to_order_p99_ms=LatencyGuardConfig(warn=5.0, halt=20.0, min_samples=3)
    )
    guards = GuardSet(config, "broker:BINANCE")
    for latency in (1.0, 30.0, 40.0):
        guards.latency.add(S, latency)

    messages, halt = guards.judge({TICK_TO_ORDER: guards.latency.p99(S)}, S)

    assert [m.level for m in messages] == ["halt"]
    assert "tick-to-order latency p99 40.0 ms reached its halt level 20 ms" in halt


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"memory_mb": {"warn": 900, "halt": 800}}, "warn (900) must be below halt (800)"),
        ({"clock_drift_ms": {"halt": -1}}, "greater than 0"),
        ({"tick_to_order_p99_ms": {"window_s": 0}}, "greater than 0"),
        ({"memory_mb": {"warm": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_guard_config_is_validated_with_named_fields(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GuardsConfig.model_validate(values)


def test_resident_memory_is_read_from_proc_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmRSS:\t  204800 kB\n")

    assert resident_memory_mb(status) == 200.0
    assert resident_memory_mb(tmp_path / "missing") > 0.0
