"""Paper sessions: the actor graph in real time, operator commands, faults and recovery."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import ray

from tradegraph.actors.ray_runtime import ActorGraphError
from tradegraph.actors.session import LiveSession, SessionOutcome, graph_status, operator_command
from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import OrderFilled, OrderSide, SubmitOrder
from tradegraph.engine.backtest import run_backtest

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def paper_config(tmp_path: Path, namespace: str, *overrides: str) -> GraphConfig:
    """The paper example on its first 300 minutes of each symbol, in its own namespace."""
    return load_config(
        PAPER_YAML,
        [
            "data.bars.0.limit=300",
            "data.bars.1.limit=300",
            "session.speed=0",
            f"session.namespace={namespace}",
            f"session.state_dir={tmp_path / 'state'}",
            "session.hang_timeout_s=10",
            *overrides,
        ],
    )


def resting_config(tmp_path: Path, namespace: str, *overrides: str) -> GraphConfig:
    """One strategy keeping a limit buy resting far below the market, replayed slowly."""
    config = paper_config(tmp_path, namespace, "session.speed=600", *overrides)
    strategy = config.strategies[0].model_copy(
        update={
            "id": "rester",
            "class_path": "resting_bid",
            "params": {"quantity": 0.01},
        }
    )
    return config.model_copy(update={"strategies": (strategy,)})


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.05)


def finish(session: LiveSession, timeout_s: float = 60.0) -> SessionOutcome:
    ended_by = session.run(timeout_s)
    assert ended_by == "replay_finished"
    return session.stop(ended_by)


def test_causal_paper_replay_gives_the_backtests_fills(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = paper_config(tmp_path, "paper-equal")
    backtest = run_backtest(config)

    outcome = finish(started(config))

    assert outcome.result is not None
    assert len(backtest.fills) > 5
    assert outcome.market_events == backtest.bars == 600
    assert outcome.result.fills_digest == backtest.fills_digest
    assert outcome.result.final_equity == pytest.approx(backtest.final_equity, rel=1e-12)
    assert outcome.result.orders == backtest.orders
    assert outcome.halted == ""


def test_operator_kill_cancels_open_orders_and_resume_lets_trading_restart(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    session = started(resting_config(tmp_path, "paper-kill"))
    broker = "broker:BINANCE"
    wait_until(lambda: session.status(broker).details["open_orders"] == 1)

    tripped = operator_command("kill", "drill", namespace="paper-kill")

    assert tripped.details["kill_switch_tripped"] is True
    wait_until(lambda: session.status(broker).details["open_orders"] == 0, 5.0)
    wait_until(lambda: session.status("strategy:rester").details["open_orders"] == 0, 5.0)
    bars_at_quiet = session.status("md").details["published"]
    wait_until(lambda: session.status("md").details["published"] >= bars_at_quiet + 10)
    assert session.status(broker).details["open_orders"] == 0

    reset = operator_command("resume", "drill over", namespace="paper-kill")

    assert reset.details["kill_switch_tripped"] is False
    wait_until(lambda: session.status(broker).details["open_orders"] == 1)
    status = graph_status("paper-kill")
    assert set(status) >= {"md", "risk", "portfolio", broker, "strategy:rester", "control"}
    risk = status["risk"]
    assert isinstance(risk, dict)
    assert risk["details"]["kill_switch_tripped"] is False
    control = status["control"]
    assert isinstance(control, dict)
    assert control["details"]["counts"]["KillSwitchChanged"] == 2


def test_killed_portfolio_strategy_and_risk_recover_to_the_uninterrupted_run(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = paper_config(tmp_path, "paper-recover", "session.speed=3000")
    uninterrupted = run_backtest(config)
    session = started(config)
    wait_until(lambda: len(submitted_by_risk(session)) >= 2)
    restarted = ("portfolio", "strategy:sma_btc", "strategy:meanrev_eth", "risk")
    victims = [session.status(cid).pid for cid in restarted]
    before = submitted_by_risk(session)

    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    outcome = finish(session)

    assert outcome.statuses["portfolio"].recovered
    assert outcome.statuses["strategy:sma_btc"].recovered
    assert outcome.statuses["risk"].recovered
    assert outcome.statuses["portfolio"].pid not in victims
    assert outcome.halted == ""
    assert outcome.portfolio is not None
    result = outcome.result
    assert result is not None
    assert result.fills_digest == uninterrupted.fills_digest
    assert outcome.portfolio.final_equity == pytest.approx(uninterrupted.final_equity, rel=1e-12)
    details = outcome.statuses["portfolio"].details
    expected_cash = cash_after(uninterrupted.fills, uninterrupted.starting_cash)
    assert details["cash"] == pytest.approx(expected_cash, rel=1e-12)
    # The order table keeps what the restarted actors had published before they died.
    columns = ["client_order_id", "status", "quantity", "limit_price"]
    orders = result.ledger.to_table().select(columns).to_pylist()
    expected = uninterrupted.ledger.to_table().select(columns).to_pylist()
    assert orders == expected
    assert 2 <= len(before) < uninterrupted.orders
    assert set(before) <= {row["client_order_id"] for row in orders}


def submitted_by_risk(session: LiveSession) -> list[str]:
    messages = ray.get(session.hosts["risk"].published_orders.remote(), timeout=10)
    return [m.client_order_id for m in messages if isinstance(m, SubmitOrder)]


def cash_after(fills: Sequence[OrderFilled], starting_cash: float) -> float:
    cash = starting_cash
    for fill in fills:
        sign = -1.0 if fill.side is OrderSide.BUY else 1.0
        cash += sign * fill.last_qty * fill.last_px - fill.fee
    return cash


def test_dead_broker_halts_trading_with_its_reason(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = resting_config(
        tmp_path, "paper-dead", "session.max_restarts=0", "session.hang_timeout_s=2"
    )
    session = started(config)
    wait_until(lambda: session.status("broker:BINANCE").details["open_orders"] == 1)

    os.kill(session.status("broker:BINANCE").pid, signal.SIGKILL)
    ended_by = session.run(20.0)
    outcome = session.stop(ended_by)

    assert "broker:BINANCE" in outcome.halted
    assert outcome.statuses["risk"].details["kill_switch_tripped"] is True
    assert "broker:BINANCE" in outcome.statuses["risk"].details["kill_switch_reason"]


def test_hung_broker_halts_trading(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = resting_config(tmp_path, "paper-hung", "session.hang_timeout_s=1.5")
    session = started(config)
    wait_until(lambda: session.status("broker:BINANCE").details["open_orders"] == 1)
    pid = session.status("broker:BINANCE").pid

    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: bool(session.status("risk").details["kill_switch_tripped"]), 15.0)
        risk = session.status("risk")
    finally:
        os.kill(pid, signal.SIGCONT)

    assert "broker:BINANCE" in risk.details["kill_switch_reason"]
    assert "halted" in risk.details["kill_switch_reason"]


def paper_command(tmp_path: Path, namespace: str, *extra: str) -> list[str]:
    """``tradegraph paper`` on the example, on this session's cluster, state and outputs in
    ``tmp_path``."""
    return [
        sys.executable,
        "-m",
        "tradegraph",
        "paper",
        str(PAPER_YAML),
        "--address",
        ray.get_runtime_context().gcs_address,
        "--namespace",
        namespace,
        "--set",
        f"session.state_dir={tmp_path / 'state'}",
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]


def test_paper_command_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = paper_command(tmp_path, "paper-sigterm", "--json")
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "paper session" in first

    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent

    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert took < 3.0
    assert "stopped by signal" in stdout
    assert (out / "fills.parquet").exists()
    assert (out / "session.json").exists()
    assert (tmp_path / "state" / "paper-demo" / "portfolio" / "snapshot.json").exists()


def _scrape(url: str) -> dict[str, float]:
    """``name{labels}`` -> value of every tradegraph sample at ``url``."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tradegraph_"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def _total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


