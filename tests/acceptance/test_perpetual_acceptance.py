"""A long/short strategy on a BTCUSDT perpetual, on margin, run the way a user runs it.

``examples/perp_long_short.yaml`` on the bundled bars and the synthetic funding series, with
starting cash cut to 20,000 USDT and the first 16,000 minutes: enough to trade both ways, pay
and receive funding, and be liquidated once. The fills are pinned; funding and the liquidation
are checked against the fills and events themselves. A shorter scenario runs on both engines
(in-process and ``--engine ray``) and must give the same fills, funding and liquidation.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "perp_long_short.yaml"
OVERRIDES = ("--set", "portfolio.starting_cash=20000", "--set", "data.bars.0.limit=16000")
GOLDEN_DIGEST = "94043b0dcc4f59587acdb0470bfe717001b0292a19859b0289f903ac247065e8"


def run_cli(out: Path, *extra: str) -> dict[str, object]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            str(EXAMPLE),
            *OVERRIDES,
            *extra,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("perp")
    return out, run_cli(out)


def test_perpetual_long_short_fills_are_pinned(local_run: tuple[Path, dict[str, object]]) -> None:
    out, summary = local_run
    assert summary["fills_digest"] == GOLDEN_DIGEST
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    sides = {f["side"] for f in fills}
    assert sides == {"buy", "sell"}
    # Shorts: the position goes below zero at some point.
    position, lowest = 0.0, 0.0
    for f in fills:
        position += f["quantity"] if f["side"] == "buy" else -f["quantity"]
        lowest = min(lowest, position)
    assert lowest < 0.0


def test_funding_and_the_liquidation_reach_the_summary_and_report(
    local_run: tuple[Path, dict[str, object]],
) -> None:
    out, summary = local_run
    assert summary["liquidations"] == 1
    per_strategy = summary["per_strategy"]
    assert isinstance(per_strategy, dict)
    row = per_strategy["ls_btc"]
    assert row["liquidations"] == 1
    funding = summary["funding"]
    assert isinstance(funding, float)
    assert funding != 0.0
    assert row["funding"] == pytest.approx(funding)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    # The venue's liquidation fills carry client order ids "{venue}-L########".
    liquidation = [f for f in fills if f["client_order_id"].startswith("BINANCE-L")]
    assert len(liquidation) == 1
    assert liquidation[0]["fee"] >= 0.0
    # Value is conserved: equity = start + realized + unrealized + funding - fees.
    assert summary["final_equity"] == pytest.approx(
        20_000.0 + row["realized_pnl"] + row["unrealized_pnl"] + funding - summary["fees"],
        abs=1e-6,
    )
    html = (out / "report.html").read_text()
    assert 'id="margin"' in html
    assert "Liquidations" in html
    assert math.isfinite(float(summary["final_equity"]))  # type: ignore[arg-type]


RAY_DIGEST = "d06e9598896293747150249aaf4de2fc9c5657c9b5e9b6d6e319510d8af63406"


@pytest.mark.ray
@pytest.mark.timeout(900)
def test_ray_engine_gives_the_same_fills_funding_and_liquidation(tmp_path: Path) -> None:
    # A shorter run (the actor engine replays one event at a time): the first 1,500 minutes,
    # 3.4 BTC at 20x with maintenance at 4 %, and hourly funding, so that funding is paid and
    # the position is liquidated within it.
    hour_ns = 3_600_000_000_000
    first = 1_751_328_000_000_000_000  # 2025-07-01T00:00Z
    funding = tmp_path / "hourly_funding.parquet"
    pq.write_table(
        pa.table(
            {
                "ts": pa.array([first + k * hour_ns for k in range(1, 31)], pa.int64()),
                "funding_rate": [0.0002 if k % 2 else -0.0001 for k in range(1, 31)],
            }
        ),
        funding,
    )
    scenario = (
        "--set", "data.bars.0.limit=1500",
        "--set", "strategies.0.params.quantity=3.4",
        "--set", "venues.0.account.maintenance_margin_rate=0.04",
        "--set", f"data.funding.0.path={funding}",
        "--no-html",
    )  # fmt: skip
    local = run_cli(tmp_path / "local", *scenario)
    actors = run_cli(tmp_path / "ray", *scenario, "--engine", "ray")
    assert local["liquidations"] == 1
    assert local["funding"] != 0.0
    assert actors["fills_digest"] == local["fills_digest"] == RAY_DIGEST
    for key in ("funding", "liquidations", "final_equity", "fees", "fills", "per_strategy"):
        assert actors[key] == local[key], key
