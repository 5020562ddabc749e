"""``tradegraph data download --kind funding`` as a user runs it (a subprocess), through the real
ccxt ``binanceusdm`` client against the fake exchange's ``/fapi/v1/fundingRate``. No Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.fake_exchange import FakeExchange

ROOT = Path(__file__).resolve().parents[2]
EIGHT_HOURS_MS = 8 * 3_600_000
JULY_1_MS = 1_751_328_000_000
FUNDING_PATH = "/fapi/v1/fundingRate"


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        # Ten days of funding every eight hours, the rate and the mark price known per event.
        exchange.set_funding_history(
            "BTCUSDT",
            [
                (JULY_1_MS + k * EIGHT_HOURS_MS, f"{(k - 7) * 0.00001:.5f}", 60_000 + 10 * k)
                for k in range(30)
            ],
        )
        yield exchange


def _download(
    fake: FakeExchange, tmp_path: Path, *args: str, since: str = "2025-07-01"
) -> subprocess.CompletedProcess[str]:
    ccxt_config = tmp_path / "ccxt.json"
    ccxt_config.write_text(json.dumps(fake.ccxt_config(futures=True, api_key="", secret="")))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "data",
            "download",
            "--kind",
            "funding",
            "--exchange",
            "binanceusdm",
            "--ccxt-config",
            str(ccxt_config),
            "--since",
            since,
            "--out",
            str(tmp_path / "funding"),
            "--page-limit",
            "8",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )


def _stored(tmp_path: Path) -> tuple[list[int], list[float], list[float]]:
    table = pq.read_table(tmp_path / "funding" / "BTCUSDT-PERP.parquet")
    assert table.schema.field("ts").type == "int64"
    assert table.schema.field("funding_rate").type == "double"
    assert table.schema.field("mark_price").type == "double"
    return (
        table.column("ts").to_pylist(),
        table.column("funding_rate").to_pylist(),
        table.column("mark_price").to_pylist(),
    )


def test_funding_history_is_paged_into_one_file_per_perpetual(
    fake: FakeExchange, tmp_path: Path
) -> None:
    result = _download(fake, tmp_path, "--symbol", "BTC/USDT:USDT", "--until", "2025-07-06")

    assert result.returncode == 0, result.stderr
    ts, rates, marks = _stored(tmp_path)
    # 2025-07-01 00:00 up to (not including) 07-06 00:00: fifteen events, in ns.
    assert ts == [(JULY_1_MS + k * EIGHT_HOURS_MS) * 1_000_000 for k in range(15)]
    assert rates == pytest.approx([(k - 7) * 0.00001 for k in range(15)])
    assert marks == [60_000.0 + 10 * k for k in range(15)]
    requests = fake.requests(FUNDING_PATH)
    assert len(requests) == 2  # pages of 8: 8 + 7 (the second ends past --until)
    assert [r.params["limit"] for r in requests] == ["8", "8"]
    assert requests[1].params["startTime"] == str(JULY_1_MS + 7 * EIGHT_HOURS_MS + 1)
    assert "BTCUSDT-PERP funding from binanceusdm: 15 new events" in result.stdout


def test_a_rerun_fetches_only_what_is_missing(fake: FakeExchange, tmp_path: Path) -> None:
    first = _download(fake, tmp_path, "--symbol", "BTCUSDT", "--until", "2025-07-04")
    assert first.returncode == 0, first.stderr
    fake.clear_requests()

    again = _download(
        fake, tmp_path, "--symbol", "BTCUSDT", "--since", "2025-07-01", "--until", "2025-07-06"
    )

    assert again.returncode == 0, again.stderr
    ts, _, _ = _stored(tmp_path)
    assert ts == [(JULY_1_MS + k * EIGHT_HOURS_MS) * 1_000_000 for k in range(15)]
    starts = [int(r.params["startTime"]) for r in fake.requests(FUNDING_PATH)]
    # Nothing before the last stored event (07-03 16:00) is asked for again.
    assert starts[0] == JULY_1_MS + 8 * EIGHT_HOURS_MS + 1
    assert "6 new events" in again.stdout
    assert "9 already on disk" in again.stdout


def test_a_5xx_on_the_funding_endpoint_is_retried_and_nothing_is_lost(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.fail_next(1, status=503, retry_after_s=None, path=FUNDING_PATH, after=1)

    result = _download(fake, tmp_path, "--symbol", "BTC/USDT:USDT", "--until", "2025-07-06")

    assert result.returncode == 0, result.stderr
    assert [r.status for r in fake.requests(FUNDING_PATH)] == [200, 503, 200]
    assert len(_stored(tmp_path)[0]) == 15


def test_a_network_failure_exits_1_in_one_line_and_keeps_the_pages_stored(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.disconnect_next(5, path=FUNDING_PATH, after=1)

    result = _download(
        fake, tmp_path, "--symbol", "BTC/USDT:USDT", "--until", "2025-07-06", "--retries", "1"
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: network failure talking to binanceusdm")
    assert "rerun the same command to resume" in result.stderr
    assert result.stderr.count("\n") == 1
    assert len(_stored(tmp_path)[0]) == 8


def test_a_spot_market_has_no_funding_exit_2(fake: FakeExchange, tmp_path: Path) -> None:
    ccxt_config = tmp_path / "spot.json"
    ccxt_config.write_text(json.dumps(fake.ccxt_config(api_key="", secret="")))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "data",
            "download",
            "--kind",
            "funding",
            "--exchange",
            "binance",
            "--ccxt-config",
            str(ccxt_config),
            "--symbol",
            "BTC/USDT",
            "--since",
            "2025-07-01",
            "--out",
            str(tmp_path / "funding"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: --symbol 'BTC/USDT' is BTC/USDT, not a perpetual swap")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "funding").exists()
