"""The deploy and promote entry points outside a job: the registry comes from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakestack.errors import ModelNotFoundError
from lakestack.lifecycle import deploy, promote
from lakestack.registry import ModelRegistry, Tracking, tracking_uri_for
from tests.integration.registry.conftest import add_version

pytestmark = pytest.mark.integration


def test_deploy_and_promote_entry_points(
    registry: ModelRegistry, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKESTACK_TASK_CONTEXT", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking.tracking_uri)

    assert deploy.main(["--model_name", model, "--model_version=2"]) == 0
    assert registry.alias_version(model, "champion") == 2
    with pytest.raises(ModelNotFoundError, match="has no version 5"):
        deploy.main(["--model_name", model, "--model_version", "5"])
    assert registry.alias_version(model, "champion") == 2

    other = ModelRegistry(Tracking(tracking_uri_for(tmp_path / "prod")))
    argv = ["--model_name", model, "--model_version", "champion", "--to_name", "prod.s.m"]
    assert promote.main([*argv, "--to_tracking_uri", other.tracking.tracking_uri]) == 0
    copy = other.get_version("prod.s.m", 1)
    assert copy.lineage["promoted_from"] == f"{model}/2"
    assert promote.main(argv) == 0  # into the same registry
    assert registry.get_version("prod.s.m", 1).source == f"models:/{model}/2"


def test_deploy_version_is_the_registry_deploy(registry: ModelRegistry, model: str) -> None:
    add_version(registry, model, Path.cwd())
    result = deploy.deploy_version(registry, model, 4)
    assert (result.version, result.previous) == (4, None)
    copy = promote.promote_version(registry, model, 4, model + "_copy")
    assert (copy.name, copy.version) == (model + "_copy", 1)
