"""Real jobs in real processes: task values, failures and run_if, conditions, retries, timeouts,
for-each, child runs, task kinds, parallelism and notifications."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from lakestack.errors import JobError
from tests.integration.jobs.conftest import BundleDir, py_task, states

pytestmark = pytest.mark.integration

SET_VALUE = """
    import sys
    from lakestack import dbutils
    key, value = sys.argv[1], sys.argv[2]
    print(f"setting {key}={value}")
    dbutils.jobs.taskValues.set(key, value)
"""
ECHO = """
    import sys
    print("args:", " ".join(sys.argv[1:]))
"""
FAIL = """
    raise ValueError("the input table is empty")
"""


def test_values_and_parameters_flow_between_tasks(bundle_dir: BundleDir) -> None:
    bundle_dir.file("set.py", SET_VALUE)
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle(
        {
            "etl": {
                "parameters": [{"name": "who", "default": "world"}],
                "tasks": [
                    py_task("produce", "set.py", "greeting", "hello-{{job.parameters.who}}"),
                    py_task(
                        "consume",
                        "echo.py",
                        "{{tasks.produce.values.greeting}}",
                        "{{job.run_id}}",
                        "{{task.name}}",
                        depends_on=[{"task_key": "produce"}],
                    ),
                ],
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("etl", {"who": "lakestack"})
    assert run.state == "SUCCESS", run.state_message
    detail = ws.get_run(run.run_id)
    assert detail["task_values"] == {"produce": {"greeting": "hello-lakestack"}}
    assert detail["parameters"] == {"who": "lakestack"}
    [(_, output)] = ws.logs(run.run_id, "consume")
    assert output.strip() == f"args: hello-lakestack {run.run_id} consume"
    log_dir = Path(detail["tasks"][0]["log_dir"])
    assert log_dir.is_relative_to(ws.bundle.workspace_root / "runs" / str(run.run_id))


def test_job_parameter_defaults_resolve_job_references_once(bundle_dir: BundleDir) -> None:
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle(
        {
            "etl": {
                "parameters": [
                    {"name": "day", "default": "{{job.start_time.iso_date}}"},
                    {"name": "tag", "default": "{{bundle.target}}-{{job.run_id}}"},
                ],
                "tasks": [
                    py_task("show", "echo.py", "{{job.parameters.day}}", "{{job.parameters.tag}}")
                ],
            }
        }
    )
    ws = bundle_dir.workspace()
    with pytest.raises(JobError, match=r"parameter 'day': \{\{tasks.x.values.y\}\} cannot be"):
        ws.run("etl", {"day": "{{tasks.x.values.y}}"})
    run = ws.run("etl")
    assert run.state == "SUCCESS", run.state_message
    detail = ws.get_run(run.run_id)
    day = datetime.fromtimestamp(detail["start_time"] / 1000, tz=timezone.utc).date().isoformat()
    tag = f"{ws.bundle.target}-{run.run_id}"
    assert detail["parameters"] == {"day": day, "tag": tag}
    [(_, output)] = ws.logs(run.run_id, "show")
    assert output.strip() == f"args: {day} {tag}"


def test_failed_task_follows_run_if_and_fails_the_run(bundle_dir: BundleDir) -> None:
    bundle_dir.file("fail.py", FAIL)
    bundle_dir.file("echo.py", ECHO)
    after = [{"task_key": "load"}]
    bundle_dir.bundle(
        {
            "etl": {
                "tasks": [
                    py_task("load", "fail.py"),
                    py_task("ok", "echo.py"),
                    py_task("transform", "echo.py", depends_on=after),
                    py_task("cleanup", "echo.py", depends_on=after, run_if="ALL_DONE"),
                    py_task(
                        "alert",
                        "echo.py",
                        "{{tasks.load.result_state}}",
                        "{{tasks.load.error_code}}",
                        depends_on=after,
                        run_if="AT_LEAST_ONE_FAILED",
                    ),
                    py_task(
                        "all_failed",
                        "echo.py",
                        depends_on=[{"task_key": "load"}, {"task_key": "ok"}],
                        run_if="ALL_FAILED",
                    ),
                    py_task(
                        "any_ok",
                        "echo.py",
                        depends_on=[{"task_key": "load"}, {"task_key": "ok"}],
                        run_if="AT_LEAST_ONE_SUCCESS",
                    ),
                    py_task(
                        "none_failed",
                        "echo.py",
                        depends_on=[{"task_key": "ok"}, {"task_key": "load"}],
                        run_if="NONE_FAILED",
                    ),
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("etl")
    assert run.state == "FAILED"
    assert run.state_message == "task load FAILED: ValueError: the input table is empty"
    assert states(ws, run.run_id) == {
        "load": "FAILED",
        "ok": "SUCCESS",
        "transform": "UPSTREAM_FAILED",
        "cleanup": "SUCCESS",
        "alert": "SUCCESS",
        "all_failed": "EXCLUDED",
        "any_ok": "SUCCESS",
        "none_failed": "UPSTREAM_FAILED",
    }
    load = next(t for t in ws.get_run(run.run_id)["tasks"] if t["task_key"] == "load")
    assert load["error"] == "ValueError: the input table is empty"
    assert load["exit_code"] == 1
    [(_, output)] = ws.logs(run.run_id, "load")
    assert "Traceback" in output and "ValueError: the input table is empty" in output
    [(_, alerted)] = ws.logs(run.run_id, "alert")
    assert alerted.strip() == "args: FAILED ValueError"


def test_condition_task_selects_a_branch(bundle_dir: BundleDir) -> None:
    bundle_dir.file("set.py", SET_VALUE)
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle(
        {
            "branch": {
                "parameters": [{"name": "threshold", "default": "0.9"}],
                "tasks": [
                    py_task("evaluate", "set.py", "accuracy", "0.93"),
                    {
                        "task_key": "good_enough",
                        "depends_on": [{"task_key": "evaluate"}],
                        "condition_task": {
                            "op": "GREATER_THAN_OR_EQUAL",
                            "left": "{{tasks.evaluate.values.accuracy}}",
                            "right": "{{job.parameters.threshold}}",
                        },
                    },
                    py_task(
                        "deploy",
                        "echo.py",
                        depends_on=[{"task_key": "good_enough", "outcome": "true"}],
                    ),
                    py_task(
                        "retrain",
                        "echo.py",
                        depends_on=[{"task_key": "good_enough", "outcome": "false"}],
                    ),
                    py_task(
                        "report",
                        "echo.py",
                        "{{tasks.good_enough.outcome}}",
                        depends_on=[{"task_key": "deploy"}, {"task_key": "retrain"}],
                        run_if="NONE_FAILED",
                    ),
                    py_task("after_retrain", "echo.py", depends_on=[{"task_key": "retrain"}]),
                ],
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("branch")
    assert run.state == "SUCCESS", run.state_message
    assert states(ws, run.run_id) == {
        "evaluate": "SUCCESS",
        "good_enough": "SUCCESS",
        "deploy": "SUCCESS",
        "retrain": "EXCLUDED",
        "report": "SUCCESS",
        "after_retrain": "EXCLUDED",
    }
    cond = next(t for t in ws.get_run(run.run_id)["tasks"] if t["task_key"] == "good_enough")
    assert cond["outcome"] == "true"
    assert cond["details"] == {"left": "0.93", "op": "GREATER_THAN_OR_EQUAL", "right": "0.9"}
    [(_, output)] = ws.logs(run.run_id, "report")
    assert output.strip() == "args: true"

    rerun = ws.run("branch", {"threshold": "0.95"})
    assert states(ws, rerun.run_id)["deploy"] == "EXCLUDED"
    assert states(ws, rerun.run_id)["retrain"] == "SUCCESS"


def test_retries_until_success_with_interval(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "flaky.py",
        """
        from pathlib import Path
        marker = Path("attempts.txt")
        count = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(count + 1))
        if count < 2:
            raise RuntimeError(f"flaky attempt {count}")
        print("finally")
        """,
    )
    bundle_dir.bundle(
        {
            "flaky": {
                "tasks": [py_task("t", "flaky.py", max_retries=3, min_retry_interval_millis=300)]
            }
        }
    )
    ws = bundle_dir.workspace()
    started = time.monotonic()
    run = ws.run("flaky")
    assert run.state == "SUCCESS"
    assert time.monotonic() - started >= 0.6
    attempts = [(t["attempt"], t["state"], t["error"]) for t in ws.get_run(run.run_id)["tasks"]]
    assert attempts == [
        (0, "FAILED", "RuntimeError: flaky attempt 0"),
        (1, "FAILED", "RuntimeError: flaky attempt 1"),
        (2, "SUCCESS", None),
    ]


def test_retries_give_up_after_max_retries(bundle_dir: BundleDir) -> None:
    bundle_dir.file("fail.py", FAIL)
    bundle_dir.bundle({"j": {"tasks": [py_task("t", "fail.py", max_retries=1)]}})
    ws = bundle_dir.workspace()
    run = ws.run("j")
    assert run.state == "FAILED"
    assert [t["state"] for t in ws.get_run(run.run_id)["tasks"]] == ["FAILED", "FAILED"]


def test_task_timeout_kills_the_task_and_its_children(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "hang.py",
        """
        import subprocess, time
        child = subprocess.Popen(["sleep", "120"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(120)
        """,
    )
    bundle_dir.bundle(
        {"slow": {"tasks": [py_task("hang", "hang.py", timeout_seconds=1, max_retries=2)]}}
    )
    ws = bundle_dir.workspace()
    started = time.monotonic()
    run = ws.run("slow")
    assert time.monotonic() - started < 10
    assert run.state == "FAILED"
    [task] = ws.get_run(run.run_id)["tasks"]
    assert task["state"] == "TIMEDOUT"
    assert task["error"] == "timed out after timeout_seconds=1"
    child = int((bundle_dir.root / "child.pid").read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_retry_on_timeout(bundle_dir: BundleDir) -> None:
    bundle_dir.file("hang.py", "import time\ntime.sleep(60)\n")
    bundle_dir.bundle(
        {
            "slow": {
                "tasks": [
                    py_task(
                        "hang", "hang.py", timeout_seconds=1, max_retries=1, retry_on_timeout=True
                    )
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("slow")
    assert [t["state"] for t in ws.get_run(run.run_id)["tasks"]] == ["TIMEDOUT", "TIMEDOUT"]


def test_job_timeout_stops_the_run(bundle_dir: BundleDir) -> None:
    bundle_dir.file("hang.py", "import time\ntime.sleep(60)\n")
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle(
        {
            "slow": {
                "timeout_seconds": 1,
                "tasks": [
                    py_task("hang", "hang.py"),
                    py_task("next", "echo.py", depends_on=[{"task_key": "hang"}]),
                ],
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("slow")
    assert run.state == "TIMEDOUT"
    assert run.state_message == "job timed out after timeout_seconds=1"
    assert states(ws, run.run_id) == {"hang": "TIMEDOUT", "next": "CANCELED"}


def test_for_each_runs_every_input_with_bounded_concurrency(bundle_dir: BundleDir) -> None:
    bundle_dir.file("set.py", SET_VALUE)
    bundle_dir.file(
        "item.py",
        """
        import sys, time, json
        from pathlib import Path
        start = time.time(); time.sleep(0.3)
        Path("spans").mkdir(exist_ok=True)
        Path("spans", sys.argv[1] + ".json").write_text(json.dumps([start, time.time(), sys.argv[2]]))
        """,
    )
    bundle_dir.bundle(
        {
            "loop": {
                "tasks": [
                    py_task("list", "set.py", "regions", '["eu", "us", "apac", "latam"]'),
                    {
                        "task_key": "per_region",
                        "depends_on": [{"task_key": "list"}],
                        "for_each_task": {
                            "inputs": "{{tasks.list.values.regions}}",
                            "concurrency": 2,
                            "task": {
                                "task_key": "one_region",
                                "spark_python_task": {
                                    "python_file": "item.py",
                                    "parameters": ["{{input}}", "{{job.run_id}}"],
                                },
                            },
                        },
                    },
                    {
                        "task_key": "literal",
                        "for_each_task": {
                            "inputs": '[{"n": 1}, {"n": 2}]',
                            "task": {
                                "task_key": "x",
                                "spark_python_task": {
                                    "python_file": "item.py",
                                    "parameters": ["n{{input.n}}", "lit"],
                                },
                            },
                        },
                    },
                ]
            }
        }
    )
    ws = bundle_dir.workspace(variables=None)
    run = ws.run("loop")
    assert run.state == "SUCCESS", run.state_message
    spans = {p.stem: json.loads(p.read_text()) for p in (bundle_dir.root / "spans").glob("*.json")}
    assert sorted(spans) == ["apac", "eu", "latam", "n1", "n2", "us"]
    regions = [spans[r] for r in ("eu", "us", "apac", "latam")]
    # at no instant were more than two iterations running (at each start, count the active)
    for start, *_ in regions:
        active = sum(1 for other in regions if other[0] <= start < other[1])
        assert active <= 2
    iterations = [
        t
        for t in ws.get_run(run.run_id)["tasks"]
        if t["task_key"] == "per_region" and t["iteration"] is not None
    ]
    assert sorted(t["iteration"] for t in iterations) == [0, 1, 2, 3]
    parent = next(
        t
        for t in ws.get_run(run.run_id)["tasks"]
        if t["task_key"] == "per_region" and t["iteration"] is None
    )
    assert parent["details"] == {"iterations": 4, "succeeded": 4}


def test_for_each_with_a_failing_iteration_fails(bundle_dir: BundleDir) -> None:
    bundle_dir.file("maybe.py", "import sys\nif sys.argv[1] == 'bad':\n    raise SystemExit(3)\n")
    bundle_dir.bundle(
        {
            "loop": {
                "tasks": [
                    {
                        "task_key": "each",
                        "for_each_task": {
                            "inputs": ["good", "bad", "good"],
                            "task": {
                                "task_key": "x",
                                "spark_python_task": {
                                    "python_file": "maybe.py",
                                    "parameters": ["{{input}}"],
                                },
                            },
                        },
                    }
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("loop")
    assert run.state == "FAILED"
    assert (
        run.state_message
        == "task each FAILED: 1 of 3 iterations did not succeed; iteration 1: FAILED exited with code 3"
    )


def test_run_job_task_records_and_links_the_child_run(bundle_dir: BundleDir) -> None:
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle(
        {
            "train": {
                "parameters": [{"name": "reason", "default": "schedule"}],
                "tasks": [py_task("fit", "echo.py", "{{job.parameters.reason}}")],
            },
            "retrain": {
                "tasks": [
                    {
                        "task_key": "trigger",
                        "run_job_task": {
                            "job_id": "${resources.jobs.train.id}",
                            "job_parameters": {"reason": "drift"},
                        },
                    },
                ]
            },
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("retrain")
    assert run.state == "SUCCESS", run.state_message
    detail = ws.get_run(run.run_id)
    [child_id] = detail["child_runs"]
    assert detail["tasks"][0]["child_run_id"] == child_id
    child = ws.get_run(child_id)
    assert (child["job_id"], child["state"], child["trigger_type"]) == (
        "train",
        "SUCCESS",
        "RUN_JOB_TASK",
    )
    assert (child["parent_run_id"], child["parent_task_key"]) == (run.run_id, "trigger")
    [(_, output)] = ws.logs(child_id, "fit")
    assert output.strip() == "args: drift"


def test_task_kinds_wheel_and_sql(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "setup.sql",
        "CREATE OR REPLACE TABLE scores AS SELECT * FROM range(10) t(i);\nSELECT count(*) AS n, sum(i) AS s FROM scores WHERE i >= $low;",
    )
    bundle_dir.bundle(
        {
            "kinds": {
                "tasks": [
                    {
                        "task_key": "wheel",
                        "python_wheel_task": {
                            "package_name": "lakestack",
                            "entry_point": "lakestack",
                            "parameters": ["--version"],
                        },
                    },
                    {
                        "task_key": "sql",
                        "sql_task": {"file": {"path": "setup.sql"}, "parameters": {"low": "5"}},
                    },
                    {
                        "task_key": "sql_inline",
                        "depends_on": [{"task_key": "sql"}],
                        "sql_task": {
                            "query_text": "SELECT max(i) AS top FROM scores WHERE i < :cap",
                            "parameters": {"cap": "4"},
                        },
                    },
                    {
                        "task_key": "lake_write",
                        "depends_on": [{"task_key": "sql"}],
                        "sql_task": {
                            "query_text": "CREATE SCHEMA IF NOT EXISTS main.ml; "
                            "CREATE OR REPLACE TABLE main.ml.scores AS SELECT * FROM scores",
                        },
                    },
                    {
                        "task_key": "lake_read",
                        "depends_on": [{"task_key": "lake_write"}],
                        "sql_task": {
                            "query_text": "SELECT count(*) AS n FROM IDENTIFIER(:t) "
                            "WHERE i >= :low; SELECT count(*) AS v1 FROM main.ml.scores VERSION AS OF 0",
                            "parameters": {"t": "main.ml.scores", "low": "8"},
                        },
                    },
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("kinds")
    assert run.state == "SUCCESS", run.state_message
    logs = {r.task_key: text for r, text in ws.logs(run.run_id)}
    assert "lakestack, version" in logs["wheel"]
    assert logs["sql"].splitlines()[-2:] == ["n | s", "5 | 35"]
    assert logs["sql_inline"].splitlines() == ["top", "3"]
    assert logs["lake_read"].splitlines() == ["n", "2", "v1", "0"]
    assert ws.catalog.table("main.ml.scores").read().num_rows == 10


def test_missing_wheel_package_is_a_clear_task_error(bundle_dir: BundleDir) -> None:
    bundle_dir.bundle(
        {
            "w": {
                "tasks": [
                    {
                        "task_key": "w",
                        "python_wheel_task": {
                            "package_name": "no_such_pkg_x",
                            "entry_point": "main",
                        },
                    }
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("w")
    assert run.state_message == (
        "task w FAILED: package 'no_such_pkg_x' is not installed in this environment; "
        "install it (pip install -e . for the bundle's own package)"
    )


def test_independent_tasks_run_in_parallel_up_to_the_limit(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "span.py",
        """
        import sys, time, json
        from pathlib import Path
        start = time.time(); time.sleep(0.5)
        Path("spans").mkdir(exist_ok=True)
        Path("spans", sys.argv[1]).write_text(json.dumps([start, time.time()]))
        """,
    )
    tasks = [py_task(f"t{i}", "span.py", f"t{i}") for i in range(4)]
    bundle_dir.bundle({"par": {"tasks": tasks}}, lakestack={"compute": {"max_parallel_tasks": 2}})
    ws = bundle_dir.workspace()
    run = ws.run("par")
    assert run.state == "SUCCESS"
    spans = [json.loads(p.read_text()) for p in (bundle_dir.root / "spans").iterdir()]
    # the most tasks running at one instant (checked at each start): two, never more
    most = max(sum(1 for o in spans if o[0] <= s[0] < o[1]) for s in spans)
    assert most == 2


def test_task_code_can_use_dbutils_widgets_and_sees_the_bundle_root(bundle_dir: BundleDir) -> None:
    bundle_dir.file(
        "w.py",
        """
        import os
        from lakestack import dbutils
        print(dbutils.widgets.get("catalog"), os.getcwd(), os.environ["LAKESTACK_TASK_CONTEXT"].endswith("context.json"))
        """,
    )
    bundle_dir.bundle(
        {
            "j": {
                "parameters": [{"name": "catalog", "default": "dev"}],
                "tasks": [py_task("w", "w.py")],
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("j")
    [(_, output)] = ws.logs(run.run_id)
    assert output.split() == ["dev", str(bundle_dir.root), "True"]


def test_notebook_task_keeps_the_executed_notebook(bundle_dir: BundleDir) -> None:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": "alpha = '0.1'",
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": "print('alpha is', alpha)\ndbutils.jobs.taskValues.set('alpha', float(alpha))",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    bundle_dir.file("nb.ipynb", json.dumps(notebook))
    bundle_dir.bundle(
        {
            "nb": {
                "tasks": [
                    {
                        "task_key": "nb",
                        "notebook_task": {
                            "notebook_path": "nb.ipynb",
                            "base_parameters": {"alpha": "0.5"},
                        },
                    }
                ]
            }
        }
    )
    ws = bundle_dir.workspace()
    run = ws.run("nb")
    assert run.state == "SUCCESS", run.state_message
    detail = ws.get_run(run.run_id)
    assert detail["task_values"] == {"nb": {"alpha": 0.5}}
    executed = json.loads((Path(detail["tasks"][0]["log_dir"]) / "notebook.ipynb").read_text())
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert any("alpha is 0.5" in "".join(o.get("text", "")) for o in outputs)


def test_deploy_happens_when_the_bundle_changed(bundle_dir: BundleDir) -> None:
    bundle_dir.file("echo.py", ECHO)
    bundle_dir.bundle({"j": {"tasks": [py_task("a", "echo.py")]}})
    ws = bundle_dir.workspace()
    first = ws.run("j")
    deployments = ws.state.list_deployments(ws.bundle.target)
    second = ws.run("j")
    assert len(ws.state.list_deployments(ws.bundle.target)) == len(deployments) == 1
    bundle_dir.bundle({"j": {"tasks": [py_task("a", "echo.py", "changed")]}})
    ws2 = bundle_dir.workspace()
    third = ws2.run("j")
    assert len(ws2.state.list_deployments(ws2.bundle.target)) == 2
    assert {first.state, second.state, third.state} == {"SUCCESS"}
    assert os.path.exists(ws.bundle.workspace_root / "state.db")
