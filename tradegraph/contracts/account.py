"""Account state reported by a venue's gateway."""

from __future__ import annotations

from tradegraph.contracts.base import Message


class AccountBalances(Message):
    """What the account at ``venue`` holds, per asset, as the venue itself reported it.

    A live broker publishes one after each reconciliation that found nothing wrong; Risk then
    checks orders against these balances instead of the configured starting balances.

    Attributes:
        venue: The venue whose account this is.
        balances: Total amount held per asset (free plus what the venue has reserved for
            open orders), e.g. ``{"BTC": 0.5, "USDT": 1000.0}``.
    """

    venue: str
    balances: dict[str, float]
