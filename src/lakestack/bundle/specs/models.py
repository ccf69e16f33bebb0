"""Specs for ``registered_models`` (Unity Catalog), the legacy ``models`` and ``experiments``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lakestack.bundle.specs.base import Spec, Str
from lakestack.bundle.specs.common import GrantSpec, PermissionSpec

__all__ = ["ExperimentSpec", "ModelAliasSpec", "ModelSpec", "RegisteredModelSpec"]


class ModelAliasSpec(Spec):
    """An alias of a registered model, as the Databricks API lists them."""

    alias_name: str
    version_num: int | None = None
    catalog_name: str | None = None
    schema_name: str | None = None
    model_name: str | None = None
    id: str | None = None


class RegisteredModelSpec(Spec):
    """A Unity Catalog model ``catalog.schema.name``.

    ``deployment_job`` names a job of the bundle (its key, usually written
    ``${resources.jobs.<key>.id}``) that runs on every new version with ``model_name`` and
    ``model_version``; ``approvers`` (a lakestack addition) may approve those versions.
    """

    name: str
    catalog_name: str | None = None
    schema_name: str | None = None
    comment: str | None = None
    description: str | None = None
    grants: list[GrantSpec] = Field(default_factory=list)
    aliases: list[ModelAliasSpec] = Field(default_factory=list)
    tags: dict[str, Str] = Field(default_factory=dict)
    storage_location: str | None = None
    deployment_job: Str | None = None
    approvers: list[str] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        """The three-level name when catalog and schema are given, else the plain name."""
        if self.catalog_name and self.schema_name:
            return f"{self.catalog_name}.{self.schema_name}.{self.name}"
        return self.name


class ModelSpec(Spec):
    """A model of the legacy workspace registry (a plain name)."""

    name: str
    description: str | None = None
    permissions: list[PermissionSpec] = Field(default_factory=list)
    tags: list[dict[str, Any]] | dict[str, Str] = Field(default_factory=dict)


class ExperimentSpec(Spec):
    """An MLflow experiment."""

    name: str
    artifact_location: str | None = None
    description: str | None = None
    permissions: list[PermissionSpec] = Field(default_factory=list)
    tags: list[dict[str, Any]] | dict[str, Str] = Field(default_factory=dict)
