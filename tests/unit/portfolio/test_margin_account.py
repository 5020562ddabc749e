"""The margin account's figures against hand computation."""

from __future__ import annotations

import math

import pytest

from tradegraph.contracts import Instrument, MarginTier, OrderSide
from tradegraph.portfolio import MarginAccount

PERP = Instrument(
    symbol="BTCUSDT-PERP",
    venue="BINANCE",
    base="BTC",
    quote="USDT",
    tick_size=0.1,
    lot_size=0.001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    kind="perpetual",
    max_leverage=20.0,
    liquidation_fee=0.01,
)
IID = PERP.instrument_id


def _account(
    usdt: float = 1_000.0, leverage: float = 10.0, **kw: object
) -> tuple[MarginAccount, dict[str, float]]:
    marks: dict[str, float] = {}
    account = MarginAccount(
        "BINANCE",
        {"USDT": usdt},
        {IID: kw.pop("instrument", PERP)},  # type: ignore[dict-item]
        marks,
        leverage={IID: leverage},
        **kw,  # type: ignore[arg-type]
    )
    return account, marks


def test_a_short_opens_holds_margin_and_realizes_on_close() -> None:
    account, marks = _account()
    account.apply_fill("o1", IID, OrderSide.SELL, 2.0, 100.0, 0.1, 0.0)
    assert account.position(IID) == -2.0
    assert account.total("USDT") == pytest.approx(999.9)
    marks[IID] = 90.0
    # A short gains as the price falls: 2 * (100 - 90).
    assert account.unrealized_pnl("USDT") == pytest.approx(20.0)
    assert account.equity("USDT") == pytest.approx(1_019.9)
    # Initial margin 2 * 90 / 10; maintenance 2 * 90 * 0.5 %.
    assert account.position_margin("USDT") == pytest.approx(18.0)
    assert account.maintenance_margin("USDT") == pytest.approx(0.9)
    assert account.free("USDT") == pytest.approx(1_019.9 - 18.0)
    assert account.margin_ratio("USDT") == pytest.approx(0.9 / 1_019.9)
    realized = account.apply_fill("o2", IID, OrderSide.BUY, 2.0, 90.0, 0.09, 0.0)
    assert realized == pytest.approx(20.0)
    assert account.position(IID) == 0.0
    assert account.total("USDT") == pytest.approx(999.9 + 20.0 - 0.09)


def test_order_cost_charges_margin_on_what_opens_less_what_closing_frees() -> None:
    account, marks = _account()
    account.apply_fill("o1", IID, OrderSide.BUY, 1.0, 100.0, 0.0, 0.0)
    marks[IID] = 100.0
    fee = max(PERP.maker_fee, PERP.taker_fee)
    # Selling 3 closes the long 1 (freeing its margin 10) and opens a short 2 (margin 20).
    asset, unit = account.order_cost(IID, OrderSide.SELL, 100.0, 3.0, market=False)
    assert asset == "USDT"
    assert unit * 3.0 == pytest.approx(2 * 100.0 / 10.0 - 10.0 + 3 * 100.0 * fee)
    # Closing only: the fee and nothing else.
    _, unit = account.order_cost(IID, OrderSide.SELL, 100.0, 1.0, market=False)
    assert unit == pytest.approx(100.0 * fee)
    # A market order is valued 5 % away whichever its side.
    _, unit = account.order_cost(IID, OrderSide.BUY, 100.0, 1.0, market=True)
    assert unit == pytest.approx(105.0 / 10.0 + 105.0 * fee)


def test_tiers_raise_initial_margin_and_set_maintenance() -> None:
    tiers = (
        MarginTier(max_notional=1_000.0, initial_rate=0.05, maintenance_rate=0.01),
        MarginTier(
            max_notional=math.inf, initial_rate=0.2, maintenance_rate=0.1, maintenance_amount=90.0
        ),
    )
    perp = PERP.model_copy(update={"margin_tiers": tiers})
    account, _ = _account(usdt=10_000.0, leverage=10.0, instrument=perp)
    assert account.initial_rate(IID, 500.0) == pytest.approx(0.1)  # 1/leverage is above 5 %
    assert account.initial_rate(IID, 5_000.0) == pytest.approx(0.2)
    assert account.maintenance_margin_of(IID, 500.0) == pytest.approx(5.0)
    assert account.maintenance_margin_of(IID, 5_000.0) == pytest.approx(500.0 - 90.0)


def test_funding_moves_the_wallet() -> None:
    account, _ = _account()
    account.apply_funding(IID, 0.5)
    account.apply_funding(IID, -0.2)
    assert account.total("USDT") == pytest.approx(999.7)


def test_below_maintenance_is_the_liquidation_rule() -> None:
    account, marks = _account(usdt=100.0)
    account.apply_fill("o1", IID, OrderSide.BUY, 9.0, 100.0, 0.45, 0.0)
    marks[IID] = 100.0
    # Equity 99.55 + 9 (p - 100) against maintenance 9 p 0.005: crosses at p = 800.45 / 8.955.
    cross = 800.45 / 8.955
    assert account.below_maintenance(IID, cross + 0.01) is None
    found = account.below_maintenance(IID, cross - 0.01)
    assert found is not None
    equity, maintenance = found
    assert equity < maintenance
    assert equity == pytest.approx(99.55 + 9 * (cross - 0.01 - 100.0))


def test_snapshot_restores_positions_and_reservations() -> None:
    account, _ = _account()
    account.apply_fill("o1", IID, OrderSide.SELL, 1.5, 100.0, 0.1, 0.0)
    account.reserve("o2", "USDT", 10.0, 2.0)
    copy, _ = _account()
    copy.restore(account.snapshot())
    assert copy.snapshot() == account.snapshot()
    assert copy.position(IID) == -1.5
    assert copy.reserved("USDT") == pytest.approx(20.0)


def test_safe_band_ends_at_the_closed_form_liquidation_price() -> None:
    account, marks = _account(usdt=100.0)
    assert account.safe_band(IID) == (-math.inf, math.inf)
    account.apply_fill("o1", IID, OrderSide.BUY, 9.0, 100.0, 0.45, 0.0)
    marks[IID] = 100.0
    low, high = account.safe_band(IID)
    assert low == pytest.approx(800.45 / 8.955)
    assert high == math.inf
    assert account.below_maintenance(IID, low) is None
    account.apply_funding(IID, 10.0)  # the wallet changed: the band moves up
    assert account.bands == {}
    assert account.safe_band(IID)[0] == pytest.approx(810.45 / 8.955)