def test_paper_command_serves_the_graphs_metrics_on_its_own_port(tmp_path: Path) -> None:
    cmd = paper_command(tmp_path, "paper-metrics", "--speed", "3000", "--metrics-port", "0")
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr

    def drain() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url:
            found = re.search(r"metrics at (http://\S+/metrics)", lines.get(timeout=60))
            url = found.group(1) if found else ""
            assert time.monotonic() < deadline, "no metrics address printed"
        wait_until(lambda: _total(_scrape(url), "tradegraph_market_events_total") > 0, 30)
        first = _scrape(url)
        wait_until(
            lambda: (
                _total(_scrape(url), "tradegraph_market_events_total")
                > _total(first, "tradegraph_market_events_total")
            ),
            10,
        )
        # The broker's latency histogram fills once the first order reaches it.
        wait_until(lambda: _total(_scrape(url), "tradegraph_tick_to_order_seconds_count") > 0, 30)
        later = _scrape(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)

    assert proc.returncode == 0
    assert 'tradegraph_market_events_total{instrument="BTCUSDT.BINANCE",kind="bar"}' in later
    assert 'tradegraph_market_events_total{instrument="ETHUSDT.BINANCE",kind="bar"}' in later
    # The portfolio's gauges and the broker's latency histogram come from their own actors.
    assert later["tradegraph_equity"] > 0
    assert 'tradegraph_queue_depth{component="md"}' in later
    assert later['tradegraph_tick_to_order_seconds_bucket{le="+Inf"}'] >= 1


