"""The orchestrator works the same with its state in PostgreSQL (a real server)."""

from __future__ import annotations

import pytest

from tests.integration.jobs.conftest import BundleDir, py_task, states

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_run_and_repair_with_postgresql_state(bundle_dir: BundleDir, pg_state_url: str) -> None:
    bundle_dir.file(
        "produce.py",
        "from lakestack import dbutils\ndbutils.jobs.taskValues.set('rows', 12)\n",
    )
    bundle_dir.file(
        "consume.py",
        "import sys\nfrom pathlib import Path\nassert Path('fixed').exists(), 'not fixed yet'\nprint('rows', sys.argv[1])\n",
    )
    bundle_dir.bundle(
        {
            "etl": {
                "tasks": [
                    {"task_key": "produce", "python_file_task": {"python_file": "produce.py"}},
                    py_task(
                        "consume",
                        "consume.py",
                        "{{tasks.produce.values.rows}}",
                        depends_on=[{"task_key": "produce"}],
                    ),
                ]
            }
        },
        lakestack={"state_url": pg_state_url},
    )
    ws = bundle_dir.workspace()
    assert ws.bundle.state_url.startswith("postgresql")
    run = ws.run("etl")
    assert run.state == "FAILED"
    assert run.state_message == "task consume FAILED: AssertionError: not fixed yet"
    (bundle_dir.root / "fixed").touch()
    repaired = ws.repair(run.run_id)
    assert repaired.state == "SUCCESS"
    assert states(ws, run.run_id) == {"produce": "SUCCESS", "consume": "SUCCESS"}
    [(_, output)] = [(r, t) for r, t in ws.logs(run.run_id, "consume") if r.state == "SUCCESS"]
    assert output.strip() == "rows 12"
    assert not (ws.bundle.workspace_root / "state.db").exists()
