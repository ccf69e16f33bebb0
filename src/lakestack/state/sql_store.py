"""``SqlStateStore``: the workspace state in SQLite or PostgreSQL, through SQLAlchemy Core.

Every write is one transaction that takes the write lock before it reads (SQLite
``BEGIN IMMEDIATE``; on PostgreSQL, row locks). ``claim_run`` additionally locks a ``job_locks``
row of the run's job before it counts the job's active runs, so that concurrent claims of one
job, from any number of processes, take turns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lakestack.errors import RunError
from lakestack.state import schema
from lakestack.state.base import ACTIVE_RUN_STATES, StateStore
from lakestack.state.models import DeploymentRecord, RunRecord, TaskRunRecord
from lakestack.state.rows import check_fields, dumps, found, inserted_id, now_ms, upsert
from lakestack.state.sql_reader import SqlStateReader

__all__ = ["RUN_FIELDS", "RUNNING_STATES", "TASK_RUN_FIELDS", "SqlStateStore"]

RUN_FIELDS = frozenset(
    {
        "state",
        "state_message",
        "start_time",
        "end_time",
        "owner_pid",
        "owner_host",
        "heartbeat_at",
        "cancel_requested",
        "repair_count",
        "parameters",
    }
)
"""The run fields ``update_run`` may set."""

TASK_RUN_FIELDS = frozenset(
    {
        "state",
        "outcome",
        "start_time",
        "end_time",
        "exit_code",
        "error",
        "log_dir",
        "pid",
        "pid_start_time",
        "child_run_id",
        "details",
    }
)
"""The task run fields ``update_task_run`` may set."""

RUNNING_STATES = ("PENDING", "RUNNING")
"""What counts against ``max_concurrent_runs``: a run paused for approval holds nothing."""
"""States that occupy one of a job's ``max_concurrent_runs`` slots."""

_TARGET_LOCK = ""  # job_locks row that serialises deployments of a target (no job has this key)

_deployments, _jobs, _runs = schema.deployments, schema.jobs, schema.runs
_task_runs, _task_values, _audit = schema.task_runs, schema.task_values, schema.audit_log


