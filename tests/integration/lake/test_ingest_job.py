"""Ingestion as a job task: the Python API with task values, and the `lakestack-ingest` entry
point as a python_wheel_task, on a volume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakestack.lake import Catalog
from tests.integration.jobs.conftest import BundleDir, py_task

pytestmark = pytest.mark.integration

INGEST = """
    from lakestack import dbutils
    from lakestack.lake import default_catalog
    from lakestack.lake.ingest import ingest_files

    result = ingest_files(default_catalog(), "/Volumes/main/default/landing", "main.default.events")
    for key in ("files", "rows", "rescued_rows", "table_version"):
        dbutils.jobs.taskValues.set(key, getattr(result, key))
"""


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Iterator[BundleDir]:
    directory = BundleDir(tmp_path / "project")
    directory.root.mkdir()
    yield directory
    directory.close()


def test_an_ingestion_job_reports_through_task_values(bundle_dir: BundleDir) -> None:
    bundle_dir.file("ingest.py", INGEST)
    volume = "/Volumes/main/default/landing"
    bundle_dir.bundle(
        {
            "bronze": {
                "tasks": [
                    py_task("ingest", "ingest.py"),
                    {
                        "task_key": "again",
                        "depends_on": [{"task_key": "ingest"}],
                        "python_wheel_task": {
                            "package_name": "lakestack",
                            "entry_point": "lakestack-ingest",
                            "named_parameters": {"source": volume, "table": "main.default.events"},
                        },
                    },
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    landing = Path(Catalog(ws.bundle.warehouse).create_volume("main.default.landing"))
    (landing / "a.csv").write_text("id,amount\n1,1.5\n2,2.5\n", encoding="utf-8")
    (landing / "b.csv").write_text("id,amount\n3,x\n", encoding="utf-8")

    run = ws.run("bronze")
    assert run.state == "SUCCESS", run.state_message
    values = ws.get_run(run.run_id)["task_values"]["ingest"]
    assert (values["files"], values["rows"]) == (2, 3)
    [(_, output)] = ws.logs(run.run_id, "again")
    second = json.loads(output.strip().splitlines()[-1])
    assert (second["files"], second["skipped_files"]) == (0, 2)
    assert second["table_version"] == values["table_version"]
    assert Catalog(ws.bundle.warehouse).table("main.default.events").read().num_rows == 3
