"""The evaluate task on real MLflow (SQLite) and real Delta tables: candidate against champion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from lakestack.errors import EvaluationError, TaskError
from lakestack.jobs.context import CONTEXT_ENV, VALUES_FILE, TaskContext
from lakestack.lake import Catalog
from lakestack.lifecycle.evaluate import (
    EVALUATION_PASSED_TAG,
    EVALUATION_RUN_TAG,
    evaluate_version,
    main,
)
from lakestack.registry import (
    ModelRegistry,
    Tracking,
    artifact_root_for,
    log_model,
    tracking_uri_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

STRONG = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
WEAK = ["sepal_width"]
LABEL = "species"
VALIDATION = "main.iris.validation"

BETTER_THAN_CHAMPION = [
    {"metric": "accuracy_score", "threshold": 0.8, "min_absolute_change": 0.05},
    {"metric": "roc_auc", "min_relative_change": 0.01},
    {"metric": "log_loss", "threshold": 0.6},
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def registry(workspace: Path) -> ModelRegistry:
    tracking = Tracking(tracking_uri_for(workspace))
    tracking.activate()
    return ModelRegistry(tracking)


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True).frame
    data.columns = [*STRONG, LABEL]
    data.insert(0, "id", np.arange(1, len(data) + 1))
    return data


@pytest.fixture(scope="module")
def catalog(workspace: Path, iris: pd.DataFrame) -> Catalog:
    lake = Catalog(workspace / "warehouse")
    lake.create_schema("main.iris")
    lake.create_table(VALIDATION, data=iris.iloc[::3].reset_index(drop=True))
    return lake


@pytest.fixture(scope="module")
def models(iris: pd.DataFrame) -> dict[str, Any]:
    train = iris.drop(index=iris.index[::3])
    return {
        "strong": LogisticRegression(max_iter=500).fit(train[STRONG], train[LABEL]),
        "weak": LogisticRegression(max_iter=500).fit(train[WEAK], train[LABEL]),
    }


def register(registry: ModelRegistry, name: str, model: Any) -> int:
    logged = log_model(
        model,
        flavor=mlflow.sklearn,
        name="model",
        registered_model_name=name,
        pip_requirements=["scikit-learn"],  # skips MLflow's requirement inference
    )
    assert logged.registered_model_version is not None
    return logged.registered_model_version


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return f"main.ml.{request.node.name[5:40].replace('[', '_').rstrip(']')}"


def champion_then_candidate(
    registry: ModelRegistry, name: str, champion: Any, candidate: Any
) -> int:
    registry.set_alias(name, "champion", register(registry, name, champion))
    return register(registry, name, candidate)


def expected_metrics(model: Any, rows: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    y, pred, proba = rows[LABEL], model.predict(rows[columns]), model.predict_proba(rows[columns])
    return {
        "accuracy_score": skm.accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, proba),
    }


def runs_of(registry: ModelRegistry, name: str) -> list[Any]:
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`lakestack.evaluation.model_name` = '{name}'",
        output_format="list",
    )


@pytest.fixture
def in_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A task context, as the orchestrator writes it; returns the task's output folder."""
    out = tmp_path / "attempt" / "out"
    TaskContext(
        run_id=1,
        job_id="deployment",
        job_name="deployment",
        task_key="evaluate",
        attempt=1,
        target="dev",
        bundle_root=str(tmp_path),
        workspace_root=str(tmp_path / ".lakestack"),
        output_dir=str(out),
    ).write(tmp_path / "attempt" / "context.json")
    monkeypatch.setenv(CONTEXT_ENV, str(tmp_path / "attempt" / "context.json"))
    return out


