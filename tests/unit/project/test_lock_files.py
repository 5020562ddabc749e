"""The lock files pin every requirement of pyproject.toml, within its bounds."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version.strip()
    return pins


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(t) for t in texts]


def _unpinned(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    return [
        f"{r.name} {r.specifier} (locked: {pins.get(canonicalize_name(r.name))})"
        for r in requirements
        if canonicalize_name(r.name) not in pins
        or not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]


def test_run_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = _pins(ROOT / "requirements" / "lock.txt")

    assert _unpinned(_requirements(), pins) == []


def test_dev_lock_pins_dev_tools_and_keeps_every_run_pin() -> None:
    run = _pins(ROOT / "requirements" / "lock.txt")
    dev = _pins(ROOT / "requirements" / "lock-dev.txt")

    assert _unpinned(_requirements() + _requirements("dev"), dev) == []
    assert {name: dev.get(name) for name in run} == run


def test_run_lock_leaves_out_the_dev_tools() -> None:
    pins = _pins(ROOT / "requirements" / "lock.txt")

    dev_only = {canonicalize_name(r.name) for r in _requirements("dev")} - {
        canonicalize_name(r.name) for r in _requirements()
    }
    assert sorted(dev_only & set(pins)) == ["aiohttp"]  # ccxt itself needs aiohttp
