"""Starting or joining Ray, the one way every command does it: :func:`ray_session` for the
actor graph, :func:`ray_pool` for batches. Both use the runtime environment of a tradegraph
session: logging set up in every worker, and the user's strategy modules importable there.

A Ray this module starts itself (no ``--address``) listens on the loopback interface only:
nothing of a local session is reachable from the network. Ray resolves a node address of
``127.0.0.1`` to the machine's routable address unless clustering is switched off, and with
its routable address its GCS, raylet, workers and agents listen on every interface. Joining a
cluster (``--address``) keeps Ray's own choice, which the cluster's nodes need to reach each
other.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray._private import ray_constants

import tradegraph
from tradegraph.config.models import DEFAULT_NAMESPACE
from tradegraph.errors import TradegraphError
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


class ActorGraphError(TradegraphError):
    """The actor graph could not be reached, built or run."""


LOOPBACK = "127.0.0.1"


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Make the Ray started inside the block take ``127.0.0.1`` as its node address.

    Ray keeps loopback addresses for a node only where clustering is switched off
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); the switch is read when ``ray`` is imported,
    so it is set on the loaded constant too, and both are put back afterwards.
    """
    saved_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    saved = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved_env


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set environment variable ``name`` inside the block (for processes started there)."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _connect(address: str | None, namespace: str | None, options: dict[str, Any]) -> bool:
    """Initialise Ray unless this process already has it; return whether it was initialised
    here. Without ``address`` (and no ``RAY_ADDRESS``) a local Ray starts on loopback only."""
    if ray.is_initialized():
        return False
    if address is None and not os.environ.get("RAY_ADDRESS"):
        with _loopback_only():
            ray.init(namespace=namespace, **options)
        return True
    try:
        check_reachable(address)
        ray.init(address=address, namespace=namespace, **options)
    except ConnectionError as exc:
        raise ActorGraphError(
            f"cannot reach a Ray cluster at {address!r}: {exc} "
            f"(start one with `ray start --head`, or leave out --address to start a local Ray)"
        ) from exc
    return True


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    session_id: str = "tradegraph",
    log_level: str = "INFO",
    namespace: str = DEFAULT_NAMESPACE,
    **init_options: Any,
) -> Iterator[None]:
    """Use the Ray already initialised in this process, or connect/start one for the block.

    With ``address`` it connects to that cluster (``"auto"`` finds a local one); without it, it
    starts a local Ray (on loopback only) whose workers import this tradegraph. Only a Ray it
    started (or connected) itself is shut down afterwards. Its workers log JSON lines bound to
    ``session_id`` (see :func:`ray_runtime_env`), unless ``runtime_env`` is among
    ``init_options``. ``namespace`` is the driver's Ray namespace (actors named without one
    are looked up there).
    """
    local_env = {"PYTHONPATH": local_pythonpath()} if address is None else None
    runtime_env = ray_runtime_env(session_id, log_level=log_level, env_vars=local_env)
    if address is not None or os.environ.get("RAY_ADDRESS"):
        runtime_env = with_strategy_modules(runtime_env)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": runtime_env,
        **ray_logging_options(),
    }
    options.update(init_options)
    started = _connect(address, namespace, options)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@contextmanager
def ray_pool(address: str | None, workers: int | None) -> Iterator[int]:
    """Connect to Ray (or reuse the connection this process has) and yield how many chunks may
    run at once: ``workers`` if given, else the cluster's CPU count.

    Without ``address`` a local Ray instance starts (on loopback only) with ``workers`` CPUs
    (all cores when ``None``), and is shut down on exit. Its workers import tradegraph from
    the same folder as this driver, even when another copy is installed.
    """
    options: dict[str, Any] = {"log_to_driver": False, **ray_logging_options()}
    if address:
        options["runtime_env"] = with_strategy_modules({})
        started = _connect(address, None, options)
    elif os.environ.get("RAY_ADDRESS"):
        options.update(
            num_cpus=workers,
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": local_pythonpath()}},
        )
        started = _connect(None, None, options)
    else:
        options.update(num_cpus=workers, include_dashboard=False)
        # PYTHONPATH goes to the workers through the environment Ray starts with, not a
        # runtime env: Ray prestarts workers for jobs without one, while a job with one waits
        # for fresh workers at its first tasks (about 3 s more start-up on 2 cores).
        with _environment("PYTHONPATH", local_pythonpath()):
            started = _connect(None, None, options)
    try:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        cpus = int(resources.get("CPU", 1))
        yield max(1, min(workers, cpus) if workers else cpus)
    finally:
        if started:
            ray.shutdown()
