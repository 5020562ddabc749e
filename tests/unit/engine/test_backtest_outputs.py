"""What ``write_outputs`` writes for a backtest and for a paper or live session."""

from __future__ import annotations

import json
from pathlib import Path

from tradegraph.config import load_config
from tradegraph.engine.backtest import SESSION_STOP_REASON, run_backtest
from tradegraph.report.outputs import session_description, write_outputs

SHORT = ["data.bars.0.limit=600", "strategies.sma.params.fast_period=5"]


def test_a_session_report_is_titled_and_described_as_a_session(tmp_path: Path) -> None:
    result = run_backtest(load_config(None, [*SHORT, "strategies.sma.params.slow_period=20"]))
    session = {
        "stopped_by": "duration",
        "elapsed_s": 3_725.0,
        "halted": None,
        "restarts": {"broker:BINANCE": True},
        "market_events": 12_345,
    }

    write_outputs(
        result,
        tmp_path,
        title="tradegraph paper session: demo",
        description=session_description(session),
    )

    document = (tmp_path / "report.html").read_text()
    assert "<h1>tradegraph paper session: demo</h1>" in document
    assert "backtest" not in document.split("</h1>")[0]
    for label, text in (
        ("Ended by", "duration"),
        ("Wall duration", "01:02:05"),
        ("Trading halted", "no"),
        ("Actor restarts", "broker:BINANCE"),
        ("Market events", "12,345"),
    ):
        assert f"<tr><td>{label}</td><td>{text}</td></tr>" in document
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "ok"


def test_a_backtest_report_is_titled_as_a_backtest(tmp_path: Path) -> None:
    result = run_backtest(load_config(None, [*SHORT, "strategies.sma.params.slow_period=20"]))

    write_outputs(result, tmp_path)

    document = (tmp_path / "report.html").read_text()
    assert "<h1>tradegraph backtest: sma-btc-default</h1>" in document
    assert 'class="session-table"' not in document


def test_the_trip_that_stops_a_session_is_no_halt_but_a_limit_breach_is() -> None:
    from tradegraph.actors.session import STOP_REASON
    from tradegraph.contracts import KillSwitchChanged

    result = run_backtest(load_config(None, [*SHORT, "strategies.sma.params.slow_period=20"]))
    stop = KillSwitchChanged(tripped=True, reason=STOP_REASON, ts_event_ns=1, ts_init_ns=1)
    breach = KillSwitchChanged(
        tripped=True, reason="max_drawdown breached: 12 %", ts_event_ns=2, ts_init_ns=2
    )

    result.kill_switch_events = [stop]
    assert STOP_REASON == SESSION_STOP_REASON
    assert result.summary()["status"] == "ok"

    result.kill_switch_events = [stop, breach]
    summary = result.summary()
    assert summary["status"] == "failed"
    assert summary["failure_reasons"] == [
        "trading halted: kill switch tripped (max_drawdown breached: 12 %)"
    ]
    assert summary["kill_switch_trips"] == 1
