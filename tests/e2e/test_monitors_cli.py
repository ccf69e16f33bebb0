"""``lakestack monitors`` on a bundle: list, refresh (incremental, then up to date), the refresh
task in a job, and bad monitors: one line saying what is wrong, nothing written."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from lakestack.lake import Catalog
from tests.e2e.conftest import lakestack

pytestmark = pytest.mark.e2e

BUNDLE = """
bundle: {name: monitored}
resources:
  schemas:
    ml: {name: ml, catalog_name: main}
  quality_monitors:
    churn:
      table_name: main.ml.preds
      output_schema_name: main.ml
      slicing_exprs: [plan]
      inference_log:
        problem_type: PROBLEM_TYPE_CLASSIFICATION
        prediction_col: prediction
        label_col: LABEL_COL
        timestamp_col: timestamp
        model_id_col: model_id
        granularities: [GRANULARITY]
  jobs:
    refresh:
      tasks:
        - task_key: refresh
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_refresh
            named_parameters: {monitor: churn}
"""


def project(root: Path, *, label: str = "label", granularity: str = "1 day") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = BUNDLE.replace("LABEL_COL", label).replace("GRANULARITY", f'"{granularity}"')
    (root / "lakestack.yml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def scored(day: int, n: int = 40) -> pa.Table:
    start = datetime(2024, 5, 1, tzinfo=timezone.utc) + timedelta(days=day)
    return pa.table(
        {
            "amount": [float(i % 7) for i in range(n)],
            "plan": ["basic" if i % 3 else "pro" for i in range(n)],
            "prediction": [float(i % 2) for i in range(n)],
            "label": [(i // 2) % 2 for i in range(n)],
            "model_id": ["1"] * n,
            "timestamp": pa.array(
                [start + timedelta(minutes=10 * i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
        }
    )


def warehouse(root: Path) -> Catalog:
    catalog = Catalog(root / ".lakestack" / "warehouse")
    catalog.create_schema("main.ml")
    return catalog


def test_list_refresh_and_refresh_task(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    catalog = warehouse(root)
    table = catalog.create_table("main.ml.preds", scored(0))
    table.append(scored(1))

    listed = lakestack("monitors", "list", "-o", "json", cwd=root)
    assert listed.code == 0, listed.err
    assert listed.json() == [
        {
            "monitor": "churn",
            "table_name": "main.ml.preds",
            "profile_type": "inference_log",
            "granularities": ["1 day"],
            "profile_table": "main.ml.preds_profile_metrics",
            "drift_table": "main.ml.preds_drift_metrics",
            "refreshed": False,
            "schedule": None,
        }
    ]

    first = lakestack("monitors", "refresh", "churn", "-o", "json", cwd=root)
    assert first.code == 0, first.err
    assert first.json()["windows_refreshed"] == 2 and first.json()["full"] is True
    again = lakestack("monitors", "refresh", "main.ml.preds", cwd=root)
    assert again.code == 0, again.err
    assert "up to date: main.ml.preds is at version 2" in again.out

    table.append(scored(2))
    run = lakestack("bundle", "run", "refresh", "-o", "json", cwd=root)
    assert run.code == 0, run.err + run.out
    assert run.json()["state"] == "SUCCESS"
    counts = catalog.sql(
        """SELECT count(*) AS n FROM main.ml.preds_profile_metrics
           WHERE column_name = ':table' AND slice_key IS NULL AND model_id = '*'"""
    ).to_pylist()
    assert counts == [{"n": 3}]
    drift = catalog.sql(
        """SELECT count(*) AS n FROM main.ml.preds_drift_metrics
           WHERE drift_type = 'CONSECUTIVE' AND column_name = 'amount' AND slice_key IS NULL
             AND model_id = '*'"""
    ).to_pylist()
    assert drift == [{"n": 2}]


def test_a_missing_column_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path / "p", label="churned")
    catalog = warehouse(root)
    catalog.create_table("main.ml.preds", scored(0))
    result = lakestack("monitors", "refresh", "churn", cwd=root)
    assert result.code == 1
    assert result.err.strip().splitlines()[-1] == (
        "Error: quality monitor 'churn': label_col 'churned' is not a column of main.ml.preds "
        "(columns: amount, plan, prediction, label, model_id, timestamp); fix the monitor or "
        "the table"
    )
    assert not catalog.table_exists("main.ml.preds_profile_metrics")
    assert not catalog.table_exists("main.ml.preds_drift_metrics")


def test_unknown_monitor_and_missing_table(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    unknown = lakestack("monitors", "refresh", "nope", cwd=root)
    assert unknown.code == 1
    assert "Error: quality monitor 'nope' is not in the bundle (monitors: churn)" in unknown.err
    missing = lakestack("monitors", "refresh", "churn", cwd=root)
    assert missing.code == 1
    assert (
        "Error: quality monitor 'churn': table_name: table main.ml.preds does not exist"
        in missing.err
    )


def test_validate_refuses_a_granularity_that_does_not_parse(tmp_path: Path) -> None:
    root = project(tmp_path / "p", granularity="1 fortnight")
    result = lakestack("bundle", "validate", cwd=root)
    assert result.code == 1
    assert result.err.strip().splitlines()[-1] == (
        "Error: quality monitor 'churn': granularity '1 fortnight' does not parse; use one of "
        "'5 minutes', '30 minutes', '1 hour', '1 day', '1 week', '2 weeks', '3 weeks', "
        "'4 weeks', '1 month', '1 year'"
    )
    assert not (root / ".lakestack" / "warehouse" / "main" / "ml").exists()
