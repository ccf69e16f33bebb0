"""Runs as lifecycles across processes: max_concurrent_runs and queue, cancel, repair, an
orchestrator killed mid-run, and notifications."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from lakestack.workspace import Workspace
from tests.integration.jobs.conftest import BundleDir, py_task, states

pytestmark = pytest.mark.integration

WAIT_FOR_GO = """
    import os, time
    from pathlib import Path
    Path("started").mkdir(exist_ok=True)
    Path("started", str(os.getpid())).touch()
    while not Path("go").exists():
        time.sleep(0.05)
    print("went")
"""


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def run_state(ws: Workspace, run_id: int) -> str:
    return ws.get_run(run_id)["state"]


def gated_job(bundle_dir: BundleDir, **job: Any) -> None:
    bundle_dir.file("gate.py", WAIT_FOR_GO)
    bundle_dir.bundle({"gated": {"tasks": [py_task("wait", "gate.py")], **job}})


def test_max_concurrent_runs_skips_a_second_run_without_queue(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir, max_concurrent_runs=1)
    ws = bundle_dir.workspace()
    first = ws.run("gated", wait=False)
    wait_for(lambda: run_state(ws, first.run_id) == "RUNNING")
    second = ws.run("gated")
    assert second.state == "SKIPPED"
    assert (
        second.state_message == "skipped: job gated already has max_concurrent_runs=1 active runs"
    )
    (bundle_dir.root / "go").touch()
    wait_for(lambda: run_state(ws, first.run_id) == "SUCCESS")


def test_queue_waits_for_a_free_slot(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir, max_concurrent_runs=1, queue={"enabled": True})
    ws = bundle_dir.workspace()
    first = ws.run("gated", wait=False)
    wait_for(lambda: run_state(ws, first.run_id) == "RUNNING")
    second = ws.run("gated", wait=False)
    time.sleep(1.0)
    assert run_state(ws, second.run_id) == "QUEUED"
    (bundle_dir.root / "go").touch()
    wait_for(lambda: run_state(ws, second.run_id) == "SUCCESS")
    a, b = ws.get_run(first.run_id), ws.get_run(second.run_id)
    assert a["state"] == "SUCCESS"
    assert b["start_time"] >= a["end_time"]


def test_cancel_stops_a_running_run(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir)
    bundle_dir.file("echo.py", "print('x')\n")
    ws = bundle_dir.workspace()
    run = ws.run("gated", wait=False)
    pid = int(
        wait_for(
            lambda: (
                next((bundle_dir.root / "started").glob("*"), None)
                if (bundle_dir.root / "started").exists()
                else None
            )
        ).name
    )
    ws.cancel(run.run_id)
    wait_for(lambda: run_state(ws, run.run_id) == "CANCELED")
    assert states(ws, run.run_id) == {"wait": "CANCELED"}
    assert ws.get_run(run.run_id)["state_message"] == "canceled by request"
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        5,
    )
    with pytest.raises(
        Exception, match=rf"run {run.run_id} already ended \(CANCELED\); nothing to cancel"
    ):
        ws.cancel(run.run_id)


def test_repair_reruns_what_failed_and_keeps_what_succeeded(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "first.py",
        """
        from pathlib import Path
        from lakestack import dbutils
        count = Path("first_runs")
        count.write_text(str(int(count.read_text()) + 1 if count.exists() else 1))
        dbutils.jobs.taskValues.set("table", "main.sales.orders")
        """,
    )
    bundle_dir.file(
        "second.py",
        """
        import sys
        from pathlib import Path
        if not Path("fixed").exists():
            raise RuntimeError("bug in transform")
        print("transformed", sys.argv[1])
        """,
    )
    bundle_dir.file("third.py", "import sys\nprint('published', sys.argv[1])\n")
    bundle_dir.bundle(
        {
            "etl": {
                "tasks": [
                    py_task("extract", "first.py"),
                    py_task(
                        "transform",
                        "second.py",
                        "{{tasks.extract.values.table}}",
                        depends_on=[{"task_key": "extract"}],
                    ),
                    py_task(
                        "publish",
                        "third.py",
                        "{{tasks.extract.values.table}}",
                        depends_on=[{"task_key": "transform"}],
                    ),
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("etl")
    assert run.state == "FAILED"
    assert states(ws, run.run_id) == {
        "extract": "SUCCESS",
        "transform": "FAILED",
        "publish": "UPSTREAM_FAILED",
    }
    with pytest.raises(Exception, match="no task 'nope'"):
        ws.repair(run.run_id, tasks=["nope"])
    (bundle_dir.root / "fixed").touch()
    repaired = ws.repair(run.run_id)
    assert repaired.state == "SUCCESS", repaired.state_message
    assert repaired.run_id == run.run_id and repaired.repair_count == 1
    assert (bundle_dir.root / "first_runs").read_text() == "1"
    assert states(ws, run.run_id) == {
        "extract": "SUCCESS",
        "transform": "SUCCESS",
        "publish": "SUCCESS",
    }
    transform = [
        (t["attempt"], t["repair_index"], t["state"])
        for t in ws.get_run(run.run_id)["tasks"]
        if t["task_key"] == "transform"
    ]
    assert transform == [(0, 0, "FAILED"), (1, 1, "SUCCESS")]
    logs = {r.task_key: text for r, text in ws.logs(run.run_id, "publish")}
    assert logs["publish"].strip() == "published main.sales.orders"
    with pytest.raises(Exception, match=rf"run {run.run_id} succeeded; nothing to repair"):
        ws.repair(run.run_id)


def test_repair_of_a_for_each_keeps_the_failed_iterations_logs(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "item.py",
        """
        import sys
        from pathlib import Path
        if sys.argv[1] == "b" and not Path("fixed").exists():
            raise RuntimeError("cannot score b")
        print("scored", sys.argv[1])
        """,
    )
    loop = {
        "task_key": "score",
        "for_each_task": {
            "inputs": '["a", "b"]',
            "task": py_task("score_one", "item.py", "{{input}}"),
        },
    }
    bundle_dir.bundle({"loop": {"tasks": [loop]}})
    ws = bundle_dir.workspace()
    run = ws.run("loop")
    assert run.state == "FAILED"
    (bundle_dir.root / "fixed").touch()
    assert ws.repair(run.run_id).state == "SUCCESS"
    iterations = sorted(
        (t["iteration"], t["attempt"], t["state"])
        for t in ws.get_run(run.run_id)["tasks"]
        if t["iteration"] is not None
    )
    assert iterations == [
        (0, 0, "SUCCESS"),
        (0, 1, "SUCCESS"),
        (1, 0, "FAILED"),
        (1, 1, "SUCCESS"),
    ]
    folder = bundle_dir.root / ".lakestack" / "runs" / str(run.run_id) / "score" / "iteration_1"
    assert "cannot score b" in (folder / "attempt_0" / "output.log").read_text()
    assert "scored b" in (folder / "attempt_1" / "output.log").read_text()


def test_killed_orchestrator_fails_the_run_and_repair_completes_it(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir)
    ws = bundle_dir.workspace()
    run = ws.run("gated", wait=False)
    task_pid = int(
        wait_for(
            lambda: (
                next((bundle_dir.root / "started").glob("*"), None)
                if (bundle_dir.root / "started").exists()
                else None
            )
        ).name
    )
    wait_for(lambda: any(t.pid for t in ws.state.list_task_runs(run.run_id)))
    owner = ws.state.get_run(run.run_id).owner_pid
    assert owner and psutil.pid_exists(owner)
    os.kill(owner, signal.SIGKILL)
    wait_for(
        lambda: (
            not psutil.pid_exists(owner) or psutil.Process(owner).status() == psutil.STATUS_ZOMBIE
        ),
        5,
    )

    [listed] = [r for r in ws.list_runs() if r.run_id == run.run_id]
    assert listed.state == "FAILED"
    assert listed.state_message.startswith(f"the orchestrator (pid {owner} on ")
    assert listed.state_message.endswith(f"finish it with: lakestack runs repair {run.run_id}")
    assert states(ws, run.run_id) == {"wait": "FAILED"}
    wait_for(
        lambda: (
            not psutil.pid_exists(task_pid)
            or psutil.Process(task_pid).status() == psutil.STATUS_ZOMBIE
        ),
        5,
    )
    assert any(
        a.action == "run.orphaned" and a.object_id == str(run.run_id) for a in ws.state.list_audit()
    )

    (bundle_dir.root / "go").touch()
    repaired = ws.repair(run.run_id)
    assert repaired.state == "SUCCESS"


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Hooks.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Hooks.received
    server.shutdown()
    server.server_close()


def test_webhooks_are_posted_and_emails_recorded_without_smtp(
    bundle_dir: BundleDir, webhook_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook_server
    bundle_dir.file("fail.py", "raise SystemExit(2)\n")
    bundle_dir.bundle(
        {
            "j": {
                "tasks": [py_task("t", "fail.py")],
                "webhook_notifications": {
                    "on_start": [{"url": f"{url}/start"}],
                    "on_failure": [{"id": "ops"}],
                },
                "email_notifications": {"on_failure": ["ml-team@example.com"]},
            }
        },
        lakestack={
            "notification_destinations": {
                "ops": {"url": f"{url}/ops", "headers": {"Authorization": "Bearer s3cret"}}
            }
        },
    )
    ws = bundle_dir.workspace()
    run = ws.run("j")
    assert run.state == "FAILED"
    by_path = {r["path"]: r for r in received}
    assert by_path["/start"]["body"]["event_type"] == "jobs.on_start"
    assert by_path["/ops"]["body"]["event_type"] == "jobs.on_failure"
    assert by_path["/ops"]["body"]["run"]["run_id"] == run.run_id
    assert by_path["/ops"]["body"]["run"]["state"] == "FAILED"
    assert by_path["/ops"]["auth"] == "Bearer s3cret"
    audit = {a.action: a for a in ws.state.list_audit()}
    assert audit["notification.email.recorded"].details["to"] == ["ml-team@example.com"]
    assert "FAILED" in audit["notification.email.recorded"].details["subject"]
    assert audit["notification.webhook.sent"].details["status"] == 200


def test_duration_warnings_retried_failures_and_skipped_runs_notify(
    bundle_dir: BundleDir, webhook_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook_server
    bundle_dir.file("slow.py", "import time\ntime.sleep(1.5)\n")
    bundle_dir.file("flaky.py", "raise SystemExit(3)\n")
    hooks = {
        "on_start": [{"url": f"{url}/start"}],
        "on_failure": [{"url": f"{url}/failure"}],
        "on_duration_warning_threshold_exceeded": [{"url": f"{url}/slow"}],
    }
    health = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 0.5}]}
    retried = {"max_retries": 2, "min_retry_interval_millis": 0, "webhook_notifications": hooks}
    bundle_dir.bundle(
        {
            "slow": {
                "tasks": [py_task("nap", "slow.py", health=health, webhook_notifications=hooks)],
                "health": health,
                "webhook_notifications": hooks,
            },
            "every_attempt": {"tasks": [py_task("flaky", "flaky.py", **retried)]},
            "last_attempt": {
                "tasks": [
                    py_task(
                        "flaky",
                        "flaky.py",
                        notification_settings={"alert_on_last_attempt": True},
                        **retried,
                    )
                ]
            },
        }
    )
    ws = bundle_dir.workspace()
    assert ws.run("slow").state == "SUCCESS"
    slow = [r["body"] for r in received if r["path"] == "/slow"]
    assert sorted(("task" in body, body["event_type"]) for body in slow) == [
        (False, "jobs.on_duration_warning_threshold_exceeded"),
        (True, "jobs.on_duration_warning_threshold_exceeded"),
    ]

    def task_events(job: str) -> list[str]:
        received.clear()
        assert ws.run(job).state == "FAILED"
        return sorted(r["path"] for r in received if "task" in r["body"])

    assert task_events("every_attempt") == ["/failure"] * 3 + ["/start"] * 3
    assert task_events("last_attempt") == ["/failure", "/start"]


def test_a_skipped_run_is_reported_as_a_failure(
    bundle_dir: BundleDir, webhook_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook_server
    bundle_dir.file("gate.py", WAIT_FOR_GO)
    job = {
        "tasks": [py_task("wait", "gate.py")],
        "max_concurrent_runs": 1,
        "webhook_notifications": {"on_failure": [{"url": f"{url}/failure"}]},
    }
    bundle_dir.bundle(
        {
            "gated": job,
            "quiet": {**job, "notification_settings": {"no_alert_for_skipped_runs": True}},
        }
    )
    ws = bundle_dir.workspace()
    firsts = []
    for key in ("gated", "quiet"):
        first = ws.run(key, wait=False)
        firsts.append(first.run_id)
        wait_for(lambda first=first: run_state(ws, first.run_id) == "RUNNING")
        assert ws.run(key).state == "SKIPPED"
    (bundle_dir.root / "go").touch()
    for run_id in firsts:
        wait_for(lambda run_id=run_id: run_state(ws, run_id) == "SUCCESS")
    failures = [r["body"]["run"] for r in received if r["path"] == "/failure"]
    assert [(f["state"], f["state_message"][:8]) for f in failures] == [("SKIPPED", "skipped:")]


def test_email_is_sent_over_smtp_when_configured(bundle_dir: BundleDir, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            messages.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        bundle_dir.file("ok.py", "print('fine')\n")
        bundle_dir.bundle(
            {
                "j": {
                    "tasks": [py_task("t", "ok.py")],
                    "email_notifications": {"on_success": ["owner@example.com"]},
                }
            },
            lakestack={
                "smtp": {"host": "127.0.0.1", "port": port, "sender": "lakestack@example.com"}
            },
        )
        ws = bundle_dir.workspace()
        run = ws.run("j")
        assert run.state == "SUCCESS"
        [envelope] = messages
        assert envelope.rcpt_tos == ["owner@example.com"]
        assert b"SUCCESS" in envelope.content
        assert any(a.action == "notification.email.sent" for a in ws.state.list_audit())
    finally:
        controller.stop()
