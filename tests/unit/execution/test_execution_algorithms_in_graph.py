"""Execution algorithms in the whole graph: every child passes Risk; ids travel end to end."""

from __future__ import annotations

from typing import Any

from tests.support.graphs import MINUTE_NS, T0, AlgoOrderStrategy, graph_config, ramp_bars
from tradegraph.config import RiskConfig, StrategyConfig
from tradegraph.contracts import (
    RISK,
    CancelOrder,
    ExecutionReport,
    Message,
    OrderFilled,
    OrderIntent,
    SubmitOrder,
    TripKillSwitch,
)
from tradegraph.engine.kernel import LocalKernel
from tradegraph.engine.streams import prepare_bar_stream


class SourceRecordingKernel(LocalKernel):
    """A kernel that remembers which component published each message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.published: list[tuple[str, Message]] = []
        super().__init__(*args, **kwargs)

    def publish(self, source: str, msg: Message) -> None:
        self.published.append((source, msg))
        super().publish(source, msg)


def _kernel(
    algo: str, algo_params: dict[str, Any], closes: list[float], **params: Any
) -> SourceRecordingKernel:
    config = graph_config(
        (
            StrategyConfig(
                id="a",
                class_path="test_algo",
                instruments=("BTCUSDT.BINANCE",),
                params={"algo": algo, "algo_params": algo_params, **params},
            ),
        ),
        risk=RiskConfig(price_band_pct=None, max_order_notional=150.0),
    )
    stream = prepare_bar_stream([ramp_bars(closes)], config.instrument_map())
    return SourceRecordingKernel(config, stream)


def test_every_venue_command_comes_from_risk_and_every_fill_names_its_parent() -> None:
    kernel = _kernel("twap", {"duration_s": 240, "slices": 4}, [100.0 + i for i in range(8)])

    kernel.run()

    strategy = kernel.component("strategy:a")
    assert isinstance(strategy, AlgoOrderStrategy)
    parent = strategy.parent_id
    intents = [m for s, m in kernel.published if isinstance(m, OrderIntent)]
    venue_calls = [(s, m) for s, m in kernel.published if isinstance(m, SubmitOrder | CancelOrder)]
    fills = [m for _, m in kernel.published if isinstance(m, OrderFilled)]
    assert {s for s, _ in venue_calls} == {RISK}
    assert [m.client_order_id for _, m in venue_calls] == [i.intent_id for i in intents]
    assert all(
        i.tag == parent and isinstance(m, SubmitOrder) and m.tag == parent
        for i, (_, m) in zip(intents, venue_calls, strict=True)
    )
    assert [f.tag for f in fills] == [parent] * 4
    (report,) = [m for _, m in kernel.published if isinstance(m, ExecutionReport)]
    assert report in kernel.control
    assert (report.parent_id, report.status, report.filled_quantity) == (parent, "completed", 1.0)
    # Children go at T0+1m .. T0+4m; each fills at the open of the first bar that starts at or
    # after it was sent (never at a price from before it existed), stamped with that bar's close.
    assert [f.ts_event_ns for f in fills] == [T0 + k * MINUTE_NS for k in (2, 3, 4, 5)]
    assert [f.last_px for f in fills] == [100.0, 101.0, 102.0, 103.0]
    assert report.avg_price == 101.5
    assert report.arrival_price == 100.0


def test_a_child_risk_refuses_is_never_sent_and_the_report_counts_it() -> None:
    # 2 BTC at 100 in one child is 200 notional, above max_order_notional 150.
    kernel = _kernel("twap", {"duration_s": 60, "slices": 1}, [100.0, 101.0, 102.0], quantity=2.0)

    kernel.run()

    assert not [m for _, m in kernel.published if isinstance(m, SubmitOrder)]
    (report,) = [m for _, m in kernel.published if isinstance(m, ExecutionReport)]
    assert (report.status, report.rejections, report.child_orders) == ("expired", 1, 1)


def test_kill_switch_trip_in_the_graph_cancels_children_and_reports() -> None:
    kernel = _kernel(
        "iceberg",
        {"display_quantity": 0.5},
        [100.0, 100.0, 100.0, 100.0],
        limit_price=90.0,  # rests: nothing trades below 90
    )
    kernel.start()
    kernel.replay(0, 2)
    kernel.inject(TripKillSwitch(reason="ops", ts_event_ns=kernel.now_ns, ts_init_ns=kernel.now_ns))
    kernel.replay(2, 4)
    kernel.stop()

    strategy = kernel.component("strategy:a")
    assert isinstance(strategy, AlgoOrderStrategy)
    (report,) = strategy.reports
    assert report.status == "cancelled"
    assert strategy.open_orders == {}
    cancels = [s for s, m in kernel.published if isinstance(m, CancelOrder)]
    assert cancels
    assert set(cancels) == {RISK}


def test_sma_cross_with_online_vwap_learns_volume_from_the_first_bar() -> None:
    params: dict[str, Any] = {
        "fast_period": 5,
        "slow_period": 20,
        "quantity": 1.0,
        "execution_algo": "vwap",
        "execution_params": {"duration_s": 300, "slices": 5, "profile": "online"},
    }
    config = graph_config(
        (
            StrategyConfig(
                id="v", class_path="sma_cross", instruments=("BTCUSDT.BINANCE",), params=params
            ),
        )
    )
    closes = [100.0 + 5.0 * ((i // 15) % 2) + 0.01 * i for i in range(240)]
    kernel = LocalKernel(config, prepare_bar_stream([ramp_bars(closes)], config.instrument_map()))

    kernel.run()

    reports = [m for m in kernel.control if isinstance(m, ExecutionReport)]
    book = kernel.component("strategy:v").parent_orders
    assert reports
    assert {r.algo for r in reports} == {"vwap"}
    assert book.learned_profiles["BTCUSDT.BINANCE"].bars_seen == 240
    assert book.volume_profile("BTCUSDT.BINANCE") is not None
