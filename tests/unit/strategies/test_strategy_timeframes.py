"""Strategies get longer bars (``strategies[].bars``) at their close, exactly once, and resume
them mid-bar after a restart."""

from __future__ import annotations

import json

import pytest

from tests.support.stubs import BTC_ID, ETH_ID, MINUTE_NS, bar, instruments, trade
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import Bar, Message, StrategyError, TradeTick
from tradegraph.engine.clock import SimClock
from tradegraph.strategies import Strategy
from tradegraph.testing import RecordingOutbox

FIVE_MIN_NS = 5 * MINUTE_NS


class Recorder(Strategy):
    """Writes down every bar and trade it sees, with the clock's time when it saw it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[tuple[str, str, int, int, int]] = []

    def on_bar(self, bar: Bar) -> None:
        kind = "1m" if bar.interval_ns == MINUTE_NS else f"{bar.interval_ns // MINUTE_NS}m"
        self.seen.append((kind, bar.instrument_id, bar.ts_event_ns, self.now_ns(), len(self.seen)))

    def on_trade(self, tick: TradeTick) -> None:
        self.seen.append(("trade", tick.instrument_id, tick.ts_event_ns, self.now_ns(), 0))


def build(
    bars: list[str | int], bars_from: str = "bars"
) -> tuple[Recorder, SimClock, RecordingOutbox]:
    config = StrategyConfig.model_validate(
        {
            "id": "mtf",
            "class_path": "x:Y",
            "instruments": [BTC_ID, ETH_ID],
            "bars": bars,
            "bars_from": bars_from,
        }
    )
    clock = SimClock()
    outbox = RecordingOutbox()
    return Recorder(config, instruments(), clock, outbox), clock, outbox


def replay(strategy: Strategy, clock: SimClock, messages: list[Message]) -> None:
    for msg in messages:
        clock.set_time(msg.ts_event_ns)
        strategy.handle(msg)


def minutes(count: int, start: int = 0, instrument_id: str = BTC_ID) -> list[Bar]:
    return [
        bar(100.0 + k, ts_ns=(k + 1) * MINUTE_NS, instrument_id=instrument_id, volume=1.0)
        for k in range(start, start + count)
    ]


def test_five_minute_bars_come_once_right_after_the_minute_that_closes_them() -> None:
    strategy, clock, _ = build(["5m"])
    btc, eth = minutes(23), minutes(23, instrument_id=ETH_ID)
    merged = [b for pair in zip(btc, eth, strict=True) for b in pair]

    replay(strategy, clock, list(merged))

    five = [s for s in strategy.seen if s[0] == "5m"]
    assert [(s[1], s[2]) for s in five] == [
        (inst, k * FIVE_MIN_NS) for k in (1, 2, 3, 4) for inst in (BTC_ID, ETH_ID)
    ]
    for _kind, inst, ts, now, position in five:
        assert now == ts  # never earlier than its close
        before = strategy.seen[position - 1]
        assert before[:3] == ("1m", inst, ts)  # right after the minute bar closing at ts
    assert len(strategy.seen) == 46 + 8


def test_longer_bars_come_shortest_first() -> None:
    strategy, clock, _ = build(["15m", "5m"])

    replay(strategy, clock, list(minutes(15)))

    assert [s[0] for s in strategy.seen[-3:]] == ["1m", "5m", "15m"]
    assert strategy.seen[-1][2] == 15 * MINUTE_NS


def test_strategy_without_bars_sees_only_the_data() -> None:
    strategy, clock, _ = build([])

    replay(strategy, clock, list(minutes(10)))

    assert {s[0] for s in strategy.seen} == {"1m"}


def test_restart_mid_bar_resumes_exactly() -> None:
    data: list[Message] = list(minutes(17))
    uninterrupted, clock, _ = build(["5m"])
    replay(uninterrupted, clock, data)

    first, clock, _ = build(["5m"])
    replay(first, clock, data[:12])
    stored = json.loads(json.dumps(first.snapshot().model_dump(mode="json")))
    second, clock, _ = build(["5m"])
    second.restore(Recorder.State.model_validate(stored))
    replay(second, clock, data[12:])

    assert stored["bar_aggregators"][0]["start_ns"] == 10 * MINUTE_NS
    assert next(s for s in second.seen if s[0] == "5m")[2] == 15 * MINUTE_NS
    assert [s[:4] for s in first.seen + second.seen] == [s[:4] for s in uninterrupted.seen]


def test_trades_give_bars_before_the_first_trade_past_their_end() -> None:
    strategy, clock, _ = build(["1m"], bars_from="trades")
    second = 10**9
    ticks: list[Message] = [
        trade(100.0, ts_ns=10 * second, trade_id="1"),
        trade(102.0, ts_ns=30 * second, trade_id="2"),
        trade(101.0, ts_ns=75 * second, trade_id="3"),
    ]

    replay(strategy, clock, ticks)

    assert [s[:3] for s in strategy.seen] == [
        ("trade", BTC_ID, 10 * second),
        ("trade", BTC_ID, 30 * second),
        ("1m", BTC_ID, MINUTE_NS),
        ("trade", BTC_ID, 75 * second),
    ]
    assert strategy.last_price(BTC_ID) == 101.0


def test_data_bars_that_do_not_divide_the_interval_stop_the_strategy() -> None:
    strategy, clock, outbox = build(["5m"])
    three_minutes = bar(100.0, ts_ns=3 * MINUTE_NS, interval_ns=3 * MINUTE_NS)

    replay(strategy, clock, [three_minutes])

    assert strategy.stopped
    errors = [m for m in outbox.messages if isinstance(m, StrategyError)]
    assert len(errors) == 1
    assert "not a whole multiple" in errors[0].error


@pytest.mark.parametrize(
    ("bars", "problem"),
    [
        (["5x"], "cannot read bar interval '5x'"),
        (["5m", "300"], "listed twice"),
        (["0m"], "cannot read bar interval"),
    ],
)
def test_unreadable_intervals_are_config_errors(bars: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build(bars)  # type: ignore[arg-type]
