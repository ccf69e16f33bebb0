"""The Telco churn project: its generator of IBM Telco customers (schema, determinism, the
price rise); ingestion, training, the deployment job and batch inference through the CLI; and
the scenario, in which the monitor sees the price rise, the check retrains once and the new
version is promoted."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import lakestack

EXAMPLE = Path(__file__).parents[2] / "examples" / "telco_churn"
ROWS = "--var=rows_per_day=1000"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("telco_data", EXAMPLE / "src" / "telco_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


telco = _generator()

IBM_VALUES = {
    "gender": {"Male", "Female"},
    "Partner": {"Yes", "No"},
    "Dependents": {"Yes", "No"},
    "PhoneService": {"Yes", "No"},
    "MultipleLines": {"Yes", "No", "No phone service"},
    "InternetService": {"DSL", "Fiber optic", "No"},
    **{
        service: {"Yes", "No", "No internet service"}
        for service in (
            "OnlineSecurity",
            "OnlineBackup",
            "DeviceProtection",
            "TechSupport",
            "StreamingTV",
            "StreamingMovies",
        )
    },
    "Contract": {"Month-to-month", "One year", "Two year"},
    "PaperlessBilling": {"Yes", "No"},
    "PaymentMethod": {
        "Electronic check",
        "Mailed check",
        "Bank transfer (automatic)",
        "Credit card (automatic)",
    },
    "Churn": {"Yes", "No"},
}


def test_a_day_of_customers_has_the_ibm_telco_schema_and_values() -> None:
    day = telco.generate_day(3, 3000)
    assert list(day.columns) == [*telco.COLUMNS, "timestamp"]
    assert telco.COLUMNS[1:-1] == telco.FEATURES
    assert sorted(telco.FEATURES) == sorted(telco.NUMERIC + telco.CATEGORICAL)
    for column, allowed in IBM_VALUES.items():
        assert set(day[column]) == allowed, column
    assert all(re.fullmatch(r"0003-[A-Z]{5}", c) for c in day["customerID"])
    assert day["customerID"].is_unique
    assert set(day["SeniorCitizen"]) == {0, 1}
    assert day["tenure"].between(0, 72).all() and day["tenure"].dtype == np.int64
    assert day["MonthlyCharges"].between(18.25, 125).all()
    # IBM leaves TotalCharges blank for customers in their first month, and only for them
    assert (day["TotalCharges"].isna() == (day["tenure"] == 0)).all()
    no_phone = day["PhoneService"] == "No"
    assert (no_phone == (day["MultipleLines"] == "No phone service")).all()
    no_internet = day["InternetService"] == "No"
    assert (no_internet == (day["TechSupport"] == "No internet service")).all()
    assert (day.loc[no_phone, "InternetService"] == "DSL").all()
    start = telco.day_start(3)
    assert str(start) == "2026-01-04 00:00:00+00:00"
    assert day["timestamp"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
    assert day["timestamp"].is_monotonic_increasing


def test_marginals_and_churn_drivers_are_like_the_ibm_data_set() -> None:
    customers = telco.generate_days(0, 5, 2000)
    churned = customers["Churn"] == "Yes"
    assert 0.22 < churned.mean() < 0.30  # 26.5% in the IBM data
    assert 60 < customers["MonthlyCharges"].mean() < 70  # 64.8
    assert 28 < customers["tenure"].mean() < 36  # 32.4
    contract = customers["Contract"].value_counts(normalize=True)
    assert 0.48 < contract["Month-to-month"] < 0.60  # 55%
    assert 0.40 < (customers["InternetService"] == "Fiber optic").mean() < 0.48  # 44%
    by_contract = churned.groupby(customers["Contract"]).mean()
    assert by_contract["Month-to-month"] > 2 * by_contract["One year"] > 2 * by_contract["Two year"]
    new, loyal = customers["tenure"] <= 6, customers["tenure"] >= 60
    assert churned[new].mean() > 3 * churned[loyal].mean()
    fiber = customers["InternetService"] == "Fiber optic"
    assert churned[fiber].mean() > churned[~fiber].mean() + 0.1
    # customers are unique across days
    assert customers["customerID"].is_unique
    assert sorted(set(customers["customerID"].str[:4])) == ["0000", "0001", "0002", "0003", "0004"]


def test_generation_is_deterministic_by_seed() -> None:
    pd.testing.assert_frame_equal(telco.generate_day(7, 500), telco.generate_day(7, 500))
    other = telco.generate_day(7, 500, seed=43)
    assert not other["customerID"].equals(telco.generate_day(7, 500)["customerID"])
    pd.testing.assert_frame_equal(
        telco.generate_days(2, 3, 100, drift_from=3),
        pd.concat(
            [
                telco.generate_day(2, 100),
                telco.generate_day(3, 100, drifted=True),
                telco.generate_day(4, 100, drifted=True),
            ],
            ignore_index=True,
        ),
    )
    held = telco.held_out(telco.generate_days(0, 4, 2000)["customerID"])
    assert 0.17 < held.mean() < 0.23
    assert (held == telco.held_out(telco.generate_days(0, 4, 2000)["customerID"])).all()


def test_the_price_rise_shifts_monthly_charges_up_and_raises_churn() -> None:
    before = telco.generate_days(10, 3, 2000)
    after = telco.generate_days(10, 3, 2000, drift_from=10)
    # the same customers: only their charges and their churn change
    unchanged = [c for c in telco.COLUMNS if c not in ("MonthlyCharges", "TotalCharges", "Churn")]
    pd.testing.assert_frame_equal(before[unchanged], after[unchanged])
    ratio = after["MonthlyCharges"] / before["MonthlyCharges"]
    two_year = before["Contract"] == "Two year"
    assert ratio[two_year].between(0.999, 1.001).all()  # a two-year contract keeps its price
    assert ratio[~two_year].between(1.09, 1.41).all()
    assert ratio[~two_year & (before["tenure"] >= 60)].mean() > 1.3  # old plans rise most
    assert after["MonthlyCharges"].mean() > 1.08 * before["MonthlyCharges"].mean()
    churn_before = (before["Churn"] == "Yes").mean()
    churn_after = (after["Churn"] == "Yes").mean()
    assert churn_after > churn_before + 0.1
    loyal = ~two_year & (before["tenure"] >= 48)
    assert (after["Churn"] == "Yes")[loyal].mean() > 3 * (before["Churn"] == "Yes")[loyal].mean()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rows must be between 1 and"):
        telco.generate_day(0, 0)
    with pytest.raises(ValueError, match="day must be between 0 and 9999, got -1"):
        telco.generate_day(-1, 10)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "telco_churn"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".lakestack", "__pycache__"))
    return target


def run_job(project: Path, job: str, *params: str) -> dict[str, Any]:
    args = [p for kv in params for p in ("--params", kv)]
    out = lakestack("bundle", "run", job, ROWS, *args, "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    run: dict[str, Any] = out.json()
    assert run["state"] == "SUCCESS", run
    return run


def sql(project: Path, query: str, rows: str | None = ROWS) -> list[dict[str, Any]]:
    out = lakestack("sql", query, *([rows] if rows else []), "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    return out.json()  # type: ignore[no-any-return]


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_ingest_train_deploy_score_then_a_price_rise_and_a_better_model(project: Path) -> None:
    ingested = run_job(project, "data_ingestion_job")  # days 0..3
    assert ingested["task_values"]["ingest_features"] == {"customers": 4000, "last_day": 3}
    tables = {
        t["name"]: t
        for t in lakestack("tables", "list", "dev.telco", ROWS, "-o", "json", cwd=project).json()
    }
    assert tables["dev.telco.churn_features"]["primary_keys"] == ["customerID"]
    assert tables["dev.telco.churn_labels"]["primary_keys"] == ["customerID"]
    labels = sql(
        project,
        "SELECT count(*) AS n, min(churn) AS lo, max(churn) AS hi FROM dev.telco.churn_labels",
    )
    assert labels == [{"n": 4000, "lo": 0, "hi": 1}]
    reference = sql(project, "SELECT count(*) AS n FROM dev.telco.churn_reference")[0]["n"]
    assert 500 < reference < 700  # one in five of the last three days

    trained = run_job(project, "model_training_job")
    assert trained["task_values"]["train_model"]["model_version"] == 1
    assert trained["task_values"]["await_deployment"]["deployed"] is True
    v1 = versions(project)[1]
    assert v1["aliases"] == ["champion"] and v1["approval"] == "Approved"
    read = {
        table: lakestack("tables", "show", table, ROWS, "-o", "json", cwd=project).json()["version"]
        for table in ("dev.telco.churn_features", "dev.telco.churn_labels")
    }
    assert v1["lineage"]["input_tables"] == read  # the labels read and the features looked up

    scored = run_job(project, "batch_inference_job")
    assert scored["task_values"]["batch_inference"]["rows"] == 4000
    table = lakestack(
        "tables", "show", "dev.telco.churn_inferences", ROWS, "-o", "json", cwd=project
    )
    columns = {c["name"]: c["type"] for c in table.json()["columns"]}
    assert list(columns) == [
        "customerID", *telco.FEATURES, "prediction", "probability", "model_id", "timestamp"
    ]  # fmt: skip
    assert columns["prediction"] == "int64" and columns["probability"] == "map<string, double>"
    assert sql(
        project,
        "SELECT model_id, count(*) AS n, min(probability['1'] + probability['0']) AS p "
        "FROM dev.telco.churn_inferences GROUP BY ALL",
    ) == [{"model_id": "dev.telco.churn_model/1", "n": 4000, "p": pytest.approx(1.0)}]

    # the churn of the scored customers arrives later and is merged in by customerID
    run_job(project, "data_ingestion_job", "first_day=2", "days=2")
    merged = sql(
        project,
        "SELECT count(churn) AS labelled, count_if(churn IS NOT NULL AND customerID >= '0002')::BIGINT "
        "AS of_days_2_3, avg(churn) AS rate FROM dev.telco.churn_inferences",
    )
    assert merged == [
        {"labelled": 2000, "of_days_2_3": 2000, "rate": pytest.approx(0.25, abs=0.04)}
    ]

    # prices rise from day 6: a model trained on the new days beats the champion on them
    run_job(project, "data_ingestion_job", "first_day=6", "days=2")
    retrained = run_job(project, "model_training_job")
    assert retrained["task_values"]["train_model"]["last_day"] == 7
    assert retrained["task_values"]["await_deployment"] == {
        "champion_version": 2,
        "deployed": True,
        "deployment_state": "SUCCEEDED",
    }
    both = versions(project)
    assert both[2]["aliases"] == ["champion"] and both[1]["aliases"] == []
    rescored = run_job(project, "batch_inference_job")
    assert rescored["task_values"]["batch_inference"]["model_id"] == "dev.telco.churn_model/2"
    assert sql(
        project,
        "SELECT model_id, count(*) AS n FROM dev.telco.churn_inferences GROUP BY ALL ORDER BY ALL",
    ) == [
        {"model_id": "dev.telco.churn_model/1", "n": 4000},
        {"model_id": "dev.telco.churn_model/2", "n": 2000},
    ]


def versions(project: Path, rows: str | None = ROWS) -> dict[int, dict[str, Any]]:
    args = [rows] if rows else []
    out = lakestack("models", "versions", "churn_model", *args, "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    return {v["version"]: v for v in out.json()}


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_the_scenario_detects_the_price_rise_retrains_once_and_promotes(project: Path) -> None:
    out = lakestack("bundle", "run", "churn_scenario", "-o", "json", cwd=project)
    assert out.code == 0, out.out + out.err
    run = out.json()
    assert run["state"] == "SUCCESS"
    assert run["task_values"]["plan"]["days"] == "[4, 5, 6, 7, 8, 9]"
    assert run["task_values"]["report"]["champion_version"] == 2
    assert run["task_values"]["report"]["versions"] == 2

    days = {
        r["day"]: r
        for r in sql(
            project,
            "SELECT date_diff('day', DATE '2026-01-01', \"window\".start)::INT AS day, "
            "log_loss, f1_score.macro AS f1, accuracy_score AS accuracy FROM "
            "dev.telco.churn_inferences_profile_metrics WHERE column_name = ':table' "
            "AND slice_key IS NULL AND log_type = 'INPUT' AND model_id = '*'",
            rows=None,
        )
    }
    assert sorted(days) == [4, 5, 6, 7, 8, 9]
    # the price rise from day 6 takes the first model past the threshold; the retrained one
    # (champion from day 8) is back under it
    past = [days[d]["log_loss"] > 0.55 for d in sorted(days)]
    assert past == [False, False, True, True, False, False]
    assert days[6]["f1"] < days[5]["f1"] - 0.1 and days[6]["accuracy"] < days[5]["accuracy"] - 0.1
    assert days[8]["f1"] > days[7]["f1"] + 0.1
    models = sql(
        project,
        "SELECT DISTINCT date_diff('day', DATE '2026-01-01', timestamp)::INT AS day, model_id "
        "FROM dev.telco.churn_inferences ORDER BY day",
        rows=None,
    )
    assert [m["model_id"][-1] for m in models] == ["1", "1", "1", "1", "2", "2"]
    drift = sql(
        project,
        "SELECT date_diff('day', DATE '2026-01-01', \"window\".start)::INT AS day, "
        "ks_test.statistic AS ks FROM dev.telco.churn_inferences_drift_metrics "
        "WHERE column_name = 'MonthlyCharges' AND drift_type = 'BASELINE' AND model_id = '*' "
        "AND slice_key IS NULL ORDER BY day",
        rows=None,
    )
    assert [d["ks"] > 0.1 for d in drift] == [False, False, True, True, True, True]

    # one retrain: the check of day 7 (2 of the last 3 days past 0.55, the latest too)
    runs = lakestack("runs", "list", "--limit", "100", "-o", "json", cwd=project).json()
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(runs, key=lambda r: r["run_id"]):
        by_job.setdefault(r["job_id"], []).append(r)
    assert len(by_job["model_training_job"]) == 2
    assert len(by_job["model_deployment_job"]) == 2
    triggered = []
    for check in by_job["retraining_job"]:
        detail = lakestack("runs", "get", str(check["run_id"]), "-o", "json", cwd=project).json()
        states = {t["task_key"]: t["state"] for t in detail["tasks"]}
        triggered.append(states["trigger_retraining"] == "SUCCESS")
        assert states["refresh_monitor"] == "SUCCESS"
    assert triggered == [False, False, False, True, False, False]
    v = versions(project, rows=None)
    assert v[2]["aliases"] == ["champion"] and v[2]["deployment_state"] == "SUCCEEDED"

    page = (project / "churn_monitor_report.html").read_text(encoding="utf-8")
    assert "churn_monitor" in page
    assert (
        "<td>2026-01-09 00:00 UTC</td><td>dev.telco.churn_model/2</td>"
        "<td>in service: first window with its rows</td>" in page
    )
    assert "Not shown: customerID (unique per row)." in page

    again = lakestack("bundle", "run", "churn_scenario", cwd=project)
    assert again.code == 1
    assert "the scenario starts from an empty target: run `lakestack bundle destroy" in again.out
