"""``tradegraph audit``: verify, order and export, run as a user runs them (no Ray needed)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stubs import fill, intent, submit
from tradegraph.contracts import OrderSide, TripKillSwitch
from tradegraph.observability.audit import AuditChain, chain_file_name

REPO_ROOT = Path(__file__).resolve().parents[3]


def tradegraph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    """An audit folder as a session leaves it: a strategy, Risk and a broker, then the driver's
    seal of each chain's head."""
    folder = tmp_path / "audit"
    strategy = AuditChain(folder / chain_file_name("strategy:alpha"), "strategy:alpha")
    risk = AuditChain(folder / chain_file_name("risk"), "risk")
    broker = AuditChain(folder / chain_file_name("broker:BINANCE"), "broker:BINANCE")
    for k in range(1, 4):
        strategy.record_message("published", intent(intent_id=f"alpha-{k}", ts_ns=100 * k))
        risk.record_message("published", submit(client_order_id=f"alpha-{k}", ts_ns=100 * k + 1))
        done = fill(f"{k}", OrderSide.BUY, 0.1, 100.0 + k, strategy_id="alpha", ts_ns=100 * k + 2)
        broker.record_message(
            "published", done.model_copy(update={"client_order_id": f"alpha-{k}"})
        )
        for chain in (strategy, risk, broker):
            chain.flush()
    risk.record_message("operator", TripKillSwitch(reason="drill", ts_event_ns=500, ts_init_ns=500))
    session = AuditChain(folder / chain_file_name("session"), "session")
    session.record(
        "session_stopped",
        heads={c.path.name: list(c.close()) for c in (strategy, risk, broker)},
    )
    session.close()
    return folder


def test_verify_passes_an_untouched_trail(trail: Path) -> None:
    done = tradegraph("audit", "verify", str(trail))

    assert done.returncode == 0, done.stderr
    assert "4 chains verified" in done.stdout
    assert "risk.audit.ndjson" in done.stdout


def test_verify_names_the_line_where_one_byte_was_flipped(trail: Path) -> None:
    path = trail / "broker-BINANCE.audit.ndjson"
    data = bytearray(path.read_bytes())
    at = data.index(b'"last_px":102.0') + len('"last_px":10')
    data[at] = ord("7")
    path.write_bytes(bytes(data))
    line = data[:at].count(b"\n") + 1

    done = tradegraph("audit", "verify", str(trail))

    assert done.returncode == 1
    assert f"broker-BINANCE.audit.ndjson line {line}:" in done.stdout
    assert "changed" in done.stdout
    assert "FAILED" in done.stdout


def test_verify_names_the_line_where_one_line_was_deleted(trail: Path) -> None:
    path = trail / "risk.audit.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[2]
    path.write_bytes(b"".join(lines))

    done = tradegraph("audit", "verify", str(trail))

    assert done.returncode == 1
    assert "risk.audit.ndjson line 3:" in done.stdout
    assert "deleted" in done.stdout


def test_verify_of_a_folder_without_a_trail_says_so(tmp_path: Path) -> None:
    done = tradegraph("audit", "verify", str(tmp_path))

    assert done.returncode == 3
    assert "no audit trail" in done.stderr
    assert "Traceback" not in done.stderr


def test_order_prints_one_orders_life_across_files_in_time_order(trail: Path) -> None:
    done = tradegraph("audit", "order", "alpha-2", str(trail))

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "alpha-" in line or "Order" in line]
    kinds = [
        k for line in lines for k in ("OrderIntent", "SubmitOrder", "OrderFilled") if k in line
    ]
    assert kinds == ["OrderIntent", "SubmitOrder", "OrderFilled"]
    assert "accepted" in done.stdout
    assert "102" in done.stdout
    assert "alpha-1" not in done.stdout


def test_order_of_an_unknown_id_exits_non_zero(trail: Path) -> None:
    done = tradegraph("audit", "order", "nobody-1", str(trail))

    assert done.returncode == 1
    assert "nobody-1" in done.stderr


def test_export_writes_a_csv_blotter(trail: Path, tmp_path: Path) -> None:
    out = tmp_path / "blotter.csv"

    done = tradegraph("audit", "export", str(trail), "--out", str(out))

    assert done.returncode == 0, done.stderr
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9
    fills = [r for r in rows if r["type"] == "OrderFilled"]
    assert [r["client_order_id"] for r in fills] == ["alpha-1", "alpha-2", "alpha-3"]
    assert [float(r["last_px"]) for r in fills] == [101.0, 102.0, 103.0]
    assert rows[1]["type"] == "SubmitOrder"
    assert rows[1]["decision"] == "accepted"


def test_a_backtest_with_audit_writes_a_trail_that_verifies_and_holds_its_fills(
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "run"
    ran = tradegraph(
        "backtest", "--set", "data.bars.0.limit=20000", "--out", str(out), "--no-html", "--audit"
    )

    assert ran.returncode == 0, ran.stderr
    fills = pq.read_table(out / "fills.parquet").column("fill_id").to_pylist()
    assert fills
    verified = tradegraph("audit", "verify", str(out / "audit"))
    assert verified.returncode == 0, verified.stdout
    export = tmp_path / "blotter.csv"
    assert tradegraph("audit", "export", str(out), "--out", str(export)).returncode == 0
    with export.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["fill_id"] for r in rows if r["type"] == "OrderFilled") == sorted(fills)
    assert {r["writer"] for r in rows} >= {"strategy:sma", "risk", "broker:BINANCE"}