def test_a_better_challenger_passes_and_gets_the_alias(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str, in_job: Path
) -> None:
    version = champion_then_candidate(registry, name, models["weak"], models["strong"])
    result = evaluate_version(
        name,
        version,
        data=VALIDATION,
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        registry=registry,
        catalog=catalog,
    )
    assert result.passed and result.challenger_set, result.summary()
    assert registry.alias_version(name, "challenger") == version
    assert registry.alias_version(name, "champion") == 1
    assert result.baseline_version == 1 and result.rows == 50
    rows = catalog.table(VALIDATION).to_pandas()
    for key, value in expected_metrics(models["strong"], rows, STRONG).items():
        assert result.metrics[key] == pytest.approx(value), key
    for key, value in expected_metrics(models["weak"], rows, WEAK).items():
        assert result.baseline_metrics[key] == pytest.approx(value), key
    assert [v.passed for v in result.verdicts] == [True, True, True]
    assert result.verdicts[0].rule == ">= 0.8; >= champion + 0.05"

    run = mlflow.get_run(result.evaluation_run_id)
    training = mlflow.get_run(registry.get_version(name, version).run_id)
    assert run.info.experiment_id == training.info.experiment_id
    assert run.info.status == "FINISHED"
    assert run.data.metrics["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])
    assert run.data.metrics["baseline_roc_auc"] == pytest.approx(result.baseline_metrics["roc_auc"])
    assert run.data.params["model_version"] == str(version)
    assert run.data.params["validation_table"] == VALIDATION
    assert run.data.params["baseline_version"] == "1"
    assert run.data.tags["lakestack.evaluation.model_name"] == name
    assert run.data.tags["lakestack.evaluation.passed"] == "true"
    thresholds = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evaluation/thresholds.json"
            )
        ).read_text()
    )
    assert thresholds["columns"] == ["metric", "value", "baseline", "rule", "passed", "reason"]
    assert [row[0] for row in thresholds["data"]] == ["accuracy_score", "roc_auc", "log_loss"]

    tags = registry.get_version(name, version).tags
    assert tags[EVALUATION_RUN_TAG] == result.evaluation_run_id
    assert tags[EVALUATION_PASSED_TAG] == "true"
    values = json.loads((in_job / VALUES_FILE).read_text())
    assert values["passed"] is True and values["challenger_set"] is True
    assert values["evaluation_run_id"] == result.evaluation_run_id
    assert values["metrics"]["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])


def test_a_worse_challenger_fails_and_gets_no_alias(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str, in_job: Path
) -> None:
    version = champion_then_candidate(registry, name, models["strong"], models["weak"])
    result = evaluate_version(
        name,
        version,
        data=VALIDATION,
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        registry=registry,
        catalog=catalog,
    )
    assert not result.passed and not result.challenger_set
    assert registry.alias_version(name, "challenger") is None
    assert [v.metric for v in result.failed] == ["accuracy_score", "roc_auc", "log_loss"]
    with pytest.raises(TaskError) as err:
        result.raise_if_failed()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{name} version 2 failed evaluation against champion version 1: accuracy_score: "
    )
    assert "; roc_auc: relative change " in message and "; log_loss: " in message
    assert mlflow.get_run(result.evaluation_run_id).data.tags["lakestack.evaluation.passed"] == (
        "false"
    )
    values = json.loads((in_job / VALUES_FILE).read_text())
    assert values["passed"] is False and values["challenger_set"] is False


def test_dry_run_never_fails_and_never_sets_the_alias(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str
) -> None:
    version = champion_then_candidate(registry, name, models["strong"], models["weak"])
    result = evaluate_version(
        name,
        version,
        data=VALIDATION,
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        run_mode="dry_run",
        registry=registry,
        catalog=catalog,
    )
    assert not result.passed and not result.challenger_set
    result.raise_if_failed()  # dry_run: the verdict is reported, the task does not fail
    assert result.evaluation_run_id is not None
    assert "dry_run: the challenger alias is never set" in result.notes

    passing = evaluate_version(
        name,
        1,
        data=VALIDATION,
        label=LABEL,
        run_mode="dry_run",
        registry=registry,
        catalog=catalog,
    )
    assert passing.passed and not passing.challenger_set
    assert registry.alias_version(name, "challenger") is None


def test_disabled_skips_everything(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str
) -> None:
    version = champion_then_candidate(registry, name, models["strong"], models["weak"])
    result = evaluate_version(
        name,
        version,
        data="main.iris.no_such_table",
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        run_mode="disabled",
        registry=registry,
        catalog=catalog,
    )
    assert result.skipped and result.passed and result.evaluation_run_id is None
    assert runs_of(registry, name) == []
    assert registry.alias_version(name, "challenger") is None


