"""Execution algorithms worked inside a strategy: schedules, accounting, failures, reports."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.stubs import btcusdt
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    ExecutionReport,
    KillSwitchChanged,
    LiquiditySide,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    RiskReason,
    RiskRejected,
    TimerFired,
)
from tradegraph.contracts.state import StateVersionError
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.execution.algorithms import (
    AlgoName,
    OnlineVolumeProfile,
    ParentOrderBookState,
    PovParams,
    Urgency,
    VolumeProfileState,
    choose_algorithm,
    profile_mass,
    volume_profile_from_bars,
)
from tradegraph.strategies.base import Strategy
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
LOT = 0.001
INSTRUMENT = btcusdt(lot_size=LOT, min_quantity=0.0, min_notional=5.0)
T0 = 1_000 * 60_000_000_000  # a whole minute, midnight of day 0 + 1000 min
MIN = 60_000_000_000


class AlgoStrategy(Strategy):
    """Records the execution reports and the user-facing hooks it receives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reports: list[ExecutionReport] = []
        self.user_timers: list[str] = []
        self.fills: list[OrderFilled] = []

    def on_execution_report(self, report: ExecutionReport) -> None:
        self.reports.append(report)

    def on_timer(self, timer: TimerFired) -> None:
        self.user_timers.append(timer.name)

    def on_fill(self, fill: OrderFilled) -> None:
        self.fills.append(fill)


