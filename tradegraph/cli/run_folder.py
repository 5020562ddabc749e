"""Where a command's outputs go: a folder of its own per run, so runs never overwrite each other.

Without ``--out``, a run of ``tradegraph <command>`` writes to
``<base>/<config name>-<UTC time>/`` (``<base>`` is ``out/<command>``) and points
``<base>/latest`` at it; with ``--out`` it writes exactly there.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

LATEST = "latest"


def new_run_folder(base: str | Path, name: str, now: datetime | None = None) -> Path:
    """Create ``base/<name>-<YYYYmmddTHHMMSSZ>`` (``-2``, ``-3``... if taken) and point
    ``base/latest`` at it.

    Args:
        base: The command's folder, e.g. ``out/backtest``.
        name: The config's name; characters unsafe in a file name become ``_``.
        now: The time to name the run by (default: the current UTC time).
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name) or 'run'}-{stamp}"
    for attempt in range(1, 10_000):
        folder = base / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        _point_latest(base, folder.name)
        return folder
    raise FileExistsError(f"no free run folder for {stem!r} in {base}")


def _point_latest(base: Path, target: str) -> None:
    """Replace ``base/latest`` by a relative symlink to ``target`` in one step."""
    link = base / LATEST
    temporary = base / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(target, target_is_directory=True)
    os.replace(temporary, link)


def run_folder(out: str | None, base: str | Path, name: str) -> Path:
    """``out`` when given (``--out`` wins), else a new run folder under ``base``."""
    if out:
        return Path(out)
    return new_run_folder(base, name)
