"""``tradegraph data instruments`` through the real ccxt client against the fake Binance over
real HTTP, then a backtest whose config includes the file it wrote. No Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
import yaml

from tests.support.fake_exchange import FakeExchange
from tradegraph.adapters.ccxt.instruments import fetch_instruments
from tradegraph.config.loader import default_config_text
from tradegraph.config.models import InstrumentConfig
from tradegraph.data.catalog import resolve_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        yield exchange


def _tradegraph(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
    )


def _instruments(
    fake: FakeExchange, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    ccxt_config = tmp_path / "ccxt.json"
    ccxt_config.write_text(json.dumps({"enableRateLimit": False}))
    return _tradegraph(
        "data",
        "instruments",
        "--exchange",
        "binance",
        "--url-override",
        f"api.public={fake.base_url}/api/v3",
        "--ccxt-option",
        "fetchMarkets.types=[spot]",  # YAML, as --set reads it (data download's tests use JSON)
        "--ccxt-config",
        str(ccxt_config),
        *args,
    )


def _filters(symbol: str) -> dict[str, dict[str, Any]]:
    """The trading rules of ``symbol`` in the exchangeInfo file the fake exchange serves."""
    info = json.loads(resolve_path("sample:exchangeinfo").read_text())
    (market,) = (s for s in info["symbols"] if s["symbol"] == symbol)
    return {f["filterType"]: f for f in market["filters"]}


def test_instruments_are_written_from_the_exchanges_trading_rules(
    fake: FakeExchange, tmp_path: Path
) -> None:
    out = tmp_path / "defs" / "binance.yaml"

    result = _instruments(fake, tmp_path, "--symbols", "BTC/USDT,ETHUSDT", "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"2 instruments written to {out}\n"
    written = yaml.safe_load(out.read_text())["instruments"]
    assert [(i["symbol"], i["venue"], i["base"], i["quote"]) for i in written] == [
        ("BTCUSDT", "BINANCE", "BTC", "USDT"),
        ("ETHUSDT", "BINANCE", "ETH", "USDT"),
    ]
    for instrument in written:
        rules = _filters(instrument["symbol"])
        assert instrument["tick_size"] == float(rules["PRICE_FILTER"]["tickSize"])
        assert instrument["lot_size"] == float(rules["LOT_SIZE"]["stepSize"])
        assert instrument["min_quantity"] == float(rules["LOT_SIZE"]["minQty"])
        assert instrument["min_notional"] == float(rules["MIN_NOTIONAL"]["minNotional"])
        assert (instrument["maker_fee"], instrument["taker_fee"]) == (0.001, 0.001)
    assert {r.path for r in fake.requests()} >= {"/api/v3/exchangeInfo"}


def test_a_backtest_including_the_written_file_trades_as_the_default_config(
    fake: FakeExchange, tmp_path: Path
) -> None:
    written = _instruments(
        fake, tmp_path, "--symbols", "BTC/USDT", "--out", str(tmp_path / "cfg" / "btc.yaml")
    )
    assert written.returncode == 0, written.stderr
    raw = yaml.safe_load(default_config_text())
    del raw["instruments"]
    config = tmp_path / "cfg" / "bt.yaml"
    config.write_text(yaml.safe_dump({**raw, "instruments_file": "btc.yaml"}, sort_keys=False))
    limit = ["--set", "data.bars.0.limit=6000", "--json"]

    included = _tradegraph(
        "backtest", str(config), "--out", str(tmp_path / "a"), *limit, cwd=tmp_path
    )
    default = _tradegraph("backtest", "--out", str(tmp_path / "b"), *limit, cwd=tmp_path)

    assert included.returncode == 0, included.stderr
    assert default.returncode == 0, default.stderr
    ran = json.loads(included.stdout.strip().splitlines()[-1])
    expected = json.loads(default.stdout.strip().splitlines()[-1])
    assert ran["fills"] > 0
    assert ran["fills_digest"] == expected["fills_digest"]


def test_unknown_symbol_exits_2_with_one_line(fake: FakeExchange, tmp_path: Path) -> None:
    result = _instruments(fake, tmp_path, "--symbols", "BTC/USDT,DOGE/BTC")

    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown symbol 'DOGE/BTC' on binance")
    assert result.stderr.count("\n") == 1


def test_perpetual_definitions_carry_contract_size_and_funding_interval(
    fake: FakeExchange, tmp_path: Path
) -> None:
    fake.set_funding_interval("ETHUSDT", 4)
    ccxt_config = tmp_path / "usdm.json"
    ccxt_config.write_text(json.dumps(fake.ccxt_config(futures=True)))
    out = tmp_path / "perps.yaml"

    result = _tradegraph(
        "data",
        "instruments",
        "--exchange",
        "binanceusdm",
        "--ccxt-config",
        str(ccxt_config),
        "--symbols",
        "BTC/USDT:USDT,ETHUSDT-PERP",
        "--out",
        str(out),
    )

    assert result.returncode == 0, result.stderr
    btc, eth = yaml.safe_load(out.read_text())["instruments"]
    assert (btc["symbol"], btc["kind"], btc["base"], btc["quote"], btc["settle"]) == (
        "BTCUSDT-PERP",
        "perpetual",
        "BTC",
        "USDT",
        "",
    )
    assert (btc["contract_size"], btc["tick_size"], btc["lot_size"]) == (1.0, 0.1, 0.001)
    assert (btc["min_notional"], btc["maker_fee"], btc["taker_fee"]) == (100.0, 0.0002, 0.0005)
    assert (btc["funding_interval_h"], eth["funding_interval_h"]) == (8.0, 4.0)
    # Binance gives margin tiers to an authenticated client only; this one has no keys.
    assert btc["margin_tiers"] == []
    assert eth["symbol"] == "ETHUSDT-PERP"
    assert "/fapi/v1/leverageBracket" not in {r.path for r in fake.requests()}
    loaded = InstrumentConfig.model_validate(btc).build()
    assert loaded.ccxt_symbol == "BTC/USDT:USDT"


def test_an_authenticated_client_adds_the_margin_tiers(fake: FakeExchange) -> None:
    exchange = ccxt.binanceusdm(fake.ccxt_config(futures=True))

    [btc] = fetch_instruments(exchange, ["BTC/USDT:USDT"], "BINANCE")

    tiers = btc.margin_tiers
    assert [t.max_notional for t in tiers] == [50_000, 600_000, 3_000_000, 12_000_000]
    assert tiers[0].initial_rate == pytest.approx(1 / 125)
    assert (tiers[1].maintenance_rate, tiers[1].maintenance_amount) == (0.005, 50.0)
    assert btc.max_leverage == 125.0
