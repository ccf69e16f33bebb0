"""The workspace state: deployments, jobs, runs, task runs, task values and the audit log.

Open it with ``open_state_store(url)``; the embedded default URL is
``default_state_url(workspace_root)`` (SQLite). Only this package imports SQLAlchemy and
alembic, and it imports them lazily: importing ``lakestack.state`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakestack.state.base import ACTIVE_RUN_STATES, StateReader, StateStore
from lakestack.state.models import (
    AuditRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    TaskRunRecord,
)
from lakestack.state.urls import default_state_url, redact_url

if TYPE_CHECKING:
    from lakestack.state.sql_store import SqlStateStore

__all__ = [
    "ACTIVE_RUN_STATES",
    "AuditRecord",
    "DeploymentRecord",
    "JobRecord",
    "RunRecord",
    "SqlStateStore",
    "StateReader",
    "StateStore",
    "TaskRunRecord",
    "default_state_url",
    "open_state_store",
    "redact_url",
]


def open_state_store(url: str) -> StateStore:
    """Open the workspace state at ``url``, creating or upgrading its schema.

    Args:
        url: ``sqlite:////abs/path/state.db`` or ``postgresql://user:pass@host:5432/db``.

    Raises:
        StateError: The database cannot be reached or is newer than this lakestack.
    """
    from lakestack.state.sql_store import SqlStateStore

    return SqlStateStore(url)


def __getattr__(name: str) -> Any:
    if name == "SqlStateStore":
        from lakestack.state.sql_store import SqlStateStore

        return SqlStateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
