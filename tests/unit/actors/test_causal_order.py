"""The kernel's breadth-first order of what one market event causes, kept by hosts that take
batches from several senders: held batches are merged by causal key at md's settle step."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.actors.test_causal_fence import (
    BROKER,
    MD_INCARNATION,
    btc_bars,
    config,
    host_with_links,
    market_buy,
    md_fence,
    taken_in_order,
)
from tradegraph.actors.causal_order import (
    CausalOrder,
    CausalReport,
    Mode,
    causal_runs,
    merge_holding,
)
from tradegraph.config import GraphConfig, load_config
from tradegraph.contracts import Bar, SubmitOrder

__all__ = ["btc_bars", "config"]  # fixtures


def test_runs_follow_the_keys_across_batches_shorter_keys_first() -> None:
    first = ("risk", [(3, 0, 0), (4, 0, 1)])
    second = ("portfolio", [(3, 0, 2), (2,)])

    runs = causal_runs([first, second])

    assert runs == [("portfolio", [1]), ("risk", [0]), ("portfolio", [0]), ("risk", [1])]


def test_holding_keeps_each_senders_last_batch_and_reports_merge() -> None:
    into = {"risk": {"strategy:a": (1, 4)}}

    merge_holding(into, {"risk": {"strategy:a": (1, 3), "portfolio": (2, 1)}, "broker": {}})

    assert into == {"risk": {"strategy:a": (1, 4), "portfolio": (2, 1)}, "broker": {}}
    report = CausalReport({"risk": (2, None)}, {})
    report.merge(CausalReport({"risk": (1, 5), BROKER: (3, 9)}, {"risk": {"x": (1, 1)}}))
    assert report.timers == {"risk": (2, None), BROKER: (3, 9)}
    assert report.holding == {"risk": {"x": (1, 1)}}


def _order(bar: Bar, n: int) -> SubmitOrder:
    return market_buy(bar).model_copy(update={"client_order_id": f"sma_btc-{n:06d}"})


def test_batches_held_for_the_settle_step_are_taken_in_key_order_not_arrival_order(
    config: GraphConfig, btc_bars: list[Bar], tmp_path: Path
) -> None:
    causal = load_config(
        Path(__file__).resolve().parents[3] / "examples" / "paper.yaml", ["session.causal=true"]
    )
    config = config.model_copy(update={"session": causal.session})
    state_dir = tmp_path / "state"
    broker, transport = host_with_links(config, BROKER, state_dir)
    bar = btc_bars[0]
    reports: list[CausalReport | None] = []

    async def deliver() -> None:
        await broker.push(
            "md", MD_INCARNATION, 1, [bar], 0, md_fence(BROKER, 1), CausalOrder(Mode.HANDLE)
        )
        # The later strategy's order arrives first, from another sender.
        late = asyncio.ensure_future(
            broker.push("b", 7, 1, [_order(bar, 2)], 0, None, CausalOrder(Mode.HOLD, ((4, 0),)))
        )
        early = asyncio.ensure_future(
            broker.push("a", 7, 1, [_order(bar, 1)], 0, None, CausalOrder(Mode.HOLD, ((3, 0),)))
        )
        await asyncio.sleep(0)
        assert not late.done()
        assert not early.done()
        assert [type(m) for m in taken_in_order(state_dir, BROKER)] == [Bar]
        reports.append(await broker.settle({"a": (7, 1), "b": (7, 1)}, False))
        await asyncio.gather(late, early)

    asyncio.run(deliver())

    taken = taken_in_order(state_dir, BROKER)
    assert [m.client_order_id for m in taken if isinstance(m, SubmitOrder)] == [
        "sma_btc-000001",
        "sma_btc-000002",
    ]
    (report,) = reports
    assert report is not None
    # Not alone in its generation: what the venue sent waits for the next settle step, under
    # keys that extend those of the orders that caused it.
    assert set(report.holding) >= {"risk", "portfolio", "strategy:sma_btc"}
    assert all(h == {BROKER: (broker.incarnation, 1)} for h in report.holding.values())
    sent = {dest: batch for dest, batch, _ in transport.sent}
    assert [type(m).__name__ for m in sent["risk"]][:2] == ["OrderAccepted", "OrderAccepted"]
