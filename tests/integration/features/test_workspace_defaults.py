"""With no arguments, the client uses the bundle's catalog and MLflow store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lakestack.features import FeatureEngineeringClient
from lakestack.registry import Tracking

pytestmark = pytest.mark.integration


def test_no_arguments_means_the_bundle_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lakestack.yml").write_text("bundle:\n  name: demo\n")
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "LAKESTACK_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.setattr("mlflow.tracking._model_registry.utils._registry_uri", None)

    fe = FeatureEngineeringClient()
    fe.catalog.create_schema("main.fs")
    fe.create_table("main.fs.t", primary_keys="id", df=pd.DataFrame({"id": [1], "x": [2.0]}))

    workspace = tmp_path / ".lakestack"
    assert fe.get_table("main.fs.t").path.startswith(str(workspace / "warehouse"))
    assert fe._tracking() == Tracking(f"sqlite:///{workspace / 'mlflow.db'}")
