"""``manifest.json``: what a run was made of, so it can be run again and checked.

Every backtest, sweep, Monte Carlo or stress batch, walk-forward and paper or live session
writes one into its output folder: the configuration exactly as it ran (after ``--set`` and
``--data``) and its SHA-256, the versions of Python and of the packages that decide results,
the git commit of the tradegraph checkout it ran from (and whether that checkout had
uncommitted changes), the SHA-256 of every data file it read, its seeds, and the command line.
``tradegraph backtest --manifest FILE`` runs a backtest's manifest again, refusing data files
whose digest changed, and checks that the fills come out the same (see ``cli/backtest.py``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from tradegraph.config import GraphConfig
from tradegraph.data.catalog import resolve_path
from tradegraph.errors import ConfigError, DataError

MANIFEST_FILE: Final = "manifest.json"
MANIFEST_VERSION: Final = 1
PACKAGES: Final = (
    "tradegraph",
    "ray",
    "ccxt",
    "numpy",
    "pyarrow",
    "pandas",
    "pydantic",
    "scipy",
    "optuna",
    "prometheus-client",
)
"""Packages whose versions a manifest records (``null`` when one is not installed)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(value: Any) -> bytes:
    """One byte form of a JSON value (sorted keys, no spaces), the one its SHA-256 is of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def config_digest(config_json: Mapping[str, Any]) -> str:
    """SHA-256 of a configuration as a manifest holds it (``model_dump(mode="json")``)."""
    return hashlib.sha256(canonical_json(config_json)).hexdigest()


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state() -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout tradegraph runs from; None when it is not
    run from a checkout (an installed wheel) or git is not there."""
    import tradegraph

    package = Path(tradegraph.__file__).resolve().parent
    where = package.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(where), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD")
    # The package must be the checkout's own: an installed copy in a virtualenv kept inside
    # some checkout is not that checkout's code.
    if not top or not commit or (Path(top) / "tradegraph").resolve() != package:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status), "root": top}


def _files_of(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file())
    else:
        yield path


def data_files(config: GraphConfig) -> list[dict[str, Any]]:
    """Every input file of ``config``'s data section with its SHA-256 and size.

    A source that is a dataset folder gives one entry per file in it.
    """
    sources = [("bars", i, s.path) for i, s in enumerate(config.data.bars)]
    sources += [("trades", i, s.path) for i, s in enumerate(config.data.trades)]
    out: list[dict[str, Any]] = []
    for section, index, configured in sources:
        resolved = resolve_path(configured).resolve()
        if not resolved.exists():
            continue  # the run failed on it already, or never read it
        for file in _files_of(resolved):
            out.append(
                {
                    "field": f"data.{section}.{index}.path",
                    "path": configured,
                    "source": str(resolved),
                    "file": str(file),
                    "bytes": file.stat().st_size,
                    "sha256": sha256_file(file),
                }
            )
    return out


