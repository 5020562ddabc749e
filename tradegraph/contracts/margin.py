"""Margin-account events: funding payments and liquidations.

Both come from the venue that holds the position (the simulated venue in a backtest) and reach
the portfolio, Risk and the owning strategy.
"""

from __future__ import annotations

from tradegraph.contracts.base import Message


class FundingPaid(Message):
    """A funding payment on one strategy's position in a perpetual.

    Attributes:
        strategy_id: Whose position paid or received.
        instrument_id: The perpetual.
        venue: Where the position is held.
        amount: What the position paid, in the settle asset:
            ``position * contract_size * mark_price * rate``. Positive is paid out (a long when
            the rate is positive), negative is received. The account's balance falls by it.
        rate: The funding rate applied (fraction of notional per interval).
        mark_price: The mark the notional was valued at.
        position: The signed position (contracts) that paid; negative is short.
    """

    strategy_id: str
    instrument_id: str
    venue: str
    amount: float
    rate: float
    mark_price: float
    position: float


class PositionLiquidated(Message):
    """The venue closed one strategy's position because its equity fell below maintenance
    margin.

    Attributes:
        strategy_id: Whose position was closed.
        instrument_id: The instrument.
        venue: Where.
        quantity: The signed position that was closed (contracts; negative was short).
        price: The price it was closed at.
        fee: The liquidation fee charged, in the settle asset.
        reason: For humans: equity and maintenance margin when it happened.
    """

    strategy_id: str
    instrument_id: str
    venue: str
    quantity: float
    price: float
    fee: float
    reason: str
