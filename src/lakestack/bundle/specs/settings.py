"""The ``lakestack`` mapping: everything that is lakestack's own, per bundle and per target.

It sits beside the Databricks keys so that one bundle can serve Databricks and lakestack at once.
The top-level mapping is deep-merged with the selected target's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lakestack.bundle.specs.base import Spec, Str

__all__ = [
    "ComputeSpec",
    "LakestackSettings",
    "NotificationDestinationSpec",
    "ServingSpec",
    "SmtpSpec",
]


class ComputeSpec(Spec):
    """Where tasks run: local processes (default) or a Ray cluster."""

    engine: Literal["local", "ray"] = "local"
    address: str | None = None
    max_parallel_tasks: int | None = Field(default=None, ge=1)


class NotificationDestinationSpec(Spec):
    """A named webhook destination, referred to by ``webhook_notifications.*.id``."""

    url: str
    headers: dict[str, Str] = Field(default_factory=dict)


class SmtpSpec(Spec):
    """The mail server for ``email_notifications``."""

    host: str
    port: int = 25
    sender: str | None = None
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    ssl: bool = False


class ServingSpec(Spec):
    """How ``lakestack serve`` answers: auth, limits, alias polling and micro-batching.

    Attributes:
        tokens_env: The environment variable holding comma-separated bearer tokens; None (or
            an unset variable) means no auth.
        max_body_bytes: Larger request bodies are answered 413.
        request_timeout_seconds: Requests not answered by then get 504.
        alias_poll_seconds: How often alias-bound entities check where their alias points.
        batch_wait_ms: How long a batch waits for requests already arriving.
        max_batch_rows: A batch is predicted as soon as it has this many rows.
    """

    tokens_env: str | None = None
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    alias_poll_seconds: float = Field(default=2.0, gt=0)
    batch_wait_ms: float = Field(default=2.0, ge=0)
    max_batch_rows: int = Field(default=1024, ge=1)


class LakestackSettings(Spec):
    """Where the workspace lives and which services it uses.

    Attributes:
        root: The workspace root; None means ``.lakestack`` beside the bundle file. A relative
            root is relative to the bundle root. A storage URL (``s3://bucket/prefix``) puts the
            warehouse there and keeps the rest in ``.lakestack``.
        storage_options: delta-rs storage options for a URL root (``AWS_ENDPOINT_URL``...).
        state_url: SQLAlchemy URL of the workspace state; None means SQLite at
            ``<root>/state.db``.
        tracking_uri: MLflow tracking URI; None means SQLite at ``<root>/mlflow.db``.
        registry_uri: MLflow registry URI; None means the tracking URI.
        compute: The executor settings.
        preload: Modules to import once in the worker before tasks run; True picks them from the
            tasks' imports, False turns preloading off.
        notification_destinations: Named webhooks.
        smtp: The mail server; None means emails are logged, not sent.
        auto_approve: Approve approval tasks without a person (development targets).
        serving: ``lakestack serve`` settings.
    """

    root: str | None = None
    storage_options: dict[str, str] = Field(default_factory=dict)
    state_url: str | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    preload: list[str] | bool = True
    notification_destinations: dict[str, NotificationDestinationSpec] = Field(default_factory=dict)
    smtp: SmtpSpec | None = None
    auto_approve: bool = False
    serving: ServingSpec = Field(default_factory=ServingSpec)
