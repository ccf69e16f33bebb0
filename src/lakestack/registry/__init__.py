"""The MLflow boundary: tracking and registry configuration, model logging and loading.

The only importer of ``mlflow``; MLflow errors become lakestack errors here.
"""

from __future__ import annotations

from lakestack.registry.config import (
    Tracking,
    artifact_root_for,
    ensure_store,
    mlflow_errors,
    tracking_uri_for,
)
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
    "LoadedModel",
    "LoggedModel",
    "Tracking",
    "artifact_root_for",
    "download_model",
    "ensure_store",
    "load_model",
    "log_model",
    "mlflow_errors",
    "model_version_tags",
    "set_model_version_tags",
    "tracking_uri_for",
]