def test_without_a_champion_only_absolute_thresholds_count(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str
) -> None:
    version = register(registry, name, models["strong"])
    result = evaluate_version(
        name,
        version,
        data=VALIDATION,
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        registry=registry,
        catalog=catalog,
    )
    assert result.passed and result.challenger_set
    assert result.baseline_version is None and result.baseline_metrics == {}
    assert f"{name} has no 'champion' yet: judged on absolute thresholds only" in result.notes
    assert result.verdicts[1].reason.endswith("no champion to compare with: change rules skipped")
    assert registry.alias_version(name, "challenger") == version
    assert "baseline_accuracy_score" not in mlflow.get_run(result.evaluation_run_id).data.metrics


def test_a_sql_query_and_custom_metrics_from_a_file(
    registry: ModelRegistry,
    catalog: Catalog,
    models: dict[str, Any],
    name: str,
    tmp_path: Path,
) -> None:
    version = champion_then_candidate(registry, name, models["weak"], models["strong"])
    (tmp_path / "validation.py").write_text(
        "import numpy as np\n\n"
        "def errors(y_true, y_pred, y_proba):\n"
        "    return float(np.sum(y_true != y_pred))\n"
    )
    result = evaluate_version(
        name,
        version,
        data=f"SELECT * FROM {VALIDATION} WHERE species > 0",
        label=LABEL,
        thresholds=[{"metric": "errors", "min_absolute_change": 1, "greater_is_better": False}],
        custom_metrics=f"{tmp_path}/validation.py:errors",
        registry=registry,
        catalog=catalog,
    )
    rows = catalog.table(VALIDATION).to_pandas().query("species > 0")
    assert result.rows == len(rows)
    assert result.metrics["errors"] == float(
        np.sum(rows[LABEL] != models["strong"].predict(rows[STRONG]))
    )
    assert result.baseline_metrics["errors"] > result.metrics["errors"]
    assert result.passed
    run = mlflow.get_run(result.evaluation_run_id)
    assert run.data.params["validation_query"] == f"SELECT * FROM {VALIDATION} WHERE species > 0"


def test_bad_input_changes_nothing(
    registry: ModelRegistry, catalog: Catalog, models: dict[str, Any], name: str
) -> None:
    version = champion_then_candidate(registry, name, models["weak"], models["strong"])
    with pytest.raises(EvaluationError) as err:
        evaluate_version(
            name, version, data=VALIDATION, label="label", registry=registry, catalog=catalog
        )
    assert str(err.value) == (
        f"validation table {VALIDATION} has no label column 'label' (columns: id, sepal_length, "
        "sepal_width, petal_length, petal_width, species); pass the label column's name as label"
    )
    with pytest.raises(EvaluationError, match="threshold on unknown metric 'auc' for a classifier"):
        evaluate_version(
            name,
            version,
            data=VALIDATION,
            label=LABEL,
            thresholds=[{"metric": "auc", "threshold": 0.5}],
            registry=registry,
            catalog=catalog,
        )
    assert runs_of(registry, name) == []
    assert registry.alias_version(name, "challenger") is None
    assert EVALUATION_RUN_TAG not in registry.get_version(name, version).tags


