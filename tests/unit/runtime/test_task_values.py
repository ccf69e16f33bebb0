from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakestack.jobs.context import VALUES_FILE
from lakestack.runtime.dbutils import DBUtils
from lakestack.runtime.task_values import TaskValueDebugError, TaskValueError

from .conftest import MakeContext


def test_set_merges_into_the_values_file(dbutils: DBUtils, in_job: MakeContext) -> None:
    ctx = in_job()
    dbutils.jobs.taskValues.set("model_version", 3)
    dbutils.jobs.taskValues.set("metrics", {"f1": 0.9})
    data = json.loads((Path(ctx.output_dir) / VALUES_FILE).read_text())
    assert data == {"model_version": 3, "metrics": {"f1": 0.9}}
    assert dbutils.jobs.taskValues.get("train", "model_version") == 3


def test_set_outside_a_job_does_nothing(dbutils: DBUtils, tmp_path: Path) -> None:
    dbutils.jobs.taskValues.set("x", 1)
    assert not list(tmp_path.rglob(VALUES_FILE))


def test_set_rejects_more_than_48_kib(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job()
    with pytest.raises(
        TaskValueError,
        match=r"task value 'blob' is 50002 bytes as JSON, over the limit of 49152 bytes \(48 KiB\)",
    ):
        dbutils.jobs.taskValues.set("blob", "x" * 50_000)


def test_set_rejects_values_that_are_not_json(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job()
    with pytest.raises(TaskValueError, match="task value 'when' is not JSON-serialisable"):
        dbutils.jobs.taskValues.set("when", object())


def test_get_reads_upstream_values(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job(task_key="validate", task_values={"train": {"model_version": "4"}})
    assert dbutils.jobs.taskValues.get("train", "model_version") == "4"
    assert dbutils.jobs.taskValues.get("train", "missing", default="d") == "d"


def test_get_missing_key_names_task_and_key(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job(task_key="validate", task_values={"train": {"model_version": "4"}})
    with pytest.raises(
        TaskValueError,
        match=r"task 'train' did not set task value 'accuracy' \(it set: model_version\)",
    ):
        dbutils.jobs.taskValues.get("train", "accuracy")
    with pytest.raises(TaskValueError, match="task 'ingest' set no task values visible to task"):
        dbutils.jobs.taskValues.get("ingest", "rows")


def test_get_outside_a_job_needs_a_debug_value(dbutils: DBUtils) -> None:
    assert dbutils.jobs.taskValues.get("train", "v", default=1, debugValue=2) == 2
    with pytest.raises(TypeError, match="debugValue cannot be None"):
        dbutils.jobs.taskValues.get("train", "v")
    with pytest.raises(TaskValueDebugError):
        dbutils.jobs.taskValues.get("train", "v", default=1)
