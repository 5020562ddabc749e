"""The operator's commands against a paper session on a ``ray start --head`` cluster.

Everything runs as the README's "Operating a running session" tells an operator: the session is
``tradegraph paper --address HOST:PORT`` in its own process, and ``status``, ``kill`` and
``resume`` are separate ``tradegraph`` processes joining the same cluster.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ray_head import HeadCluster, free_port, head_cluster
from tests.support.user_strategy import write_breakout_project

pytestmark = [pytest.mark.ray]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[HeadCluster]:
    with head_cluster() as found:
        yield found


def tradegraph(
    cluster: HeadCluster, *args: str, cwd: Path = REPO_ROOT, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        env=cluster.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def start_paper(
    cluster: HeadCluster, config: Path, namespace: str, out: Path, *more: str, cwd: Path = REPO_ROOT
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "paper",
            str(config),
            "--address",
            cluster.address,
            "--namespace",
            namespace,
            "--out",
            str(out),
            "--no-html",
            *more,
        ],
        env=cluster.env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_paper(paper: subprocess.Popen[str]) -> tuple[int, str, str]:
    if paper.poll() is None:
        paper.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = paper.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        paper.kill()
        stdout, stderr = paper.communicate()
    return paper.returncode, stdout, stderr


def status(cluster: HeadCluster, namespace: str) -> dict[str, Any]:
    done = tradegraph(
        cluster, "status", "--address", cluster.address, "--namespace", namespace, "--json"
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def answered(found: dict[str, Any], name: str) -> dict[str, Any]:
    """The status ``name`` reported, or an empty one while it could not answer (starting)."""
    status = found.get(name)
    return status if isinstance(status, dict) else {"messages_out": 0, "details": {}}


def wait_for(
    cluster: HeadCluster,
    namespace: str,
    paper: subprocess.Popen[str],
    ready: Callable[[dict[str, Any]], bool],
    timeout_s: float = 120,
) -> dict[str, Any]:
    """Poll ``tradegraph status --json`` until ``ready(status)``; the session must stay up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if paper.poll() is not None:
            code, stdout, stderr = stop_paper(paper)
            pytest.fail(f"paper session exited with {code}:\n{stdout}\n{stderr}")
        done = tradegraph(
            cluster, "status", "--address", cluster.address, "--namespace", namespace, "--json"
        )
        if done.returncode == 0:
            found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            if ready(found):
                return found
        time.sleep(1.0)
    code, stdout, stderr = stop_paper(paper)
    pytest.fail(f"session never got there (exit {code}):\n{stdout}\n{stderr}")


