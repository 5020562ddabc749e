"""The ``venues[].account`` section: kind, starting balances, market-buy buffer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradegraph.config.models import AccountConfig, VenueConfig
from tradegraph.contracts import AccountKind


def test_a_venue_has_a_cash_account_by_default() -> None:
    assert VenueConfig().account == AccountConfig(kind=AccountKind.CASH)


def test_account_cash_is_short_for_a_cash_account_section() -> None:
    venue = VenueConfig.model_validate({"name": "BINANCE", "account": "cash"})
    assert venue.account.kind is AccountKind.CASH
    assert venue.account.starting_balances == {}


def test_an_unknown_account_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"account\.kind"):
        VenueConfig.model_validate({"account": "portfolio_margin"})


def test_a_negative_starting_balance_is_refused_naming_the_asset() -> None:
    with pytest.raises(ValidationError, match=r"starting_balances\[BTC\] must be >= 0"):
        VenueConfig.model_validate({"account": {"starting_balances": {"BTC": -1}}})
