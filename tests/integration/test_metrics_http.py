"""Graph metrics over real HTTP: an in-process backtest served on ``/metrics`` and scraped."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.graphs import graph_config
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, RiskConfig, StrategyConfig
from tradegraph.engine import kernel as kernel_module
from tradegraph.engine.backtest import collect_result, load_bar_stream
from tradegraph.engine.kernel import LocalKernel
from tradegraph.observability.metrics import GraphMetrics
from tradegraph.observability.prometheus import PrometheusSink, serve_metrics

BARS = 3_000
BTC = "BTCUSDT.BINANCE"
_SAMPLE = re.compile(r"^(?P<name>\w+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def _config() -> GraphConfig:
    """SMA(10)/SMA(30) trading 0.01 BTC on real minutes, and a strategy whose 5 BTC order
    Risk refuses (max order notional)."""
    strategies = (
        StrategyConfig(
            id="sma",
            class_path="sma_cross",
            instruments=(BTC,),
            params={"fast_period": 10, "slow_period": 30, "quantity": 0.01},
        ),
        StrategyConfig(
            id="whale",
            class_path="test_script",
            instruments=(BTC,),
            params={"buy_on_bar": 100, "quantity": 5.0},
        ),
    )
    config = graph_config(
        strategies, risk=RiskConfig(price_band_pct=None, max_order_notional=50_000.0)
    )
    data = DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m", limit=BARS),))
    return config.model_copy(update={"data": data})


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in body.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        samples.setdefault(match["name"], []).append((labels, float(match["value"])))
    return samples


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


def test_backtest_metrics_move_while_the_run_goes_and_add_up_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel_module, "REPLAY_CHUNK", 1_000)
    config = _config()
    sink = PrometheusSink()
    kernel = LocalKernel(config, load_bar_stream(config), metrics=GraphMetrics(sink))

    with serve_metrics(sink.registry, "127.0.0.1", 0) as server:
        kernel.start()
        kernel.replay(0, 2_000)
        during = _scrape(server.url)
        kernel.replay(2_000, BARS)
        kernel.stop()
        after = _scrape(server.url)
    result = collect_result(config, kernel, kernel.stream, 0.0)

    assert _total(during, "tradegraph_market_events_total") == 2_000
    assert _total(after, "tradegraph_market_events_total") == result.bars == BARS
    assert 0 < _total(during, "tradegraph_fills_total") < _total(after, "tradegraph_fills_total")
    assert _total(after, "tradegraph_fills_total") == len(result.fills)
    assert _total(after, "tradegraph_filled_notional_total") == pytest.approx(
        sum(f.notional for f in result.fills)
    )
    assert _total(after, "tradegraph_order_intents_total") == result.intents
    rejections = after["tradegraph_rejections_total"]
    assert [(labels, value) for labels, value in rejections] == [
        ({"reason": "max_order_notional", "source": "risk", "strategy": "whale"}, 1.0)
    ]
    assert _total(after, "tradegraph_equity") > 0


def test_cli_backtest_serves_metrics_on_the_port_asked_for(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            "--set",
            "data.bars.0.limit=500",
            "--no-html",
            "--out",
            str(tmp_path),
            "--metrics-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert re.search(r"metrics at http://127\.0\.0\.1:\d+/metrics", proc.stderr)


def test_cli_refuses_a_metrics_port_with_the_ray_engine() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", "backtest", "--engine", "ray", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 2
    assert "--metrics-port" in proc.stderr
