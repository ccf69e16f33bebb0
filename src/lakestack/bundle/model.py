"""``Bundle``: one bundle target, loaded, resolved and validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lakestack.bundle.specs.jobs import JobSpec
from lakestack.bundle.specs.resources import ResourcesSpec
from lakestack.bundle.specs.settings import LakestackSettings
from lakestack.errors import JobError, did_you_mean

__all__ = ["Bundle", "GitInfo"]


@dataclass(frozen=True)
class GitInfo:
    """What git says about the bundle root; None fields outside a repository."""

    origin_url: str | None = None
    branch: str | None = None
    commit: str | None = None


@dataclass
class Bundle:
    """One target of a bundle, with every ``${...}`` substituted and every spec validated.

    Attributes:
        name: ``bundle.name``.
        target: The selected target.
        mode: ``development``, ``production`` or None.
        root: The folder of the bundle file.
        file: The bundle file.
        flavor: ``lakestack`` for a ``lakestack.yml``, ``databricks`` for a ``databricks.yml``
            (unknown keys are warnings there).
        settings: The ``lakestack`` mapping, top level merged with the target's.
        resources: The resources of the target.
        variables: Resolved variable values.
        git: The git origin, branch and commit of the bundle root.
        user: The current user name.
        workspace: The resolved ``workspace`` mapping (root_path, file_path, current_user...).
        uuid: ``bundle.uuid`` if given.
        warnings: One line each, with file:line.
        ignored: Key paths accepted for compatibility and ignored, once each.
        content_hash: sha256 of the canonical JSON of the resolved target configuration.
    """

    name: str
    target: str
    mode: Literal["development", "production"] | None
    root: Path
    file: Path
    flavor: Literal["lakestack", "databricks"]
    settings: LakestackSettings
    resources: ResourcesSpec
    variables: dict[str, Any]
    git: GitInfo
    user: str
    workspace: dict[str, Any]
    uuid: str | None = None
    presets: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    content_hash: str = ""

    @property
    def root_is_url(self) -> bool:
        """True when ``lakestack.root`` is a storage URL (``s3://...``) rather than a folder."""
        root = self.settings.root or ""
        return "://" in root and not root.startswith("file://")

    @property
    def workspace_root(self) -> Path:
        """The local workspace root: state, run logs, MLflow (``lakestack.root`` when it is a
        folder; ``.lakestack`` beside the bundle file by default or when the root is a URL)."""
        if self.settings.root and not self.root_is_url:
            root = Path(self.settings.root.removeprefix("file://")).expanduser()
        else:
            root = Path(".lakestack")
        return root if root.is_absolute() else (self.root / root).resolve()

    @property
    def warehouse(self) -> str:
        """Where the catalog's tables and volumes live: ``<root>/warehouse``, a folder or a URL."""
        if self.root_is_url:
            return f"{str(self.settings.root).rstrip('/')}/warehouse"
        return str(self.workspace_root / "warehouse")

    @property
    def state_url(self) -> str:
        """The SQLAlchemy URL of the workspace state (default SQLite in the workspace root)."""
        if self.settings.state_url:
            return self.settings.state_url
        return f"sqlite:///{self.workspace_root / 'state.db'}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (default SQLite ``<workspace root>/mlflow.db``)."""
        if self.settings.tracking_uri:
            return self.settings.tracking_uri
        return f"sqlite:///{self.workspace_root / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        """The MLflow registry URI (default: the tracking URI)."""
        return self.settings.registry_uri or self.tracking_uri

    @property
    def task_environment(self) -> dict[str, str]:
        """What task processes get in their environment to find the workspace's services."""
        import json

        env = {
            "LAKESTACK_WORKSPACE_ROOT": str(self.workspace_root),
            "LAKESTACK_WAREHOUSE": self.warehouse,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_REGISTRY_URI": self.registry_uri,
        }
        if self.settings.storage_options:
            env["LAKESTACK_STORAGE_OPTIONS"] = json.dumps(self.settings.storage_options)
        if not self.settings.tracking_uri:
            # where MLflow puts the artifacts of experiments that task code creates itself
            # (mlflow.set_experiment) in the SQLite store: beside it, never ./mlruns
            root = (self.workspace_root / "mlartifacts").resolve()
            env["_MLFLOW_SERVER_ARTIFACT_ROOT"] = root.as_uri()
        env["LAKESTACK_BUNDLE_ROOT"] = str(self.root)
        env["LAKESTACK_TARGET"] = self.target
        # always set: an inherited LAKESTACK_AUTO_APPROVE=1 must not approve in production
        env["LAKESTACK_AUTO_APPROVE"] = "1" if self.auto_approve else "0"
        return env

    @property
    def has_deployment_jobs(self) -> bool:
        """Whether a registered model of the bundle names a deployment job."""
        return any(m.deployment_job for m in self.resources.registered_models.values())

    @property
    def auto_approve(self) -> bool:
        """Whether approval tasks approve by themselves: only a development target may say so."""
        return self.mode == "development" and self.settings.auto_approve

    def job(self, key: str) -> JobSpec:
        """The job ``key``; a JobError naming the defined jobs (and the nearest) otherwise."""
        if key in self.resources.jobs:
            return self.resources.jobs[key]
        defined = ", ".join(sorted(self.resources.jobs)) or "none"
        hint = did_you_mean(key, self.resources.jobs)
        suffix = f"; did you mean '{hint}'?" if hint else ""
        raise JobError(
            f"job '{key}' is not defined in bundle '{self.name}' (target {self.target}); "
            f"defined jobs: {defined}{suffix}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as JSON-able data (``bundle validate --output json``)."""
        bundle: dict[str, Any] = {
            "name": self.name,
            "target": self.target,
            "mode": self.mode,
            "git": {
                "origin_url": self.git.origin_url,
                "branch": self.git.branch,
                "commit": self.git.commit,
            },
        }
        if self.uuid:
            bundle["uuid"] = self.uuid
        return {
            "bundle": bundle,
            "variables": {k: {"value": v} for k, v in sorted(self.variables.items())},
            "workspace": self.workspace,
            "presets": self.presets,
            "lakestack": self.settings.model_dump(mode="json", exclude_none=True),
            "resources": self.resources.model_dump(mode="json", exclude_none=True),
        }
