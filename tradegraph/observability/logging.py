"""Structured logging: structlog JSON lines, one object per event, in every process.

Every event carries ``wall_time`` (ISO 8601, UTC), ``level`` and ``event``; a logger from
:func:`get_logger` adds ``component`` and whatever context it was bound with. Fields bound for the
whole process with :func:`bind_process_context` (``session_id``, ``component`` of the actor the
process hosts, ...) are added to every event that does not carry them already; with a simulated
clock bound, every event also gets ``sim_time_ns``.

Ray workers are set up by :func:`setup_worker_logging`, run as Ray's worker process setup hook
(its import path is :data:`WORKER_SETUP_HOOK`); it reads its settings from environment variables
that ``tradegraph.actors.ray_runtime_env`` fills in.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from tradegraph.contracts import Clock

WORKER_SETUP_HOOK = "tradegraph.observability.logging.setup_worker_logging"
"""Import path of :func:`setup_worker_logging`, as Ray's ``worker_process_setup_hook`` takes it."""

SESSION_ID_ENV = "TRADEGRAPH_SESSION_ID"
"""Environment variable: the session id bound to every event of a worker."""
COMPONENT_ENV = "TRADEGRAPH_COMPONENT"
"""Environment variable: the component id bound to every event of a worker (optional)."""
LOG_LEVEL_ENV = "TRADEGRAPH_LOG_LEVEL"
"""Environment variable: a worker's log level (default ``INFO``)."""
LOG_FILE_ENV = "TRADEGRAPH_LOG_FILE"
"""Environment variable: a file a worker appends its JSON lines to (default: stderr, which Ray
writes to the worker's ``.err`` file in the session's log folder)."""

_configured = False
_process_context: dict[str, Any] = {}
_sim_clock: Clock | None = None
_worker_log_file: TextIO | None = None


def _add_process_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add the process-wide fields (and the simulated time) an event does not carry itself."""
    for key, value in _process_context.items():
        event_dict.setdefault(key, value)
    clock = _sim_clock
    if clock is not None and "sim_time_ns" not in event_dict:
        event_dict["sim_time_ns"] = clock.now_ns()
    return event_dict


RAY_VERBOSE_ENV = "TRADEGRAPH_RAY_VERBOSE"


def quiet_ray(verbose: bool) -> None:
    """Keep Ray's own start-up and connection lines off the terminal unless ``verbose``
    (``--log-level DEBUG``). Sets an environment variable only (Ray need not be imported):
    the choice ``tradegraph.actors`` passes to ``ray.init`` as its logging level.
    """
    os.environ[RAY_VERBOSE_ENV] = "1" if verbose else "0"


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default), one object per event.

    Call once per process; later calls reconfigure the level and stream (fields bound with
    :func:`bind_process_context` are kept).
    """
    global _configured
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_process_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="wall_time"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def bind_process_context(*, clock: Clock | None = None, **fields: Any) -> None:
    """Add ``fields`` to every event this process logs from now on.

    A logger's own bound fields win over these, so ``get_logger("kernel")`` still says
    ``component="kernel"`` in a process bound to another component. A field set to ``None`` is
    removed.

    Args:
        clock: A simulated clock whose time every event then carries as ``sim_time_ns``. Bind
            one only under simulated time; under the wall clock ``wall_time`` says it all.
        **fields: e.g. ``session_id="paper-1"``, ``component="risk"``.
    """
    global _sim_clock
    for key, value in fields.items():
        if value is None:
            _process_context.pop(key, None)
        else:
            _process_context[key] = value
    if clock is not None:
        _sim_clock = clock


def clear_process_context() -> None:
    """Forget every field and the clock bound with :func:`bind_process_context`."""
    global _sim_clock
    _process_context.clear()
    _sim_clock = None


def setup_worker_logging() -> None:
    """Configure JSON-lines logging in a Ray worker process (Ray's worker setup hook).

    Reads :data:`SESSION_ID_ENV`, :data:`COMPONENT_ENV`, :data:`LOG_LEVEL_ENV` and
    :data:`LOG_FILE_ENV`; binds ``session_id`` and ``component`` (when set) to every event of
    the process. Ray calls it with no arguments when a worker starts, before any task or actor
    runs in it.
    """
    global _worker_log_file
    path = os.environ.get(LOG_FILE_ENV)
    previous = _worker_log_file
    # Line-buffered append: each event is one write, so workers can share one file.
    _worker_log_file = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"), _worker_log_file)
    if previous is not None:
        previous.close()
    bind_process_context(
        session_id=os.environ.get(SESSION_ID_ENV) or None,
        component=os.environ.get(COMPONENT_ENV) or None,
        pid=os.getpid(),
    )


def get_logger(component: str, **context: Any) -> Any:
    """A logger bound to a component name (and any extra context, e.g. session_id)."""
    if not _configured:
        configure_logging()
    return structlog.get_logger().bind(component=component, **context)