def test_the_task_entry_point(
    registry: ModelRegistry,
    catalog: Catalog,
    models: dict[str, Any],
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = champion_then_candidate(registry, name, models["strong"], models["weak"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking.tracking_uri)
    monkeypatch.setenv("LAKESTACK_WAREHOUSE", catalog.root)
    (tmp_path / "thresholds.yml").write_text(
        "- metric: accuracy_score\n  min_absolute_change: 0.01\n"
    )
    argv = [
        f"--model_name={name}",
        f"--model_version={version}",
        f"--validation_table={VALIDATION}",
        f"--label={LABEL}",
        f"--thresholds={tmp_path / 'thresholds.yml'}",
        f"--experiment=/evaluations/{name}",
    ]
    with pytest.raises(TaskError, match=rf"^{name} version 2 failed evaluation .*accuracy_score: "):
        main(argv)
    assert "FAIL accuracy_score >= champion + 0.01" in capsys.readouterr().out
    assert main([*argv, "--run_mode=dry_run"]) == 0
    runs = runs_of(registry, name)
    assert len(runs) == 2
    experiment = mlflow.get_experiment_by_name(f"/evaluations/{name}")
    assert {r.info.experiment_id for r in runs} == {experiment.experiment_id}
    root = artifact_root_for(registry.tracking.tracking_uri)
    assert root is not None and experiment.artifact_location.startswith(Path(root).as_uri())


def test_a_feature_store_model_is_compared_with_its_champion(
    registry: ModelRegistry, catalog: Catalog, iris: pd.DataFrame, name: str
) -> None:
    from lakestack.features import FeatureEngineeringClient, FeatureLookup

    fe = FeatureEngineeringClient(catalog, tracking_uri=registry.tracking.tracking_uri)
    features = f"main.iris.features_{name.rsplit('.', 1)[1][:20]}"
    fe.create_table(features, primary_keys=["id"], df=iris[["id", *STRONG]])
    labels = iris[["id", LABEL]]
    train, held_out = labels.drop(index=labels.index[::3]), labels.iloc[::3]
    validation = f"main.iris.fs_validation_{name.rsplit('.', 1)[1][:20]}"
    catalog.create_table(validation, data=held_out.reset_index(drop=True))

    def fit(columns: list[str]) -> tuple[Any, int]:
        lookup = FeatureLookup(features, "id", feature_names=columns)
        training = fe.create_training_set(train, [lookup], label=LABEL, exclude_columns="id")
        frame = training.load_df()
        model = LogisticRegression(max_iter=500).fit(frame[columns], frame[LABEL])
        logged = fe.log_model(
            model,
            artifact_path="model",
            flavor=mlflow.sklearn,
            training_set=training,
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )
        assert logged.registered_model_version is not None
        return model, logged.registered_model_version

    weak, champion = fit(WEAK)
    registry.set_alias(name, "champion", champion)
    strong, candidate = fit(STRONG)
    result = evaluate_version(
        name,
        candidate,
        data=validation,  # keys and labels only: the features are looked up
        label=LABEL,
        thresholds=BETTER_THAN_CHAMPION,
        registry=registry,
        catalog=catalog,
    )
    assert result.passed and result.challenger_set, result.summary()
    assert result.baseline_version == champion
    rows = held_out.merge(iris[["id", *STRONG]], on="id")
    for key, value in expected_metrics(strong, rows, STRONG).items():
        assert result.metrics[key] == pytest.approx(value), key
    for key, value in expected_metrics(weak, rows, WEAK).items():
        assert result.baseline_metrics[key] == pytest.approx(value), key
    assert result.metrics["roc_auc"] > result.baseline_metrics["roc_auc"]


def test_a_regressor_against_its_champion(
    registry: ModelRegistry, catalog: Catalog, iris: pd.DataFrame, name: str
) -> None:
    from sklearn.linear_model import LinearRegression

    target, inputs = "petal_width", ["sepal_length", "sepal_width", "petal_length"]
    train = iris.drop(index=iris.index[::3])
    rough = LinearRegression().fit(train[["sepal_width"]], train[target])
    fine = LinearRegression().fit(train[inputs], train[target])
    version = champion_then_candidate(registry, name, rough, fine)
    result = evaluate_version(
        name,
        version,
        data=f"SELECT sepal_length, sepal_width, petal_length, petal_width FROM {VALIDATION}",
        label=target,
        model_type="regressor",
        thresholds={
            "root_mean_squared_error": {"min_relative_change": 0.5},
            "max_error": {"threshold": 1.0, "higher_is_better": False},
        },
        registry=registry,
        catalog=catalog,
    )
    assert result.passed and result.challenger_set, result.summary()
    rows = catalog.table(VALIDATION).to_pandas()
    assert result.metrics["root_mean_squared_error"] == pytest.approx(
        skm.root_mean_squared_error(rows[target], fine.predict(rows[inputs]))
    )
    assert result.baseline_metrics["r2_score"] == pytest.approx(
        skm.r2_score(rows[target], rough.predict(rows[["sepal_width"]]))
    )
    assert [v.rule for v in result.verdicts] == [
        "<= champion - 0.5 x |champion|",
        "<= 1",
    ]
