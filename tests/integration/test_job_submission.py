"""``ray job submit`` of a paper session: the flow the README documents, through Ray's job API."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_submitted_paper_session_succeeds(tmp_path: Path) -> None:
    client = JobSubmissionClient(os.environ["TRADEGRAPH_TEST_DASHBOARD"])
    out = tmp_path / "out"
    entrypoint = (
        f"{sys.executable} -m tradegraph paper --config examples/paper.yaml --duration 4 "
        f"--namespace job-test --set data.bars.0.limit=200 --set data.bars.1.limit=200 "
        f"--set session.state_dir={tmp_path / 'state'} --out {out} --no-html"
    )

    job_id = _submit(client, entrypoint)
    deadline = time.monotonic() + 120
    status = client.get_job_status(job_id)
    while status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, f"job still {status}"
        time.sleep(0.5)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)

    assert status == JobStatus.SUCCEEDED, logs
    assert "paper session paper-demo" in logs
    assert "stopped by" in logs
    assert (out / "session.json").exists()


def _submit(client: JobSubmissionClient, entrypoint: str) -> str:
    """Submit, waiting while the job server has no agent yet: on a loaded machine the node's
    agent registers with the dashboard some seconds after Ray starts, and until then the
    server answers "No available agent to submit job, please try again later". On a machine
    busy with other work that took over a minute once, so the wait is generous."""
    deadline = time.monotonic() + 180
    while True:
        try:
            return client.submit_job(
                entrypoint=entrypoint, runtime_env={"working_dir": str(REPO_ROOT)}
            )
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
