"""``manifest.json`` of a backtest and ``tradegraph backtest --manifest``, run as a user runs them.

A backtest over a real Parquet file writes its manifest; a rerun from it, from another working
directory, gives the same fills; a changed data file is refused before anything runs; and a
rerun whose fills differ from the recorded ones exits non-zero saying what differs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tradegraph.data.catalog import read_bars

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A backtest over ``bars.parquet`` (2,000 real minutes) and the manifest it wrote."""
    (bars,) = read_bars("sample:BTCUSDT_1m", limit=2_000)
    data = tmp_path / "bars.parquet"
    pq.write_table(bars.to_table().drop_columns(["symbol", "venue"]), data)
    out = tmp_path / "first"
    proc = _cli(
        "backtest",
        "--data",
        str(data),
        "--out",
        str(out),
        "--no-html",
        "--json",
        "--set",
        "strategies.sma.params.fast_period=10",
        "--set",
        "strategies.sma.params.slow_period=30",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["fills"] > 0
    assert manifest["results"]["fills_digest"] == summary["fills_digest"]
    return data, out / "manifest.json", manifest


def test_a_backtest_writes_what_it_was_made_of(recorded: tuple[Path, Path, dict[str, Any]]) -> None:
    data, _, manifest = recorded

    assert manifest["kind"] == "backtest"
    assert manifest["config"]["strategies"][0]["params"]["fast_period"] == 10
    canonical = json.dumps(manifest["config"], sort_keys=True, separators=(",", ":"))
    assert manifest["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    (entry,) = manifest["data_files"]
    assert entry["field"] == "data.bars.0.path"
    assert entry["file"] == str(data.resolve())
    assert entry["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert entry["bytes"] == data.stat().st_size
    packages = manifest["packages"]
    for name in ("tradegraph", "python", "ray", "ccxt", "numpy", "pyarrow", "pandas"):
        assert packages[name], name
    assert manifest["seeds"]["config"] == manifest["config"]["seed"]
    assert manifest["command"][:2] == ["tradegraph", "backtest"]
    assert "strategies.sma.params.slow_period=30" in manifest["command"]
    # Run from this checkout: its commit, and whether it had uncommitted changes.
    git = manifest["git"]
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert git["commit"] == head.stdout.strip()
    assert isinstance(git["dirty"], bool)


def test_a_rerun_from_the_manifest_gives_the_same_fills(
    recorded: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, manifest_path, manifest = recorded
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    proc = _cli(
        "backtest", "--manifest", str(manifest_path), "--out", str(tmp_path / "again"),
        "--no-html", cwd=elsewhere,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    digest = manifest["results"]["fills_digest"]
    assert f"rerun matches {manifest_path}: fills digest {digest}" in proc.stdout
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["results"] == manifest["results"]
    assert again["run"]["rerun_of"] == str(manifest_path)


def test_a_changed_data_file_is_refused_naming_it(
    recorded: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, manifest_path, _ = recorded
    table = pq.read_table(data)
    close = table.column("close")
    table = table.set_column(
        table.schema.get_field_index("close"),
        "close",
        pc.add(close, pa.scalar(0.01, close.type)),
    )
    pq.write_table(table, data)

    proc = _cli("backtest", "--manifest", str(manifest_path), "--out", str(tmp_path / "again"))

    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "data changed" in proc.stderr
    assert f"data.bars.0.path: {data.resolve()} changed" in proc.stderr
    assert not (tmp_path / "again").exists()


def test_fills_that_differ_from_the_recorded_ones_fail_saying_what_differs(
    recorded: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    manifest = recorded[2]
    truth = manifest["results"]["fills_digest"]
    manifest["results"]["fills_digest"] = "0" * len(truth)
    manifest["results"]["fills"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(manifest))

    proc = _cli("backtest", "--manifest", str(edited), "--out", str(tmp_path / "again"))

    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: rerun of {edited} differs: fills_digest {truth} (recorded 000")
    assert (
        f"fills {manifest['results']['fills'] - 1} (recorded {manifest['results']['fills']})"
        in last
    )


def test_an_edited_configuration_or_extra_flags_are_refused(
    recorded: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, manifest_path, manifest = recorded
    manifest["config"]["seed"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(manifest))

    proc = _cli("backtest", "--manifest", str(edited))
    assert proc.returncode == 2
    assert "field 'config' does not match its config_sha256" in proc.stderr

    proc = _cli("backtest", "--manifest", str(manifest_path), "--set", "seed=3")
    assert proc.returncode == 2
    assert "drop --set" in proc.stderr


FAST = "strategies.sma.params.fast_period"
SLOW = "strategies.sma.params.slow_period"


@pytest.mark.parametrize(
    ("kind", "args", "seed_key"),
    [
        ("sweep", ["--grid", f"{FAST}=5,10", "--grid", f"{SLOW}=20", "--in-process"], "search_seed"),
        (
            "montecarlo",
            ["--paths", "2", "--bars-per-path", "200", "--model", "bootstrap", "--seed", "11",
             "--in-process"],
            "root_seed",
        ),
        (
            "walkforward",
            ["--grid", f"{FAST}=5,10", "--grid", f"{SLOW}=20", "--train", "3h", "--test", "1h",
             "--in-process"],
            "search_seed",
        ),
    ],
)  # fmt: skip
def test_batches_write_their_manifest_with_seeds_and_results_digest(
    kind: str, args: list[str], seed_key: str, tmp_path: Path
) -> None:
    out = tmp_path / kind
    proc = _cli(kind, "--set", "data.bars.0.limit=400", *args, "--no-html", "--out", str(out))

    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == kind
    assert manifest["command"][:2] == ["tradegraph", kind]
    assert manifest["config"]["data"]["bars"][0]["limit"] == 400
    (entry,) = manifest["data_files"]
    assert entry["path"] == "sample:BTCUSDT_1m"
    assert entry["sha256"] == hashlib.sha256(Path(entry["file"]).read_bytes()).hexdigest()
    assert seed_key in manifest["seeds"]
    if kind == "montecarlo":
        assert manifest["seeds"]["root_seed"] == 11
    printed = proc.stdout.split("results_digest ")[1].split()[0]
    assert manifest["results"] == {"results_digest": printed}
