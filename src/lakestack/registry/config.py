"""Where MLflow keeps runs, models and artifacts for a workspace, and how to point MLflow there.

The embedded default is SQLite at ``<workspace root>/mlflow.db`` with artifacts in
``<workspace root>/mlartifacts`` (never MLflow's ``./mlruns`` file store, which MLflow refuses by
default since 3.13 and which would land wherever the process happens to run). Creating a fresh
SQLite store runs MLflow's migrations (about 1.6 s), so :func:`ensure_store` does it once per
database file and remembers it for the life of the process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lakestack.errors import RegistryError

__all__ = [
    "ARTIFACTS_DIR",
    "TRACKING_DB",
    "Tracking",
    "artifact_root_for",
    "ensure_store",
    "mlflow_errors",
    "tracking_uri_for",
]

TRACKING_DB = "mlflow.db"
ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"
"""MLflow reads the default artifact root of a SQL store it opens from this variable."""
ARTIFACTS_DIR = "mlartifacts"
_SQLITE = "sqlite:///"

_ready: set[str] = set()
_lock = threading.Lock()


def tracking_uri_for(workspace_root: Path | str) -> str:
    """The default tracking (and registry) URI of a workspace: SQLite in its root.

    Args:
        workspace_root: The workspace root, a local folder (``.lakestack`` by default).

    Raises:
        RegistryError: The root is a URL (``s3://...``): SQLite needs a local file, so such a
            target must set ``lakestack.tracking_uri`` to an MLflow server.
    """
    root = os.fspath(workspace_root)
    if "://" in root and not root.startswith("file://"):
        raise RegistryError(
            f"the workspace root {root} is not a local folder, so it has no default MLflow "
            "store; set lakestack.tracking_uri in the target to an MLflow tracking server"
        )
    root = root.removeprefix("file://")
    return f"{_SQLITE}{Path(root).expanduser().resolve() / TRACKING_DB}"


def artifact_root_for(tracking_uri: str) -> str | None:
    """Where a SQLite store keeps artifacts: ``mlartifacts`` beside the database file.

    Returns None for other stores (a tracking server chooses its own artifact root).
    """
    db = _sqlite_path(tracking_uri)
    return str(db.parent / ARTIFACTS_DIR) if db is not None else None


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith(_SQLITE) or tracking_uri == f"{_SQLITE}:memory:":
        return None
    return Path(tracking_uri[len(_SQLITE) :])


def ensure_store(tracking_uri: str) -> None:
    """Create the SQLite store (schema and the Default experiment) once, with its artifact root.

    MLflow would otherwise create the Default experiment with ``./mlruns`` as its artifact
    location, relative to whatever the working directory is. Other stores are left alone.
    """
    db = _sqlite_path(tracking_uri)
    if db is None or tracking_uri in _ready:
        return
    with _lock:
        if tracking_uri in _ready:
            return
        if not db.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            db.parent.mkdir(parents=True, exist_ok=True)
            root = artifact_root_for(tracking_uri)
            assert root is not None
            Path(root).mkdir(parents=True, exist_ok=True)
            quiet = logging.getLogger("mlflow.store.db.utils")  # "Creating initial ... tables"
            level = quiet.level
            quiet.setLevel(logging.WARNING)
            try:
                with mlflow_errors(f"creating the MLflow store {tracking_uri}"):
                    store = SqlAlchemyStore(tracking_uri, Path(root).as_uri())  # type: ignore[no-untyped-call]
                    store.engine.dispose()
            finally:
                quiet.setLevel(level)
        _ready.add(tracking_uri)


@dataclass(frozen=True)
class Tracking:
    """An MLflow tracking store and model registry to use.

    Attributes:
        tracking_uri: The tracking URI (``sqlite:///...``, ``http://...``).
        registry_uri: The model registry URI; None means the tracking URI.
    """

    tracking_uri: str
    registry_uri: str | None = None

    @classmethod
    def current(cls) -> Tracking | None:
        """MLflow's tracking URI if this process set one (``MLFLOW_TRACKING_URI`` or
        ``mlflow.set_tracking_uri``), else None."""
        import mlflow

        if not mlflow.is_tracking_uri_set():  # type: ignore[no-untyped-call]
            return None
        tracking = str(mlflow.get_tracking_uri())
        registry = str(mlflow.get_registry_uri())
        return cls(tracking, registry if registry != tracking else None)

    @classmethod
    def for_workspace(cls, workspace_root: Path | str) -> Tracking:
        """The workspace's default store (``MLFLOW_TRACKING_URI`` wins when it is set)."""
        uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri_for(workspace_root)
        return cls(uri, os.environ.get("MLFLOW_REGISTRY_URI") or None)

    def activate(self) -> None:
        """Create the store if it is new and make it MLflow's current tracking and registry URI."""
        import mlflow

        ensure_store(self.tracking_uri)
        root = artifact_root_for(self.tracking_uri)
        if root is not None:
            # experiments created by plain mlflow.set_experiment keep their artifacts beside
            # the SQLite store too, not in ./mlruns of whatever folder the process runs in
            os.environ[ARTIFACT_ROOT_ENV] = Path(root).as_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)


@contextmanager
def mlflow_errors(doing: str) -> Iterator[None]:
    """Translate MLflow's exceptions raised while ``doing`` into ``RegistryError``."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        first = str(exc.message if hasattr(exc, "message") else exc).strip().splitlines()
        raise RegistryError(f"{doing} failed: {first[0] if first else type(exc).__name__}") from exc
