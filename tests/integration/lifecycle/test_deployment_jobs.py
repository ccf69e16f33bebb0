"""Deployment jobs end to end on real MLflow: a new version starts its deployment run, the run
pauses for approval with no process alive, a listed approver resumes it (another user is
refused), a rejection ends it, and the scheduler handles versions and decisions made through
a plain MLflow client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakestack.errors import ApprovalError, ModelNotFoundError
from lakestack.registry import ModelRegistry
from lakestack.state.models import RunRecord
from lakestack.workspace import Workspace
from tests.integration.jobs.conftest import BundleDir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

MODEL = "main.ml.clf"

TRAIN = """
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression
from lakestack.registry import log_model

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
with mlflow.start_run():
    log_model(model, flavor=mlflow.sklearn, name="model", registered_model_name="main.ml.clf")
"""


def wait_for(condition: Callable[[], RunRecord | None], timeout: float = 90) -> RunRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Workspace]]:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "LAKESTACK_BUNDLE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    directory = BundleDir(tmp_path / "project")
    directory.root.mkdir()
    directory.file("train.py", TRAIN)
    wheel = {"package_name": "lakestack"}
    version_params = {
        "model_name": "{{job.parameters.model_name}}",
        "model_version": "{{job.parameters.model_version}}",
    }
    directory.bundle(
        {
            "train": {
                "tasks": [{"task_key": "train", "spark_python_task": {"python_file": "train.py"}}]
            },
            "deploy_job": {
                "parameters": [
                    {"name": "model_name", "default": MODEL},
                    {"name": "model_version", "default": "1"},
                ],
                "queue": {"enabled": True},
                "tasks": [
                    {
                        "task_key": "approval",
                        "python_wheel_task": {
                            **wheel,
                            "entry_point": "approval",
                            "named_parameters": version_params,
                        },
                    },
                    {
                        "task_key": "deployment",
                        "depends_on": [{"task_key": "approval"}],
                        "python_wheel_task": {
                            **wheel,
                            "entry_point": "deploy",
                            "named_parameters": version_params,
                        },
                    },
                ],
            },
        },
        targets={"dev": {"default": True}},
    )
    text = (directory.root / "lakestack.yml").read_text(encoding="utf-8")
    text = text.replace(
        "resources:\n",
        "resources:\n"
        "  registered_models:\n"
        "    clf:\n"
        "      name: clf\n"
        "      catalog_name: main\n"
        "      schema_name: ml\n"
        "      deployment_job: ${resources.jobs.deploy_job.id}\n"
        "      approvers: [alice]\n",
        1,
    )
    (directory.root / "lakestack.yml").write_text(text, encoding="utf-8")

    def open_as(user: str) -> Workspace:
        monkeypatch.setenv("LAKESTACK_USER", user)
        return directory.workspace()

    yield open_as
    directory.close()


def deployment_run(ws: Workspace, version: int, state: str) -> RunRecord | None:
    for run in ws.list_runs(job_key="deploy_job", limit=50):
        if run.parameters.get("model_version") == str(version) and run.state == state:
            return run
    return None


def test_a_new_version_waits_for_a_listed_approver(
    project: Callable[[str], Workspace],
) -> None:
    ws = project("alice")
    assert ws.run("train").state == "SUCCESS"
    waiting = wait_for(lambda: deployment_run(ws, 1, "WAITING_FOR_APPROVAL"))
    assert waiting.trigger_type == "MODEL_VERSION_CREATED"
    assert waiting.parameters == {"model_name": MODEL, "model_version": "1"}
    registry: ModelRegistry = ws.registry
    # the paused run's orchestrator tags the version as it exits
    wait_for(
        lambda: waiting if registry.get_version(MODEL, 1).deployment_state == "APPROVAL" else None
    )

    bob = project("bob")
    with pytest.raises(ApprovalError, match=r"bob may not approve versions of model main\.ml\.clf"):
        bob.approve("clf", 1, comment="looks fine")
    with pytest.raises(ModelNotFoundError, match="9"):
        ws.approve(MODEL, 9)
    assert registry.get_version(MODEL, 1).approval is None  # nothing changed

    result = ws.approve("clf", 1, comment="checked the evaluation run")
    assert [r.state for r in result.runs] == ["SUCCESS"]
    version = registry.get_version(MODEL, 1)
    assert version.approval is not None and version.approval.lower() == "approved"
    assert version.tags["lakestack.approval.by"] == "alice"
    assert version.tags["lakestack.approval.comment"] == "checked the evaluation run"
    assert version.deployment_state == "SUCCEEDED"
    assert registry.alias_version(MODEL, "CHAMPION") == 1
    assert [a.actor for a in ws.state.list_audit(action="model.approve")] == ["alice"]
    with pytest.raises(ApprovalError, match=r"no run waits for approval of model main\.ml\.clf"):
        ws.approve(MODEL, 1)

    # a second version, rejected: its run fails and the champion stays
    assert ws.run("train").state == "SUCCESS"
    wait_for(lambda: deployment_run(ws, 2, "WAITING_FOR_APPROVAL"))
    registry.set_alias(MODEL, "challenger", 2)
    rejected = ws.reject(MODEL, 2, comment="worse on the holdout")
    assert [r.state for r in rejected.runs] == ["FAILED"]
    assert "rejected by alice: worse on the holdout" in rejected.runs[0].state_message
    assert registry.get_version(MODEL, 2).deployment_state == "FAILED"
    assert registry.alias_version(MODEL, "challenger") is None
    assert registry.alias_version(MODEL, "champion") == 1


def test_the_scheduler_handles_plain_mlflow_versions_and_decisions(
    project: Callable[[str], Workspace],
) -> None:
    ws = project("alice")
    assert ws.run("train").state == "SUCCESS"
    first = wait_for(lambda: deployment_run(ws, 1, "WAITING_FOR_APPROVAL"))
    registry: ModelRegistry = ws.registry
    client = registry.client
    files = client.get_model_version_download_uri(MODEL, "1")
    client.create_model_version(MODEL, files)  # version 2, registered around lakestack
    client.set_model_version_tag(MODEL, "1", "approval", "APPROVED")  # approved through MLflow

    fired = ws.scheduler().tick()
    assert sorted(f.trigger_type for f in fired) == ["APPROVAL", "MODEL_VERSION_CREATED"]
    wait_for(lambda: deployment_run(ws, 2, "WAITING_FOR_APPROVAL"))
    done = wait_for(lambda: deployment_run(ws, 1, "SUCCESS"))
    assert done.run_id == first.run_id
    assert registry.alias_version(MODEL, "champion") == 1
    assert ws.scheduler().tick() == []  # each version starts one run, each decision acts once


def test_cancel_and_destroy_leave_no_stale_deployment(
    project: Callable[[str], Workspace],
) -> None:
    ws = project("alice")
    assert ws.run("train").state == "SUCCESS"
    paused = wait_for(lambda: deployment_run(ws, 1, "WAITING_FOR_APPROVAL"))
    registry: ModelRegistry = ws.registry
    # the paused run's orchestrator tags the version as it exits
    wait_for(
        lambda: paused if registry.get_version(MODEL, 1).deployment_state == "APPROVAL" else None
    )
    before = registry.get_version(MODEL, 1).tags
    bob = project("bob")
    with pytest.raises(ApprovalError):
        bob.reject(MODEL, 1)
    assert registry.get_version(MODEL, 1).tags == before  # the refusal changed nothing

    assert ws.cancel(paused.run_id).state == "CANCELED"
    assert registry.get_version(MODEL, 1).deployment_state == "FAILED"

    # a second version pauses; destroying the target ends that run, and after a new deploy the
    # model's versions start runs again (the old triggers went with the target)
    assert ws.run("train").state == "SUCCESS"
    second = wait_for(lambda: deployment_run(ws, 2, "WAITING_FOR_APPROVAL"))
    ws.destroy()
    ended = ws.state.get_run(second.run_id)
    assert ended is not None and ended.state == "CANCELED"
    assert not registry.has_model(MODEL)
    ws.deploy()
    assert ws.run("train").state == "SUCCESS"  # version 1 of the new model
    fresh = wait_for(lambda: deployment_run(ws, 1, "WAITING_FOR_APPROVAL"))
    assert fresh.run_id not in (paused.run_id, second.run_id)
