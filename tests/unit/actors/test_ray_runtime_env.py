from __future__ import annotations

from tradegraph.actors import ray_runtime_env
from tradegraph.observability.logging import (
    COMPONENT_ENV,
    LOG_FILE_ENV,
    LOG_LEVEL_ENV,
    SESSION_ID_ENV,
    WORKER_SETUP_HOOK,
)


def test_runtime_env_names_the_setup_hook_and_carries_the_session() -> None:
    env = ray_runtime_env("paper-1", log_level="debug", env_vars={"EXTRA": "1"})

    assert env["worker_process_setup_hook"] == WORKER_SETUP_HOOK
    variables = env["env_vars"]
    assert variables[SESSION_ID_ENV] == "paper-1"
    assert variables[LOG_LEVEL_ENV] == "DEBUG"
    assert variables["EXTRA"] == "1"
    assert WORKER_SETUP_HOOK in variables.values()  # what makes it work in actor options too
    assert COMPONENT_ENV not in variables
    assert LOG_FILE_ENV not in variables


def test_runtime_env_for_one_actor_binds_its_component_and_log_file() -> None:
    env = ray_runtime_env("paper-1", component="risk", log_file="/tmp/risk.jsonl")

    assert env["env_vars"][COMPONENT_ENV] == "risk"
    assert env["env_vars"][LOG_FILE_ENV] == "/tmp/risk.jsonl"