class Harness:
    """A strategy on a sim clock; the test plays Risk and the venue by hand."""

    def __init__(self) -> None:
        self.clock = SimClock(start_ns=T0)
        self.outbox = RecordingOutbox()
        config = StrategyConfig(id="s", class_path="x:y", instruments=(BTC,))
        self.strategy = AlgoStrategy(config, {BTC: INSTRUMENT}, self.clock, self.outbox)
        self.fill_count = 0
        self.bar(100.0)

    def bar(self, close: float, volume: float = 10.0, high: float | None = None) -> None:
        now = self.clock.now_ns()
        self.strategy.handle(
            Bar(
                instrument_id=BTC,
                open=close,
                high=high if high is not None else close,
                low=close,
                close=close,
                volume=volume,
                interval_ns=MIN,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def advance(self, to_ns: int) -> None:
        """Move time to ``to_ns`` delivering each timer at its own time, as the kernel does."""
        while True:
            due = [at for at in self.clock.pending_timers.values() if at <= to_ns]
            if not due:
                break
            for timer in self.clock.advance_to(min(due)):
                self.strategy.handle(timer)
        self.clock.set_time(to_ns)

    def intents(self) -> list[OrderIntent]:
        return self.outbox.of_type(OrderIntent)

    def fill(self, intent: OrderIntent, qty: float, price: float, leaves: float = 0.0) -> None:
        self.fill_count += 1
        now = self.clock.now_ns()
        self.strategy.handle(
            OrderFilled(
                fill_id=f"F{self.fill_count}",
                client_order_id=intent.intent_id,
                venue_order_id=f"V{self.fill_count}",
                strategy_id="s",
                instrument_id=BTC,
                venue="BINANCE",
                side=intent.side,
                last_qty=qty,
                last_px=price,
                fee=qty * price * 0.001,
                liquidity=LiquiditySide.TAKER,
                leaves_qty=leaves,
                tag=intent.tag,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def risk_reject(
        self, intent: OrderIntent, reason: RiskReason = RiskReason.MAX_POSITION
    ) -> None:
        now = self.clock.now_ns()
        self.strategy.handle(
            RiskRejected(
                intent_id=intent.intent_id,
                strategy_id="s",
                instrument_id=BTC,
                reason=reason,
                detail="test",
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    def cancelled(self, client_order_id: str) -> None:
        now = self.clock.now_ns()
        self.strategy.handle(
            OrderCancelled(
                client_order_id=client_order_id,
                strategy_id="s",
                instrument_id=BTC,
                venue="BINANCE",
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )


def lots(quantity: float) -> int:
    return round(quantity / LOT)


# ---------------------------------------------------------------------------- TWAP


def test_twap_sends_equal_slices_at_equal_intervals() -> None:
    h = Harness()

    parent = h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=300, slices=5)
    for k in range(1, 6):
        h.advance(T0 + k * MIN)

    intents = h.intents()
    assert parent == "s-P000001"
    assert [i.ts_event_ns for i in intents] == [T0 + k * MIN for k in range(5)]
    assert [i.quantity for i in intents] == [0.2] * 5
    assert all(i.tag == parent and i.order_type is OrderType.MARKET for i in intents)
    assert h.clock.pending_timers == {}


@settings(max_examples=60, deadline=None)
@given(total_lots=st.integers(1, 50_000), slices=st.integers(1, 40))
def test_twap_children_add_up_to_the_parent_in_whole_lots(total_lots: int, slices: int) -> None:
    h = Harness()
    h.bar(1e6)  # min notional never binds

    h.strategy.submit_algo_order(
        BTC, OrderSide.SELL, total_lots * LOT, "twap", duration_s=slices * 60, slices=slices
    )
    h.advance(T0 + slices * MIN)

    child_lots = [lots(i.quantity) for i in h.intents()]
    assert sum(child_lots) == total_lots
    assert all(c > 0 for c in child_lots)
    assert all(abs(i.quantity - lots(i.quantity) * LOT) < 1e-12 for i in h.intents())
    assert max(child_lots) - min(child_lots) <= 1


def test_twap_carries_a_slice_below_min_notional_into_the_next_one() -> None:
    h = Harness()  # price 100, min notional 5: a slice needs 0.05

    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 0.09, "twap", duration_s=180, slices=3)
    h.advance(T0 + 3 * MIN)

    assert [(i.ts_event_ns, i.quantity) for i in h.intents()] == [
        (T0 + MIN, 0.06),
        (T0 + 2 * MIN, 0.03),
    ]


def test_twap_partial_fill_keeps_working_and_next_slice_catches_up_only_on_the_unsent() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=120, slices=2)
    first = h.intents()[0]

    h.fill(first, 0.2, 101.0, leaves=0.3)  # 0.3 still working at the venue
    h.advance(T0 + MIN)
    second = h.intents()[1]
    h.fill(first, 0.3, 102.0)
    h.fill(second, 0.5, 103.0)

    assert (first.quantity, second.quantity) == (0.5, 0.5)
    (report,) = h.strategy.reports
    assert report.status == "completed"
    assert report.filled_quantity == 1.0
    assert report.avg_price == pytest.approx((0.2 * 101 + 0.3 * 102 + 0.5 * 103) / 1.0)
    assert (report.child_fills, report.child_orders) == (3, 2)
    assert not h.strategy.parent_orders.active


def test_rejected_child_frees_its_quantity_for_the_next_slice() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 0.6, "twap", duration_s=180, slices=3)

    h.risk_reject(h.intents()[0])
    h.advance(T0 + MIN)

    assert [i.quantity for i in h.intents()] == [0.2, 0.4]


def test_consecutive_rejections_fail_the_parent_with_a_report() -> None:
    h = Harness()
    parent = h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 0.6, "twap", duration_s=180, slices=3, max_rejections=2
    )

    h.risk_reject(h.intents()[0])
    h.advance(T0 + MIN)
    now = h.clock.now_ns()
    h.strategy.handle(
        OrderRejected(
            client_order_id=h.intents()[1].intent_id,
            strategy_id="s",
            instrument_id=BTC,
            venue="BINANCE",
            reason="venue says no",
            ts_event_ns=now,
            ts_init_ns=now,
        )
    )
    h.advance(T0 + 3 * MIN)

    (report,) = h.strategy.reports
    assert (report.parent_id, report.status, report.rejections) == (parent, "failed", 2)
    assert "venue says no" in report.reason
    assert (report.filled_quantity, report.avg_price) == (0.0, None)
    assert len(h.intents()) == 2  # nothing after the failure
    assert h.outbox.of_type(ExecutionReport) == [report]


def test_schedule_end_with_unfilled_remainder_reports_expired() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 0.4, "twap", duration_s=120, slices=2)
    h.fill(h.intents()[0], 0.2, 100.0)
    h.advance(T0 + MIN)

    h.risk_reject(h.intents()[1])

    (report,) = h.strategy.reports
    assert (report.status, report.filled_quantity) == ("expired", 0.2)
    assert report.leaves_quantity == pytest.approx(0.2)


# ---------------------------------------------------------------------------- kill switch


def test_kill_switch_stops_the_algorithm_and_cancels_its_children() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=300, slices=5)
    h.advance(T0 + MIN)
    first, second = h.intents()
    h.fill(first, 0.2, 100.0)

    now = h.clock.now_ns()
    h.strategy.handle(
        KillSwitchChanged(tripped=True, reason="ops", ts_event_ns=now, ts_init_ns=now)
    )
    cancels = h.outbox.of_type(CancelIntent)
    h.cancelled(second.intent_id)
    h.advance(T0 + 10 * MIN)

    assert [c.client_order_id for c in cancels] == [second.intent_id]
    assert len(h.intents()) == 2  # no child after the trip
    (report,) = h.strategy.reports
    assert report.status == "cancelled"
    assert "kill switch: ops" in report.reason
    assert report.filled_quantity == 0.2
    assert h.clock.pending_timers == {}


