"""Every venue's cash account starts from the portfolio's cash plus its own starting balances,
and Risk and the venue each get their own."""

from __future__ import annotations

from tests.support.graphs import graph_config
from tradegraph.config.models import AccountConfig, StrategyConfig, VenueConfig
from tradegraph.contracts import RISK, broker_id
from tradegraph.engine.assembly import build_component, starting_balances
from tradegraph.engine.clock import SimClock
from tradegraph.execution import SimulatedVenue
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox

STRATEGY = StrategyConfig(
    id="s", class_path="tests.support.graphs:ScriptedStrategy", instruments=("BTCUSDT.BINANCE",)
)


def test_starting_cash_and_base_balances_make_the_starting_account() -> None:
    base = graph_config((STRATEGY,), starting_cash=1_000.0)
    venue = VenueConfig(
        name="BINANCE", account=AccountConfig(starting_balances={"BTC": 0.5, "ETH": 2.0})
    )
    config = base.model_copy(update={"venues": (venue,)})

    assert starting_balances(config, venue) == {"USDT": 1_000.0, "BTC": 0.5, "ETH": 2.0}


def test_risk_and_venue_hold_separate_accounts_with_the_same_balances() -> None:
    config = graph_config((STRATEGY,), starting_cash=1_000.0)
    risk = build_component(config, RISK, SimClock(0), RecordingOutbox())
    venue = build_component(config, broker_id("BINANCE"), SimClock(0), RecordingOutbox())
    assert isinstance(risk, RiskEngine)
    assert isinstance(venue, SimulatedVenue)
    risk_account = risk.accounts["BINANCE"]
    assert venue.account is not None
    assert risk_account is not venue.account
    assert dict(risk_account.balances) == dict(venue.account.balances) == {"USDT": 1_000.0}
