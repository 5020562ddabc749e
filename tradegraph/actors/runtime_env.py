"""The Ray runtime environment of a tradegraph session: logging set up in every worker, and
the user's strategy modules importable there."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray._private import ray_constants

import tradegraph
from tradegraph.observability.logging import (
    COMPONENT_ENV,
    LOG_FILE_ENV,
    LOG_LEVEL_ENV,
    RAY_VERBOSE_ENV,
    SESSION_ID_ENV,
    WORKER_SETUP_HOOK,
)
from tradegraph.strategies.registry import user_strategy_modules

# Ray turns a job's ``worker_process_setup_hook`` into this environment variable, which each
# new worker reads at start. It honours the field only in a job-level runtime env (ray.init,
# job submission) and ignores it in actor options, so the variable is set directly as well:
# the same dict then works in both places (Ray accepts the pair when they agree).
_SETUP_HOOK_ENV: str = getattr(
    ray_constants, "WORKER_PROCESS_SETUP_HOOK_ENV_VAR", "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
)


def ray_runtime_env(
    session_id: str,
    *,
    component: str | None = None,
    log_level: str = "INFO",
    log_file: str | Path | None = None,
    env_vars: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A runtime env whose workers log JSON lines bound to ``session_id`` (and ``component``).

    Pass it to ``ray.init(runtime_env=...)`` for a whole session, or to an actor's
    ``.options(runtime_env=...)`` for one actor. Every worker then runs
    ``tradegraph.observability.logging.setup_worker_logging`` before anything else.

    Args:
        session_id: Bound to every log event as ``session_id``.
        component: Bound as ``component`` (per actor; without it each logger names its own).
        log_level: ``DEBUG``, ``INFO``, ``WARNING``, ...
        log_file: Append JSON lines to this file (on the worker's node) instead of stderr;
            stderr lands in the worker's ``.err`` file in Ray's session log folder.
        env_vars: More environment variables for the workers.
    """
    variables = {
        **(env_vars or {}),
        SESSION_ID_ENV: session_id,
        LOG_LEVEL_ENV: log_level.upper(),
        _SETUP_HOOK_ENV: WORKER_SETUP_HOOK,
    }
    if component is not None:
        variables[COMPONENT_ENV] = component
    if log_file is not None:
        variables[LOG_FILE_ENV] = str(log_file)
    return {"worker_process_setup_hook": WORKER_SETUP_HOOK, "env_vars": variables}


def local_pythonpath() -> str:
    """``PYTHONPATH`` for workers of a Ray started here: this tradegraph's folder first, then
    the folders of the user's strategy modules (beside the config, or the working directory).

    Workers then import the same tradegraph as the driver, even when another copy is
    installed (a checkout next to an installed release, a second worktree).
    """
    root = str(Path(tradegraph.__file__).resolve().parent.parent)
    folders = [str(path.parent) for path in user_strategy_modules()]
    paths = (root, *folders, os.environ.get("PYTHONPATH", ""))
    return os.pathsep.join(dict.fromkeys(p for p in paths if p))


def with_strategy_modules(runtime_env: dict[str, Any]) -> dict[str, Any]:
    """``runtime_env`` plus the user's strategy modules as ``py_modules``, for a driver that
    joins a running cluster: its workers, possibly on other machines, cannot see the files
    the driver found, so Ray uploads them and puts them on every worker's path."""
    modules = [str(path) for path in user_strategy_modules()]
    if not modules:
        return runtime_env
    return {**runtime_env, "py_modules": [*runtime_env.get("py_modules", []), *modules]}


def check_reachable(address: str | None, timeout_s: float = 3.0) -> None:
    """Fail at once when ``address`` is ``HOST:PORT`` and nothing listens there.

    ``ray.init`` would otherwise retry for minutes before it gives up. ``auto``, ``ray://``
    addresses and ``None`` are left to Ray.

    Raises:
        ConnectionError: nothing accepts a connection at ``HOST:PORT``.
    """
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from exc


def ray_logging_options() -> dict[str, Any]:
    """``ray.init`` options for the log level ``quiet_ray`` chose (``tradegraph.observability.logging``) (Ray's default without)."""
    if os.environ.get(RAY_VERBOSE_ENV) == "0":
        # ERROR: Ray's start-up warnings (token authentication, ...) are not the user's concern.
        return {"logging_level": logging.ERROR}
    return {}