def test_child_refused_for_kill_switch_stops_the_parent() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=300, slices=5)

    h.risk_reject(h.intents()[0], RiskReason.KILL_SWITCH)

    (report,) = h.strategy.reports
    assert report.status == "cancelled"
    assert h.clock.pending_timers == {}


def test_user_timers_still_reach_on_timer_and_algo_timers_do_not() -> None:
    h = Harness()
    h.strategy.set_timer("mine", T0 + 30 * 1_000_000_000)
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=120, slices=2)

    h.advance(T0 + 2 * MIN)

    assert h.strategy.user_timers == ["mine"]


# ---------------------------------------------------------------------------- iceberg


def test_iceberg_replenishes_only_after_each_child_fully_fills() -> None:
    h = Harness()
    h.strategy.submit_algo_order(
        BTC, OrderSide.SELL, 1.0, "iceberg", limit_price=101.0, display_quantity=0.3
    )
    shown = [len(h.intents())]

    first = h.intents()[0]
    h.fill(first, 0.1, 101.0, leaves=0.2)
    shown.append(len(h.intents()))  # partial: nothing new shown
    h.fill(first, 0.2, 101.0)
    for _ in range(3):
        h.fill(h.intents()[-1], h.intents()[-1].quantity, 101.0)
        shown.append(len(h.intents()))

    assert shown == [1, 1, 3, 4, 4]
    assert [i.quantity for i in h.intents()] == [0.3, 0.3, 0.3, 0.1]
    assert all(i.order_type is OrderType.LIMIT and i.limit_price == 101.0 for i in h.intents())
    (report,) = h.strategy.reports
    assert (report.status, report.filled_quantity, report.child_fills) == ("completed", 1.0, 5)
    # Sold at 101 with arrival 100: a negative shortfall is a gain.
    assert report.implementation_shortfall_bps == pytest.approx(-100.0)


def test_iceberg_needs_a_limit_price() -> None:
    h = Harness()
    with pytest.raises(ValueError, match="limit_price"):
        h.strategy.submit_algo_order(BTC, OrderSide.SELL, 1.0, "iceberg", display_quantity=0.3)


# ---------------------------------------------------------------------------- POV and VWAP