class SqlStateStore(SqlStateReader, StateStore):
    """The read-write workspace state over SQLAlchemy (see ``SqlStateReader`` for ``url``)."""

    def __enter__(self) -> SqlStateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def record_deployment(
        self,
        *,
        target: str,
        bundle_name: str,
        content_hash: str,
        git_commit: str | None,
        git_branch: str | None,
        user: str,
        jobs: Mapping[str, tuple[str, dict[str, Any]]],
    ) -> DeploymentRecord:
        """Record a deployment and make ``jobs`` ({key: (name, definition)}) the target's jobs.

        Jobs of the target that are not in ``jobs`` are removed; a job that stays keeps its
        ``created_at``. One transaction; audited as ``deploy``.
        """
        now, keys = now_ms(), sorted(jobs)
        definitions = {
            key: dumps(definition, f"job {key}") for key, (_, definition) in jobs.items()
        }
        record = DeploymentRecord(
            id=0,
            target=target,
            bundle_name=bundle_name,
            content_hash=content_hash,
            git_commit=git_commit,
            git_branch=git_branch,
            deployed_by=user,
            deployed_at=now,
            job_keys=tuple(keys),
        )
        with self._transaction(f"record the deployment of target {target}", write=True) as conn:
            self._lock_job(conn, target, _TARGET_LOCK, now)
            values = {**vars(record), "job_keys": json.dumps(keys)}
            del values["id"]
            inserted = conn.execute(_deployments.insert().values(**values))
            deployment_id = inserted_id(inserted)
            of_target = _jobs.c.target == target
            conn.execute(_jobs.delete().where(of_target, _jobs.c.job_key.not_in(keys)))
            existing = set(conn.scalars(sa.select(_jobs.c.job_key).where(of_target)))
            for key in keys:
                name = jobs[key][0]
                fields = {
                    "name": name,
                    "definition": definitions[key],
                    "deployment_id": deployment_id,
                    "updated_at": now,
                }
                if key in existing:
                    where = (of_target, _jobs.c.job_key == key)
                    conn.execute(_jobs.update().where(*where).values(**fields))
                else:
                    conn.execute(
                        _jobs.insert().values(target=target, job_key=key, created_at=now, **fields)
                    )
            self._audit(
                conn,
                actor=user,
                action="deploy",
                object_type="target",
                object_id=target,
                target=target,
                details={
                    "deployment_id": deployment_id,
                    "job_keys": keys,
                    "content_hash": content_hash,
                    "git_commit": git_commit,
                },
            )
        return DeploymentRecord(**{**vars(record), "id": deployment_id})

    def destroy_target(self, target: str, *, user: str) -> list[str]:
        """Remove the target's jobs, deployments and fired triggers (runs are kept); return the
        job keys.

        Audited as ``destroy``.
        """
        with self._transaction(f"destroy target {target}", write=True) as conn:
            self._lock_job(conn, target, _TARGET_LOCK, now_ms())
            query = sa.select(_jobs.c.job_key).where(_jobs.c.target == target)
            keys = list(conn.scalars(query.order_by(_jobs.c.job_key)))
            conn.execute(_jobs.delete().where(_jobs.c.target == target))
            conn.execute(_deployments.delete().where(_deployments.c.target == target))
            conn.execute(schema.job_locks.delete().where(schema.job_locks.c.target == target))
            # a redeployed model starts afresh: its versions and links fire again
            conn.execute(schema.triggers.delete().where(schema.triggers.c.target == target))
            self._audit(
                conn,
                actor=user,
                action="destroy",
                object_type="target",
                object_id=target,
                target=target,
                details={"job_keys": keys},
            )
        return keys

    def create_run(
        self,
        *,
        target: str,
        job_key: str,
        job_name: str,
        definition: dict[str, Any],
        parameters: Mapping[str, str],
        trigger_type: str,
        created_by: str,
        parent_run_id: int | None = None,
        parent_task_key: str | None = None,
        deployment_id: int | None = None,
        state: str = "QUEUED",
    ) -> RunRecord:
        """Create a run in state ``state``."""
        values = {
            "target": target,
            "job_key": job_key,
            "job_name": job_name,
            "state": state,
            "state_message": "",
            "trigger_type": trigger_type,
            "parameters": dumps(dict(parameters), "run parameters"),
            "definition": dumps(definition, f"the definition of job {job_key}"),
            "created_by": created_by,
            "created_at": now_ms(),
            "parent_run_id": parent_run_id,
            "parent_task_key": parent_task_key,
            "deployment_id": deployment_id,
            "cancel_requested": False,
            "repair_count": 0,
        }
        with self._transaction(f"create a run of job {job_key}", write=True) as conn:
            run_id = inserted_id(conn.execute(_runs.insert().values(**values)))
            return found(self._get_run(conn, run_id), "run", run_id)

    def claim_run(self, run_id: int, *, max_concurrent_runs: int, pid: int, host: str) -> bool:
        """Move a QUEUED run to RUNNING if fewer than ``max_concurrent_runs`` runs of its job
        are PENDING or RUNNING (a run paused for approval does not count); record the owner
        (``owner_pid``, ``owner_host``, ``heartbeat_at``) and set ``start_time`` if unset.
        Atomic across processes. Return whether the run was claimed.

        Raises:
            RunError: There is no run ``run_id``.
        """
        with self._transaction(f"claim run {run_id}", write=True) as conn:
            query = sa.select(_runs.c.target, _runs.c.job_key, _runs.c.state)
            row = conn.execute(query.where(_runs.c.run_id == run_id)).first()
            if row is None:
                raise RunError(f"run {run_id} does not exist; list runs with: lakestack runs list")
            if row.state != "QUEUED":
                return False
            now = now_ms()
            self._lock_job(conn, row.target, row.job_key, now)
            active = conn.scalar(
                sa.select(sa.func.count())
                .select_from(_runs)
                .where(
                    _runs.c.target == row.target,
                    _runs.c.job_key == row.job_key,
                    _runs.c.state.in_(RUNNING_STATES),
                )
            )
            if (active or 0) >= max_concurrent_runs:
                return False
            claimed = conn.execute(
                _runs.update()
                .where(_runs.c.run_id == run_id, _runs.c.state == "QUEUED")
                .values(
                    state="RUNNING",
                    owner_pid=pid,
                    owner_host=host,
                    heartbeat_at=now,
                    start_time=sa.func.coalesce(_runs.c.start_time, now),
                )
            )
            return claimed.rowcount == 1

    def update_run(self, run_id: int, **fields: Any) -> RunRecord:
        """Set fields of a run (see ``RUN_FIELDS``).

        Raises:
            StateError: A field name is not one of ``RUN_FIELDS``.
            RunError: There is no run ``run_id``.
        """
        check_fields("update_run", fields, RUN_FIELDS)
        if "cancel_requested" in fields:
            fields["cancel_requested"] = bool(fields["cancel_requested"])
        if "parameters" in fields:
            fields["parameters"] = dumps(dict(fields["parameters"]), "run parameters")
        with self._transaction(f"update run {run_id}", write=True) as conn:
            if fields:
                conn.execute(_runs.update().where(_runs.c.run_id == run_id).values(**fields))
            return found(self._get_run(conn, run_id), "run", run_id)

    def update_run_if(self, run_id: int, states: Iterable[str], **fields: Any) -> bool:
        """Atomically set fields of a run that is in one of ``states``; False if it was not."""
        check_fields("update_run_if", fields, RUN_FIELDS)
        with self._transaction(f"update run {run_id}", write=True) as conn:
            result = conn.execute(
                _runs.update()
                .where(_runs.c.run_id == run_id, _runs.c.state.in_(list(states)))
                .values(**fields)
            )
            return result.rowcount == 1

    def finish_run_if_active(self, run_id: int, *, state: str, message: str, end_time: int) -> bool:
        """Atomically end a run that is still active; return False if it had already ended."""
        with self._transaction(f"finish run {run_id}", write=True) as conn:
            result = conn.execute(
                _runs.update()
                .where(_runs.c.run_id == run_id, _runs.c.state.in_(ACTIVE_RUN_STATES))
                .values(state=state, state_message=message, end_time=end_time)
            )
            return result.rowcount == 1

    def create_task_run(
        self,
        *,
        run_id: int,
        task_key: str,
        attempt: int,
        state: str,
        iteration: int | None = None,
        repair_index: int = 0,
        log_dir: str | None = None,
        start_time: int | None = None,
    ) -> TaskRunRecord:
        """Record a new task attempt."""
        values = {
            "run_id": run_id,
            "task_key": task_key,
            "attempt": attempt,
            "state": state,
            "iteration": iteration,
            "repair_index": repair_index,
            "log_dir": log_dir,
            "start_time": start_time,
            "details": "{}",
        }
        with self._transaction(f"record task {task_key} of run {run_id}", write=True) as conn:
            task_run_id = inserted_id(conn.execute(_task_runs.insert().values(**values)))
            return found(self._get_task_run(conn, task_run_id), "task run", task_run_id)

    def update_task_run(self, task_run_id: int, **fields: Any) -> TaskRunRecord:
        """Set fields of a task attempt (see ``TASK_RUN_FIELDS``).

        Raises:
            StateError: A field name is not one of ``TASK_RUN_FIELDS``.
            RunError: There is no task run ``task_run_id``.
        """
        check_fields("update_task_run", fields, TASK_RUN_FIELDS)
        if "details" in fields:
            fields["details"] = dumps(dict(fields["details"] or {}), "task run details")
        with self._transaction(f"update task run {task_run_id}", write=True) as conn:
            if fields:
                where = _task_runs.c.id == task_run_id
                conn.execute(_task_runs.update().where(where).values(**fields))
            return found(self._get_task_run(conn, task_run_id), "task run", task_run_id)

    def set_task_values(self, run_id: int, task_key: str, values: Mapping[str, Any]) -> None:
        """Upsert task values (JSON-serialisable) of a task."""
        rows = [
            {
                "run_id": run_id,
                "task_key": task_key,
                "key": key,
                "value": dumps(value, f"task value '{key}' of task {task_key}"),
            }
            for key, value in values.items()
        ]
        if not rows:
            return
        with self._transaction(f"set task values of {task_key} in run {run_id}", write=True) as c:
            for row in rows:
                c.execute(upsert(self._dialect, _task_values, row, ["run_id", "task_key", "key"]))

    def claim_trigger(self, target: str, key: str) -> bool:
        """Record that the trigger ``key`` fired; False if some process recorded it first."""
        triggers = schema.triggers
        with self._transaction(f"fire trigger {key}", write=True) as conn:
            exists = conn.execute(
                sa.select(triggers.c.key).where(triggers.c.target == target, triggers.c.key == key)
            ).first()
            if exists is not None:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(
                        triggers.insert().values(target=target, key=key, fired_at=now_ms())
                    )
            except sa.exc.IntegrityError:  # another process inserted it in between
                return False
        return True

    def release_trigger(self, target: str, key: str) -> None:
        """Forget that ``key`` fired (its run could not start), so that it can fire again."""
        triggers = schema.triggers
        with self._transaction(f"release trigger {key}", write=True) as conn:
            conn.execute(
                triggers.delete().where(triggers.c.target == target, triggers.c.key == key)
            )

    def set_trigger_run(self, target: str, key: str, run_id: int) -> None:
        """Note the run a claimed trigger started."""
        triggers = schema.triggers
        with self._transaction(f"note the run of trigger {key}", write=True) as conn:
            conn.execute(
                triggers.update()
                .where(triggers.c.target == target, triggers.c.key == key)
                .values(run_id=run_id)
            )

    def clear_task_values(self, run_id: int, task_keys: Iterable[str]) -> None:
        """Forget the values of these tasks (before a repair re-runs them)."""
        keys = list(task_keys)
        if not keys:
            return
        with self._transaction(f"clear task values of run {run_id}", write=True) as conn:
            conn.execute(
                _task_values.delete().where(
                    _task_values.c.run_id == run_id, _task_values.c.task_key.in_(keys)
                )
            )

    def audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit log entry."""
        with self._transaction(f"write the audit entry {action}", write=True) as conn:
            self._audit(
                conn,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                target=target,
                details=details,
            )

    def _audit(
        self,
        conn: Connection,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        target: str | None,
        details: Mapping[str, Any] | None,
    ) -> None:
        conn.execute(
            _audit.insert().values(
                at=now_ms(),
                actor=actor,
                action=action,
                target=target,
                object_type=object_type,
                object_id=object_id,
                details=dumps(dict(details or {}), "audit details"),
            )
        )

    def _lock_job(self, conn: Connection, target: str, job_key: str, now: int) -> None:
        """Lock the job's ``job_locks`` row until the transaction ends (creating it if needed)."""
        row = {"target": target, "job_key": job_key, "locked_at": now}
        conn.execute(upsert(self._dialect, schema.job_locks, row, ["target", "job_key"]))