def test_frozen_market_data_halts_trading_with_a_stale_feed_reason(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = resting_config(tmp_path, "paper-md-hung", "session.hang_timeout_s=1.5")
    session = started(config)
    wait_until(lambda: session.status("broker:BINANCE").details["open_orders"] == 1)
    pid = session.status("md").pid

    os.kill(pid, signal.SIGSTOP)
    try:
        ended_by = session.run(20.0)
        risk = session.status("risk")
    finally:
        os.kill(pid, signal.SIGCONT)
    outcome = session.stop(ended_by)

    assert ended_by == "halted"
    assert "md" in outcome.halted
    assert "market data is stale" in outcome.halted
    assert risk.details["kill_switch_tripped"] is True
    assert "market data is stale" in risk.details["kill_switch_reason"]
    assert outcome.statuses["broker:BINANCE"].details["open_orders"] == 0


@pytest.mark.parametrize(
    ("case", "snapshot_interval_s"), [("before-snapshot", 3600.0), ("after-snapshot", 1.0)]
)
def test_killed_md_resumes_its_replay_exactly_once(
    tmp_path: Path,
    started: Callable[[GraphConfig], LiveSession],
    case: str,
    snapshot_interval_s: float,
) -> None:
    config = paper_config(
        tmp_path,
        f"paper-md-{case}",
        "session.speed=3000",
        f"session.snapshot_interval_s={snapshot_interval_s}",
    )
    uninterrupted = run_backtest(config)
    # The reference session keeps its state apart: a state directory serves one session.
    reference_session = config.session.model_copy(update={"state_dir": str(tmp_path / "ref")})
    reference = finish(
        started(config.model_copy(update={"name": "reference", "session": reference_session}))
    )
    session = started(config)
    md_state = tmp_path / "state" / "paper-demo" / "md" / "snapshot.json"
    wait_until(lambda: session.status("md").details["published"] > 150)
    if case == "after-snapshot":
        wait_until(lambda: md_state.exists())
        wait_until(lambda: session.status("md").details["published"] > 300)
    else:
        assert not md_state.exists()
    victim = session.status("md").pid

    os.kill(victim, signal.SIGKILL)
    outcome = finish(session)

    assert outcome.statuses["md"].recovered
    assert outcome.statuses["md"].pid != victim
    assert outcome.halted == ""
    assert outcome.market_events == uninterrupted.bars == 600
    assert outcome.result is not None
    assert len(uninterrupted.fills) > 5
    assert outcome.result.fills_digest == uninterrupted.fills_digest
    assert outcome.result.orders == uninterrupted.orders
    # Every receiver took each bar once: as many messages as in an uninterrupted session.
    for cid in ("broker:BINANCE", "risk", "portfolio", "strategy:sma_btc"):
        assert outcome.statuses[cid].messages_in == reference.statuses[cid].messages_in, cid


def test_md_restarted_without_recovery_state_halts_trading(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = paper_config(tmp_path, "paper-md-nostate", "session.speed=3000")
    config = config.model_copy(
        update={"session": config.session.model_copy(update={"state_dir": None})}
    )
    session = started(config)
    wait_until(lambda: session.status("md").details["published"] > 150)

    os.kill(session.status("md").pid, signal.SIGKILL)
    ended_by = session.run(30.0)
    outcome = session.stop(ended_by)

    assert ended_by == "halted"
    assert "md" in outcome.halted
    assert outcome.statuses["risk"].details["kill_switch_tripped"] is True


def test_killed_portfolio_restores_its_curve_and_fills_from_the_history_files(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    config = paper_config(
        tmp_path, "paper-history", "session.speed=3000", "session.snapshot_interval_s=0.2"
    )
    uninterrupted = run_backtest(config)
    session = started(config)
    folder = tmp_path / "state" / "paper-demo" / "portfolio"
    wait_until(lambda: session.status("md").details["published"] > 300)
    wait_until(lambda: (folder / "curve.ndjson").exists())

    os.kill(session.status("portfolio").pid, signal.SIGKILL)
    outcome = finish(session)

    assert outcome.statuses["portfolio"].recovered
    assert outcome.halted == ""
    assert outcome.portfolio is not None
    assert outcome.result is not None
    assert outcome.result.fills_digest == uninterrupted.fills_digest
    assert outcome.portfolio.ts_ns.tolist() == uninterrupted.ts_ns.tolist()
    assert outcome.portfolio.equity == pytest.approx(uninterrupted.equity, rel=1e-12)
    # The last snapshot holds the curve's last point and no fill; the files hold the rest.
    state = json.loads((folder / "snapshot.json").read_text())["state"]["component"]
    assert len(state["curve_ts_ns"]) == 1
    assert state["fills"] == []
    assert state["history"]["curve_points"] == len(uninterrupted.ts_ns) - 1
    assert state["history"]["fills"] == len(uninterrupted.fills)


def test_second_session_on_the_same_state_dir_is_refused_while_the_first_runs(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    first = started(resting_config(tmp_path, "paper-lock-1"))
    second = LiveSession(resting_config(tmp_path, "paper-lock-2"), resume=True)

    with pytest.raises(ActorGraphError, match=r"state_dir .* is in use by .*paper-demo"):
        second.start()

    assert second.hosts == {}
    assert first.status("risk").halted == ""
    first.stop("test")


def _wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written within {timeout_s} s"
        time.sleep(0.1)


def test_killed_paper_driver_leaves_its_outputs_and_resumes_only_when_asked(
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    slow = ["--speed", "1200", "--write-every", "0.5", "--no-html"]
    bars = ["--set", "data.bars.0.limit=400", "--set", "data.bars.1.limit=400"]
    cmd = paper_command(tmp_path, "paper-kill9", *slow, *bars)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(out / "summary.json")  # written after orders, fills and equity
        deadline = time.monotonic() + 60
        while pq.read_table(out / "fills.parquet").num_rows < 1:
            assert time.monotonic() < deadline, "no fills written while running"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    fills_before = pq.read_table(out / "fills.parquet").column("fill_id").to_pylist()
    orders_before = set(pq.read_table(out / "orders.parquet").column("client_order_id").to_pylist())

    refused = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    resume = paper_command(tmp_path, "paper-kill9", "--resume", "--speed", "0", "--no-html", *bars)
    resumed = _run_until_names_free(resume)

    assert refused.returncode != 0
    assert "--resume" in refused.stderr
    assert "--fresh" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert resumed.returncode == 0, resumed.stderr
    fills_after = pq.read_table(out / "fills.parquet").column("fill_id").to_pylist()
    orders_after = set(pq.read_table(out / "orders.parquet").column("client_order_id").to_pylist())
    assert fills_after[: len(fills_before)] == fills_before
    assert len(fills_after) > len(fills_before)
    assert len(set(fills_after)) == len(fills_after)
    assert orders_before <= orders_after


def _run_until_names_free(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; while Ray is still removing the killed driver's actors, their names are
    taken, so try again for a little while."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
        if "is another session running" not in done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(1.0)
