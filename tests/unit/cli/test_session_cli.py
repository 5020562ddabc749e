"""Where a session keeps its recovery state (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from tradegraph.cli.sessions import _state_dir
from tradegraph.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[3]
PAPER_YAML = REPO_ROOT / "examples" / "paper.yaml"


def test_paper_state_follows_the_output_folder(tmp_path: Path) -> None:
    config = load_config(PAPER_YAML, [])

    assert _state_dir(config, tmp_path / "run", live=False) == str(tmp_path / "run" / "state")


def test_a_state_dir_the_config_names_wins(tmp_path: Path) -> None:
    config = load_config(PAPER_YAML, [f"session.state_dir={tmp_path / 'kept'}"])

    assert _state_dir(config, tmp_path / "run", live=False) == str(tmp_path / "kept")


def test_live_state_stays_where_the_config_says(tmp_path: Path) -> None:
    config = load_config(PAPER_YAML, [])

    assert _state_dir(config, tmp_path / "run", live=True) == config.session.state_dir