def test_kill_refuses_new_orders_and_resume_allows_them_again(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    namespace = "operator-cli"
    out = tmp_path / "out"
    paper = start_paper(cluster, PAPER_YAML, namespace, out, "--speed", "600", "--duration", "300")
    try:
        # The mean-reversion strategy on ETH sends orders from its first minutes on.
        running = wait_for(
            cluster,
            namespace,
            paper,
            lambda s: "risk" in s and answered(s, "strategy:meanrev_eth")["messages_out"] > 0,
        )
        assert {"md", "risk", "portfolio", "broker:BINANCE", "control"} <= set(running)
        assert running["risk"]["details"]["kill_switch_tripped"] is False

        killed = tradegraph(
            cluster, "kill", "--address", cluster.address, "--namespace", namespace, "--reason", "x"
        )
        assert killed.returncode == 0, killed.stderr
        assert "kill switch tripped (x)" in killed.stdout

        refused = wait_for(
            cluster,
            namespace,
            paper,
            lambda s: (
                answered(s, "risk")["details"].get("rejections", {}).get("kill_switch", 0) > 0
            ),
        )
        risk = refused["risk"]["details"]
        assert risk["kill_switch_tripped"] is True
        assert risk["kill_switch_reason"] == "x"
        assert risk["open_orders"] == 0
        assert answered(refused, "broker:BINANCE")["details"]["open_orders"] == 0

        resumed = tradegraph(
            cluster, "resume", "--address", cluster.address, "--namespace", namespace
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "kill switch reset" in resumed.stdout
        after = status(cluster, namespace)
        assert after["risk"]["details"]["kill_switch_tripped"] is False
    finally:
        code, stdout, stderr = stop_paper(paper)
    assert code == 0, stderr
    assert "stopped by signal" in stdout
    assert (out / "session.json").exists()
    # No session.state_dir in the config: the recovery state lives under --out.
    assert (out / "state" / "paper-demo" / "risk").is_dir()


def test_kill_in_flatten_mode_closes_the_positions_of_a_running_session(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    namespace = "operator-flatten"
    out = tmp_path / "out"
    paper = start_paper(
        cluster, PAPER_YAML, namespace, out, "--speed", "120", "--duration", "900", "--json"
    )
    try:
        # Two bars a second: the strategies hold their positions for many seconds.
        holding = wait_for(
            cluster,
            namespace,
            paper,
            lambda s: bool(answered(s, "risk")["details"].get("positions")),
            timeout_s=400,
        )
        assert holding["risk"]["details"]["kill_switch_mode"] == "halt"

        killed = tradegraph(
            cluster,
            *("kill", "--address", cluster.address, "--namespace", namespace),
            *("--mode", "flatten", "--reason", "flatten now"),
        )
        assert killed.returncode == 0, killed.stderr
        assert "kill switch tripped (flatten now) in flatten mode" in killed.stdout

        flat = wait_for(
            cluster,
            namespace,
            paper,
            lambda s: (
                answered(s, "risk")["details"].get("kill_switch_mode") == "flatten"
                and answered(s, "risk")["details"].get("positions") == {}
                and answered(s, "risk")["details"].get("open_orders") == 0
                and answered(s, "portfolio")["details"].get("positions") == {}
            ),
        )
        assert flat["risk"]["details"]["kill_switch_tripped"] is True
    finally:
        code, stdout, stderr = stop_paper(paper)
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["positions"] == {}
    [trip] = summary["kill_switch_halts"]
    assert (trip["mode"], trip["reason"]) == ("flatten", "flatten now")
    closed = summary["kill_switch_closed"]
    assert closed, summary
    assert {row["strategy_id"] for row in closed} <= {"sma_btc", "meanrev_eth"}
    assert all(row["quantity"] > 0 for row in closed)
    assert "closed by the kill switch (flatten):" in stdout


def test_status_without_a_session_says_so_in_one_line(cluster: HeadCluster) -> None:
    done = tradegraph(cluster, "status", "--address", cluster.address, "--namespace", "nobody")

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: no session is running in namespace 'nobody'"
    )


@pytest.mark.parametrize(
    "command",
    [["status"], ["kill"], ["montecarlo", "--paths", "2", "--no-html"]],
)
def test_an_address_nobody_answers_fails_fast_in_one_line(
    command: list[str], tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tradegraph", *command, "--address", address],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach a Ray cluster at '{address}'"), done.stderr
    assert time.monotonic() - started < 60


def test_a_paper_session_ships_a_strategy_beside_its_config_to_the_cluster(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    config = write_breakout_project(tmp_path / "project", PAPER_YAML, module="breakout_mod")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"

    paper = start_paper(
        cluster,
        config,
        "user-strategy",
        out,
        "--speed",
        "0",
        "--duration",
        "120",
        "--json",
        "--progress",
        "--set",
        "data.bars.0.limit=300",
        "--set",
        "data.bars.1.limit=300",
        cwd=elsewhere,
    )
    code, stdout, stderr = stop_paper_when_done(paper)

    assert code == 0, stderr
    assert "StrategyLoadError" not in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stopped_by"] == "replay_finished"
    assert summary["fills"] > 0
    # --progress: the status line, one line at a time as stderr is no terminal here.
    lines = [line for line in stderr.splitlines() if line.startswith("paper: ")]
    assert lines, stderr
    assert re.fullmatch(
        r"paper: [\d,]+ events  orders [\d,]+  fills [\d,]+  equity [\d,.?]+  health ok", lines[0]
    ), lines[0]


def stop_paper_when_done(
    paper: subprocess.Popen[str], timeout_s: float = 240
) -> tuple[int, str, str]:
    try:
        stdout, stderr = paper.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return stop_paper(paper)
    return paper.returncode, stdout, stderr


def test_a_strategy_module_found_nowhere_fails_the_session_in_one_line(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    config = write_breakout_project(tmp_path / "project", PAPER_YAML, module="nowhere_mod")
    (tmp_path / "project" / "nowhere_mod.py").unlink()

    paper = start_paper(cluster, config, "no-strategy", tmp_path / "out", "--duration", "60")
    code, _, stderr = stop_paper_when_done(paper)

    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: strategies.breakout.class_path ('nowhere_mod:Breakout'): no module named "
            "'nowhere_mod'"
        )
    ), stderr


def test_limits_lowered_at_runtime_refuse_the_next_order_with_that_limit(
    cluster: HeadCluster, tmp_path: Path
) -> None:
    namespace = "operator-limits"
    out = tmp_path / "out"
    paper = start_paper(cluster, PAPER_YAML, namespace, out, "--speed", "600", "--duration", "300")
    try:
        wait_for(
            cluster,
            namespace,
            paper,
            lambda s: "risk" in s and answered(s, "strategy:meanrev_eth")["messages_out"] > 0,
        )
        bad = tradegraph(
            cluster,
            "limits",
            "--address",
            cluster.address,
            "--session",
            namespace,
            "--set",
            "risk.max_order_notional=-5",
        )
        assert bad.returncode == 2
        assert "Traceback" not in bad.stderr
        assert bad.stderr.strip().splitlines()[-1] == (
            "error: risk.max_order_notional: Input should be greater than 0 (got -5)"
        )
        unchanged = status(cluster, namespace)["risk"]["details"]
        assert unchanged["rejections"].get("max_order_notional", 0) == 0

        lowered = tradegraph(
            cluster,
            "limits",
            "--address",
            cluster.address,
            "--session",
            namespace,
            "--set",
            "risk.max_order_notional=1",
            "--reason",
            "desk cuts size",
        )
        assert lowered.returncode == 0, lowered.stderr
        assert lowered.stdout.strip() == "risk.max_order_notional = 1.0"

        refused = wait_for(
            cluster,
            namespace,
            paper,
            lambda s: (
                answered(s, "risk")["details"].get("rejections", {}).get("max_order_notional", 0)
                > 0
            ),
        )
        assert refused["risk"]["details"]["limits"]["max_order_notional"] == 1.0
        # Recorded for the operator's trail: the control actor got the LimitsChanged.
        assert refused["control"]["details"]["counts"].get("LimitsChanged") == 1
    finally:
        code, _stdout, stderr = stop_paper(paper)
    assert code == 0, stderr
