"""Start-up reconciliation: judging what the venue says against what the journal remembers.

The live broker reads the venue (orders, trades, balances); the functions here decide what is
unexplained. They do no I/O, so a second venue's broker reuses them as they are: each returns
the problem as one sentence for the operator, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tradegraph.adapters.base import ReconciliationReport
from tradegraph.adapters.ccxt.broker.core import REL_TOL
from tradegraph.adapters.ccxt.order_journal import JournalOrder, JournalStatus, OrderJournal

__all__ = [
    "ReconciliationReport",
    "check_balances",
    "foreign_fill_problem",
    "open_order_problem",
    "orphans_problem",
]


def orphans_problem(journal: OrderJournal, is_ours: Callable[[str], bool]) -> str | None:
    """Orders of an earlier session still open at the venue, which nothing here would count
    in the limits, cancel on a kill, or book fills of (fail closed)."""
    orphans = [
        o
        for o in journal.active_orders()
        if o.status is JournalStatus.OPEN and not is_ours(o.venue_client_id)
    ]
    if not orphans:
        return None
    listed = "; ".join(
        f"{o.client_order_id} ({o.symbol} {o.side.value} {o.leaves_qty:g} @ "
        f"{o.limit_price}, venue client id {o.venue_client_id})"
        for o in orphans
    )
    return (
        f"{len(orphans)} order(s) of an earlier session are still open at the venue "
        f"and no strategy of this session owns them: {listed}; resume that session "
        "(--resume) or cancel them at the venue"
    )


def open_order_problem(
    symbol: str,
    info: Mapping[str, Any],
    known: JournalOrder | None,
    is_ours: Callable[[Any], bool],
) -> str | None:
    """An order open at the venue (a ccxt order structure) that the journal cannot explain."""
    client_id = info.get("clientOrderId")
    if known is None:
        origin = (
            "by this session but is missing from its journal"
            if is_ours(client_id)
            else "outside this session"
        )
        return (
            f"{symbol}: open order {info.get('id')} (client id {client_id}, "
            f"{info.get('side')} {info.get('amount')} @ {info.get('price')}) was "
            f"placed {origin}"
        )
    if known.status.terminal:
        return (
            f"{symbol}: order {known.client_order_id} is {known.status.value} in "
            "the journal but open at the venue"
        )
    return None


def foreign_fill_problem(symbol: str, trade: Mapping[str, Any]) -> str:
    """A venue fill (a ccxt trade) on an order the journal does not have."""
    return (
        f"{symbol}: fill {trade.get('id')} of order {trade.get('order')} "
        f"({trade.get('side')} {trade.get('amount')} @ {trade.get('price')}) "
        "is not in the journal: someone else traded on this account"
    )


def check_balances(
    journal: OrderJournal,
    actual: Mapping[str, float],
    moved: Mapping[str, float],
    *,
    tolerance: float,
    problems: list[str],
    now_ns: Callable[[], int],
    positions: Iterable[str] = (),
) -> dict[str, float]:
    """The balances the journal expects, appending a problem per unexplained difference.

    The first reconciliation of a journal (no baseline yet) records ``actual`` less the
    journal's fills as the baseline, if nothing else is wrong, and expects ``actual``.

    Args:
        journal: Its baseline and orders.
        actual: Venue balances (total) by currency.
        moved: How the journal's fills moved each currency (fees included).
        tolerance: Absolute slack per currency (``live.balance_tolerance``).
        problems: Problems found so far; new ones are appended.
        now_ns: The clock, read for the baseline time when the journal has no orders.
        positions: Keys of ``actual`` that are net positions of perpetuals (instrument ids),
            not currencies: they are reconciled the same way and named as positions.
    """
    currencies: Iterable[str] = list(actual)
    baseline = journal.baseline_balances
    if baseline is None:
        if not problems:
            # What the account held before any fill the journal knows of.
            start = {ccy: actual[ccy] - moved[ccy] for ccy in currencies}
            created = [o.created_ns for o in journal.orders.values() if o.created_ns]
            journal.set_baseline(start, min(created, default=now_ns()))
        return dict(actual)
    expected = {ccy: float(baseline.get(ccy, 0.0)) + moved[ccy] for ccy in currencies}
    held = set(positions)
    for ccy in currencies:
        diff = actual[ccy] - expected[ccy]
        slack = tolerance + REL_TOL * max(abs(actual[ccy]), abs(expected[ccy]))
        if abs(diff) > slack:
            what = "position" if ccy in held else "balance"
            problems.append(
                f"{ccy} {what} at the venue is {actual[ccy]:.10g} but the journal expects "
                f"{expected[ccy]:.10g} (baseline {baseline.get(ccy, 0.0):.10g} plus its "
                f"fills); the difference {diff:+.10g} is not explained by any fill"
            )
    return expected
