"""The model registry as lakestack uses it: names, versions, aliases, tags, deploy and rollback.

``ModelRegistry`` wraps one ``mlflow.MlflowClient`` built with both the tracking and the registry
URI of a workspace, so nothing depends on MLflow's process-global URIs. Names are MLflow
registered-model names as they are: ``catalog.schema.model`` for Unity Catalog style names.
Aliases are case-insensitive, as in Unity Catalog: they are stored lower-case and found in any
case. Every MLflow error becomes a ``RegistryError``; a missing model, version or alias a
``ModelNotFoundError`` naming it and listing what exists.

Deploying moves the ``champion`` alias and keeps the champions it replaced in the registered
model's ``lakestack.champion_history`` tag (JSON list, oldest first), which ``rollback`` pops.
MLflow keeps no time for an alias move, so deploy and rollback also tag the new champion with
``lakestack.champion_since`` (ISO 8601, UTC): the monitoring report marks promotions with it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.errors import ModelNotFoundError, RegistryError, did_you_mean
from lakestack.registry.config import (
    Tracking,
    artifact_root_for,
    ensure_store,
    mlflow_errors,
)
from lakestack.registry.lineage import PROMOTED_FROM_TAG, parse_lineage

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

__all__ = [
    "APPROVAL_TAG",
    "CHALLENGER",
    "CHAMPION",
    "CHAMPION_HISTORY_TAG",
    "CHAMPION_SINCE_TAG",
    "DEPLOYMENT_RUN_TAG",
    "DEPLOYMENT_STATE_TAG",
    "MANAGED_BY_TAG",
    "NOT_COPIED_TAGS",
    "PROMOTION_EXPERIMENT",
    "DeployResult",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegisteredModelInfo",
]

APPROVAL_TAG = "approval"
DEPLOYMENT_STATE_TAG = "lakestack.deployment_state"
DEPLOYMENT_RUN_TAG = "lakestack.deployment_run_id"
CHAMPION_HISTORY_TAG = "lakestack.champion_history"
CHAMPION_SINCE_TAG = "lakestack.champion_since"
MANAGED_BY_TAG = "lakestack.managed_by"
CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTION_EXPERIMENT = "/lakestack/promoted-models"

# A copy is a new version in its own registry: it is approved and deployed there, so the
# source's approval and deployment state must not travel with it (an approval given in staging
# would otherwise approve the copy in prod).
NOT_COPIED_TAGS = frozenset(
    {APPROVAL_TAG, DEPLOYMENT_STATE_TAG, DEPLOYMENT_RUN_TAG, CHAMPION_SINCE_TAG}
)
_NOT_COPIED_PREFIXES = ("lakestack.approval",)
_HISTORY_KEPT = 50
_SHOWN = 20


def _when(millis: int | None) -> datetime:
    return datetime.fromtimestamp((millis or 0) / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model.

    Attributes:
        name: The registered model.
        version: The version number.
        aliases: Its aliases, lower-case.
        tags: Its tags.
        run_id: The run that logged it, if known.
        source: Where MLflow found its artifacts when it was registered.
        status: MLflow's status (``READY``...).
        created_at: When it was registered (UTC).
        description: Its description.
        model_uri: ``models:/<name>/<version>``.
    """

    name: str
    version: int
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    source: str | None
    status: str
    created_at: datetime
    description: str | None
    model_uri: str

    @property
    def deployment_state(self) -> str | None:
        """PENDING, RUNNING, APPROVAL, SUCCEEDED or FAILED, when a deployment job ran for it."""
        return self.tags.get(DEPLOYMENT_STATE_TAG)

    @property
    def approval(self) -> str | None:
        """The ``approval`` tag (``Approved`` or ``Rejected``, in any case), if set."""
        return self.tags.get(APPROVAL_TAG)

    @property
    def champion_since(self) -> datetime | None:
        """When the version last became the champion (deploy or rollback), if recorded."""
        text = self.tags.get(CHAMPION_SINCE_TAG)
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            return None

    @property
    def lineage(self) -> dict[str, Any]:
        """Training run, code version, input and feature tables, promotion source."""
        return parse_lineage(self.tags, self.run_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (``models versions --output json``)."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "status": self.status,
            "deployment_state": self.deployment_state,
            "approval": self.approval,
            "created_at": self.created_at.isoformat(),
            "run_id": self.run_id,
            "source": self.source,
            "description": self.description,
            "model_uri": self.model_uri,
            "lineage": self.lineage,
            "tags": dict(self.tags),
        }

    @classmethod
    def _from(cls, mv: ModelVersion, aliases: list[str] | None = None) -> ModelVersionInfo:
        return cls(
            name=str(mv.name),
            version=int(mv.version),
            aliases=sorted({str(a).lower() for a in (mv.aliases or aliases or [])}),
            tags=dict(mv.tags or {}),
            run_id=mv.run_id or None,
            source=mv.source or None,
            status=str(mv.status or ""),
            created_at=_when(mv.creation_timestamp),
            description=mv.description or None,
            model_uri=f"models:/{mv.name}/{mv.version}",
        )


