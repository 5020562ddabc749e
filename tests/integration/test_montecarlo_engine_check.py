"""Stressed Monte Carlo scenarios give the same results through the Ray actor graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradegraph.cli.main import main

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

STRESS_YAML = """\
scenarios:
  - name: windows
    description: every venue window at once, on a short path
    overlays:
      - {kind: latency_spike, extra_latency_ms: 600000, start: 0.25, duration_min: 60}
      - {kind: exchange_outage, at: 0.3, duration_min: 20}
      - {kind: fee_shock, factor: 4, start: 0.5}
      - {kind: liquidity_crunch, factor: 8, start: 0.7, duration_min: 30}
"""


def test_montecarlo_checks_stressed_scenarios_against_the_actor_graph(tmp_path: Path) -> None:
    stress_file = tmp_path / "stress.yaml"
    stress_file.write_text(STRESS_YAML)
    out = tmp_path / "out"
    # In this process, on the session's Ray; INFO keeps the log level the suite runs with.
    args = ["--log-level", "INFO", "montecarlo", "--paths", "2", "--bars-per-path", "240"]
    args += ["--seed", "3", "--stress-file", str(stress_file), "--stress", "windows"]
    args += ["--in-process", "--check-ray-engine", "2", "--no-html", "--out", str(out)]
    args += ["--set", "strategies.sma.params.fast_period=5"]
    args += ["--set", "strategies.sma.params.slow_period=20"]

    code = main(args)

    check = json.loads((out / "summary.json").read_text())["engine_check"]
    assert code == 0
    assert check["engine"] == "ray"
    assert check["identical"] is True
    assert [s["index"] for s in check["scenarios"]] == [0, 1]
    for scenario in check["scenarios"]:
        assert scenario["overlays"] == "windows"
        assert scenario["fills"] > 0
        assert scenario["differences"] == []
        assert (
            scenario["engine_fills_digest"]
            == scenario["local_fills_digest"]
            == scenario["batch_fills_digest"]
        )