def build_manifest(
    kind: str,
    config: GraphConfig,
    *,
    config_path: str | Path | None,
    seeds: Mapping[str, int | None] | None = None,
    run: Mapping[str, Any] | None = None,
    results: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The manifest of one run.

    Args:
        kind: ``backtest``, ``sweep``, ``montecarlo``, ``stress``, ``walkforward``, ``paper``
            or ``live``.
        config: The configuration exactly as it ran.
        config_path: The file it was loaded from (None: the packaged default).
        seeds: Seeds beyond ``config.seed`` (a batch's root seed, a search's seed).
        run: How it ran, beyond the configuration (engine, stress scenarios, grid).
        results: What to check a rerun against (``fills_digest``...).
        extra_files: Other input files by role (a stress file), digested like data files.
        argv: The command line (default ``sys.argv``).
    """
    config_json = config.model_dump(mode="json")
    files = data_files(config)
    for role, path in (extra_files or {}).items():
        file = Path(path).resolve()
        if file.is_file():
            files.append(
                {
                    "field": role,
                    "path": str(path),
                    "source": str(file),
                    "file": str(file),
                    "bytes": file.stat().st_size,
                    "sha256": sha256_file(file),
                }
            )
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ["tradegraph", *(list(argv) if argv is not None else sys.argv[1:])],
        "cwd": str(Path.cwd()),
        "config_path": str(Path(config_path).resolve()) if config_path else None,
        "config_sha256": config_digest(config_json),
        "config": config_json,
        "seeds": {"config": config.seed, **(seeds or {})},
        "packages": package_versions(),
        "platform": platform.platform(),
        "git": git_state(),
        "data_files": files,
        "run": dict(run or {}),
        "results": dict(results or {}),
    }


def write_manifest(out_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` into ``out_dir`` (replacing one a resumed run wrote)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST_FILE
    temporary = path.with_name(f".{MANIFEST_FILE}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest file, its configuration checked against its recorded SHA-256.

    Raises:
        ConfigError: the file is missing, not a manifest, or its configuration was edited.
    """
    file = Path(path)
    try:
        found = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--manifest: file not found ({file})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--manifest {file}: not a JSON manifest ({exc})") from None
    if not isinstance(found, dict):
        raise ConfigError(f"--manifest {file}: not a manifest (expected a JSON object)")
    for key in ("manifest_version", "config", "config_sha256", "data_files"):
        if key not in found:
            raise ConfigError(f"--manifest {file}: field {key!r} is missing")
    if found["manifest_version"] != MANIFEST_VERSION:
        raise ConfigError(
            f"--manifest {file}: manifest_version {found['manifest_version']!r} is not "
            f"{MANIFEST_VERSION}, the one this tradegraph reads"
        )
    if config_digest(found["config"]) != found["config_sha256"]:
        raise ConfigError(
            f"--manifest {file}: field 'config' does not match its config_sha256 "
            "(the configuration was edited after the run)"
        )
    return found


def _recorded_file(entry: Mapping[str, Any]) -> Path:
    """Where a recorded input is now: bundled samples wherever this tradegraph keeps them,
    any other file where it was."""
    if str(entry["path"]).startswith("sample:"):
        return resolve_path(entry["path"])
    return Path(entry["file"])


def changed_data(manifest: Mapping[str, Any]) -> list[str]:
    """Each recorded input file that is gone or whose SHA-256 differs now, said in one line."""
    problems = []
    for entry in manifest.get("data_files", []):
        file = _recorded_file(entry)
        if not file.is_file():
            problems.append(f"{entry['field']}: {file} is gone")
            continue
        now = sha256_file(file)
        if now != entry["sha256"]:
            problems.append(
                f"{entry['field']}: {file} changed (sha256 {now[:12]}..., "
                f"recorded {entry['sha256'][:12]}...)"
            )
    return problems


def recorded_input(manifest: Mapping[str, Any], role: str) -> Path | None:
    """The file recorded for ``role`` (an extra input such as ``stress_file``), if any."""
    for entry in manifest.get("data_files", []):
        if entry["field"] == role:
            return Path(entry["file"])
    return None


def rerun_config(manifest: Mapping[str, Any]) -> GraphConfig:
    """The manifest's configuration, its data sources pointed at the files and folders it
    recorded (so a rerun from another working directory reads the same data).

    Raises:
        DataError: a recorded input file is gone or changed.
        ConfigError: the configuration does not validate with this tradegraph.
    """
    problems = changed_data(manifest)
    if problems:
        raise DataError(
            "the run's data changed since its manifest was written, so it cannot be rerun as "
            "it ran: " + "; ".join(problems)
        )
    raw = json.loads(json.dumps(manifest["config"]))
    for entry in manifest.get("data_files", []):
        parts = str(entry["field"]).split(".")
        if len(parts) != 4 or parts[0] != "data" or str(entry["path"]).startswith("sample:"):
            continue
        raw["data"][parts[1]][int(parts[2])]["path"] = entry["source"]
    try:
        return GraphConfig.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"--manifest: field 'config' is not valid here: {exc}") from None
