"""Start-up reconciliation of perpetual positions: the pure checks, no venue."""

from __future__ import annotations

from tradegraph.adapters.base import ReconciliationReport
from tradegraph.adapters.ccxt.broker.reconcile import check_balances
from tradegraph.adapters.ccxt.order_journal import OrderJournal

IID = "BTCUSDT-PERP.BINANCE"


def test_a_first_reconciliation_takes_the_venue_position_as_the_baseline() -> None:
    journal = OrderJournal()
    problems: list[str] = []

    expected = check_balances(
        journal,
        {"USDT": 100.0, IID: -0.5},
        {"USDT": 0.0, IID: 0.0},
        tolerance=1e-8,
        problems=problems,
        now_ns=lambda: 7,
        positions=(IID,),
    )

    assert problems == []
    assert expected == {"USDT": 100.0, IID: -0.5}
    assert journal.baseline_balances == {"USDT": 100.0, IID: -0.5}


def test_a_position_the_fills_do_not_explain_is_a_problem_named_as_a_position() -> None:
    journal = OrderJournal()
    journal.set_baseline({IID: 0.0}, 1)
    problems: list[str] = []

    expected = check_balances(
        journal,
        {IID: 0.05},
        {IID: 0.01},  # the journal's fills bought 0.01
        tolerance=1e-8,
        problems=problems,
        now_ns=lambda: 7,
        positions=(IID,),
    )

    assert expected == {IID: 0.01}
    assert problems == [
        f"{IID} position at the venue is 0.05 but the journal expects 0.01 (baseline 0 plus "
        "its fills); the difference +0.04 is not explained by any fill"
    ]


def test_a_short_explained_by_the_fills_passes() -> None:
    journal = OrderJournal()
    journal.set_baseline({IID: 0.01}, 1)
    problems: list[str] = []

    check_balances(
        journal,
        {IID: -0.02},
        {IID: -0.03},
        tolerance=1e-8,
        problems=problems,
        now_ns=lambda: 7,
        positions=(IID,),
    )

    assert problems == []


def test_the_summary_lists_positions_with_expectation_and_funding() -> None:
    report = ReconciliationReport(
        ok=True,
        problems=(),
        events=(),
        open_orders=0,
        recovered_fills=0,
        balances={"USDT": 4999.5},
        positions={IID: -0.02},
        expected_positions={IID: -0.02},
        funding={IID: 0.12},
    )

    assert report.summary().splitlines()[1:] == [
        "  USDT: 4999.5",
        f"  {IID} position: -0.02 (journal expects -0.02), funding +0.12",
    ]
