"""Properties of margin accounting, driven by hypothesis through the simulated venue.

A venue with a margin account (leverage 20, maintenance 0.5 %) gets random market orders,
bars that move the price up to 8 % a step with random wicks, and a funding event every third
bar; the portfolio gets the bars and everything the venue publishes, as the graph delivers them.

* **Value is conserved.** The portfolio's equity is starting cash plus realized and unrealized
  PnL plus funding less fees, and the venue's account (wallet plus unrealized PnL) agrees.
* **Liquidation happens exactly when the maintenance rule says.** A plain reference, folded
  from the venue's own fills and funding payments, says at every bar whether equity at the
  bar's adverse extreme is below maintenance margin; the venue liquidates then and only then.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.config.models import PortfolioConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    FundingPaid,
    Instrument,
    Message,
    OrderFilled,
    OrderSide,
    OrderType,
    PositionLiquidated,
    SubmitOrder,
    TimeInForce,
)
from tradegraph.engine.clock import SimClock
from tradegraph.execution import SimulatedVenue
from tradegraph.execution.funding import FundingSeries
from tradegraph.execution.venue import LIQUIDATION_TAG
from tradegraph.portfolio import MarginAccount, Portfolio
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
START = 1_000.0
MMR = 0.005
PERP = Instrument(
    symbol="BTCUSDT-PERP",
    venue="BINANCE",
    base="BTC",
    quote="USDT",
    tick_size=0.01,
    lot_size=0.001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    kind="perpetual",
    max_leverage=20.0,
    liquidation_fee=0.004,
)
IID = PERP.instrument_id

step = st.tuples(
    st.sampled_from([None, OrderSide.BUY, OrderSide.SELL]),
    st.integers(min_value=1, max_value=200_000),  # quantity in lots (0.001 .. 200)
    st.floats(min_value=-0.08, max_value=0.08),  # close-to-close return
    st.floats(min_value=0.0, max_value=0.05),  # low wick
    st.floats(min_value=0.0, max_value=0.05),  # high wick
    st.floats(min_value=-0.003, max_value=0.003),  # funding rate
)


class _Reference:
    """The account as plain arithmetic over the venue's own events."""

    def __init__(self) -> None:
        self.wallet = START
        self.qty = 0.0
        self.entry = 0.0

    def apply(self, msg: Message) -> None:
        if isinstance(msg, FundingPaid):
            self.wallet -= msg.amount
        elif isinstance(msg, OrderFilled):
            signed = msg.last_qty if msg.side is OrderSide.BUY else -msg.last_qty
            new = self.qty + signed
            if abs(new) < 1e-12:
                new = 0.0
            if self.qty == 0.0 or (self.qty > 0) == (signed > 0):
                self.entry = (self.qty * self.entry + signed * msg.last_px) / new if new else 0.0
            else:
                closed = min(abs(signed), abs(self.qty))
                self.wallet += (msg.last_px - self.entry) * closed * (1 if self.qty > 0 else -1)
                if new != 0.0 and (new > 0) != (self.qty > 0):
                    self.entry = msg.last_px
            self.qty = new
            self.wallet -= msg.fee

    def below_maintenance(self, price: float) -> bool:
        equity = self.wallet + self.qty * (price - self.entry)
        return equity < abs(self.qty) * price * MMR


def _bar(ts_ns: int, open_: float, close: float, low_wick: float, high_wick: float) -> Bar:
    low = round(min(open_, close) * (1.0 - low_wick), 2)
    high = round(max(open_, close) * (1.0 + high_wick), 2)
    return Bar(
        instrument_id=IID,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=1e9,
        interval_ns=MINUTE_NS,
        ts_event_ns=ts_ns,
        ts_init_ns=ts_ns,
    )


Step = tuple[OrderSide | None, int, float, float, float, float]


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=5, max_size=40))
def test_margin_accounting_conserves_value_and_liquidates_exactly_by_the_rule(
    steps: list[Step],
) -> None:
    _run(steps)


