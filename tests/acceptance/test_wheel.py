"""The wheel a user installs carries the licence, the examples and the packaged defaults."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_examples_license_and_defaults(tmp_path: Path) -> None:
    # A copy of the source tree, so that no earlier build/ folder can stand in for this build.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv*",
            "build",
            "out",
            "runs",
            ".hypothesis",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tradegraph-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        headers = archive.read(metadata).decode()
        license_text = archive.read(next(n for n in names if n.endswith("licenses/LICENSE")))

    examples = {
        f"tradegraph/examples/{p.name}"
        for p in (ROOT / "examples").iterdir()
        if p.suffix in {".yaml", ".py"}
    }
    assert examples
    assert examples <= names
    assert "tradegraph/config/defaults/backtest.yaml" in names
    assert "License-Expression: Apache-2.0" in headers.splitlines()
    assert license_text == (ROOT / "LICENSE").read_bytes()