def test_pov_follows_a_share_of_observed_volume_and_reports_interval_vwap() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "pov", participation=0.1)

    sent = []
    for k, (price, volume) in enumerate([(100.0, 2.0), (102.0, 3.0), (104.0, 6.0)], start=1):
        h.clock.set_time(T0 + k * MIN)
        h.bar(price, volume)
        child = h.intents()[-1]
        sent.append(child.quantity)
        h.fill(child, child.quantity, price)

    assert sent == [0.2, 0.3, 0.5]
    (report,) = h.strategy.reports
    assert report.status == "completed"
    assert report.interval_vwap == pytest.approx((200 + 306 + 624) / 11)
    assert report.avg_price == pytest.approx(0.2 * 100 + 0.3 * 102 + 0.5 * 104)
    vwap = (200 + 306 + 624) / 11
    expected = (0.2 * 100 + 0.3 * 102 + 0.5 * 104 - vwap) / vwap * 1e4
    assert report.slippage_vs_vwap_bps == pytest.approx(expected)


def test_pov_max_duration_expires_and_cancels_the_open_child() -> None:
    h = Harness()
    h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 1.0, "pov", participation=0.1, max_duration_s=90
    )
    h.clock.set_time(T0 + MIN)
    h.bar(100.0, 2.0)

    h.advance(T0 + 2 * MIN)
    (cancel,) = h.outbox.of_type(CancelIntent)
    h.cancelled(cancel.client_order_id)

    (report,) = h.strategy.reports
    assert (report.status, report.end_ns) == ("expired", T0 + 2 * MIN)


def test_vwap_slices_follow_the_volume_profile() -> None:
    h = Harness()
    # 1440 per-minute buckets; from T0 (minute 1000) the next three minutes weigh 1, 2, 1.
    profile = [0.0] * 1440
    profile[1000], profile[1001], profile[1002] = 1.0, 2.0, 1.0

    h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 1.0, "vwap", duration_s=180, slices=3, volume_profile=profile
    )
    h.advance(T0 + 3 * MIN)

    assert [i.quantity for i in h.intents()] == [0.25, 0.5, 0.25]


HOUR = 60 * MIN
DAY = 24 * HOUR


def _quiet_mornings(h: Harness, days: int = 1) -> tuple[list[int], list[float]]:
    """One bar a minute for ``days`` UTC days from the next midnight: volume 1 before noon,
    3 after; returns the bars' open times and volumes."""
    start = (T0 // DAY + 1) * DAY
    opens, volumes = [], []
    for minute in range(days * 1440):
        open_ns = start + minute * MIN
        volume = 1.0 if (open_ns % DAY) < 12 * HOUR else 3.0
        h.advance(open_ns + MIN)
        h.bar(100.0, volume)
        opens.append(open_ns)
        volumes.append(volume)
    return opens, volumes


def test_online_vwap_follows_the_volume_learned_in_the_run() -> None:
    h = Harness()
    h.strategy.learn_volume_profile(BTC, buckets=24)
    opens, volumes = _quiet_mornings(h)
    historical = Harness()
    historical.advance(h.clock.now_ns())
    profile = volume_profile_from_bars(opens, volumes, buckets=24)
    eleven = (h.clock.now_ns() // DAY) * DAY + 11 * HOUR

    h.advance(eleven)
    h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 1.0, "vwap", duration_s=7200, slices=2, profile="online"
    )
    historical.advance(eleven)
    historical.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 1.0, "vwap", duration_s=7200, slices=2, volume_profile=profile
    )
    for run in (h, historical):
        run.advance(eleven + 2 * HOUR)

    assert [i.quantity for i in h.intents()] == [0.25, 0.75]
    assert [i.quantity for i in historical.intents()] == [0.25, 0.75]
    learned = h.strategy.parent_orders.volume_profile(BTC)
    assert learned is not None
    assert learned[:12] == (1.0,) * 12
    assert learned[12:] == (3.0,) * 12


def test_online_vwap_without_history_starts_as_twap_and_learns_from_then_on() -> None:
    h = Harness()
    h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 1.0, "vwap", duration_s=180, slices=2, profile="online"
    )
    h.advance(T0 + MIN)
    h.bar(100.0, 7.0)

    assert [i.quantity for i in h.intents()] == [0.5]
    learned = h.strategy.parent_orders.volume_profile(BTC)
    assert learned is not None
    assert set(learned) == {7.0}