@dataclass(frozen=True)
class RegisteredModelInfo:
    """A registered model.

    Attributes:
        name: Its name (``catalog.schema.model``).
        description: Its description.
        tags: Its tags.
        aliases: ``{alias: version}``, aliases lower-case.
        latest_version: The highest version number, None before the first version.
        created_at: When it was created (UTC).
    """

    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (``models list --output json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "tags": dict(self.tags),
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def _from(cls, rm: RegisteredModel) -> RegisteredModelInfo:
        latest = [int(v.version) for v in (rm.latest_versions or [])]
        return cls(
            name=str(rm.name),
            description=rm.description or None,
            tags=dict(rm.tags or {}),
            aliases={str(a).lower(): int(v) for a, v in (rm.aliases or {}).items()},
            latest_version=max(latest) if latest else None,
            created_at=_when(rm.creation_timestamp),
        )


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` or ``rollback`` did.

    Attributes:
        name: The registered model.
        version: The champion now.
        previous: The champion before, None if there was none (equal to ``version`` when the
            version already was the champion and nothing changed).
    """

    name: str
    version: int
    previous: int | None

    @property
    def changed(self) -> bool:
        """Whether the champion alias moved."""
        return self.previous != self.version

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {"name": self.name, "version": self.version, "previous": self.previous}


class ModelRegistry:
    """Registered models, versions, aliases and tags of one MLflow registry.

    Args:
        tracking: The tracking store and registry to use (``Tracking.for_workspace(root)`` or
            ``Tracking(uri)``).
    """

    def __init__(self, tracking: Tracking) -> None:
        self.tracking = tracking
        self._client: MlflowClient | None = None

    @classmethod
    def default(cls) -> ModelRegistry:
        """The registry of the workspace this process runs for.

        In a job task: ``MLFLOW_TRACKING_URI`` (set by the orchestrator) or the store in
        ``LAKESTACK_WORKSPACE_ROOT``. Elsewhere: the default target of the bundle found from the
        working directory.
        """
        root = os.environ.get("LAKESTACK_WORKSPACE_ROOT")
        if os.environ.get("MLFLOW_TRACKING_URI") or root:
            return cls(Tracking.for_workspace(root or "."))
        from lakestack.bundle import load_bundle

        bundle = load_bundle()
        registry = bundle.registry_uri
        return cls(
            Tracking(bundle.tracking_uri, registry if registry != bundle.tracking_uri else None)
        )

    @property
    def registry_uri(self) -> str:
        """The registry URI (the tracking URI unless the tracking says otherwise)."""
        return self.tracking.registry_uri or self.tracking.tracking_uri

    @property
    def client(self) -> MlflowClient:
        """The MLflow client on this registry (the store is created on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            ensure_store(self.tracking.tracking_uri)
            if self.registry_uri != self.tracking.tracking_uri:
                ensure_store(self.registry_uri)
            self._client = MlflowClient(
                tracking_uri=self.tracking.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def __repr__(self) -> str:
        return f"ModelRegistry({self.registry_uri!r})"

    # registered models -------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModelInfo:
        """Create a registered model, or update the description and tags of an existing one.

        Tags not named in ``tags`` are left as they are.
        """
        with self._errors(f"creating model {name}"):
            if not self.has_model(name):
                from mlflow.exceptions import MlflowException

                try:
                    self.client.create_registered_model(
                        name, tags=dict(tags or {}), description=description
                    )
                    return self.get_model(name)
                except MlflowException as exc:  # created meanwhile by someone else
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
            if description is not None:
                self.client.update_registered_model(name, description=description)
            for key, value in (tags or {}).items():
                self.client.set_registered_model_tag(name, key, str(value))
        return self.get_model(name)

    def has_model(self, name: str) -> bool:
        """Whether a registered model ``name`` exists."""
        with self._errors(f"reading model {name}"):
            return bool(self._search_models(f"name = '{_quoted(name)}'"))

    def delete_model(self, name: str) -> None:
        """Delete a registered model with all its versions; a missing one is a no-op."""
        if not self.has_model(name):
            return
        with self._errors(f"deleting model {name}"):
            self.client.delete_registered_model(name)

    def get_model(self, name: str) -> RegisteredModelInfo:
        """A registered model.

        Raises:
            ModelNotFoundError: No such model (the message lists the models there are).
        """
        return RegisteredModelInfo._from(self._registered(name))

    def list_models(self, prefix: str | None = None) -> list[RegisteredModelInfo]:
        """The registered models, by name; only those whose name starts with ``prefix``."""
        with self._errors("listing registered models"):
            models = self._search_models(None)
        infos = [RegisteredModelInfo._from(rm) for rm in models]
        return sorted(
            (i for i in infos if prefix is None or i.name.startswith(prefix)),
            key=lambda i: i.name,
        )

    def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set tags on a registered model."""
        self._registered(name)
        with self._errors(f"tagging model {name}"):
            for key, value in tags.items():
                self.client.set_registered_model_tag(name, key, str(value))

    def delete_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model; a missing tag is a no-op."""
        if key not in self._registered(name).tags:
            return
        with self._errors(f"untagging model {name}"):
            self.client.delete_registered_model_tag(name, key)

    # versions ----------------------------------------------------------------------------

    def versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of a model, newest first.

        Raises:
            ModelNotFoundError: No such model.
        """
        aliases: dict[int, list[str]] = {}
        for alias, number in self._registered(name).aliases.items():
            aliases.setdefault(int(number), []).append(str(alias))
        with self._errors(f"listing the versions of model {name}"):
            found = self._search_versions(name)
        # MLflow's search leaves a version's aliases out; they come from the registered model
        infos = (ModelVersionInfo._from(mv, aliases.get(int(mv.version), [])) for mv in found)
        return sorted(infos, key=lambda v: -v.version)

    def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        """A version by number (``3``, ``"3"``) or by alias (``"Champion"``: any case).

        Raises:
            ModelNotFoundError: No such model, version or alias (the message lists those there
                are).
        """
        number = _version_number(version)
        if number is None:
            found = self.alias_version(name, str(version))
            if found is None:
                raise ModelNotFoundError(self._no_alias(name, str(version)))
            number = found
        with self._errors(
            f"reading model {name} version {number}", missing=lambda: self._no_version(name, number)
        ):
            return ModelVersionInfo._from(self.client.get_model_version(name, str(number)))

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version an alias points at (any case), None when the alias is not set.

        Raises:
            ModelNotFoundError: No such model.
        """
        for key, value in self._registered(name).aliases.items():
            if str(key).lower() == alias.lower():
                return int(value)
        return None

    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` (stored lower-case) at a version; other spellings of it are removed.

        Raises:
            ModelNotFoundError: No such model or version.
            RegistryError: MLflow refuses the alias (reserved names such as ``latest``).
        """
        number = self.get_version(name, version).version
        lower = alias.lower()
        with self._errors(f"setting alias {lower} of model {name}"):
            self.client.set_registered_model_alias(name, lower, str(number))
            for key in self._registered(name).aliases:
                if str(key).lower() == lower and str(key) != lower:
                    self.client.delete_registered_model_alias(name, str(key))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (any case); a missing alias is a no-op.

        Raises:
            ModelNotFoundError: No such model.
        """
        keys = [k for k in self._registered(name).aliases if str(k).lower() == alias.lower()]
        with self._errors(f"removing alias {alias.lower()} of model {name}"):
            for key in keys:
                self.client.delete_registered_model_alias(name, str(key))

    def set_version_tags(self, name: str, version: int | str, tags: Mapping[str, str]) -> None:
        """Set tags on a version (by number or alias); values become strings.

        Raises:
            ModelNotFoundError: No such model, version or alias.
        """
        number = self.get_version(name, version).version
        with self._errors(f"tagging model {name} version {number}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(number), key, str(value))

    def delete_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a version; a missing tag is a no-op.

        Raises:
            ModelNotFoundError: No such model, version or alias.
        """
        info = self.get_version(name, version)
        if key not in info.tags:
            return
        with self._errors(f"untagging model {name} version {info.version}"):
            self.client.delete_model_version_tag(name, str(info.version), key)

    # deploy, rollback, promote -----------------------------------------------------------

    def deploy(self, name: str, version: int | str) -> DeployResult:
        """Make a version the champion.

        The champion it replaces is pushed on the model's champion history (for ``rollback``);
        the ``challenger`` alias is removed when it points at the version. Deploying the
        champion again changes nothing.

        Raises:
            ModelNotFoundError: No such model, version or alias; nothing changed.
        """
        number = self.get_version(name, version).version
        previous = self.alias_version(name, CHAMPION)
        if previous != number:
            history = self.champion_history(name)
            if previous is not None:
                self._set_history(name, [*history, previous])
            try:
                self.set_alias(name, CHAMPION, number)
            except RegistryError:
                if previous is not None:
                    self._set_history(name, history)
                raise
            self._mark_champion(name, number)
        if self.alias_version(name, CHALLENGER) == number:
            self.delete_alias(name, CHALLENGER)
        return DeployResult(name, number, previous)

    def rollback(self, name: str) -> DeployResult:
        """Make the previous champion the champion again (and forget it in the history).

        Versions deleted since are skipped.

        Raises:
            ModelNotFoundError: No such model.
            RegistryError: The model has no previous champion; nothing changed.
        """
        history = self.champion_history(name)
        current = self.alias_version(name, CHAMPION)
        existing = {v.version for v in self.versions(name)}
        while history and (history[-1] not in existing or history[-1] == current):
            history.pop()
        if not history:
            now = f"champion is version {current}" if current is not None else "no champion"
            raise RegistryError(
                f"model {name} has no previous champion to roll back to ({now}); deploy a "
                "version instead"
            )
        target = history.pop()
        self._set_history(name, history)
        try:
            self.set_alias(name, CHAMPION, target)
        except RegistryError:
            self._set_history(name, [*history, target])
            raise
        self._mark_champion(name, target)
        return DeployResult(name, target, current)

    def champion_history(self, name: str) -> list[int]:
        """The versions that were champion before the current one, oldest first."""
        text = self._registered(name).tags.get(CHAMPION_HISTORY_TAG, "[]")
        try:
            data = json.loads(text)
        except ValueError:
            return []
        return [int(v) for v in data if isinstance(v, int)] if isinstance(data, list) else []

    def _mark_champion(self, name: str, version: int) -> None:
        now = datetime.now(timezone.utc).isoformat()
        with self._errors(f"recording when version {version} of model {name} became champion"):
            self.client.set_model_version_tag(name, str(version), CHAMPION_SINCE_TAG, now)

    def _set_history(self, name: str, history: list[int]) -> None:
        with self._errors(f"recording the champion history of model {name}"):
            self.client.set_registered_model_tag(
                name, CHAMPION_HISTORY_TAG, json.dumps(history[-_HISTORY_KEPT:])
            )

    def copy_version(
        self,
        name: str,
        version: int | str,
        to_name: str,
        *,
        to: ModelRegistry | None = None,
    ) -> ModelVersionInfo:
        """Copy a version to a new version of ``to_name``, in this registry or in ``to``.

        The copy keeps the source's tags (its lineage) except approval and deployment state,
        which belong to the registry it is deployed from, and gains ``lakestack.promoted_from``
        (``<name>/<version>``). In one registry the copy points at the source version's
        artifacts, as MLflow's ``copy_model_version`` does; into another registry the artifacts
        are downloaded and uploaded there (as a logged model of the experiment
        ``/lakestack/promoted-models``), so the copy does not depend on the source store.
        ``to_name`` is created when missing.

        Raises:
            ModelNotFoundError: No such source model, version or alias; nothing was copied.
        """
        source = self.get_version(name, version)
        tags = {
            k: v
            for k, v in source.tags.items()
            if k not in NOT_COPIED_TAGS and not k.startswith(_NOT_COPIED_PREFIXES)
        }
        tags[PROMOTED_FROM_TAG] = f"{source.name}/{source.version}"
        target = to if to is not None and to.registry_uri != self.registry_uri else self
        if target is self and to_name == source.name:
            raise RegistryError(
                f"cannot copy model {name} version {source.version} onto itself; give another "
                "model name or another target's registry"
            )
        if target is self:
            return self._copy_here(source, to_name, tags)
        return target._upload_copy(self, source, to_name, tags)

    def _copy_here(
        self, source: ModelVersionInfo, to_name: str, tags: dict[str, str]
    ) -> ModelVersionInfo:
        # MlflowClient.copy_model_version would copy every tag, approval included; this is the
        # same call with the tags filtered, so the copy never exists with the source's approval
        self.create_model(to_name)
        with self._errors(f"copying model {source.name} version {source.version} to {to_name}"):
            mv = self.client.create_model_version(
                to_name,
                source=source.model_uri,
                run_id=source.run_id,
                tags=tags,
                description=source.description,
            )
        return ModelVersionInfo._from(mv)

    def _upload_copy(
        self, origin: ModelRegistry, source: ModelVersionInfo, to_name: str, tags: dict[str, str]
    ) -> ModelVersionInfo:
        import mlflow

        doing = f"copying model {source.name} version {source.version} to {to_name} in {self}"
        with tempfile.TemporaryDirectory(prefix="lakestack-promote-") as tmp:
            with origin._errors(f"downloading model {source.name} version {source.version}"):
                uri = origin.client.get_model_version_download_uri(source.name, str(source.version))
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=origin.tracking.tracking_uri
                )
            experiment = self.create_experiment(PROMOTION_EXPERIMENT)
            self.create_model(to_name)
            with self._errors(doing):
                logged = self.client.create_logged_model(
                    experiment_id=experiment,
                    name=to_name.rsplit(".", 1)[-1],
                    tags={PROMOTED_FROM_TAG: tags[PROMOTED_FROM_TAG]},
                )
                self.client.log_model_artifacts(logged.model_id, local)
                self.client.finalize_logged_model(logged.model_id, "READY")
                # the artifact location, not models:/<id>: MLflow's SQL registry would resolve a
                # logged-model id through the process-global tracking URI
                mv = self.client.create_model_version(
                    to_name,
                    source=logged.artifact_location,
                    tags=tags,
                    description=source.description,
                )
        return ModelVersionInfo._from(mv)

    # experiments -------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The id of experiment ``name``: created if missing, restored if deleted; ``tags`` set.

        In a SQLite store a new experiment keeps its artifacts in the workspace's
        ``mlartifacts/<id>`` (MLflow's client would pick ``./mlruns`` of the working directory).
        """
        with self._errors(f"creating experiment {name}"):
            found = self.client.get_experiment_by_name(name)
            if found is None:
                experiment_id = self._new_experiment(name, artifact_location)
            else:
                experiment_id = str(found.experiment_id)
                if found.lifecycle_stage == "deleted":
                    self.client.restore_experiment(experiment_id)
            for key, value in (tags or {}).items():
                self.client.set_experiment_tag(experiment_id, key, str(value))
        return experiment_id

    def get_experiment_tags(self, name: str) -> dict[str, str] | None:
        """The tags of an active experiment, None when there is no such experiment."""
        with self._errors(f"reading experiment {name}"):
            found = self.client.get_experiment_by_name(name)
        if found is None or found.lifecycle_stage == "deleted":
            return None
        return dict(found.tags or {})

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment (MLflow keeps it restorable); a missing one is a no-op."""
        with self._errors(f"deleting experiment {name}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None and found.lifecycle_stage != "deleted":
                self.client.delete_experiment(str(found.experiment_id))

    def _new_experiment(self, name: str, artifact_location: str | None) -> str:
        root = artifact_root_for(self.tracking.tracking_uri)
        if artifact_location is not None or root is None:
            return str(self.client.create_experiment(name, artifact_location=artifact_location))
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(self.tracking.tracking_uri, Path(root).as_uri())  # type: ignore[no-untyped-call]
        try:
            return str(store.create_experiment(name))  # type: ignore[no-untyped-call]
        finally:
            store.engine.dispose()

    # internals ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str, *, missing: Callable[[], str] | None = None) -> Iterator[None]:
        """``mlflow_errors``, with MLflow's "does not exist" as ``ModelNotFoundError``."""
        from mlflow.exceptions import MlflowException

        try:
            with mlflow_errors(doing):
                yield
        except RegistryError as exc:
            cause = exc.__cause__
            if (
                type(exc) is RegistryError
                and missing is not None
                and isinstance(cause, MlflowException)
                and cause.error_code == "RESOURCE_DOES_NOT_EXIST"
            ):
                raise ModelNotFoundError(missing()) from cause
            raise

    def _registered(self, name: str) -> RegisteredModel:
        with self._errors(f"reading model {name}", missing=lambda: self._no_model(name)):
            return self.client.get_registered_model(name)

    def _search_models(self, filter_string: str | None) -> list[RegisteredModel]:
        out: list[RegisteredModel] = []
        token = None
        while True:
            page = self.client.search_registered_models(
                filter_string=filter_string, max_results=1000, page_token=token
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def _search_versions(self, name: str) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{_quoted(name)}'", max_results=10_000, page_token=token
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def _no_model(self, name: str) -> str:
        names = [m.name for m in self.list_models()]
        hint = did_you_mean(name, names)
        then = f"did you mean {hint}?" if hint else "list them with: lakestack models list"
        return f"model {name} does not exist (models: {_listed(names)}); {then}"

    def _no_version(self, name: str, version: int) -> str:
        numbers = sorted(v.version for v in self.versions(name))
        return (
            f"model {name} has no version {version} (versions: {_listed(map(str, numbers))}); "
            f"see them with: lakestack models versions {name}"
        )

    def _no_alias(self, name: str, alias: str) -> str:
        aliases = sorted(self.get_model(name).aliases)
        return f"model {name} has no alias '{alias.lower()}' (aliases: {_listed(aliases)})"


def _version_number(version: int | str) -> int | None:
    if isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version
    text = str(version).strip()
    return int(text) if text.isdigit() else None


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _listed(items: Any) -> str:
    values = list(items)
    if not values:
        return "none"
    shown = ", ".join(values[:_SHOWN])
    return shown + (f", ... {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")
