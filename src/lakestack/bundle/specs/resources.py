"""The ``resources`` mapping: every resource type lakestack runs, keyed by resource key."""

from __future__ import annotations

from pydantic import Field

from lakestack.bundle.specs.base import Spec
from lakestack.bundle.specs.catalog import SchemaSpec, VolumeSpec
from lakestack.bundle.specs.jobs import JobSpec
from lakestack.bundle.specs.models import ExperimentSpec, ModelSpec, RegisteredModelSpec
from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.bundle.specs.serving import ModelServingEndpointSpec

__all__ = ["RESOURCE_TYPES", "UNSUPPORTED_RESOURCE_TYPES", "ResourcesSpec"]


class ResourcesSpec(Spec):
    """All resources of a bundle target, after target overrides and substitutions."""

    jobs: dict[str, JobSpec] = Field(default_factory=dict)
    registered_models: dict[str, RegisteredModelSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    experiments: dict[str, ExperimentSpec] = Field(default_factory=dict)
    model_serving_endpoints: dict[str, ModelServingEndpointSpec] = Field(default_factory=dict)
    quality_monitors: dict[str, QualityMonitorSpec] = Field(default_factory=dict)
    schemas: dict[str, SchemaSpec] = Field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = Field(default_factory=dict)


RESOURCE_TYPES = tuple(ResourcesSpec.model_fields)
"""The resource types lakestack runs."""

UNSUPPORTED_RESOURCE_TYPES = frozenset(
    {
        "pipelines",
        "clusters",
        "dashboards",
        "apps",
        "sql_warehouses",
        "secret_scopes",
        "alerts",
        "database_instances",
        "database_catalogs",
        "synced_database_tables",
        "postgres_projects",
        "postgres_branches",
        "postgres_endpoints",
    }
)
"""Databricks resource types accepted with a warning and otherwise ignored."""
