"""Ray transport for scenario batches: one Ray task per chunk of scenarios.

The scenario logic is Ray-free (:mod:`tradegraph.batch.montecarlo`); this module only connects
to Ray, ships the batch plan once to the object store, keeps at most ``concurrency`` tasks in
flight, and hands each finished chunk back to the driver as it arrives.

Recovery contract: a task is idempotent (a chunk's result depends only on the plan and its
indices), so Ray may rerun it: a task whose worker dies is retried once (``max_retries=1``).
A chunk lost even so is reported through ``on_lost`` and the batch goes on. On Ctrl-C, tasks
in flight are cancelled and the interrupt propagates after the finished chunks were handed on.
"""

from __future__ import annotations

import importlib
import os
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import pyarrow as pa
import ray

from tradegraph.actors.ray_runtime import ray_pool

Plan = TypeVar("Plan")

TASK_MAX_RETRIES = 1


def run_chunks_on_ray(
    task: Callable[[Plan, Sequence[int]], pa.Table],
    plan: Plan,
    chunks: Sequence[list[int]],
    *,
    concurrency: int,
    on_done: Callable[[list[int], pa.Table], None],
    on_lost: Callable[[list[int], str], None],
) -> None:
    """Run ``task(plan, chunk)`` for every chunk as Ray tasks, ``concurrency`` at a time.

    ``on_done`` receives each chunk's table in completion order; ``on_lost`` each chunk whose
    task failed after its retry, with the error.
    """
    remote_task: Any = ray.remote(num_cpus=1, max_retries=TASK_MAX_RETRIES)(task)
    plan_ref = ray.put(plan)
    waiting = deque(chunks)
    in_flight: dict[Any, list[int]] = {}
    try:
        while waiting or in_flight:
            while waiting and len(in_flight) < concurrency:
                chunk = waiting.popleft()
                in_flight[remote_task.remote(plan_ref, chunk)] = chunk
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                chunk = in_flight.pop(ref)
                try:
                    table = ray.get(ref)
                except (ray.exceptions.RayError, OSError) as exc:
                    on_lost(chunk, f"{type(exc).__name__}: {exc}".splitlines()[0])
                    continue
                on_done(chunk, table)
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise


def _import_module(name: str) -> int:
    importlib.import_module(name)
    return os.getpid()


def warm_workers(module: str, count: int) -> int:
    """Run ``count`` tasks at once that import ``module``, so that many workers are started
    and hold it before the batch's first chunk; return how many distinct workers answered."""
    remote_import: Any = ray.remote(num_cpus=1)(_import_module)
    pids: list[int] = ray.get([remote_import.remote(module) for _ in range(count)])
    return len(set(pids))


class RayChunkRunner:
    """Runs a Monte Carlo or stress batch's chunks as Ray tasks (the batch's ``runner``)."""

    def pool(self, address: str | None, workers: int | None) -> AbstractContextManager[int]:
        return ray_pool(address, workers)

    def prepare(self, task: Callable[[Plan, Sequence[int]], pa.Table], concurrency: int) -> None:
        warm_workers(task.__module__, concurrency)

    def run(
        self,
        task: Callable[[Plan, Sequence[int]], pa.Table],
        plan: Plan,
        chunks: Sequence[list[int]],
        *,
        concurrency: int,
        on_done: Callable[[list[int], pa.Table], None],
        on_lost: Callable[[list[int], str], None],
    ) -> None:
        run_chunks_on_ray(
            task, plan, chunks, concurrency=concurrency, on_done=on_done, on_lost=on_lost
        )
