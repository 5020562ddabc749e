"""Property: no sequence of intents, price moves, fills and cancels makes a balance negative.

Risk and the simulated venue are wired back to back (Risk's commands to the venue, the venue's
events to Risk), each with its own cash account, exposure limits off; hypothesis drives them
with random intents (market and limit, buys and sells, any size), cancels and bars that move
the price by up to 30% a step.
"""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import btcusdt
from tradegraph.config.models import RiskConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    CancelOrder,
    Message,
    OrderIntent,
    OrderSide,
    OrderType,
    SubmitOrder,
)
from tradegraph.engine.clock import SimClock
from tradegraph.execution import SimulatedVenue
from tradegraph.portfolio import CashAccount
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0, maker_fee=0.0002)
IID = BTC.instrument_id
TOL = 1e-9


def accounts(usdt: float, btc: float, buffer_pct: float) -> CashAccount:
    return CashAccount(
        "BINANCE", {"USDT": usdt, "BTC": btc}, {IID: BTC}, market_buy_buffer_pct=buffer_pct
    )


class Pair:
    """Risk and venue, each message delivered as the graph would (commands to the venue,
    events and market data to Risk)."""

    def __init__(self, usdt: float, btc: float, buffer_pct: float) -> None:
        self.clock = SimClock(MINUTE_NS)
        self.risk_out = RecordingOutbox()
        self.venue_out = RecordingOutbox()
        self.risk_account = accounts(usdt, btc, buffer_pct)
        self.venue_account = accounts(usdt, btc, buffer_pct)
        self.risk = RiskEngine(
            RiskConfig(price_band_pct=None),
            {IID: BTC},
            self.clock,
            self.risk_out,
            accounts={"BINANCE": self.risk_account},
        )
        self.venue = SimulatedVenue(
            VenueConfig(max_volume_share=0.5),
            {IID: BTC},
            self.clock,
            self.venue_out,
            account=self.venue_account,
        )
        self.submitted: list[str] = []
        self.price = 100.0
        self._n = 0

    def pump(self) -> None:
        queue: deque[Message] = deque()
        while True:
            queue.extend(self.risk_out.messages)
            self.risk_out.clear()
            queue.extend(self.venue_out.messages)
            self.venue_out.clear()
            if not queue:
                return
            msg = queue.popleft()
            if isinstance(msg, SubmitOrder):
                self.submitted.append(msg.client_order_id)
                self.venue.handle(msg)
            elif isinstance(msg, CancelOrder):
                self.venue.handle(msg)
            else:
                self.risk.handle(msg)

    def bar(self, move: float, volume: float) -> None:
        open_ = self.price
        self.price = round(max(1.0, open_ * (1.0 + move)), 2)
        now = self.clock.now_ns() + MINUTE_NS
        self.clock.advance_to(now)
        bar = Bar(
            instrument_id=IID,
            open=open_,
            high=max(open_, self.price),
            low=min(open_, self.price),
            close=self.price,
            volume=volume,
            interval_ns=MINUTE_NS,
            ts_event_ns=now,
            ts_init_ns=now,
        )
        self.venue.handle(bar)
        self.risk.handle(bar)
        self.pump()

    def intent(self, side: OrderSide, quantity: float, limit_offset: float | None) -> None:
        self._n += 1
        limit = None if limit_offset is None else round(self.price * (1 + limit_offset), 2)
        now = self.clock.now_ns()
        self.risk.handle(
            OrderIntent(
                intent_id=f"i{self._n}",
                strategy_id="s",
                instrument_id=IID,
                side=side,
                quantity=quantity,
                order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
                limit_price=limit,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        self.pump()

    def cancel(self, index: int) -> None:
        if not self.submitted:
            return
        cid = self.submitted[index % len(self.submitted)]
        now = self.clock.now_ns()
        self.risk.handle(
            CancelIntent(strategy_id="s", client_order_id=cid, ts_event_ns=now, ts_init_ns=now)
        )
        self.pump()


_bar = st.tuples(
    st.just("bar"), st.floats(-0.3, 0.3), st.floats(0.001, 50.0, allow_subnormal=False)
)
_intent = st.tuples(
    st.sampled_from(["buy", "sell"]),
    st.floats(0.001, 30.0, allow_subnormal=False),
    st.one_of(st.none(), st.floats(-0.2, 0.2)),
)
_cancel = st.tuples(st.just("cancel"), st.integers(0, 50), st.none())


@settings(max_examples=150, deadline=None)
@given(
    usdt=st.floats(0.0, 5_000.0),
    btc=st.floats(0.0, 20.0),
    buffer_pct=st.sampled_from([0.0, 1.0, 5.0]),
    steps=st.lists(st.one_of(_bar, _intent, _cancel), min_size=1, max_size=40),
)
def test_no_sequence_of_intents_makes_a_balance_negative(
    usdt: float,
    btc: float,
    buffer_pct: float,
    steps: list[tuple[str, float | int, float | None]],
) -> None:
    pair = Pair(usdt, btc, buffer_pct)
    pair.bar(0.0, 10.0)
    for kind, a, b in steps:
        if kind == "bar":
            assert b is not None
            pair.bar(float(a), b)
        elif kind == "cancel":
            pair.cancel(int(a))
        else:
            side = OrderSide.BUY if kind == "buy" else OrderSide.SELL
            pair.intent(side, float(a), b)
        for acct in (pair.venue_account, pair.risk_account):
            for asset in ("USDT", "BTC"):
                assert acct.total(asset) >= 0.0, (asset, acct.balances)
                assert acct.free(asset) >= -TOL * max(1.0, acct.total(asset)), (
                    asset,
                    acct.balances,
                    acct.reserved(asset),
                )
        for asset in ("USDT", "BTC"):
            assert abs(pair.venue_account.total(asset) - pair.risk_account.total(asset)) <= TOL * (
                max(1.0, abs(pair.venue_account.total(asset)))
            )
