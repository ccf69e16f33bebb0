"""The evaluate task as a deployment job runs it: a python_wheel_task of lakestack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from lakestack.registry import ModelRegistry, Tracking, log_model, tracking_uri_for
from tests.integration.jobs.conftest import BundleDir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

MODEL = "main.ml.iris"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[BundleDir]:
    directory = BundleDir(tmp_path / "project")
    directory.root.mkdir()
    directory.file(
        "validation/metrics.py",
        """
        def setosa_recall(y_true, y_pred, y_proba):
            hits = (y_true == 0) & (y_pred == 0)
            return float(hits.sum() / (y_true == 0).sum())
        """,
    )
    directory.file(
        "validation/thresholds.yml",
        """
        thresholds:
          - {metric: accuracy_score, min_absolute_change: 0.05}
          - {metric: setosa_recall, threshold: 0.9}
        """,
    )
    parameters = {
        "model_name": "{{job.parameters.model_name}}",
        "model_version": "{{job.parameters.model_version}}",
        "validation_table": "main.iris.validation",
        "label": "species",
        "thresholds": "validation/thresholds.yml",
        "custom_metrics": "validation/metrics.py:setosa_recall",
        "run_mode": "{{job.parameters.run_mode}}",
    }
    directory.bundle(
        {
            "deployment": {
                "parameters": [
                    {"name": "model_name", "default": MODEL},
                    {"name": "model_version", "default": "1"},
                    {"name": "run_mode", "default": "enabled"},
                ],
                "tasks": [
                    {
                        "task_key": "evaluation",
                        "python_wheel_task": {
                            "package_name": "lakestack",
                            "entry_point": "evaluate",
                            "named_parameters": parameters,
                        },
                    },
                    {
                        "task_key": "report",
                        "depends_on": [{"task_key": "evaluation"}],
                        "spark_python_task": {
                            "python_file": "report.py",
                            "parameters": [
                                "{{tasks.evaluation.values.passed}}",
                                "{{tasks.evaluation.values.challenger_set}}",
                            ],
                        },
                    },
                ],
            }
        }
    )
    directory.file("report.py", "import sys\nprint('values:', *sys.argv[1:])\n")
    yield directory
    directory.close()


def registered(root: Path, iris: pd.DataFrame) -> ModelRegistry:
    """Version 1 (the champion) sees one feature; version 2 sees all four."""
    tracking = Tracking(tracking_uri_for(root / ".lakestack"))
    tracking.activate()
    registry = ModelRegistry(tracking)
    for columns in (["sepal_width"], FEATURES):
        model = LogisticRegression(max_iter=500).fit(iris[columns], iris["species"])
        log_model(
            model,
            flavor=mlflow.sklearn,
            name="model",
            registered_model_name=MODEL,
            pip_requirements=["scikit-learn"],
        )
    registry.set_alias(MODEL, "champion", 1)
    return registry


def test_a_deployment_job_evaluates_and_fails_a_worse_version(project: BundleDir) -> None:
    iris: Any = load_iris(as_frame=True).frame
    iris.columns = [*FEATURES, "species"]
    iris.insert(0, "id", np.arange(len(iris)))
    registry = registered(project.root, iris)
    ws = project.workspace()
    ws.catalog.create_schema("main.iris")
    ws.catalog.create_table("main.iris.validation", data=iris.iloc[::3])

    better = ws.run("deployment", {"model_version": "2"})
    assert better.state == "SUCCESS", better.state_message
    assert registry.alias_version(MODEL, "challenger") == 2
    values = ws.get_run(better.run_id)["task_values"]["evaluation"]
    assert values["passed"] is True and values["challenger_set"] is True
    assert set(values["metrics"]) >= {"accuracy_score", "roc_auc", "setosa_recall"}
    [(_, log)] = ws.logs(better.run_id, "evaluation")
    assert f"{MODEL} version 2 passed evaluation against champion version 1" in log
    [(_, report)] = ws.logs(better.run_id, "report")
    assert report.strip() == "values: true true"

    registry.delete_alias(MODEL, "challenger")
    registry.set_alias(MODEL, "champion", 2)
    worse = ws.run("deployment", {"model_version": "1"})
    assert worse.state == "FAILED"
    tasks = {t["task_key"]: t for t in ws.get_run(worse.run_id)["tasks"]}
    assert tasks["evaluation"]["state"] == "FAILED"
    assert tasks["report"]["state"] == "UPSTREAM_FAILED"
    message = tasks["evaluation"]["error"]
    assert "\n" not in message
    [(_, log)] = ws.logs(worse.run_id, "evaluation")
    assert "  FAIL accuracy_score >= champion + 0.05: 0.58 < champion 1 + 0.05\n" in log
    assert message.startswith(
        f"{MODEL} version 1 failed evaluation against champion version 2: accuracy_score: "
    ), message
    assert registry.alias_version(MODEL, "challenger") is None

    dry = ws.run("deployment", {"model_version": "1", "run_mode": "dry_run"})
    assert dry.state == "SUCCESS", dry.state_message
    [(_, report)] = ws.logs(dry.run_id, "report")
    assert report.strip() == "values: false false"
    assert registry.alias_version(MODEL, "challenger") is None
