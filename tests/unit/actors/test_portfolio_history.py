"""The portfolio's snapshot on disk stays the same size; its curve and fills go to files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.portfolio.builders import BTC, MINUTE_NS, bar, fill, make_portfolio
from tradegraph.actors.state_store import JournalError, PortfolioHistory
from tradegraph.contracts import OrderSide
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio


def stored(portfolio: Portfolio) -> dict[str, Any]:
    """The portfolio's state in the form a host persists it."""
    return portfolio.snapshot().model_dump(mode="json")


def trade(portfolio: Portfolio, clock: SimClock, start: int, count: int) -> None:
    """``count`` minutes of BTC bars with a fill every tenth."""
    for k in range(start, start + count):
        ts = (k + 1) * MINUTE_NS
        clock.advance_to(ts)
        portfolio.handle(bar(BTC, 100.0 + k % 7, ts))
        if k % 10 == 0:
            side = OrderSide.BUY if k % 20 == 0 else OrderSide.SELL
            portfolio.handle(fill(f"f{k}", side, 0.01, 100.0 + k % 7, fee=0.01, ts_ns=ts))


def written_size(history: PortfolioHistory, portfolio: Portfolio) -> int:
    return len(json.dumps(history.split(stored(portfolio))))


def test_snapshot_stays_the_same_size_as_the_session_runs_on(tmp_path: Path) -> None:
    portfolio, clock, _ = make_portfolio()
    history = PortfolioHistory(tmp_path)
    trade(portfolio, clock, 0, 1000)
    after_n = written_size(history, portfolio)

    trade(portfolio, clock, 1000, 3000)
    after_4n = written_size(history, portfolio)

    assert len(json.dumps(stored(portfolio))) > 10 * after_4n
    assert after_4n < 1.1 * after_n


def test_restore_from_the_split_snapshot_gives_the_whole_portfolio(tmp_path: Path) -> None:
    portfolio, clock, _ = make_portfolio()
    history = PortfolioHistory(tmp_path)
    trade(portfolio, clock, 0, 500)
    history.split(stored(portfolio))
    trade(portfolio, clock, 500, 500)
    written = json.loads(json.dumps(history.split(stored(portfolio))))
    # Lines written after the last snapshot (a crash before it was renamed into place).
    trade(portfolio, clock, 1000, 100)
    history.split(stored(portfolio))

    restored, _, _ = make_portfolio()
    reader = PortfolioHistory(tmp_path)
    restored.restore(Portfolio.State.model_validate(reader.join(written)))
    trade(restored, SimClock(1000 * MINUTE_NS), 1000, 100)
    again = reader.split(stored(restored))

    assert restored.snapshot() == portfolio.snapshot()
    assert reader.join(again) == stored(portfolio)


def test_history_files_shorter_than_the_snapshot_names_are_refused(tmp_path: Path) -> None:
    portfolio, clock, _ = make_portfolio()
    history = PortfolioHistory(tmp_path)
    trade(portfolio, clock, 0, 100)
    written = history.split(stored(portfolio))
    (tmp_path / "fills.ndjson").write_text("", encoding="utf-8")

    with pytest.raises(JournalError, match=r"fills\.ndjson: 0 lines"):
        PortfolioHistory(tmp_path).join(written)
