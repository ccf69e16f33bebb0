"""The shape of a bundle file before substitution: top-level keys and targets.

Resources are validated later, after target overrides and ``${...}`` substitutions, by
``ResourcesSpec``; here they are any mapping.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lakestack.bundle.specs.base import Spec, ignored

__all__ = [
    "BundleSectionSpec",
    "GitSpec",
    "LOOKUP_KINDS",
    "PresetsSpec",
    "RootSpec",
    "TargetSpec",
    "VariableSpec",
    "WorkspaceSpec",
]

LOOKUP_KINDS = (
    "alert",
    "cluster_policy",
    "cluster",
    "dashboard",
    "instance_pool",
    "job",
    "metastore",
    "notification_destination",
    "pipeline",
    "query",
    "service_principal",
    "warehouse",
)


class GitSpec(Spec):
    """``bundle.git``: overrides of what git reports."""

    origin_url: str | None = None
    branch: str | None = None
    commit: str | None = None


class BundleSectionSpec(Spec):
    """The ``bundle`` mapping."""

    name: str | None = None
    uuid: str | None = None
    git: GitSpec | None = None
    databricks_cli_version: str | None = None
    compute_id: str | None = None
    cluster_id: Any = ignored("compute: tasks run as local processes")
    deployment: Any = ignored("deployment locks and failure handling of the Databricks CLI")


class VariableSpec(Spec):
    """A declared variable (top level) or a target's override of one."""

    description: str | None = None
    default: Any = None
    type: Literal["complex"] | None = None
    lookup: dict[str, str] | None = None


class WorkspaceSpec(Spec):
    """The Databricks ``workspace`` mapping, read for substitutions and otherwise ignored."""

    host: str | None = None
    profile: str | None = None
    auth_type: str | None = None
    root_path: str | None = None
    file_path: str | None = None
    artifact_path: str | None = None
    state_path: str | None = None
    resource_path: str | None = None
    account_id: str | None = None
    client_id: str | None = None
    metadata_service_url: str | None = None
    azure_client_id: str | None = None
    azure_environment: str | None = None
    azure_login_app_id: str | None = None
    azure_tenant_id: str | None = None
    azure_use_msi: bool | None = None
    azure_workspace_resource_id: str | None = None
    google_service_account: str | None = None
    serverless_compute_id: str | None = None
    experimental_is_unified_host: bool | None = None


class PresetsSpec(Spec):
    """``presets``: transformations applied to every resource of a target."""

    name_prefix: str | None = None
    pipelines_development: bool | None = None
    trigger_pause_status: Literal["PAUSED", "UNPAUSED"] | None = None
    jobs_max_concurrent_runs: int | None = Field(default=None, ge=1)
    tags: dict[str, str] = Field(default_factory=dict)
    source_linked_deployment: bool | None = None
    artifacts_dynamic_version: bool | None = None


class TargetSpec(Spec):
    """One entry of ``targets``."""

    default: bool = False
    mode: Literal["development", "production"] | None = None
    bundle: BundleSectionSpec | None = None
    workspace: WorkspaceSpec | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    resources: Any = None
    lakestack: Any = None
    presets: PresetsSpec | None = None
    run_as: Any = ignored("run_as: tasks run as the current user")
    permissions: Any = None
    git: GitSpec | None = None
    sync: Any = None
    artifacts: Any = None
    cluster_id: Any = ignored("compute: tasks run as local processes")
    compute_id: Any = ignored("compute: tasks run as local processes")


class RootSpec(Spec):
    """The top-level keys of a bundle file (after includes are merged in)."""

    bundle: BundleSectionSpec | None = None
    include: list[str] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    workspace: WorkspaceSpec | None = None
    artifacts: Any = None
    resources: Any = None
    targets: dict[str, TargetSpec | None] = Field(default_factory=dict)
    environments: dict[str, TargetSpec | None] = Field(default_factory=dict)
    sync: Any = None
    permissions: Any = None
    run_as: Any = ignored("run_as: tasks run as the current user")
    presets: PresetsSpec | None = None
    experimental: Any = None
    scripts: Any = None
    lakestack: Any = None
