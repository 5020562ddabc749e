"""Alerts as an operator meets them: a paper session on a ``ray start --head`` cluster posts to a
real webhook on 127.0.0.1 when its kill switch trips, with the channel's secret taken from the
environment and found in no log; ``tradegraph alerts test`` run as a command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_operator_cli import (
    PAPER_YAML,
    REPO_ROOT,
    answered,
    start_paper,
    stop_paper,
    tradegraph,
    wait_for,
)
from tests.support.ray_head import HeadCluster, head_cluster
from tests.support.webhook import WebhookReceiver, webhook_receiver

TOKEN_ENV = "TG_TEST_ALERT_TOKEN"
TOKEN = "hook-t0ken-7f3a9c1e5d"


@pytest.fixture(scope="module")
def cluster() -> Iterator[HeadCluster]:
    with head_cluster() as found:
        yield found


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def write_alerts_config(
    tmp_path: Path, channels: list[dict[str, str]], rules: list[dict[str, Any]]
) -> Path:
    raw = yaml.safe_load(PAPER_YAML.read_text())
    raw["alerts"] = {"channels": channels, "rules": rules}
    path = tmp_path / "paper-alerts.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def files_holding(root: Path, text: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``text``."""
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


@pytest.mark.ray
def test_a_tripped_kill_switch_posts_an_alert_with_its_reason_to_a_webhook(
    cluster: HeadCluster, hook: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_alerts_config(
        tmp_path,
        [{"name": "ops", "url": hook.url(f"alerts/${{{TOKEN_ENV}}}")}],
        [
            {"event": "kill_switch_tripped", "severity": "critical"},
            # Windows are on the graph's clock: the replayed data's, far faster than the wall's.
            {"event": "fill", "max_alerts": 2, "rate_window_s": 864_000},
        ],
    )
    out = tmp_path / "out"
    namespace = "alerts-kill"
    # Only the session's driver has the secret; the cluster's processes never had it.
    monkeypatch.setitem(cluster.env, TOKEN_ENV, TOKEN)
    paper = start_paper(
        cluster,
        config,
        namespace,
        out,
        "--speed",
        "600",
        "--duration",
        "300",
        "--log-level",
        "INFO",
    )
    try:
        wait_for(
            cluster,
            namespace,
            paper,
            lambda s: "risk" in s and answered(s, "strategy:meanrev_eth")["messages_out"] > 0,
        )
        killed = tradegraph(
            cluster,
            "kill",
            "--address",
            cluster.address,
            "--namespace",
            namespace,
            "--reason",
            "desk says stop now",
        )
        assert killed.returncode == 0, killed.stderr

        alert = hook.wait_for("desk says stop now", timeout_s=60)
        fill = hook.wait_for("fill_id=", timeout_s=60)
    finally:
        code, stdout, stderr = stop_paper(paper)
    assert code == 0, stderr

    assert alert.path == f"/alerts/{TOKEN}"  # the secret went where the URL put it
    assert alert.body["title"] == "[CRITICAL] tradegraph paper-demo: kill switch tripped"
    assert alert.body["type"] == "failure"
    assert "reason='desk says stop now'" in alert.body["message"]
    assert fill.body["title"] == "[WARNING] tradegraph paper-demo: fill"
    # The fill rule sends at most two; the session's own stop trips no alert.
    messages = [str(r.body.get("message")) for r in hook.received()]
    assert sum("fill_id=" in m for m in messages) == 2
    assert not any("session stopping" in m for m in messages)
    # The secret reached no output, no log line and no file of the run or of Ray's.
    assert TOKEN not in stdout + stderr
    # ... though the control actor did log what it sent, and to where (as a scheme).
    assert files_holding(cluster.temp_dir, '"url": "json://***"')
    assert files_holding(out, TOKEN) == []
    assert files_holding(cluster.temp_dir, TOKEN) == []


def run_alerts_test(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", "alerts", "test", str(config)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alerts_test_sends_to_every_channel_and_reports_each(tmp_path: Path) -> None:
    with webhook_receiver() as good, webhook_receiver() as other:
        config = write_alerts_config(
            tmp_path,
            [
                {"name": "ops", "url": good.url(f"hook/${{{TOKEN_ENV}}}")},
                {"name": "chat", "url": other.url("chat", scheme="json")},
            ],
            [],
        )
        done = run_alerts_test(config, {**os.environ, TOKEN_ENV: TOKEN})
        (received,) = good.received()
        (also,) = other.received()

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ops (json://***): sent", "chat (json://***): sent"]
    assert received.path == f"/hook/{TOKEN}"
    assert received.body["title"] == "[INFO] tradegraph paper-demo: test alert"
    assert also.path == "/chat"
    assert TOKEN not in done.stdout + done.stderr


def test_alerts_test_exits_non_zero_and_names_the_channel_that_failed(tmp_path: Path) -> None:
    with webhook_receiver() as good, webhook_receiver(status=500) as failing:
        config = write_alerts_config(
            tmp_path,
            [
                {"name": "ops", "url": good.url("ok")},
                {"name": "pager", "url": failing.url(f"p/${{{TOKEN_ENV}}}")},
            ],
            [],
        )
        done = run_alerts_test(config, {**os.environ, TOKEN_ENV: TOKEN})

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "ops (json://***): sent"
    assert lines[1].startswith("pager (json://***): FAILED: ")
    assert "error=500" in lines[1]
    assert done.stderr.strip() == "error: 1 of 2 channels failed: pager"
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_alerts_test_without_the_secret_in_the_environment_names_the_variable(
    tmp_path: Path,
) -> None:
    config = write_alerts_config(
        tmp_path, [{"name": "ops", "url": f"json://127.0.0.1:9/${{{TOKEN_ENV}}}"}], []
    )
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}

    done = run_alerts_test(config, env)

    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: alerts.channels.0.url: environment variable {TOKEN_ENV} is not set (channel 'ops')"
    )
