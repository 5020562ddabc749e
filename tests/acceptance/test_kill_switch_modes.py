"""Kill-switch modes in a backtest, run as a user runs it (a subprocess).

The SMA strategy holds 0.4 BTC when a 0.5 % drawdown limit trips the kill switch. In ``halt``
mode the position stays open for the rest of the run, exactly as before modes existed (same
fills digest); in ``flatten`` mode it is closed at market by the next bar, by an order booked
to the strategy, and the outputs say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

DRAWDOWN_TRIP = (
    *("--set", "data.bars.0.limit=5000"),
    *("--set", "risk.max_drawdown_pct=0.5"),
    *("--set", "strategies.sma.params.quantity=0.4"),
)
MINUTE_NS = 60_000_000_000

HALT_DIGEST = "3100af268b55dda5fdc1f8e00ddca37f92a7a97d94778e12e832223e7af7ef33"
"""The fills of this run before kill-switch modes existed (``halt`` must not change them)."""
FLATTEN_DIGEST = "65a83055b111d5999f76feec0591ea719ad27ec997a3d7a34e2605285f19f1e8"


def backtest(out: Path, mode: str | None) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    chosen = () if mode is None else ("--set", f"risk.kill_switch_mode={mode}")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "tradegraph", "backtest", "--out", str(out), "--json"),
            *DRAWDOWN_TRIP,
            *chosen,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    return summary, fills, proc.stdout


def net_position(fills: list[dict[str, Any]], until_ns: int | None = None) -> float:
    return sum(
        float(f["quantity"]) if f["side"] == "buy" else -float(f["quantity"])
        for f in fills
        if until_ns is None or f["ts_event_ns"] <= until_ns
    )


def test_halt_is_the_default_and_leaves_the_position_open_as_before(tmp_path: Path) -> None:
    default, default_fills, _ = backtest(tmp_path / "default", None)
    halt, _, _ = backtest(tmp_path / "halt", "halt")

    assert default["fills_digest"] == halt["fills_digest"] == HALT_DIGEST
    [trip] = default["kill_switch_halts"]
    assert trip["mode"] == "halt"
    assert trip["reason"].startswith("max_drawdown breached")
    assert default["kill_switch_closed"] == []
    assert net_position(default_fills) == 0.4


def test_a_drawdown_trip_in_flatten_mode_leaves_every_position_flat_by_the_next_bar(
    tmp_path: Path,
) -> None:
    summary, fills, stdout = backtest(tmp_path / "flatten", "flatten")

    [trip] = summary["kill_switch_halts"]
    assert trip["mode"] == "flatten"
    trip_ns = trip["ts_ns"]
    assert net_position(fills, trip_ns) == 0.4
    after = [f for f in fills if f["ts_event_ns"] > trip_ns]
    [closing] = after
    assert closing["client_order_id"] == "sma-flat0001"
    assert (closing["strategy_id"], closing["side"], closing["quantity"]) == ("sma", "sell", 0.4)
    assert closing["ts_event_ns"] <= trip_ns + MINUTE_NS
    assert net_position(fills) == 0.0
    assert summary["fills_digest"] == FLATTEN_DIGEST

    [closed] = summary["kill_switch_closed"]
    assert closed == {
        "strategy_id": "sma",
        "instrument_id": "BTCUSDT.BINANCE",
        "side": "sell",
        "quantity": 0.4,
        "fees": closing["fee"],
        "fills": 1,
        "avg_price": closing["price"],
    }
    assert summary["per_strategy"]["sma"]["fills"] == len(fills)
    assert (
        "kill switch tripped in flatten mode (max_drawdown breached"
        in summary["failure_reasons"][0]
    )
    assert "closed by the kill switch (flatten):" in stdout
    assert f"sma  sell 0.4 BTCUSDT.BINANCE at {closing['price']:,.2f}" in stdout
    report = (tmp_path / "flatten" / "report.html").read_text()
    assert "Closed by the kill switch (flatten)" in report


def test_an_unknown_mode_is_refused_in_one_line_naming_the_field(tmp_path: Path) -> None:
    for override, field in (
        ("risk.kill_switch_mode=stop", "risk.kill_switch_mode"),
        ("risk.kill_switch_modes.margin=flatten", "risk.kill_switch_modes.margin"),
    ):
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "tradegraph", "backtest", "--out", str(tmp_path)),
                *("--no-html", "--set", override),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith(f"error: <default backtest.yaml>: {field}")
        assert proc.stderr.count("\n") == 1, proc.stderr
