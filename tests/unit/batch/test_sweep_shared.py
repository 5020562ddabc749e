"""Sweep trials that share market data run in one pass, and their rows are the rows of the
trials run one backtest each (a chunk of one trial runs unshared)."""

from __future__ import annotations

from typing import Any, ClassVar

from tradegraph.batch.sweep import Sweep, run_trial_chunk
from tradegraph.contracts import Bar, Message
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.registry import register_strategy

FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"
SHORT_DATA = ["data.bars.0.limit=1500"]
TIMING = ("elapsed_s",)


class ProbeParams(StrategyParams):
    break_on_bar: int = -1
    buy_on_bar: int = 5


@register_strategy("test_sweep_probe")
class ProbeStrategy(Strategy):
    """Keeps the first bar message it is handed; buys once; raises past the strategy's safety
    net on a chosen bar (as a broken component would)."""

    Params = ProbeParams
    params: ProbeParams
    first_bars: ClassVar[list[Bar]] = []

    def on_start(self) -> None:
        self.bars = 0

    def handle(self, msg: Message) -> None:
        if isinstance(msg, Bar):
            self.bars += 1
            if self.bars == 1:
                ProbeStrategy.first_bars.append(msg)
            if self.bars == self.params.break_on_bar:
                raise RuntimeError(f"graph broken on bar {self.bars}")
        super().handle(msg)

    def on_bar(self, bar: Bar) -> None:
        if self.bars == self.params.buy_on_bar:
            self.buy(bar.instrument_id, 0.001)


def rows_without_timing(table: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in table.to_pylist()]


def test_a_chunk_of_trials_equals_the_trials_run_one_by_one() -> None:
    sweep = Sweep(None, [f"{FAST}=5,10,60", f"{SLOW}=20,40"], overrides=SHORT_DATA, in_process=True)
    indices = list(range(sweep.trials))

    shared = rows_without_timing(run_trial_chunk(sweep.plan, indices))
    alone = [rows_without_timing(run_trial_chunk(sweep.plan, [i]))[0] for i in indices]

    assert shared == alone
    assert [r["status"] for r in shared] == ["ok", "ok", "ok", "ok", "failed", "failed"]
    assert [r["attempts"] for r in shared] == [1, 1, 1, 1, 1, 1]
    assert all(r["bars"] == 1500 for r in shared[:4])


def test_trials_are_handed_the_same_bars_and_a_broken_trial_fails_alone() -> None:
    overrides = [
        *SHORT_DATA,
        "strategies.sma.class_path=test_sweep_probe",
        "strategies.sma.params={}",
    ]
    sweep = Sweep(
        None,
        ["strategies.sma.params.break_on_bar=-1,100", "strategies.sma.params.buy_on_bar=5,7"],
        overrides=overrides,
        in_process=True,
    )
    ProbeStrategy.first_bars.clear()

    shared = rows_without_timing(run_trial_chunk(sweep.plan, [0, 1, 2, 3]))

    # One pass: every trial got the one message of the first bar, not a copy of its own.
    first = ProbeStrategy.first_bars[0]
    assert len(ProbeStrategy.first_bars) == 6  # four in the pass, the broken two again alone
    assert all(bar is first for bar in ProbeStrategy.first_bars[:4])
    alone = [rows_without_timing(run_trial_chunk(sweep.plan, [i]))[0] for i in range(4)]
    assert shared == alone
    assert [r["status"] for r in shared] == ["ok", "ok", "failed", "failed"]
    assert [r["attempts"] for r in shared] == [1, 1, 2, 2]
    assert shared[2]["error"].startswith("RuntimeError: graph broken on bar 100 (at ")
    assert [r["fills"] for r in shared[:2]] == [1, 1]
    assert shared[0]["fills_digest"] != shared[1]["fills_digest"]
