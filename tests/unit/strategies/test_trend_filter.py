"""The two-timeframe sample: trend from 1h bars built from 1m bars, entries on the 1m bars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stubs import BTC_ID, MINUTE_NS, bar, instruments
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import OrderIntent, OrderSide
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.strategies.trend_filter import TrendFilter
from tradegraph.testing import RecordingOutbox

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "two_timeframes.yaml"


def build(
    bars: list[str], trend_interval: str = "5m"
) -> tuple[TrendFilter, SimClock, RecordingOutbox]:
    config = StrategyConfig(
        id="trend",
        class_path="trend_filter",
        instruments=(BTC_ID,),
        bars=tuple(bars),
        params={
            "trend_interval": trend_interval,
            "trend_period": 2,
            "entry_period": 3,
            "quantity": 0.1,
        },
    )
    clock = SimClock()
    outbox = RecordingOutbox()
    return TrendFilter(config, instruments(), clock, outbox), clock, outbox


def test_enters_only_after_the_longer_bars_say_the_trend_is_up() -> None:
    strategy, clock, outbox = build(["5m"])
    # Ten minutes falling then rising: the 5m trend turns up at 00:15; minute dips cross up
    # before that are ignored, the first cross after it buys.
    closes = [110, 108, 106, 104, 102, 100, 99, 101, 98, 100, 101, 102, 103, 104, 105]
    closes += [104, 103, 102, 106, 107]
    for k, close in enumerate(closes):
        clock.set_time((k + 1) * MINUTE_NS)
        strategy.handle(bar(float(close), ts_ns=(k + 1) * MINUTE_NS))

    intents = outbox.of_type(OrderIntent)
    assert [(i.side, i.ts_event_ns // MINUTE_NS) for i in intents] == [(OrderSide.BUY, 19)]
    assert not strategy.stopped


def test_trend_interval_must_be_among_the_bars() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.trend\.params\.trend_interval: '1h'"):
        build(["5m"], trend_interval="1h")


def test_example_config_runs_and_reruns_identically(tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tradegraph",
                "backtest",
                str(EXAMPLE),
                "--out",
                str(tmp_path / run),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["status"] == "ok"
        assert summary["strategy_errors"] == []
        assert summary["fills"] > 0
        digests.append(summary["fills_digest"])

    assert digests[0] == digests[1]
