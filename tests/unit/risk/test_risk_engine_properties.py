"""Property tests: whatever a random stream does, every order Risk lets through is within limits.

An independent model of positions, open orders, prices and the kill switch is kept beside the
engine from the messages the test sends and the engine publishes; every ``SubmitOrder`` is
checked against that model as it stood just before the intent arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import btcusdt, ethusdt
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    CancelOrder,
    KillSwitchChanged,
    LiquiditySide,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderSide,
    OrderType,
    PortfolioSnapshot,
    ResetKillSwitch,
    RiskReason,
    RiskRejected,
    SubmitOrder,
    TripKillSwitch,
)
from tradegraph.engine.clock import SimClock
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox

TOL = 1e-9
BTC = btcusdt(lot_size=0.001, min_quantity=0.002, min_notional=5.0)
ETH = ethusdt(venue="OKX", tick_size=0.05, lot_size=0.01, min_quantity=0.0, min_notional=1.0)
INSTRUMENTS = {BTC.instrument_id: BTC, ETH.instrument_id: ETH}
BASE_PRICE = {BTC.instrument_id: 100.0, ETH.instrument_id: 10.0}
STRATEGIES = ("alpha", "beta")


@dataclass
class ModelOrder:
    order: SubmitOrder
    leaves_qty: float


@dataclass
class Model:
    """What the engine should know, rebuilt from the traffic alone."""

    last_prices: dict[str, float] = field(default_factory=dict)
    positions: dict[str, float] = field(default_factory=dict)
    strategy_positions: dict[tuple[str, str], float] = field(default_factory=dict)
    open_orders: dict[str, ModelOrder] = field(default_factory=dict)
    cancel_sent: set[str] = field(default_factory=set)
    tripped: bool = False
    daily_pnl: float = 0.0

    def same_side_open(self, instrument_id: str, side: OrderSide) -> float:
        return sum(
            o.leaves_qty
            for o in self.open_orders.values()
            if o.order.instrument_id == instrument_id and o.order.side is side
        )

    def gross_exposure(self) -> float:
        total = sum(abs(q) * self.last_prices[i] for i, q in self.positions.items())
        for o in self.open_orders.values():
            price = o.order.limit_price or self.last_prices[o.order.instrument_id]
            total += o.leaves_qty * price
        return total


def is_multiple(value: float, step: float) -> bool:
    units = value / step
    return abs(units - round(units)) < 1e-6


def check_order_within_limits(
    order: SubmitOrder, intent: OrderIntent, model: Model, config: RiskConfig
) -> None:
    inst = INSTRUMENTS[order.instrument_id]
    last = model.last_prices[order.instrument_id]
    assert not model.tripped, "an order passed while the kill switch was tripped"
    assert order.client_order_id == intent.intent_id
    assert order.venue == inst.venue
    assert order.side is intent.side
    assert 0.0 < order.quantity <= intent.quantity * (1 + TOL)
    assert is_multiple(order.quantity, inst.lot_size)
    assert order.quantity >= inst.min_quantity * (1 - TOL)

    if order.order_type is OrderType.LIMIT:
        assert order.limit_price is not None
        assert intent.limit_price is not None
        assert is_multiple(order.limit_price, inst.tick_size)
        # Passive rounding never makes the price more aggressive than asked.
        if order.side is OrderSide.BUY:
            assert order.limit_price <= intent.limit_price * (1 + TOL)
        else:
            assert order.limit_price >= intent.limit_price * (1 - TOL)
        if config.price_band_pct is not None:
            distance_pct = abs(order.limit_price - last) / last * 100.0
            assert distance_pct <= config.price_band_pct * (1 + TOL)
    else:
        assert order.limit_price is None

    notional = order.quantity * (order.limit_price or last)
    assert notional >= inst.min_notional * (1 - TOL)
    if config.max_order_notional is not None:
        assert notional <= config.max_order_notional * (1 + TOL)

    position = model.positions.get(order.instrument_id, 0.0)
    same_side = model.same_side_open(order.instrument_id, order.side)
    reduces = (
        position != 0.0
        and (position > 0) != (order.side is OrderSide.BUY)
        and same_side + order.quantity <= abs(position) + 1e-6 * inst.lot_size
    )
    if intent.reduce_only:
        held = model.strategy_positions.get((order.strategy_id, order.instrument_id), 0.0)
        assert held != 0.0
        assert (held > 0) != (order.side is OrderSide.BUY)
        assert order.quantity <= abs(held) * (1 + TOL)
    if reduces:
        return
    projected = position + order.side.sign * (same_side + order.quantity)
    max_qty = config.max_position_quantity.get(order.instrument_id)
    if max_qty is not None:
        assert abs(projected) <= max_qty * (1 + TOL)
    if config.max_position_notional is not None:
        assert abs(projected) * last <= config.max_position_notional * (1 + TOL)
    if config.max_gross_exposure is not None:
        assert model.gross_exposure() + notional <= config.max_gross_exposure * (1 + TOL)
    if config.daily_loss_limit is not None:
        assert model.daily_pnl > -config.daily_loss_limit


price_step = st.tuples(
    st.just("price"),
    st.sampled_from(sorted(INSTRUMENTS)),
    st.floats(min_value=0.7, max_value=1.3),
)
intent_step = st.tuples(
    st.just("intent"),
    st.sampled_from(sorted(INSTRUMENTS)),
    st.sampled_from(STRATEGIES),
    st.sampled_from(list(OrderSide)),
    st.floats(min_value=0.0005, max_value=1.2),
    st.sampled_from([OrderType.MARKET, OrderType.LIMIT]),
    st.floats(min_value=0.92, max_value=1.08),
    st.sampled_from([False, False, False, False, True]),
)
fill_step = st.tuples(
    st.just("fill"),
    st.integers(min_value=0, max_value=50),
    st.sampled_from([0.25, 0.5, 1.0, 1.0]),
)
cancel_intent_step = st.tuples(
    st.just("cancel_intent"),
    st.integers(min_value=0, max_value=50),
    st.sampled_from(STRATEGIES),
)
portfolio_step = st.tuples(st.just("portfolio"), st.floats(min_value=-230.0, max_value=100.0))
Step = tuple[Any, ...]
STEP_KINDS: dict[str, st.SearchStrategy[Step]] = {
    "price": price_step,
    "intent": intent_step,
    "fill": fill_step,
    "cancel_intent": cancel_intent_step,
    "portfolio": portfolio_step,
    "cancelled": st.just(("cancelled",)),
    "replay_fill": st.just(("replay_fill",)),
    "advance": st.just(("advance",)),
    "trip": st.just(("trip",)),
    "reset": st.just(("reset",)),
}
# Intents dominate so that most streams submit many orders; trips stay rare enough that the
# switch is not tripped for most of a stream.
STEP_WEIGHTS = {"intent": 8, "fill": 3, "price": 2, "reset": 4}
weighted_kinds = [k for k in STEP_KINDS for _ in range(STEP_WEIGHTS.get(k, 1))]
steps = st.lists(
    st.sampled_from(weighted_kinds).flatmap(lambda kind: STEP_KINDS[kind]),
    min_size=30,
    max_size=80,
)
configs = st.builds(
    RiskConfig,
    max_order_notional=st.sampled_from([None, 80.0, 150.0]),
    max_position_notional=st.sampled_from([None, 100.0, 200.0]),
    max_position_quantity=st.sampled_from([{}, {BTC.instrument_id: 1.0}]),
    max_gross_exposure=st.sampled_from([None, 150.0, 300.0]),
    daily_loss_limit=st.sampled_from([None, 200.0]),
    max_orders_per_s=st.sampled_from([None, 5.0]),
    order_burst=st.sampled_from([3, 10]),
    price_band_pct=st.sampled_from([None, 5.0, 10.0]),
    trip_on_limit_breach=st.booleans(),
)


class Run:
    """Drives one random stream through the engine and the model side by side."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self.clock = SimClock(1_000_000_000)
        self.outbox = RecordingOutbox()
        self.engine = RiskEngine(config, INSTRUMENTS, self.clock, self.outbox)
        self.model = Model()
        self.sent_fills: list[OrderFilled] = []
        self.seen_fill_ids: set[str] = set()
        self.intents = 0
        self.emitted: list[Any] = []
        for instrument_id in INSTRUMENTS:
            self.on_price(instrument_id, 1.0)

    def ts(self) -> dict[str, int]:
        now = self.clock.now_ns()
        return {"ts_event_ns": now, "ts_init_ns": now}

    def deliver(self, msg: Any) -> list[Any]:
        self.outbox.clear()
        self.engine.handle(msg)
        out = list(self.outbox.messages)
        self.emitted += out
        for m in out:
            if isinstance(m, KillSwitchChanged):
                self.model.tripped = m.tripped
            elif isinstance(m, CancelOrder):
                self.model.cancel_sent.add(m.client_order_id)
        return out

    def step(self, step: Step) -> None:
        kind = step[0]
        if kind == "price":
            self.on_price(step[1], step[2])
        elif kind == "intent":
            self.on_intent(*step[1:])
        elif kind == "fill":
            self.on_fill(step[1], step[2])
        elif kind == "cancel_intent":
            self.on_cancel_intent(step[1], step[2])
        elif kind == "cancelled":
            self.on_cancelled()
        elif kind == "replay_fill":
            if self.sent_fills:
                self.apply_fill(self.sent_fills[len(self.sent_fills) // 2])
        elif kind == "trip":
            self.on_trip()
        elif kind == "reset":
            self.deliver(ResetKillSwitch(reason="test", **self.ts()))
            assert not self.engine.kill_switch_tripped
        elif kind == "advance":
            self.clock.advance_to(self.clock.now_ns() + 250_000_000)
        elif kind == "portfolio":
            self.on_portfolio(step[1])

    def on_price(self, instrument_id: str, factor: float) -> None:
        price = round(BASE_PRICE[instrument_id] * factor, 2)
        self.deliver(
            Bar(
                instrument_id=instrument_id,
                open=price,
                high=price,
                low=price,
                close=price,
                volume=1.0,
                interval_ns=60_000_000_000,
                **self.ts(),
            )
        )
        self.model.last_prices[instrument_id] = price

    def on_intent(
        self,
        instrument_id: str,
        strategy_id: str,
        side: OrderSide,
        size: float,
        order_type: OrderType,
        price_factor: float,
        reduce_only: bool,
    ) -> None:
        self.intents += 1
        scale = 10.0 if instrument_id == ETH.instrument_id else 1.0
        reference = self.model.last_prices.get(instrument_id, BASE_PRICE[instrument_id])
        intent = OrderIntent(
            intent_id=f"{strategy_id}-{self.intents:06d}",
            strategy_id=strategy_id,
            instrument_id=instrument_id,
            side=side,
            quantity=size * scale,
            order_type=order_type,
            limit_price=reference * price_factor if order_type is OrderType.LIMIT else None,
            reduce_only=reduce_only,
            **self.ts(),
        )
        out = self.deliver(intent)
        assert len(out) == 1
        result = out[0]
        if isinstance(result, SubmitOrder):
            check_order_within_limits(result, intent, self.model, self.config)
            self.model.open_orders[result.client_order_id] = ModelOrder(result, result.quantity)
        else:
            assert isinstance(result, RiskRejected)
            assert result.detail

    def on_fill(self, pick: int, fraction: float) -> None:
        if not self.model.open_orders:
            return
        ids = list(self.model.open_orders)
        held = self.model.open_orders[ids[pick % len(ids)]]
        order = held.order
        inst = INSTRUMENTS[order.instrument_id]
        quantity = inst.round_quantity(held.leaves_qty * fraction)
        if quantity <= 0.0 or fraction == 1.0:
            quantity = held.leaves_qty
        leaves = round(held.leaves_qty - quantity, inst.size_decimals)
        fill = OrderFilled(
            fill_id=f"fill-{len(self.sent_fills) + 1:06d}",
            client_order_id=order.client_order_id,
            venue_order_id=f"v-{order.client_order_id}",
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            venue=order.venue,
            side=order.side,
            last_qty=quantity,
            last_px=order.limit_price or self.model.last_prices[order.instrument_id],
            fee=0.0,
            liquidity=LiquiditySide.TAKER,
            leaves_qty=leaves,
            **self.ts(),
        )
        self.sent_fills.append(fill)
        self.apply_fill(fill)

    def apply_fill(self, fill: OrderFilled) -> None:
        out = self.deliver(fill)
        assert out == []
        if fill.fill_id in self.seen_fill_ids:
            return
        self.seen_fill_ids.add(fill.fill_id)
        inst_id = fill.instrument_id
        self.model.positions[inst_id] = self.model.positions.get(inst_id, 0.0) + fill.signed_qty
        key = (fill.strategy_id, inst_id)
        self.model.strategy_positions[key] = (
            self.model.strategy_positions.get(key, 0.0) + fill.signed_qty
        )
        held = self.model.open_orders.get(fill.client_order_id)
        if held is not None:
            if fill.leaves_qty <= 0.0:
                del self.model.open_orders[fill.client_order_id]
            else:
                held.leaves_qty = fill.leaves_qty

    def on_cancelled(self) -> None:
        if not self.model.open_orders:
            return
        client_order_id = next(iter(self.model.open_orders))
        order = self.model.open_orders.pop(client_order_id).order
        self.deliver(
            OrderCancelled(
                client_order_id=client_order_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                venue=order.venue,
                **self.ts(),
            )
        )

    def on_cancel_intent(self, pick: int, strategy_id: str) -> None:
        ids = [*self.model.open_orders, "no-such-order"]
        client_order_id = ids[pick % len(ids)]
        out = self.deliver(
            CancelIntent(strategy_id=strategy_id, client_order_id=client_order_id, **self.ts())
        )
        held = self.model.open_orders.get(client_order_id)
        assert len(out) == 1
        if held is not None and held.order.strategy_id == strategy_id:
            assert isinstance(out[0], CancelOrder)
            assert out[0].client_order_id == client_order_id
        else:
            assert isinstance(out[0], RiskRejected)
            assert out[0].reason is RiskReason.UNKNOWN_ORDER

    def on_trip(self) -> None:
        not_yet_cancelled = set(self.model.open_orders) - self.model.cancel_sent
        out = self.deliver(TripKillSwitch(reason="test", **self.ts()))
        cancelled = [m.client_order_id for m in out if isinstance(m, CancelOrder)]
        assert self.engine.kill_switch_tripped
        # Every open order is cancelled exactly once, however often the switch is tripped.
        assert sorted(cancelled) == sorted(not_yet_cancelled)

    def on_portfolio(self, daily_pnl: float) -> None:
        equity = 10_000.0 + daily_pnl
        self.deliver(
            PortfolioSnapshot(
                cash=equity,
                equity=equity,
                gross_exposure=0.0,
                net_exposure=0.0,
                realized_pnl=0.0,
                unrealized_pnl=0.0,
                fees=0.0,
                peak_equity=max(equity, 10_000.0),
                drawdown=max(0.0, 10_000.0 - equity),
                day_start_equity=10_000.0,
                positions=(),
                **self.ts(),
            )
        )
        self.model.daily_pnl = daily_pnl


@settings(max_examples=120, deadline=None)
@given(config=configs, stream=steps)
def test_every_submitted_order_is_within_all_limits(config: RiskConfig, stream: list[Step]) -> None:
    run = Run(config)

    for step in stream:
        run.step(step)

    assert run.engine.kill_switch_tripped == run.model.tripped
    assert set(run.engine.open_orders) == set(run.model.open_orders)
    for inst_id, quantity in run.model.positions.items():
        assert math.isclose(run.engine.positions[inst_id], quantity, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(config=configs, stream=steps, cut=st.integers(min_value=0, max_value=80))
def test_restored_engine_continues_exactly_like_the_original(
    config: RiskConfig, stream: list[Step], cut: int
) -> None:
    original = Run(config)
    for step in stream[:cut]:
        original.step(step)
    copy = Run(config)
    copy.clock.set_time(original.clock.now_ns())
    copy.engine.restore(original.engine.snapshot())
    copy.model = Model(
        last_prices=dict(original.model.last_prices),
        positions=dict(original.model.positions),
        strategy_positions=dict(original.model.strategy_positions),
        open_orders={
            k: ModelOrder(v.order, v.leaves_qty) for k, v in original.model.open_orders.items()
        },
        cancel_sent=set(original.model.cancel_sent),
        tripped=original.model.tripped,
        daily_pnl=original.model.daily_pnl,
    )
    copy.sent_fills = list(original.sent_fills)
    copy.seen_fill_ids = set(original.seen_fill_ids)
    copy.intents = original.intents
    emitted_before_cut = len(original.emitted)

    for step in stream[cut:]:
        original.step(step)
        copy.step(step)

    assert copy.emitted == original.emitted[emitted_before_cut:]
    assert copy.engine.snapshot() == original.engine.snapshot()