def test_learned_profile_survives_snapshot_and_restore() -> None:
    h = Harness()
    h.strategy.learn_volume_profile(BTC, buckets=24)
    _quiet_mornings(h)
    twin = Harness()

    twin.strategy.restore(
        Strategy.State.model_validate_json(h.strategy.snapshot().model_dump_json())
    )

    assert twin.strategy.parent_orders.volume_profile(BTC) == (
        h.strategy.parent_orders.volume_profile(BTC)
    )
    assert twin.strategy.parent_orders.wants_bars


def test_online_profile_takes_no_historical_profile_and_buckets_must_agree() -> None:
    h = Harness()
    h.strategy.learn_volume_profile(BTC, buckets=24)

    with pytest.raises(ConfigError, match="leave it out with profile: online"):
        h.strategy.submit_algo_order(
            BTC,
            OrderSide.BUY,
            1.0,
            "vwap",
            duration_s=60,
            slices=1,
            profile="online",
            volume_profile=(1.0,),
        )
    with pytest.raises(ValueError, match="learned in 24 buckets, not 48"):
        h.strategy.learn_volume_profile(BTC, buckets=48)
    with pytest.raises(ValueError, match="does not trade"):
        h.strategy.learn_volume_profile("ETHUSDT.BINANCE")


def test_volume_profile_from_bars_and_profile_mass() -> None:
    hour = 3_600_000_000_000
    ts = [0, hour, hour + 1, 25 * hour]
    profile = volume_profile_from_bars(ts, [1.0, 2.0, 3.0, 2.0], buckets=24)

    assert profile[:2] == pytest.approx((1 / 8, 7 / 8))
    assert sum(profile) == pytest.approx(1.0)
    assert profile_mass(profile, 0, 24 * hour) == pytest.approx(1.0)
    assert profile_mass(profile, hour // 2, hour + hour // 2) == pytest.approx((1 + 7) / 16)


# ---------------------------------------------------------------------------- router


@pytest.mark.parametrize(
    ("urgency", "limit", "profile", "algo"),
    [
        (Urgency.HIGH, None, None, AlgoName.POV),
        (Urgency.LOW, 100.0, None, AlgoName.ICEBERG),
        (Urgency.LOW, None, (1.0,), AlgoName.VWAP),
        (Urgency.MEDIUM, None, None, AlgoName.TWAP),
    ],
)
def test_router_picks_algorithm_from_urgency_and_order_shape(
    urgency: Urgency, limit: float | None, profile: tuple[float, ...] | None, algo: AlgoName
) -> None:
    choice = choose_algorithm(5.0, 10.0, urgency, limit_price=limit, volume_profile=profile)
    assert choice.algo is algo


def test_router_spreads_a_larger_order_over_more_bars() -> None:
    small = choose_algorithm(1.0, 10.0, Urgency.MEDIUM)
    large = choose_algorithm(10.0, 10.0, Urgency.MEDIUM)

    assert (small.params["slices"], large.params["slices"]) == (1, 10)
    assert large.params["duration_s"] == 600.0


def test_auto_algo_order_goes_through_the_router() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 0.5, urgency="medium", avg_bar_volume=1.0)
    h.advance(T0 + 10 * MIN)

    assert [i.quantity for i in h.intents()] == [0.1] * 5


def test_bad_algo_parameters_name_the_problem() -> None:
    h = Harness()
    with pytest.raises(ConfigError, match="slices"):
        h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=60, slices=0)
    with pytest.raises(ConfigError, match="unknown execution algorithm"):
        h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "sniper")
    assert h.intents() == []


# ---------------------------------------------------------------------------- snapshot


