"""Where a workspace's MLflow store lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakestack.errors import RegistryError
from lakestack.registry import Tracking, artifact_root_for, tracking_uri_for


def test_the_default_store_is_sqlite_in_the_workspace_root(tmp_path: Path) -> None:
    uri = tracking_uri_for(tmp_path / ".lakestack")
    assert uri == f"sqlite:///{tmp_path / '.lakestack' / 'mlflow.db'}"
    assert artifact_root_for(uri) == str(tmp_path / ".lakestack" / "mlartifacts")
    assert tracking_uri_for(f"file://{tmp_path}") == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        tracking_uri_for(".lakestack")
        == f"sqlite:///{tmp_path.resolve() / '.lakestack' / 'mlflow.db'}"
    )


def test_an_object_store_root_has_no_default_store() -> None:
    with pytest.raises(
        RegistryError, match=r"s3://bucket/prod is not a local folder.*tracking_uri"
    ):
        tracking_uri_for("s3://bucket/prod")


def test_other_stores_choose_their_own_artifact_root() -> None:
    assert artifact_root_for("http://mlflow.internal:5000") is None
    assert artifact_root_for("sqlite:///:memory:") is None


def test_the_environment_wins_over_the_workspace_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert Tracking.for_workspace(tmp_path) == Tracking(tracking_uri_for(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://registry:5000")
    assert Tracking.for_workspace(tmp_path) == Tracking(
        "http://mlflow:5000", "http://registry:5000"
    )


def test_the_current_tracking_uri_is_mlflows_when_the_process_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # forget whatever an earlier test set with mlflow.set_tracking_uri (restored afterwards)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.setattr("mlflow.tracking._model_registry.utils._registry_uri", None)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Tracking.current() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Tracking.current() == Tracking("http://mlflow:5000")
