"""Rows to records and back: JSON columns, checked field names, dialect-specific upserts.

Shared by ``SqlStateReader`` and ``SqlStateStore`` so that both read and write rows the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, RowMapping

from lakestack.errors import RunError, StateError
from lakestack.state.models import (
    AuditRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    TaskRunRecord,
)

__all__ = [
    "audit_record",
    "check_fields",
    "deployment_record",
    "dumps",
    "found",
    "inserted_id",
    "job_record",
    "now_ms",
    "run_record",
    "task_run_record",
    "upsert",
]

_R = TypeVar("_R")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def upsert(dialect: str, table: sa.Table, row: dict[str, Any], keys: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of ``row`` for SQLite or PostgreSQL."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**row)
    updates = {name: statement.excluded[name] for name in row if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def check_fields(method: str, fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Reject field names outside ``allowed`` with a message that lists the valid ones."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise StateError(
            f"{method}() got unknown field(s) {', '.join(repr(f) for f in unknown)}; "
            f"valid fields: {', '.join(sorted(allowed))}"
        )


def found(record: _R | None, what: str, ident: object) -> _R:
    """``record``, or a ``RunError`` saying that ``what`` ``ident`` does not exist."""
    if record is None:
        raise RunError(f"{what} {ident} does not exist; list runs with: lakestack runs list")
    return record


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the row an INSERT created."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StateError("the state database returned no id for a new row; check the schema")
    return int(key[0])


def dumps(value: Any, what: str) -> str:
    """``value`` as JSON text; ``what`` names it in the error if it is not serialisable."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StateError(f"{what} is not JSON-serialisable ({exc}); use JSON values") from exc


def deployment_record(row: RowMapping) -> DeploymentRecord:
    """A ``DeploymentRecord`` from a row of the deployments table."""
    return DeploymentRecord(
        id=row["id"],
        target=row["target"],
        bundle_name=row["bundle_name"],
        content_hash=row["content_hash"],
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        deployed_by=row["deployed_by"],
        deployed_at=row["deployed_at"],
        job_keys=tuple(json.loads(row["job_keys"])),
    )


def job_record(row: RowMapping) -> JobRecord:
    """A ``JobRecord`` from a row of the jobs table."""
    return JobRecord(
        target=row["target"],
        job_key=row["job_key"],
        name=row["name"],
        definition=json.loads(row["definition"]),
        deployment_id=row["deployment_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def run_record(row: RowMapping) -> RunRecord:
    """A ``RunRecord`` from a row of the runs table."""
    fields = dict(row)
    fields["parameters"] = json.loads(fields["parameters"])
    fields["definition"] = json.loads(fields["definition"])
    fields["cancel_requested"] = bool(fields["cancel_requested"])
    return RunRecord(**fields)


def task_run_record(row: RowMapping) -> TaskRunRecord:
    """A ``TaskRunRecord`` from a row of the task_runs table."""
    fields = dict(row)
    fields["details"] = json.loads(fields["details"])
    return TaskRunRecord(**fields)


def audit_record(row: RowMapping) -> AuditRecord:
    """An ``AuditRecord`` from a row of the audit_log table."""
    fields = dict(row)
    fields["details"] = json.loads(fields["details"])
    return AuditRecord(**fields)
