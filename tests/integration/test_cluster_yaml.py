"""``cluster.yaml`` passes the validation ``ray up`` applies before it launches anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

pytestmark = pytest.mark.ray

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def _load() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(CLUSTER_YAML.read_text())
    return raw


def test_cluster_yaml_passes_rays_validator() -> None:
    prepared = prepare_config(_load())

    validate_config(prepared)

    assert prepared["provider"]["type"] == "local"
    node_type = prepared["available_node_types"][prepared["head_node_type"]]
    assert node_type["max_workers"] == len(prepared["provider"]["worker_ips"])


def test_cluster_yaml_installs_the_project_on_every_node() -> None:
    config = _load()

    assert any("pip install" in c and "tradegraph" in c for c in config["setup_commands"])
    assert config["provider"]["head_ip"]


def test_validator_rejects_an_unknown_field() -> None:
    broken = {**_load(), "max_wrokers": 3}

    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(broken))
