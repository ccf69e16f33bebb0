"""The read side of the SQL state store: transactions, row conversion, queries.

``SqlStateStore`` (in ``sql_store``) adds the writes. Each public method runs in its own short
transaction, and database errors leave as ``StateError`` (see ``engine.translate_error``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lakestack.state import schema
from lakestack.state.base import StateReader
from lakestack.state.engine import WRITE_OPTION, create_state_engine, translate_error
from lakestack.state.migrate import ensure_schema
from lakestack.state.models import (
    AuditRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    TaskRunRecord,
)
from lakestack.state.rows import (
    audit_record,
    deployment_record,
    job_record,
    run_record,
    task_run_record,
)
from lakestack.state.urls import normalize_state_url, redact_url

__all__ = ["SqlStateReader"]

_deployments, _jobs, _runs = schema.deployments, schema.jobs, schema.runs
_task_runs, _task_values, _audit = schema.task_runs, schema.task_values, schema.audit_log


class SqlStateReader(StateReader):
    """Read-only state over SQLAlchemy; opening it creates or upgrades the schema.

    Args:
        url: ``sqlite:////abs/path/state.db``, ``postgresql://user:pass@host/db`` (psycopg 3 is
            used) or ``postgresql+psycopg://...``.

    Raises:
        StateError: The URL is invalid, the database cannot be reached, or its schema is newer
            than this lakestack.
    """

    def __init__(self, url: str) -> None:
        self._url = normalize_state_url(url)
        self._engine: Engine = create_state_engine(self._url)
        self._dialect = self._engine.dialect.name
        try:
            ensure_schema(self._engine, self._url)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The state URL with its password hidden."""
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @contextmanager
    def _transaction(self, action: str, *, write: bool = False) -> Iterator[Connection]:
        """One transaction; writes take the write lock first (SQLite ``BEGIN IMMEDIATE``)."""
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, url=self._url, action=action) from exc

    def last_deployment(self, target: str) -> DeploymentRecord | None:
        """The most recent deployment of ``target``."""
        found = self.list_deployments(target, limit=1)
        return found[0] if found else None

    def list_deployments(
        self, target: str | None = None, *, limit: int = 50
    ) -> list[DeploymentRecord]:
        """Deployments, newest first."""
        query = sa.select(_deployments).order_by(_deployments.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(_deployments.c.target == target)
        with self._transaction("list deployments") as conn:
            return [deployment_record(row) for row in conn.execute(query).mappings()]

    def get_job(self, target: str, job_key: str) -> JobRecord | None:
        """The deployed job, or None."""
        query = sa.select(_jobs).where(_jobs.c.target == target, _jobs.c.job_key == job_key)
        with self._transaction(f"read job {job_key}") as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else job_record(row)

    def list_jobs(self, target: str) -> list[JobRecord]:
        """The jobs deployed to ``target``, by key."""
        query = sa.select(_jobs).where(_jobs.c.target == target).order_by(_jobs.c.job_key)
        with self._transaction("list jobs") as conn:
            return [job_record(row) for row in conn.execute(query).mappings()]

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run, or None."""
        with self._transaction(f"read run {run_id}") as conn:
            return self._get_run(conn, run_id)

    def list_runs(
        self,
        *,
        target: str | None = None,
        job_key: str | None = None,
        states: Iterable[str] | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        query = sa.select(_runs).order_by(_runs.c.run_id.desc()).limit(limit)
        if target is not None:
            query = query.where(_runs.c.target == target)
        if job_key is not None:
            query = query.where(_runs.c.job_key == job_key)
        if states is not None:
            query = query.where(_runs.c.state.in_(list(states)))
        with self._transaction("list runs") as conn:
            return [run_record(row) for row in conn.execute(query).mappings()]

    def list_task_runs(self, run_id: int) -> list[TaskRunRecord]:
        """Every attempt of every task of the run, oldest first."""
        query = sa.select(_task_runs).where(_task_runs.c.run_id == run_id)
        with self._transaction(f"list the task runs of run {run_id}") as conn:
            rows = conn.execute(query.order_by(_task_runs.c.id)).mappings()
            return [task_run_record(row) for row in rows]

    def get_task_values(self, run_id: int) -> dict[str, dict[str, Any]]:
        """Task values of the run: ``{task_key: {key: value}}``."""
        query = (
            sa.select(_task_values.c.task_key, _task_values.c.key, _task_values.c.value)
            .where(_task_values.c.run_id == run_id)
            .order_by(_task_values.c.task_key, _task_values.c.key)
        )
        values: dict[str, dict[str, Any]] = {}
        with self._transaction(f"read the task values of run {run_id}") as conn:
            for task_key, key, value in conn.execute(query):
                values.setdefault(task_key, {})[key] = json.loads(value)
        return values

    def list_audit(self, *, action: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Audit log entries, newest first."""
        query = sa.select(_audit).order_by(_audit.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(_audit.c.action == action)
        with self._transaction("read the audit log") as conn:
            return [audit_record(row) for row in conn.execute(query).mappings()]

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def _get_run(self, conn: Connection, run_id: int) -> RunRecord | None:
        row = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).mappings().first()
        return None if row is None else run_record(row)

    def _get_task_run(self, conn: Connection, task_run_id: int) -> TaskRunRecord | None:
        query = sa.select(_task_runs).where(_task_runs.c.id == task_run_id)
        row = conn.execute(query).mappings().first()
        return None if row is None else task_run_record(row)
