"""A backtest cannot spend cash or sell base the account does not hold: the ``tradegraph``
command run as a user runs it, its refusals read back from ``orders.parquet``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, params: dict[str, object]) -> Path:
    """1 000 USDT of cash, every exposure limit off, a script that trades on its 5th bar."""
    config = {
        "name": "overspend",
        "instruments": [
            {
                "symbol": "BTCUSDT",
                "venue": "BINANCE",
                "base": "BTC",
                "quote": "USDT",
                "tick_size": 0.01,
                "lot_size": 0.00001,
                "min_quantity": 0.00001,
                "min_notional": 10.0,
            }
        ],
        "venues": [{"name": "BINANCE"}],
        "data": {"bars": [{"path": "sample:BTCUSDT_1m", "limit": 20}]},
        "strategies": [
            {
                "id": "greedy",
                "class_path": "tests.support.graphs:ScriptedStrategy",
                "instruments": ["BTCUSDT.BINANCE"],
                "params": params,
            }
        ],
        "risk": {"price_band_pct": None},
        "portfolio": {"starting_cash": 1000, "currency": "USDT"},
        "report": {"html": False},
    }
    path = tmp_path / "overspend.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _run(
    tmp_path: Path, params: dict[str, object]
) -> tuple[dict[str, object], list[dict[str, object]]]:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            str(_config(tmp_path, params)),
            "--out",
            str(out),
            "--json",
            "--no-html",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return summary, pq.read_table(out / "orders.parquet").to_pylist()


@pytest.mark.parametrize(
    ("params", "asset"),
    [
        ({"buy_on_bar": 5, "quantity": 14.95}, "USDT"),
        ({"sell_on_bar": 5, "quantity": 14.95}, "BTC"),
    ],
    ids=["buy-14.95-btc-with-1000-usdt", "sell-14.95-btc-from-a-flat-account"],
)
def test_backtest_refuses_what_the_cash_account_cannot_pay(
    tmp_path: Path, params: dict[str, object], asset: str
) -> None:
    summary, orders = _run(tmp_path, params)

    assert summary["fills"] == 0
    assert summary["risk_rejections"] == 1
    assert summary["final_equity"] == pytest.approx(1000.0, abs=1e-9)
    [order] = orders
    assert order["status"] == "risk_rejected"
    assert order["quantity"] == pytest.approx(14.95)
    reason = str(order["reason"])
    assert reason.startswith("insufficient_balance: ")
    assert f" {asset} " in reason
    assert "cash account at BINANCE" in reason
