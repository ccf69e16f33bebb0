"""The MLflow boundary: tracking and registry configuration, the model registry, model logging
and loading, lineage.

The only importer of ``mlflow``; MLflow errors become lakestack errors here.
"""

from __future__ import annotations

from lakestack.registry.client import (
    APPROVAL_TAG,
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_RUN_TAG,
    DEPLOYMENT_STATE_TAG,
    MANAGED_BY_TAG,
    DeployResult,
    ModelRegistry,
    ModelVersionInfo,
    RegisteredModelInfo,
)
from lakestack.registry.config import (
    Tracking,
    artifact_root_for,
    ensure_store,
    mlflow_errors,
    tracking_uri_for,
)
from lakestack.registry.lineage import parse_lineage
from lakestack.registry.models import (
    LoadedModel,
    LoggedModel,
    download_model,
    load_model,
    log_model,
    model_version_tags,
    set_model_version_tags,
)

__all__ = [
    "APPROVAL_TAG",
    "CHALLENGER",
    "CHAMPION",
    "DEPLOYMENT_RUN_TAG",
    "DEPLOYMENT_STATE_TAG",
    "MANAGED_BY_TAG",
    "DeployResult",
    "LoadedModel",
    "LoggedModel",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegisteredModelInfo",
    "Tracking",
    "artifact_root_for",
    "download_model",
    "ensure_store",
    "load_model",
    "log_model",
    "mlflow_errors",
    "model_version_tags",
    "parse_lineage",
    "set_model_version_tags",
    "tracking_uri_for",
]