def test_a_leveraged_long_in_a_falling_market_is_liquidated_once() -> None:
    # Long 180 (18,000 notional on 1,000: 18x), then -1 % bars with 3 % wicks: the first wick
    # to 96.03 leaves equity about 275 above maintenance, the next, to 95.06, below it.
    steps: list[Step] = [(OrderSide.BUY, 180_000, 0.0, 0.0, 0.0, 0.0)]
    steps += [(None, 1, -0.01, 0.03, 0.0, 0.0001)] * 6
    assert _run(steps) == 1


def _run(steps: list[Step]) -> int:
    """Drive venue and portfolio through ``steps``, checking both properties at every bar;
    return the number of liquidations."""
    n = len(steps)
    funding = FundingSeries(
        ts_ns=tuple((i + 2) * MINUTE_NS for i in range(n) if i % 3 == 2),
        rate=tuple(s[5] for i, s in enumerate(steps) if i % 3 == 2),
        mark_price=tuple(math.nan for i in range(n) if i % 3 == 2),
    )
    clock = SimClock(0)
    outbox = RecordingOutbox()
    account = MarginAccount(
        "BINANCE", {"USDT": START}, {IID: PERP}, leverage={IID: 20.0}, maintenance_margin_rate=MMR
    )
    venue = SimulatedVenue(
        VenueConfig(), {IID: PERP}, clock, outbox, account=account, funding={IID: funding}
    )
    portfolio = Portfolio(
        PortfolioConfig(starting_cash=START, currency="USDT"), {IID: PERP}, clock, RecordingOutbox()
    )
    reference = _Reference()
    price = 100.0
    ts = MINUTE_NS
    clock.advance_to(ts)
    first = _bar(ts, price, price, 0.0, 0.0)
    venue.handle(first)
    portfolio.handle(first)
    liquidations = 0
    for i, (side, lots, ret, low_wick, high_wick, _) in enumerate(steps):
        if side is not None:
            venue.handle(
                SubmitOrder(
                    client_order_id=f"o{i}",
                    strategy_id="s",
                    instrument_id=IID,
                    venue="BINANCE",
                    side=side,
                    quantity=lots * 0.001,
                    order_type=OrderType.MARKET,
                    limit_price=None,
                    time_in_force=TimeInForce.GTC,
                    post_only=False,
                    reduce_only=False,
                    ts_event_ns=ts,
                    ts_init_ns=ts,
                )
            )
        for msg in outbox.messages:
            portfolio.handle(msg)
        outbox.clear()
        ts += MINUTE_NS
        clock.advance_to(ts)
        close = round(max(1.0, price * (1.0 + ret)), 2)
        bar = _bar(ts, price, close, low_wick, high_wick)
        price = close
        venue.handle(bar)
        portfolio.handle(bar)
        # Fold the bar's events into the reference, checking the rule at the liquidation.
        liquidated_here = False
        for msg in outbox.messages:
            if isinstance(msg, OrderFilled) and msg.tag == LIQUIDATION_TAG:
                adverse = bar.low if reference.qty > 0 else bar.high
                assert msg.last_px == adverse
                assert reference.below_maintenance(adverse), "liquidated above maintenance"
                liquidated_here = True
            if isinstance(msg, PositionLiquidated):
                liquidations += 1
            reference.apply(msg)
            portfolio.handle(msg)
        outbox.clear()
        if not liquidated_here and reference.qty != 0.0:
            adverse = bar.low if reference.qty > 0 else bar.high
            assert not reference.below_maintenance(adverse), "below maintenance, not liquidated"

        # Value is conserved, in the portfolio and in the venue's account alike.
        attribution = portfolio.strategy_attribution().get("s")
        if attribution is not None:
            assert portfolio.equity == pytest.approx(
                START
                + attribution.realized_pnl
                + attribution.unrealized_pnl
                + attribution.funding
                - attribution.fees,
                abs=1e-6,
            )
            assert account.total("USDT") == pytest.approx(
                START + attribution.realized_pnl + attribution.funding - attribution.fees,
                abs=1e-6,
            )
        assert account.equity("USDT") == pytest.approx(portfolio.equity, abs=1e-6)
        assert account.position(IID) == pytest.approx(reference.qty, abs=1e-9)
        assert account.total("USDT") == pytest.approx(reference.wallet, abs=1e-6)
    assert portfolio.liquidations == liquidations
    return liquidations
