"""Manifest pieces without a run: digests of folder datasets, and what a rerun reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tradegraph.config import load_config
from tradegraph.errors import DataError
from tradegraph.report.manifest import build_manifest, changed_data, rerun_config


def test_a_dataset_folder_is_digested_file_by_file_and_rerun_from_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bars"
    (folder / "year=2025").mkdir(parents=True)
    (folder / "year=2025" / "a.parquet").write_bytes(b"first part")
    (folder / "year=2025" / "b.parquet").write_bytes(b"second part")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, ["data.bars.0.path=bars"])

    manifest = build_manifest("backtest", config, config_path=None, argv=["backtest"])

    files = manifest["data_files"]
    assert [Path(e["file"]).name for e in files] == ["a.parquet", "b.parquet"]
    assert {e["field"] for e in files} == {"data.bars.0.path"}
    assert files[1]["sha256"] == hashlib.sha256(b"second part").hexdigest()
    assert manifest["command"] == ["tradegraph", "backtest"]
    assert changed_data(manifest) == []

    monkeypatch.chdir(tmp_path.parent)  # a relative path would now miss the folder
    assert rerun_config(manifest).data.bars[0].path == str(folder.resolve())

    (folder / "year=2025" / "b.parquet").write_bytes(b"second part, edited")
    (folder / "year=2025" / "a.parquet").unlink()
    with pytest.raises(DataError) as caught:
        rerun_config(manifest)
    message = str(caught.value)
    assert f"data.bars.0.path: {folder.resolve() / 'year=2025' / 'a.parquet'} is gone" in message
    assert f"{folder.resolve() / 'year=2025' / 'b.parquet'} changed" in message
