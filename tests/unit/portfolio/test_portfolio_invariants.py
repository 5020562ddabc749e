"""Accounting invariants over random sequences of marks, fills and replayed fills."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import Bar, Instrument, LiquiditySide, OrderFilled, OrderSide
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox

STARTING_CASH = 1_000_000.0
INSTRUMENT_IDS = ("BTCUSDT.BINANCE", "ETHUSDT.BINANCE", "SOLUSDT.BINANCE")
STRATEGY_IDS = ("alpha", "beta", "gamma")
MINUTE_NS = 60 * 1_000_000_000
TOLERANCE = 1e-9 * STARTING_CASH


def instruments() -> dict[str, Instrument]:
    result = {}
    for instrument_id in INSTRUMENT_IDS:
        symbol = instrument_id.split(".")[0]
        instrument = Instrument(
            symbol=symbol,
            venue="BINANCE",
            base=symbol.removesuffix("USDT"),
            quote="USDT",
            tick_size=0.01,
            lot_size=1e-4,
        )
        result[instrument.instrument_id] = instrument
    return result


@dataclass(frozen=True)
class MarkOp:
    instrument: int
    price: float


@dataclass(frozen=True)
class FillOp:
    strategy: int
    instrument: int
    buy: bool
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True)
class ReplayOp:
    which: int


prices = st.floats(min_value=10.0, max_value=1_000.0, allow_nan=False)
operations = st.lists(
    st.one_of(
        st.builds(MarkOp, st.integers(0, 2), prices),
        st.builds(
            FillOp,
            st.integers(0, 2),
            st.integers(0, 2),
            st.booleans(),
            st.floats(min_value=0.001, max_value=10.0, allow_nan=False),
            prices,
            st.floats(min_value=-0.5, max_value=5.0, allow_nan=False),
        ),
        st.builds(ReplayOp, st.integers(0, 1_000)),
    ),
    max_size=60,
)


class Runner:
    """Feeds operations to a portfolio the way a kernel would: clock first, then the message."""

    def __init__(self) -> None:
        self.clock = SimClock()
        self.outbox = RecordingOutbox()
        self.portfolio = Portfolio(
            PortfolioConfig(starting_cash=STARTING_CASH, snapshot_interval_s=60.0),
            instruments(),
            self.clock,
            self.outbox,
        )
        self.sent: list[OrderFilled] = []
        self.step = 0

    def apply(self, ops: list[MarkOp | FillOp | ReplayOp]) -> None:
        for op in ops:
            self.step += 1
            ts = self.step * MINUTE_NS
            self.clock.set_time(ts)
            if isinstance(op, MarkOp):
                self.portfolio.handle(
                    Bar(
                        ts_event_ns=ts,
                        ts_init_ns=ts,
                        instrument_id=INSTRUMENT_IDS[op.instrument],
                        open=op.price,
                        high=op.price,
                        low=op.price,
                        close=op.price,
                        volume=1.0,
                        interval_ns=MINUTE_NS,
                    )
                )
            elif isinstance(op, FillOp):
                fill = OrderFilled(
                    ts_event_ns=ts,
                    ts_init_ns=ts,
                    fill_id=f"fill-{self.step}",
                    client_order_id=f"order-{self.step}",
                    venue_order_id=f"venue-{self.step}",
                    strategy_id=STRATEGY_IDS[op.strategy],
                    instrument_id=INSTRUMENT_IDS[op.instrument],
                    venue="BINANCE",
                    side=OrderSide.BUY if op.buy else OrderSide.SELL,
                    last_qty=op.quantity,
                    last_px=op.price,
                    fee=op.fee,
                    liquidity=LiquiditySide.TAKER,
                    leaves_qty=0.0,
                )
                self.sent.append(fill)
                self.portfolio.handle(fill)
            elif self.sent:
                self.portfolio.handle(self.sent[op.which % len(self.sent)])


def run(ops: list[MarkOp | FillOp | ReplayOp]) -> tuple[Portfolio, list[OrderFilled]]:
    runner = Runner()
    runner.apply(ops)
    return runner.portfolio, runner.sent


@settings(max_examples=150, deadline=None)
@given(operations)
def test_equity_equals_cash_plus_positions_and_starting_cash_plus_pnl(
    ops: list[MarkOp | FillOp | ReplayOp],
) -> None:
    portfolio, _ = run(ops)

    marked_value = math.fsum(p.quantity * p.mark_price for p in portfolio.positions().values())
    from_cash = portfolio.cash + marked_value
    from_pnl = STARTING_CASH + portfolio.realized_pnl + portfolio.unrealized_pnl - portfolio.fees

    assert math.isclose(portfolio.equity, from_cash, rel_tol=1e-9, abs_tol=TOLERANCE)
    assert math.isclose(portfolio.equity, from_pnl, rel_tol=1e-9, abs_tol=TOLERANCE)
    snapshot = portfolio.build_snapshot()
    assert math.isclose(snapshot.equity, portfolio.equity, rel_tol=1e-12)
    assert snapshot.drawdown >= 0.0
    assert portfolio.peak_equity >= portfolio.equity


@settings(max_examples=150, deadline=None)
@given(operations)
def test_strategy_attribution_sums_to_account_totals(
    ops: list[MarkOp | FillOp | ReplayOp],
) -> None:
    portfolio, sent = run(ops)

    attribution = portfolio.strategy_attribution().values()

    assert math.isclose(
        math.fsum(a.realized_pnl for a in attribution), portfolio.realized_pnl, abs_tol=TOLERANCE
    )
    assert math.isclose(
        math.fsum(a.unrealized_pnl for a in attribution),
        portfolio.unrealized_pnl,
        abs_tol=TOLERANCE,
    )
    assert math.isclose(math.fsum(a.fees for a in attribution), portfolio.fees, abs_tol=TOLERANCE)
    assert sum(a.fill_count for a in attribution) == len(portfolio.fills) == len(sent)
    for instrument_id, position in portfolio.positions().items():
        strategy_quantity = math.fsum(
            a.positions[instrument_id].quantity for a in attribution if instrument_id in a.positions
        )
        assert math.isclose(strategy_quantity, position.quantity, abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_each_sub_ledger_pnl_equals_marked_value_less_net_cost(
    ops: list[MarkOp | FillOp | ReplayOp],
) -> None:
    portfolio, sent = run(ops)

    for attribution in portfolio.strategy_attribution().values():
        for instrument_id, position in attribution.positions.items():
            own = [
                f
                for f in sent
                if f.strategy_id == attribution.strategy_id and f.instrument_id == instrument_id
            ]
            net_cost = math.fsum(f.signed_qty * f.last_px for f in own)
            quantity = math.fsum(f.signed_qty for f in own)
            expected = quantity * position.mark_price - net_cost
            actual = position.realized_pnl + position.unrealized_pnl
            assert math.isclose(actual, expected, abs_tol=TOLERANCE)
            assert math.isclose(position.quantity, quantity, abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(operations, operations)
def test_restore_mid_run_continues_exactly_like_an_uninterrupted_run(
    first: list[MarkOp | FillOp | ReplayOp], second: list[MarkOp | FillOp | ReplayOp]
) -> None:
    uninterrupted = Runner()
    uninterrupted.apply(first)
    stored = json.dumps(uninterrupted.portfolio.snapshot().model_dump(mode="json"))
    state = Portfolio.State.model_validate(json.loads(stored))
    resumed = Runner()
    resumed.clock.set_time(uninterrupted.clock.now_ns())
    resumed.portfolio.restore(state)
    resumed.sent = list(uninterrupted.sent)
    resumed.step = uninterrupted.step
    uninterrupted.outbox.clear()

    uninterrupted.apply(second)
    resumed.apply(second)

    assert resumed.portfolio.snapshot() == uninterrupted.portfolio.snapshot()
    assert resumed.outbox.messages == uninterrupted.outbox.messages