def test_restore_mid_parent_continues_identically() -> None:
    h = Harness()
    h.strategy.submit_algo_order(BTC, OrderSide.BUY, 1.0, "twap", duration_s=300, slices=5)
    h.advance(T0 + MIN)
    h.fill(h.intents()[0], 0.2, 100.0)
    state = Strategy.State.model_validate(
        json.loads(json.dumps(h.strategy.snapshot().model_dump(mode="json"), allow_nan=False))
    )

    twin = Harness()
    twin.clock.set_time(h.clock.now_ns())
    twin.strategy.restore(state)
    for timer in h.clock.pending_timers:
        twin.clock.set_timer(timer, h.clock.pending_timers[timer])
    twin.outbox.clear()
    h.outbox.clear()
    for harness in (h, twin):
        harness.fill(harness.strategy.open_orders["s-000002"].intent, 0.2, 101.0)
        harness.advance(T0 + 5 * MIN)

    assert [i.model_dump() for i in twin.intents()] == [i.model_dump() for i in h.intents()]
    assert twin.strategy.snapshot() == h.strategy.snapshot()
    assert math.isclose(sum(i.quantity for i in h.intents()), 0.6)


def _book_mid_run() -> Harness:
    """A finished iceberg (a report), a working POV with an open child, a learned profile."""
    h = Harness()
    h.strategy.learn_volume_profile(BTC, buckets=24)
    h.strategy.submit_algo_order(
        BTC, OrderSide.BUY, 0.002, "iceberg", limit_price=100.0, display_quantity=0.002
    )
    h.fill(h.intents()[0], 0.002, 100.0)
    h.strategy.submit_algo_order(BTC, OrderSide.SELL, 1.0, "pov", participation=0.1)
    h.bar(101.0, volume=5.0)
    return h


def test_parent_book_state_is_typed_and_survives_json() -> None:
    h = _book_mid_run()

    state = h.strategy.snapshot()
    stored = state.model_dump_json()
    again = Strategy.State.model_validate_json(stored)

    book = again.algos
    assert isinstance(book, ParentOrderBookState)
    assert [type(p.params) for p in book.parents] == [PovParams]
    assert [p.state.algo for p in book.parents] == [AlgoName.POV]
    assert [p.state.side for p in book.parents] == [OrderSide.SELL]
    assert [r.algo for r in book.reports] == ["iceberg"]
    assert (sum(book.profiles[BTC].counts), sum(book.profiles[BTC].sums)) == (1, 5.0)
    assert again == state
    assert json.loads(again.model_dump_json()) == json.loads(stored)


def test_parent_book_state_keeps_its_stored_json_shape() -> None:
    book = _book_mid_run().strategy.snapshot().model_dump(mode="json")["algos"]

    assert set(book) == {"count", "parents", "child_parent", "reports", "profiles"}
    assert set(book["parents"][0]) == {"params", "state"}
    assert book["parents"][0]["state"]["side"] == "sell"
    assert book["profiles"][BTC]["buckets"] == 24


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["params"].update(participation=2.0), "participation"),
        (lambda p: p["state"].update(algo="sniper"), "unknown execution algorithm 'sniper'"),
        (lambda p: p["params"].update(slices=3), "slices"),
        (lambda p: p["state"].update(total_lots="many"), "total_lots"),
    ],
    ids=["bad-param", "unknown-algo", "param-of-another-algo", "bad-field"],
)
def test_stored_parent_book_with_a_bad_field_is_refused_naming_it(
    change: Any, message: str
) -> None:
    stored = _book_mid_run().strategy.snapshot().model_dump(mode="json")
    change(stored["algos"]["parents"][0])

    with pytest.raises(ValidationError, match=message):
        Strategy.State.model_validate(stored)


def test_stored_parent_book_of_another_schema_version_is_refused() -> None:
    stored = _book_mid_run().strategy.snapshot().model_dump(mode="json")

    with pytest.raises(StateVersionError, match=r"StrategyState: .*schema_version 2"):
        Strategy.State.model_validate({**stored, "schema_version": 2})


def test_volume_profile_state_of_the_wrong_length_is_refused() -> None:
    state = VolumeProfileState(buckets=24, sums=(1.0,), counts=(1,))

    with pytest.raises(ValueError, match="24 buckets holds 1 sums and 1 counts"):
        OnlineVolumeProfile.from_state(state)
