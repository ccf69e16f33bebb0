"""The violation check over a real profile metrics table, its rails on a real MLflow registry,
and MLOps Stacks' retraining job (check -> condition_task -> run_job_task) run by the
orchestrator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from lakestack.errors import MonitorError
from lakestack.lake import Catalog
from lakestack.monitoring.check import check_metric
from lakestack.registry import ModelRegistry, Tracking, tracking_uri_for
from tests.integration.jobs.conftest import BundleDir, states

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TABLE = "main.s.preds"
PROFILE = "main.s.preds_profile_metrics"
MODEL = "main.s.churn"
START = datetime(2026, 3, 1)
F1 = pa.struct(
    [
        pa.field("one_vs_all", pa.map_(pa.string(), pa.float64())),
        pa.field("macro", pa.float64()),
        pa.field("weighted", pa.float64()),
    ]
)
WINDOW = pa.struct([pa.field("start", pa.timestamp("us")), pa.field("end", pa.timestamp("us"))])


def profile_rows(f1_macro: list[float | None]) -> pa.Table:
    """Daily ``:table`` rows of model id ``*`` with these F1 scores, plus rows every filter of
    the check must leave out (another model, a slice, the baseline, a column, a granularity)."""
    rows: list[dict[str, Any]] = []

    def row(day: int, value: float | None, **changes: Any) -> dict[str, Any]:
        start = START + timedelta(days=day)
        f1 = (
            None
            if value is None
            else {"one_vs_all": [("0", value)], "macro": value, "weighted": value}
        )
        return {
            "window": {"start": start, "end": start + timedelta(days=1)},
            "granularity": "1 day",
            "model_id": "*",
            "log_type": "INPUT",
            "slice_key": None,
            "slice_value": None,
            "column_name": ":table",
            "count": 100,
            "f1_score": f1,
            "root_mean_squared_error": None,
            **changes,
        }

    for day, value in enumerate(f1_macro):
        rows.append(row(day, value))
        rows.append(row(day, 0.99, model_id="3"))
        rows.append(row(day, 0.01, slice_key="contract", slice_value="monthly"))
        rows.append(row(day, 0.01, log_type="BASELINE"))
        rows.append(row(day, None, column_name="monthly_charges"))
    rows.append(row(0, 0.01, granularity="1 week"))
    schema = pa.schema(
        [
            pa.field("window", WINDOW),
            pa.field("granularity", pa.string()),
            pa.field("model_id", pa.string()),
            pa.field("log_type", pa.string()),
            pa.field("slice_key", pa.string()),
            pa.field("slice_value", pa.string()),
            pa.field("column_name", pa.string()),
            pa.field("count", pa.int64()),
            pa.field("f1_score", F1),
            pa.field("root_mean_squared_error", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def write_tables(catalog: Catalog, f1_macro: list[float | None]) -> None:
    catalog.create_schema("main.s", exist_ok=True)
    catalog.drop_table(PROFILE, missing_ok=True)
    catalog.create_table(PROFILE, data=profile_rows(f1_macro))
    stamps = [START + timedelta(days=d) for d in range(len(f1_macro))]
    catalog.create_table(
        TABLE,
        data=pa.table(
            {
                "prediction": pa.array([1] * len(stamps), pa.int64()),
                "churn": pa.array([1] * len(stamps), pa.int64()),
                "timestamp": pa.array(stamps, pa.timestamp("us")),
            }
        ),
        exist_ok=True,
    )


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    monkeypatch.chdir(tmp_path)  # no bundle here, unless a test writes one
    return Catalog(tmp_path / "warehouse")


def test_the_rule_reads_the_unsliced_table_rows_of_all_models(catalog: Catalog) -> None:
    write_tables(catalog, [0.9, 0.9, 0.7, 0.9, 0.6, 0.65])
    result = check_metric(
        TABLE, "f1_score.macro", 0.8, greater_is_better=True, granularity="1 day", catalog=catalog
    )
    assert result.is_metric_violated
    assert (result.profile_table, result.granularity) == (PROFILE, "1 day")
    assert result.values == [
        (START + timedelta(days=d), v)
        for d, v in [(5, 0.65), (4, 0.6), (3, 0.9), (2, 0.7), (1, 0.9)]
    ]
    assert result.task_values() == {
        "is_metric_violated": "true",
        "violated_windows": 3,
        "retrain_blocked": "",
        "reason": "violated: 3 of the latest 5 windows below 0.8 (need 2); the latest is 0.65",
    }
    one_model = check_metric(
        TABLE,
        "f1_score.macro",
        0.8,
        greater_is_better=True,
        granularity="1 day",
        model_id="3",
        catalog=catalog,
    )
    assert not one_model.is_metric_violated and one_model.verdict.violated_windows == 0
    weekly = check_metric(
        TABLE,
        "f1_score.weighted",
        0.8,
        greater_is_better=True,
        granularity="1 week",
        catalog=catalog,
    )
    assert [v for _, v in weekly.values] == [0.01] and not weekly.is_metric_violated


def test_an_unknown_metric_names_the_valid_ones(catalog: Catalog) -> None:
    write_tables(catalog, [0.9])
    with pytest.raises(MonitorError) as err:
        check_metric(TABLE, "f1_score.micro", 0.8, catalog=catalog)
    assert str(err.value) == (
        f"metric 'f1_score.micro' is not a numeric column of {PROFILE}; metrics there: "
        "count, f1_score.macro, f1_score.weighted, root_mean_squared_error"
    )
    with pytest.raises(MonitorError, match=r"^metric 'slice_value' is not a numeric column"):
        check_metric(TABLE, "slice_value", 0.8, catalog=catalog)
    with pytest.raises(
        MonitorError, match="has no '1 hour' windows; its granularities: 1 day, 1 week"
    ):
        check_metric(TABLE, "count", 1, granularity="1 hour", catalog=catalog)
    with pytest.raises(
        MonitorError, match=r"has windows of several granularities \(1 day, 1 week\)"
    ):
        check_metric(TABLE, "count", 1, catalog=catalog)
    with pytest.raises(
        MonitorError, match=r"^profile table main\.s\.other_profile_metrics does not"
    ):
        check_metric("main.s.other", "count", 1, catalog=catalog)


def test_the_rails_block_a_retrain(catalog: Catalog, tmp_path: Path) -> None:
    write_tables(catalog, [0.9, 0.6, 0.6])
    registry = ModelRegistry(Tracking(tracking_uri_for(tmp_path / "mlflow")))
    registry.create_model(MODEL)
    registry.client.create_model_version(MODEL, source=str(tmp_path / "model"))
    trained = registry.versions(MODEL)[0].created_at

    def check(now: datetime) -> dict[str, Any]:
        result = check_metric(
            TABLE,
            "f1_score.macro",
            0.8,
            greater_is_better=True,
            granularity="1 day",
            model_name=MODEL,
            cooldown="1 day",
            label_col="churn",
            catalog=catalog,
            registry=registry,
            now=now,
        )
        assert result.verdict.violated
        return result.task_values()

    soon = check(trained + timedelta(hours=6))
    assert (soon["is_metric_violated"], soon["retrain_blocked"]) == ("false", "cooldown")
    assert "retraining blocked by the cooldown rail: " in soon["reason"]
    later = trained + timedelta(days=2)
    stale = check(later)
    assert (stale["is_metric_violated"], stale["retrain_blocked"]) == ("false", "no_new_labels")
    assert f"no row of {TABLE} with a churn label is newer than {MODEL}'s newest" in stale["reason"]

    after = trained.astimezone(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)
    new_rows = pa.table(
        {
            "prediction": pa.array([0, 1], pa.int64()),
            "churn": pa.array([None, 1], pa.int64()),
            "timestamp": pa.array([after, after], pa.timestamp("us")),
        }
    )
    source = catalog.table(TABLE)
    source.append(new_rows.slice(0, 1))
    assert check(later)["retrain_blocked"] == "no_new_labels"  # a new row, but unlabelled
    source.append(new_rows.slice(1))
    labelled = check(later)
    assert (labelled["is_metric_violated"], labelled["retrain_blocked"]) == ("true", "")

    with pytest.raises(MonitorError, match=r"^cooldown needs model_name"):
        check_metric(TABLE, "count", 1, cooldown="1 day", catalog=catalog)
    with pytest.raises(MonitorError, match=r"^model_name main\.s\.nope: "):
        check_metric(
            TABLE,
            "f1_score.macro",
            0.8,
            greater_is_better=True,
            granularity="1 day",
            model_name="main.s.nope",
            label_col="churn",
            catalog=catalog,
            registry=registry,
        )


# the Stacks retraining job ----------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[BundleDir]:
    directory = BundleDir(tmp_path / "project")
    directory.root.mkdir()
    directory.file("train.py", "from pathlib import Path\nPath('trained.txt').write_text('yes')\n")
    check = {
        "task_key": "monitored_metric_violation_check",
        "python_wheel_task": {
            "package_name": "lakestack",
            "entry_point": "monitor_check",
            "named_parameters": {
                "table_name_under_monitor": TABLE,
                "metric_to_monitor": "{{job.parameters.metric}}",
                "metric_violation_threshold": "0.8",
                "num_evaluation_windows": "5",
                "num_violation_windows": "2",
                "greater_is_better": "true",
                "granularity": "1 day",
            },
        },
    }
    condition = {
        "task_key": "is_metric_violated",
        "depends_on": [{"task_key": "monitored_metric_violation_check"}],
        "condition_task": {
            "op": "EQUAL_TO",
            "left": "{{tasks.monitored_metric_violation_check.values.is_metric_violated}}",
            "right": "true",
        },
    }
    trigger = {
        "task_key": "trigger_retraining",
        "depends_on": [{"task_key": "is_metric_violated", "outcome": "true"}],
        "run_job_task": {"job_id": "${resources.jobs.model_training_job.id}"},
    }
    directory.bundle(
        {
            "retraining_job": {
                "parameters": [{"name": "metric", "default": "f1_score.macro"}],
                "tasks": [check, condition, trigger],
            },
            "model_training_job": {
                "tasks": [{"task_key": "Train", "spark_python_task": {"python_file": "train.py"}}]
            },
        }
    )
    yield directory
    directory.close()


def test_the_stacks_retraining_job_runs_training_only_on_a_violation(project: BundleDir) -> None:
    ws = project.workspace()
    write_tables(ws.catalog, [0.9, 0.9, 0.9, 0.9, 0.95])
    calm = ws.run("retraining_job")
    assert calm.state == "SUCCESS", calm.state_message
    assert states(ws, calm.run_id) == {
        "monitored_metric_violation_check": "SUCCESS",
        "is_metric_violated": "SUCCESS",
        "trigger_retraining": "EXCLUDED",
    }
    values = ws.get_run(calm.run_id)["task_values"]["monitored_metric_violation_check"]
    assert values["is_metric_violated"] == "false" and values["violated_windows"] == 0
    assert not (project.root / "trained.txt").exists()

    write_tables(ws.catalog, [0.9, 0.9, 0.7, 0.9, 0.6])
    degraded = ws.run("retraining_job")
    assert degraded.state == "SUCCESS", degraded.state_message
    assert states(ws, degraded.run_id)["trigger_retraining"] == "SUCCESS"
    assert (project.root / "trained.txt").read_text() == "yes"
    [(_, log)] = ws.logs(degraded.run_id, "monitored_metric_violation_check")
    assert "is_metric_violated: true\n" in log

    unknown = ws.run("retraining_job", {"metric": "f1"})
    assert unknown.state == "FAILED"
    tasks = {t["task_key"]: t for t in ws.get_run(unknown.run_id)["tasks"]}
    assert tasks["monitored_metric_violation_check"]["error"].startswith(
        f"metric 'f1' is not a numeric column of {PROFILE}; metrics there: "
    )


def test_columns_and_the_profile_table_come_from_the_bundle_monitor(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = {
        "table_name": TABLE,
        "output_schema_name": "main.mon",
        "inference_log": {
            "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
            "prediction_col": "prediction",
            "timestamp_col": "timestamp",
            "model_id_col": "version",
            "label_col": "churn",
            "granularities": ["1 day"],
        },
    }
    bundle = {"bundle": {"name": "t"}, "resources": {"quality_monitors": {"preds": monitor}}}
    (tmp_path / "lakestack.yml").write_text(yaml.safe_dump(bundle), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    write_tables(catalog, [0.9, 0.6, 0.6])
    catalog.create_schema("main.mon")
    rows = profile_rows([0.9, 0.6, 0.6]).rename_columns(
        ["window", "granularity", "version", *profile_rows([]).column_names[3:]]
    )
    catalog.create_table("main.mon.preds_profile_metrics", data=rows)
    result = check_metric(
        TABLE, "f1_score.macro", 0.8, greater_is_better=True, granularity="1 day", catalog=catalog
    )
    assert result.profile_table == "main.mon.preds_profile_metrics"
    assert result.is_metric_violated
