"""Invariants of the simulated venue under generated order sizes, volumes and scripts."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import btcusdt
from tradegraph.config.models import FillAt, SlippageConfig, VenueConfig
from tradegraph.contracts import (
    Bar,
    CancelOrder,
    Message,
    OrderFilled,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
)
from tradegraph.engine.clock import SimClock
from tradegraph.execution import SimulatedVenue
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60_000_000_000
LOT = 0.001
INSTRUMENT = btcusdt(lot_size=LOT, min_quantity=0.0, min_notional=0.0)
IID = INSTRUMENT.instrument_id


def _build(
    config: VenueConfig, start_ns: int = 0
) -> tuple[SimulatedVenue, SimClock, RecordingOutbox]:
    clock = SimClock(start_ns)
    outbox = RecordingOutbox()
    return SimulatedVenue(config, {IID: INSTRUMENT}, clock, outbox), clock, outbox


def _bar(index: int, price: float, volume: float) -> Bar:
    ts = (index + 1) * MINUTE_NS
    return Bar(
        instrument_id=IID,
        open=price,
        high=price * 1.01,
        low=price * 0.99,
        close=price,
        volume=volume,
        interval_ns=MINUTE_NS,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def _submit(
    cid: str, side: OrderSide, quantity: float, limit: float | None, ts: int, tif: TimeInForce
) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=cid,
        strategy_id="s1",
        instrument_id=IID,
        venue="BINANCE",
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=limit,
        time_in_force=tif,
        post_only=False,
        reduce_only=False,
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


lots = st.integers(min_value=1, max_value=50_000).map(lambda n: round(n * LOT, 3))
volumes = st.lists(
    st.floats(min_value=0.0, max_value=100.0, allow_nan=False), min_size=1, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(
    quantity=lots,
    share=st.floats(min_value=0.01, max_value=1.0),
    bar_volumes=volumes,
    fill_at=st.sampled_from(list(FillAt)),
    is_limit=st.booleans(),
)
def test_fills_never_exceed_order_and_fills_plus_leaves_equal_quantity(
    quantity: float, share: float, bar_volumes: list[float], fill_at: FillAt, is_limit: bool
) -> None:
    signal_bar = _bar(0, 100.0, 50.0)
    venue, clock, outbox = _build(
        VenueConfig(max_volume_share=share, fill_at=fill_at), start_ns=signal_bar.ts_event_ns
    )
    venue.handle(signal_bar)
    # A buy limit far above the market is marketable on arrival; a low one rests and fills
    # on every bar whose low trades through it.
    limit = 99.5 if is_limit else None
    venue.handle(_submit("o1", OrderSide.BUY, quantity, limit, clock.now_ns(), TimeInForce.GTC))

    for i, volume in enumerate(bar_volumes, start=1):
        bar = _bar(i, 100.0, volume)
        clock.set_time(bar.ts_event_ns)
        venue.handle(bar)

    fills = outbox.of_type(OrderFilled)
    filled = 0.0
    for fill in fills:
        filled += fill.last_qty
        assert fill.last_qty > 0.0
        assert fill.last_qty <= share * _volume_for(fill, bar_volumes) + 1e-9
        assert math.isclose(filled + fill.leaves_qty, quantity, rel_tol=1e-9, abs_tol=1e-12)
        lots_in_fill = fill.last_qty / LOT
        assert abs(lots_in_fill - round(lots_in_fill)) < 1e-6
    assert filled <= quantity * (1 + 1e-9)
    open_order = venue.open_orders.get("o1")
    if open_order is None:
        assert math.isclose(filled, quantity, rel_tol=1e-9)
    else:
        assert math.isclose(open_order.filled_qty + open_order.leaves_qty, quantity, rel_tol=1e-9)
        assert math.isclose(open_order.filled_qty, filled, rel_tol=1e-9, abs_tol=1e-12)


def _volume_for(fill: OrderFilled, bar_volumes: list[float]) -> float:
    """Volume of the bar the fill happened on (fills on arrival use the 50.0 signal bar)."""
    index = fill.ts_event_ns // MINUTE_NS - 1
    return 50.0 if index == 0 else bar_volumes[index - 1]


commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.integers(0, 6),
            st.sampled_from(list(OrderSide)),
            st.integers(1, 3_000),
            st.one_of(st.none(), st.floats(min_value=95.0, max_value=105.0)),
            st.sampled_from(list(TimeInForce)),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 6)),
        st.tuples(st.just("bar"), st.floats(min_value=95.0, max_value=105.0), volumes),
    ),
    min_size=1,
    max_size=30,
)


def _replay(
    venue: SimulatedVenue, clock: SimClock, script: list[tuple[object, ...]], bar_index: int
) -> int:
    """Feed ``script`` to ``venue``, advancing the clock one minute per bar; returns bar index."""
    for step in script:
        if step[0] == "bar":
            price, vols = step[1], step[2]
            assert isinstance(price, float)
            assert isinstance(vols, list)
            bar_index += 1
            bar = _bar(bar_index, round(price, 2), vols[0])
            for fired in clock.advance_to(bar.ts_event_ns):
                venue.handle(fired)
            venue.handle(bar)
        elif step[0] == "submit":
            _, n, side, lot_count, limit, tif = step
            assert isinstance(n, int)
            assert isinstance(side, OrderSide)
            assert isinstance(lot_count, int)
            assert limit is None or isinstance(limit, float)
            assert isinstance(tif, TimeInForce)
            venue.handle(
                _submit(
                    f"c{n}",
                    side,
                    round(lot_count * LOT, 3),
                    None if limit is None else round(limit, 2),
                    clock.now_ns(),
                    tif,
                )
            )
        else:
            venue.handle(
                CancelOrder(
                    client_order_id=f"c{step[1]}",
                    strategy_id="s1",
                    instrument_id=IID,
                    venue="BINANCE",
                    ts_event_ns=clock.now_ns(),
                    ts_init_ns=clock.now_ns(),
                )
            )
    return bar_index


@settings(max_examples=60, deadline=None)
@given(
    prefix=commands,
    suffix=commands,
    latency_ms=st.sampled_from([0.0, 3.0]),
    share=st.sampled_from([0.1, 1.0]),
)
def test_restored_venue_emits_exactly_what_the_original_emits(
    prefix: list[tuple[object, ...]],
    suffix: list[tuple[object, ...]],
    latency_ms: float,
    share: float,
) -> None:
    config = VenueConfig(
        latency_ms=latency_ms,
        max_volume_share=share,
        slippage=SlippageConfig(model="linear", bps=1.0, impact_bps=5.0),
    )
    original, original_clock, original_out = _build(config)
    bar_index = _replay(original, original_clock, prefix, 0)
    state = SimulatedVenue.State.model_validate_json(original.snapshot().model_dump_json())
    restored, restored_clock, restored_out = _build(config, start_ns=original_clock.now_ns())
    restored.restore(state)
    original_out.clear()

    _replay(original, original_clock, suffix, bar_index)
    _replay(restored, restored_clock, suffix, bar_index)

    emitted: list[Message] = original_out.messages
    assert restored_out.messages == emitted
    assert restored.snapshot() == original.snapshot()
    assert restored.ignored_cancels == original.ignored_cancels
