"""The Iris project through the CLI: the whole loop in dev (automatic approval), run twice; a
production run that waits for its approver; a promotion to another target."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lakestack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

EXAMPLE = Path(__file__).parents[2] / "examples" / "iris"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "iris"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".lakestack", "__pycache__"))
    return target


def versions(project: Path, target: str) -> dict[int, dict[str, Any]]:
    out = lakestack("models", "versions", "iris_model", "-t", target, "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    return {v["version"]: v for v in out.json()}


def runs(project: Path, target: str) -> list[dict[str, Any]]:
    out = lakestack("runs", "list", "-t", target, "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    return out.json()  # type: ignore[no-any-return]


def test_dev_runs_the_whole_loop_and_keeps_a_champion_that_is_not_beaten(project: Path) -> None:
    first = lakestack("bundle", "run", "end_to_end", "-o", "json", cwd=project)
    assert first.code == 0, first.out + first.err
    run = first.json()
    assert run["task_values"]["train_model"]["model_version"] == 1
    assert run["task_values"]["await_deployment"]["deployed"] is True
    v1 = versions(project, "dev")[1]
    assert v1["aliases"] == ["champion"]
    assert v1["deployment_state"] == "SUCCEEDED"
    assert v1["approval"] == "Approved"
    table = lakestack("tables", "show", "dev.iris.iris_features", "-o", "json", cwd=project)
    assert v1["lineage"]["input_tables"] == {"dev.iris.iris_features": table.json()["version"]}
    scored = lakestack(
        "sql",
        "SELECT model_id, count(*) AS n FROM dev.iris.iris_inferences GROUP BY ALL",
        "-o",
        "json",
        cwd=project,
    )
    assert scored.json() == [{"model_id": "dev.iris.iris_classifier/1", "n": 45}]

    # the same data trains the same model: it does not beat the champion, which stays
    second = lakestack("bundle", "run", "end_to_end", "-o", "json", cwd=project)
    assert second.code == 0, second.out + second.err
    assert second.json()["task_values"]["await_deployment"]["deployed"] is False
    both = versions(project, "dev")
    assert both[2]["deployment_state"] == "FAILED"
    assert both[2]["aliases"] == [] and both[1]["aliases"] == ["champion"]
    deployments = [r for r in runs(project, "dev") if r["job_id"] == "model_deployment_job"]
    assert [r["state"] for r in deployments] == ["FAILED", "SUCCESS"]
    assert "failed evaluation against champion version 1" in deployments[0]["state_message"]
    rows = lakestack(
        "sql", "SELECT count(*) AS n FROM dev.iris.iris_inferences", "-o", "json", cwd=project
    )
    assert rows.json() == [{"n": 90}]


def test_prod_waits_for_its_approver(project: Path) -> None:
    paused = lakestack("bundle", "run", "end_to_end", "-t", "prod", cwd=project)
    assert paused.code == 1
    assert "waits for approval of model prod.iris.iris_classifier version 1" in paused.out
    assert {r["state"] for r in runs(project, "prod")} == {"WAITING_FOR_APPROVAL"}
    assert versions(project, "prod")[1]["deployment_state"] == "APPROVAL"

    before = versions(project, "prod")[1]
    refused = lakestack(
        "models", "approve", "iris_model", "1", "-t", "prod", cwd=project,
        env={"LAKESTACK_USER": "intern"},
    )  # fmt: skip
    assert refused.code == 1
    assert refused.err.strip() == (
        "Error: intern may not approve versions of model prod.iris.iris_classifier; its "
        "approvers are ml-lead (registered_models.approvers in the bundle)"
    )
    assert versions(project, "prod")[1] == before  # the refusal changed no tag or alias

    approved = lakestack(
        "models", "approve", "iris_model", "1", "-t", "prod", "--comment", "holdout checked",
        cwd=project, env={"LAKESTACK_USER": "ml-lead"},
    )  # fmt: skip
    assert approved.code == 0, approved.out + approved.err
    assert {r["state"] for r in runs(project, "prod")} == {"SUCCESS"}
    v1 = versions(project, "prod")[1]
    assert v1["aliases"] == ["champion"]
    assert v1["tags"]["lakestack.approval.by"] == "ml-lead"
    assert v1["tags"]["lakestack.approval.comment"] == "holdout checked"
    again = lakestack(
        "models", "approve", "iris_model", "1", "-t", "prod", cwd=project,
        env={"LAKESTACK_USER": "ml-lead"},
    )  # fmt: skip
    assert again.code == 1
    assert again.err.strip() == (
        "Error: no run waits for approval of model prod.iris.iris_classifier version 1; see the "
        "deployment state with: lakestack models versions prod.iris.iris_classifier"
    )


def test_a_version_promoted_to_another_target_starts_its_deployment_there(project: Path) -> None:
    assert lakestack("bundle", "run", "end_to_end", cwd=project).code == 0
    assert lakestack("bundle", "run", "data_ingestion_job", "-t", "test", cwd=project).code == 0
    promoted = lakestack(
        "models", "promote", "iris_model", "champion", "--to-target", "test", cwd=project
    )
    assert promoted.code == 0, promoted.out + promoted.err
    assert "models:/test.iris.iris_classifier/1" in promoted.out
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [r["state"] for r in runs(project, "test") if r["job_id"] != "data_ingestion_job"]
        if states == ["WAITING_FOR_APPROVAL"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the promoted version's deployment run did not pause: {states}")
    copy = versions(project, "test")[1]
    assert copy["lineage"]["promoted_from"] == "dev.iris.iris_classifier/1"
    approved = lakestack("models", "approve", "iris_model", "1", "-t", "test", cwd=project)
    assert approved.code == 0, approved.out + approved.err
    assert versions(project, "test")[1]["aliases"] == ["champion"]
