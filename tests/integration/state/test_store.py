"""SqlStateStore on real databases: deployments, runs, task runs, task values, audit, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lakestack.errors import RunError, StateError
from lakestack.state import ACTIVE_RUN_STATES, SqlStateStore, open_state_store
from lakestack.state.sql_store import RUN_FIELDS, TASK_RUN_FIELDS

pytestmark = pytest.mark.integration


@pytest.fixture
def store(state_url: str) -> Iterator[SqlStateStore]:
    with SqlStateStore(state_url) as opened:
        yield opened


def _deploy(store: SqlStateStore, jobs: dict[str, tuple[str, dict[str, Any]]], **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "target": "dev", "bundle_name": "churn", "content_hash": "h1", "git_commit": "abc123",
        "git_branch": "main", "user": "ada@example.com", "jobs": jobs,
    }  # fmt: skip
    return store.record_deployment(**{**fields, **kw})


def _run(store: SqlStateStore, job_key: str = "train", **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "target": "dev", "job_key": job_key, "job_name": job_key.title(), "definition": {},
        "parameters": {}, "trigger_type": "ONE_TIME", "created_by": "ada",
    }  # fmt: skip
    return store.create_run(**{**fields, **kw})


def test_deployment_replaces_the_job_set_and_is_audited(store: SqlStateStore) -> None:
    first = _deploy(store, {"train": ("Train", {"tasks": [1]}), "score": ("Score", {})})
    train_before = store.get_job("dev", "train")
    second = _deploy(
        store, {"train": ("Train v2", {"tasks": [2]}), "serve": ("Serve", {})}, content_hash="h2"
    )

    assert first.job_keys == ("score", "train") and second.job_keys == ("serve", "train")
    assert [job.job_key for job in store.list_jobs("dev")] == ["serve", "train"]
    assert store.get_job("dev", "score") is None
    train = store.get_job("dev", "train")
    assert train is not None and train_before is not None
    assert (train.name, train.definition, train.deployment_id) == (
        "Train v2",
        {"tasks": [2]},
        second.id,
    )
    assert train.created_at == train_before.created_at
    assert store.last_deployment("dev") == second
    assert store.list_deployments("dev") == [second, first]
    assert store.list_deployments("prod") == [] and store.last_deployment("prod") is None
    audits = store.list_audit(action="deploy")
    assert [a.details["deployment_id"] for a in audits] == [second.id, first.id]
    assert audits[0].actor == "ada@example.com" and audits[0].target == "dev"
    assert audits[0].details["job_keys"] == ["serve", "train"]


def test_targets_are_independent(store: SqlStateStore) -> None:
    _deploy(store, {"train": ("Train", {})})
    _deploy(store, {"other": ("Other", {})}, target="prod")
    assert [job.job_key for job in store.list_jobs("dev")] == ["train"]
    assert [job.job_key for job in store.list_jobs("prod")] == ["other"]


def test_destroy_removes_jobs_and_deployments_but_keeps_runs(store: SqlStateStore) -> None:
    deployment = _deploy(store, {"train": ("Train", {}), "score": ("Score", {})})
    _deploy(store, {"kept": ("Kept", {})}, target="prod")
    run = _run(store, deployment_id=deployment.id)

    assert store.destroy_target("dev", user="ada") == ["score", "train"]

    assert store.list_jobs("dev") == [] and store.last_deployment("dev") is None
    assert store.get_run(run.run_id) == run
    assert [job.job_key for job in store.list_jobs("prod")] == ["kept"]
    (entry,) = store.list_audit(action="destroy")
    assert entry.details == {"job_keys": ["score", "train"]} and entry.object_id == "dev"
    assert store.destroy_target("dev", user="ada") == []


def test_runs_round_trip_every_field(store: SqlStateStore) -> None:
    parent = _run(store, "pipeline", state="RUNNING")
    definition = {"tasks": [{"task_key": "a", "nested": {"x": [1, 2.5, None, True]}}]}
    run = _run(
        store, definition=definition, parameters={"alpha": "0.5", "ünïcode": "✓"},
        trigger_type="RUN_JOB_TASK", parent_run_id=parent.run_id, parent_task_key="call",
        deployment_id=42, state="PENDING",
    )  # fmt: skip
    assert run.definition == definition and run.parameters == {"alpha": "0.5", "ünïcode": "✓"}
    assert (run.parent_run_id, run.parent_task_key, run.deployment_id, run.state) == (
        parent.run_id, "call", 42, "PENDING",
    )  # fmt: skip
    assert (run.state_message, run.cancel_requested, run.repair_count) == ("", False, 0)
    assert run.created_at > 0 and run.job_name == "Train" and run.created_by == "ada"

    changes = {
        "state": "RUNNING", "state_message": "going", "start_time": 1_700_000_000_123,
        "end_time": 1_700_000_999_999, "owner_pid": 4242, "owner_host": "box-1",
        "heartbeat_at": 1_700_000_000_500, "cancel_requested": True, "repair_count": 3,
        "parameters": {"day": "2026-11-30"},
    }  # fmt: skip
    assert set(changes) == RUN_FIELDS
    updated = store.update_run(run.run_id, **changes)
    for name, value in changes.items():
        assert getattr(updated, name) == value, name
    assert store.get_run(run.run_id) == updated
    assert store.get_run(10_000) is None


def test_list_runs_filters_and_orders_newest_first(store: SqlStateStore) -> None:
    a = _run(store, "train")
    b = _run(store, "score")
    c = _run(store, "train", target="prod")
    d = _run(store, "train", state="RUNNING")
    assert [r.run_id for r in store.list_runs()] == [d.run_id, c.run_id, b.run_id, a.run_id]
    assert [r.run_id for r in store.list_runs(target="dev", job_key="train")] == [
        d.run_id,
        a.run_id,
    ]
    assert [r.run_id for r in store.list_runs(states=["RUNNING"])] == [d.run_id]
    assert [r.run_id for r in store.list_runs(limit=2)] == [d.run_id, c.run_id]
    assert store.list_runs(states=[]) == []


def test_task_runs_round_trip_every_field(store: SqlStateStore) -> None:
    run = _run(store)
    first = store.create_task_run(run_id=run.run_id, task_key="prep", attempt=0, state="PENDING")
    assert (first.iteration, first.repair_index, first.details, first.outcome) == (
        None,
        0,
        {},
        None,
    )
    second = store.create_task_run(
        run_id=run.run_id, task_key="loop", attempt=1, state="RUNNING", iteration=7,
        repair_index=2, log_dir="/logs/loop", start_time=1_700_000_000_000,
    )  # fmt: skip
    assert (second.iteration, second.repair_index, second.log_dir, second.start_time) == (
        7, 2, "/logs/loop", 1_700_000_000_000,
    )  # fmt: skip
    changes = {
        "state": "TERMINATED", "outcome": "SUCCESS", "start_time": 1_700_000_000_001,
        "end_time": 1_700_000_001_000, "exit_code": 0, "error": "none\nmultiline",
        "log_dir": "/logs/b", "pid": 999, "pid_start_time": 1_700_000_000.25, "child_run_id": 12,
        "details": {"notebook": "out.ipynb", "metrics": {"auc": 0.91}},
    }  # fmt: skip
    assert set(changes) == TASK_RUN_FIELDS
    updated = store.update_task_run(first.id, **changes)
    for name, value in changes.items():
        assert getattr(updated, name) == value, name
    assert store.list_task_runs(run.run_id) == [updated, second]
    assert store.list_task_runs(run.run_id + 100) == []


def test_task_values_upsert_and_clear(store: SqlStateStore) -> None:
    run, other = _run(store), _run(store)
    store.set_task_values(run.run_id, "prep", {"rows": 10, "path": "/x", "cols": ["a", "b"]})
    store.set_task_values(run.run_id, "prep", {"rows": 12, "flag": None})
    store.set_task_values(run.run_id, "train", {"metrics": {"auc": 0.9}, "ok": True})
    store.set_task_values(other.run_id, "prep", {"rows": 1})
    store.set_task_values(run.run_id, "empty", {})
    assert store.get_task_values(run.run_id) == {
        "prep": {"rows": 12, "path": "/x", "cols": ["a", "b"], "flag": None},
        "train": {"metrics": {"auc": 0.9}, "ok": True},
    }
    store.clear_task_values(run.run_id, ["prep", "missing"])
    store.clear_task_values(run.run_id, [])
    assert store.get_task_values(run.run_id) == {"train": {"metrics": {"auc": 0.9}, "ok": True}}
    assert store.get_task_values(other.run_id) == {"prep": {"rows": 1}}


def test_non_json_task_value_is_rejected(store: SqlStateStore) -> None:
    run = _run(store)
    with pytest.raises(StateError, match="task value 'when' of task prep is not JSON-serialisable"):
        store.set_task_values(run.run_id, "prep", {"when": object()})


def test_claim_run_respects_the_limit_and_records_the_owner(store: SqlStateStore) -> None:
    first, second, third = _run(store), _run(store), _run(store)
    _run(store, "other", state="RUNNING")
    assert store.claim_run(first.run_id, max_concurrent_runs=2, pid=11, host="h1")
    assert store.claim_run(second.run_id, max_concurrent_runs=2, pid=12, host="h1")
    assert not store.claim_run(third.run_id, max_concurrent_runs=2, pid=13, host="h1")
    assert not store.claim_run(first.run_id, max_concurrent_runs=5, pid=14, host="h1")
    claimed = store.get_run(first.run_id)
    assert claimed is not None and claimed.state == "RUNNING"
    assert (claimed.owner_pid, claimed.owner_host) == (11, "h1")
    assert claimed.heartbeat_at is not None and claimed.start_time is not None
    unclaimed = store.get_run(third.run_id)
    assert unclaimed is not None and unclaimed.state == "QUEUED" and unclaimed.owner_pid is None

    # a run paused for approval holds no slot: nothing of it runs until someone approves
    store.update_run(second.run_id, state="WAITING_FOR_APPROVAL")
    assert store.claim_run(third.run_id, max_concurrent_runs=2, pid=13, host="h1")
    with pytest.raises(RunError, match="run 9999 does not exist"):
        store.claim_run(9999, max_concurrent_runs=1, pid=1, host="h")


@pytest.mark.parametrize("state", ACTIVE_RUN_STATES)
def test_finish_run_if_active_only_once(store: SqlStateStore, state: str) -> None:
    run = _run(store, state=state)
    assert store.finish_run_if_active(run.run_id, state="CANCELED", message="stop", end_time=5)
    assert not store.finish_run_if_active(run.run_id, state="FAILED", message="late", end_time=9)
    finished = store.get_run(run.run_id)
    assert finished is not None
    assert (finished.state, finished.state_message, finished.end_time) == ("CANCELED", "stop", 5)
    assert not store.finish_run_if_active(4242, state="FAILED", message="", end_time=1)


def test_update_with_an_unknown_field_is_rejected(store: SqlStateStore) -> None:
    run = _run(store)
    with pytest.raises(StateError) as caught:
        store.update_run(run.run_id, state="RUNNING", colour="red")
    assert str(caught.value).startswith("update_run() got unknown field(s) 'colour'; valid fields:")
    assert "repair_count" in str(caught.value)
    task_run = store.create_task_run(run_id=run.run_id, task_key="a", attempt=0, state="PENDING")
    with pytest.raises(StateError, match=r"update_task_run\(\) got unknown field\(s\) 'exitcode'"):
        store.update_task_run(task_run.id, exitcode=1)
    unchanged = store.get_run(run.run_id)
    assert unchanged is not None and unchanged.state == "QUEUED"


def test_updating_a_missing_run_says_so(store: SqlStateStore) -> None:
    with pytest.raises(RunError, match="run 777 does not exist"):
        store.update_run(777, state="RUNNING")
    with pytest.raises(RunError, match="task run 778 does not exist"):
        store.update_task_run(778, state="RUNNING")


def test_audit_appends_and_filters(store: SqlStateStore) -> None:
    for n in range(3):
        store.audit(actor="ada", action="run.cancel", object_type="run", object_id=str(n))
    store.audit(
        actor="bob", action="model.approve", object_type="model", object_id="m/1",
        target="prod", details={"version": 1},
    )  # fmt: skip
    assert [a.object_id for a in store.list_audit(action="run.cancel", limit=2)] == ["2", "1"]
    (approve,) = store.list_audit(action="model.approve")
    assert (approve.actor, approve.target, approve.details) == ("bob", "prod", {"version": 1})
    assert len(store.list_audit()) == 4


def test_open_state_store_and_reopen_share_the_data(state_url: str) -> None:
    first = open_state_store(state_url)
    try:
        run = _run(first)  # type: ignore[arg-type]
    finally:
        first.close()
    with SqlStateStore(state_url) as again:
        assert again.get_run(run.run_id) == run


def test_sqlite_store_creates_its_folder_and_uses_wal(sqlite_state_url: str) -> None:
    import sqlite3

    from lakestack.state.urls import sqlite_path

    with SqlStateStore(sqlite_state_url):
        pass
    path = sqlite_path(sqlite_state_url)
    assert path is not None and path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_in_memory_sqlite_store_works() -> None:
    with SqlStateStore("sqlite://") as store:
        run = _run(store)
        assert store.claim_run(run.run_id, max_concurrent_runs=1, pid=1, host="h")


def test_unreachable_postgres_names_the_url_without_the_password() -> None:
    with pytest.raises(StateError) as caught:
        SqlStateStore("postgresql://lake:s3cret@127.0.0.1:1/lakestack")
    message = str(caught.value)
    assert "lake:***@127.0.0.1:1/lakestack" in message
    assert "s3cret" not in message
    assert "check that the server is running" in message
    assert isinstance(caught.value.__cause__, Exception)


def test_a_trigger_fires_once(store: SqlStateStore) -> None:
    assert store.claim_trigger("dev", "model:main.s.m/1")
    assert not store.claim_trigger("dev", "model:main.s.m/1")
    assert store.claim_trigger("prod", "model:main.s.m/1")  # per target
    assert store.claim_trigger("dev", "model:main.s.m/2")
    run = _run(store)
    store.set_trigger_run("dev", "model:main.s.m/1", run.run_id)
    assert not store.claim_trigger("dev", "model:main.s.m/1")


def test_update_run_if_lets_one_caller_win(store: SqlStateStore) -> None:
    run = _run(store)
    store.update_run(run.run_id, state="WAITING_FOR_APPROVAL")
    assert store.update_run_if(run.run_id, ["WAITING_FOR_APPROVAL"], state="QUEUED")
    assert not store.update_run_if(run.run_id, ["WAITING_FOR_APPROVAL"], state="QUEUED")
    assert store.claim_trigger("dev", "k")
    store.release_trigger("dev", "k")  # its run could not start: it may fire again
    assert store.claim_trigger("dev", "k")
