"""``tradegraph twin``: a finished session's recorded market data replayed as a backtest and
compared with the session order by order, run as a user runs both commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import ray
import yaml

from tests.support.fake_exchange import FakeExchange
from tests.support.graphs import btc_instrument
from tests.support.live_venue import fake_live_venue
from tradegraph.config import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    PortfolioConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.config.models import SessionConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def _tradegraph(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_a_paper_sessions_twin_shows_zero_drift(tmp_path: Path) -> None:
    out = tmp_path / "session"
    paper = _tradegraph(
        *("paper", str(PAPER_YAML), "--out", str(out), "--speed", "0", "--no-html", "--json"),
        *("--address", ray.get_runtime_context().gcs_address, "--namespace", "twin-paper"),
        *("--set", f"session.state_dir={tmp_path / 'state'}"),
        *("--set", "data.bars.0.limit=400", "--set", "data.bars.1.limit=400"),
        cwd=tmp_path,
    )
    assert paper.returncode == 0, paper.stderr
    session = _last_json(paper)
    assert session["fills"] > 0, "the session must trade for the comparison to mean anything"
    assert sorted(p.name for p in (out / "recorded" / "bars" / "60s").iterdir()) == [
        "symbol=BTCUSDT",
        "symbol=ETHUSDT",
    ]

    twin = _tradegraph("twin", str(out), "--json", cwd=tmp_path)

    assert twin.returncode == 0, twin.stderr
    summary = _last_json(twin)
    assert summary["zero_drift"] is True
    assert summary["matched"] == summary["session_orders"] == summary["twin_orders"] > 0
    assert summary["twin_fills_digest"] == session["fills_digest"]
    assert summary["price_drift_bps"]["max_abs"] == 0.0
    drift = pq.read_table(out / "twin" / "drift.parquet")
    assert set(drift.column("present").to_pylist()) == {"both"}
    assert "zero drift" in twin.stdout
    assert (out / "twin" / "report.html").read_text().count("<tr>") > summary["matched"]


def test_twin_of_a_folder_that_is_no_session_says_why(tmp_path: Path) -> None:
    proc = _tradegraph("twin", str(tmp_path), cwd=tmp_path)

    assert proc.returncode != 0
    assert "session_config.json is missing" in proc.stderr


API_KEY = "twin-key-4e8a2c"
SECRET = "twin-secret-9d3f1b"
PRICE = 60_000.0
MOVED = 60_120.0  # 20 bps up while the order is held on the wire


def _live_config_file(fake: FakeExchange, tmp_path: Path) -> Path:
    live = fake_live_venue(
        fake,
        key_env="TG_TWIN_KEY",
        secret_env="TG_TWIN_SECRET",
        max_order_notional=5_000.0,
        request_timeout_s=5.0,
        poll_interval_s=0.2,
        safety_poll_interval_s=0.5,
        stale_after_s=30.0,
    )
    config = GraphConfig(
        name="live-twin",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", live=live),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=10),)),
        strategies=(
            StrategyConfig(
                id="buyer",
                class_path="tests.support.graphs:ScriptedStrategy",
                instruments=("BTCUSDT.BINANCE",),
                params={"buy_on_trade": 3, "quantity": 0.01},
            ),
        ),
        risk=RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=float(sum(fake.balances()["USDT"]))),
        session=SessionConfig(
            market_data="ccxt",
            clock="wall",
            state_dir=str(tmp_path / "state"),
            hang_timeout_s=10.0,
        ),
    )
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_unset=True)))
    return path


def test_latency_on_the_wire_shows_in_a_live_sessions_twin(tmp_path: Path) -> None:
    """The order is held 1.5 s on its way to the exchange, and the market moves 20 bps up
    meanwhile: the session pays the moved price, its twin (the recorded trades through the
    simulated venue, which fills a market order at the next trade) the price the market still
    had just after the decision, and the drift table says so."""
    out = tmp_path / "session"
    with FakeExchange(api_key=API_KEY, secret=SECRET) as fake:
        fake.set_price("BTCUSDT", str(PRICE))
        fake.slow_next(delay_s=1.5)
        env = {
            **os.environ,
            "TG_TWIN_KEY": API_KEY,
            "TG_TWIN_SECRET": SECRET,
            "TRADEGRAPH_ENABLE_LIVE": "1",
        }
        live = subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-m",
                    "tradegraph",
                    "live",
                    str(_live_config_file(fake, tmp_path)),
                ),
                *("--address", ray.get_runtime_context().gcs_address, "--namespace", "twin-live"),
                *("--out", str(out), "--duration", "90", "--no-html", "--json"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        price, after_held, after_fill = PRICE, 0, 0
        while live.poll() is None:
            after_held += 1 if fake.held_requests else 0
            if after_held == 4:  # the market goes on at PRICE a moment, then moves up
                price = MOVED
                fake.set_price("BTCUSDT", str(price))
            after_fill += 1 if fake.orders() else 0
            if after_fill == 10:  # a second for the fill to come back, then a clean stop
                live.send_signal(signal.SIGTERM)
            fake.trade("BTCUSDT", price, "0.05")  # more than the order: one trade fills it
            time.sleep(0.1)
        stdout, stderr = live.communicate()
    assert live.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert fake.held_requests == 1
    assert json.loads(stdout.strip().splitlines()[-1])["fills"] == 1

    twin = _tradegraph("twin", str(out), "--json", cwd=REPO_ROOT)

    assert twin.returncode == 0, twin.stderr
    summary = _last_json(twin)
    assert summary["matched"] == 1
    assert summary["session_only"] == summary["twin_only"] == 0
    [row] = pq.read_table(out / "twin" / "drift.parquet").to_pylist()
    assert row["twin_avg_price"] == pytest.approx(PRICE, rel=2e-4)
    assert row["session_avg_price"] >= MOVED
    assert row["price_drift_bps"] == pytest.approx(summary["price_drift_bps"]["mean"])
    assert row["price_drift_bps"] > 15.0
    assert row["time_drift_s"] > 1.0
    assert summary["drift_cost"] > 0.0
    assert summary["zero_drift"] is False
    assert "drift found" in twin.stdout
