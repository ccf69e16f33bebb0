"""A task that asks for approval pauses its run with no process alive; repair resumes it."""

from __future__ import annotations

import pytest

from .conftest import BundleDir, py_task, states

pytestmark = pytest.mark.integration

GATE = """
import sys
from pathlib import Path
from lakestack.jobs.context import request_approval

if not Path("approved").exists():
    request_approval({"model_name": "main.s.m", "model_version": 3})
"""


def gated_job(bundle_dir: BundleDir) -> None:
    bundle_dir.file("gate.py", GATE)
    bundle_dir.file("after.py", "from pathlib import Path\nPath('after_ran').touch()\n")
    bundle_dir.file("side.py", "pass\n")
    bundle_dir.bundle(
        {
            "deploy": {
                "max_concurrent_runs": 1,
                "tasks": [
                    py_task("gate", "gate.py"),
                    py_task("side", "side.py"),
                    py_task("after", "after.py", depends_on=[{"task_key": "gate"}]),
                ],
            }
        }
    )


def test_a_run_pauses_for_approval_and_a_repair_resumes_it(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir)
    ws = bundle_dir.workspace()
    run = ws.run("deploy")
    assert run.state == "WAITING_FOR_APPROVAL"
    assert "lakestack models approve main.s.m 3" in run.state_message
    assert states(ws, run.run_id) == {
        "gate": "WAITING_FOR_APPROVAL",
        "side": "SUCCESS",
        "after": "PENDING",
    }
    assert run.end_time is None
    assert not (bundle_dir.root / "after_ran").exists()
    # the orchestrator returned: nothing drives the paused run; it holds no concurrency slot
    assert [r.run_id for r in ws._service().waiting_runs("MAIN.S.M", 3)] == [run.run_id]
    assert ws._service().waiting_runs("main.s.m", 4) == []
    second = ws.run("deploy")
    assert second.state == "WAITING_FOR_APPROVAL"

    (bundle_dir.root / "approved").touch()
    resumed = ws.repair(run.run_id)
    assert resumed.state == "SUCCESS"
    assert states(ws, run.run_id) == {"gate": "SUCCESS", "side": "SUCCESS", "after": "SUCCESS"}
    assert (bundle_dir.root / "after_ran").exists()


def test_cancel_ends_a_paused_run_at_once(bundle_dir: BundleDir) -> None:
    gated_job(bundle_dir)
    ws = bundle_dir.workspace()
    run = ws.run("deploy")
    canceled = ws.cancel(run.run_id)
    assert canceled.state == "CANCELED"
    assert canceled.end_time is not None
    assert states(ws, run.run_id) == {"gate": "CANCELED", "side": "SUCCESS", "after": "CANCELED"}
    assert ws._service().waiting_runs("main.s.m", 3) == []
