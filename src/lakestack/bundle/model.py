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
    def workspace_root(self) -> Path:
        """The absolute workspace root (``lakestack.root``, default ``.lakestack``)."""
        root = Path(self.settings.root) if self.settings.root else Path(".lakestack")
        root = root.expanduser()
        return root if root.is_absolute() else (self.root / root).resolve()

    @property
    def state_url(self) -> str:
        """The SQLAlchemy URL of the workspace state (default SQLite in the workspace root)."""
        if self.settings.state_url:
            return self.settings.state_url
        return f"sqlite:///{self.workspace_root / 'state.db'}"

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
