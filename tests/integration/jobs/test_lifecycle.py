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
