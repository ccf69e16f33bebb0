"""Monitor refresh on real Delta tables: the Databricks columns, quality against scikit-learn,
drift against ``monitoring.drift``, incremental refresh equal to a full one, late labels."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics

from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.errors import MonitorError
from lakestack.lake import Catalog
from lakestack.monitoring import column_drift
from lakestack.monitoring.monitor import MonitorConfig
from lakestack.monitoring.refresh import refresh_monitor

pytestmark = pytest.mark.integration

DAY0 = datetime(2024, 3, 4, tzinfo=timezone.utc)  # a Monday: the week window starts there
TABLE = "main.ml.inferences"
PROFILE = "main.mon.inferences_profile_metrics"
DRIFT = "main.mon.inferences_drift_metrics"


def rows(day: int, n: int, seed: int, *, first_id: int, shift: float = 0.0) -> pa.Table:
    """``n`` scored rows of one day: two models, some labels missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    label = (x + rng.normal(0, 0.8, n) > 0).astype(np.int64)
    proba = 1 / (1 + np.exp(-2 * x))
    seconds = rng.integers(0, 86_400, n)
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n), pa.int64()),
            "x": x,
            "n": pa.array(rng.integers(0, 5, n), pa.int64()),
            "cat": rng.choice(["a", "b", "c"], n),
            "timestamp": pa.array(
                [DAY0 + timedelta(days=day, seconds=int(s)) for s in seconds],
                pa.timestamp("us", tz="UTC"),
            ),
            "model_id": rng.choice(["1", "2"], n),
            "prediction": (x > 0).astype(np.float64),
            "label": pa.array(
                [None if m else int(v) for v, m in zip(label, rng.random(n) < 0.2, strict=True)],
                pa.int64(),
            ),
            "probability": pa.array(
                [[("0", 1 - p), ("1", p)] for p in proba], pa.map_(pa.string(), pa.float64())
            ),
        }
    )


def monitor(**changes: Any) -> MonitorConfig:
    spec: dict[str, Any] = {
        "table_name": TABLE,
        "output_schema_name": "main.mon",
        "baseline_table_name": "main.ml.baseline",
        "slicing_exprs": ["cat", "x > 0"],
        "custom_metrics": [
            {
                "type": "CUSTOM_METRIC_TYPE_AGGREGATE",
                "name": "squares",
                "input_columns": ["x", "n"],
                "definition": "avg({{input_column}} * {{input_column}})",
                "output_data_type": "double",
            },
            {
                "type": "CUSTOM_METRIC_TYPE_DERIVED",
                "name": "root_squares",
                "input_columns": ["x"],
                "definition": "sqrt(squares)",
                "output_data_type": "double",
            },
            {
                "type": "CUSTOM_METRIC_TYPE_DRIFT",
                "name": "squares_delta",
                "input_columns": ["x"],
                "definition": "{{current_df}}.squares - {{base_df}}.squares",
                "output_data_type": "double",
            },
        ],
        "inference_log": {
            "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
            "prediction_col": "prediction",
            "label_col": "label",
            "timestamp_col": "timestamp",
            "model_id_col": "model_id",
            "prediction_proba_col": "probability",
            "granularities": ["1 day", "1 week"],
        },
    }
    spec.update(changes)
    return MonitorConfig.from_spec("churn", QualityMonitorSpec.model_validate(spec))


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_schema("main.ml")
    table = catalog.create_table(TABLE, rows(0, 90, 1, first_id=0), primary_keys=["id"])
    for day in (1, 2):
        table.append(rows(day, 90, day + 1, first_id=1000 * day, shift=0.5 * day))
    catalog.create_table("main.ml.baseline", rows(-7, 150, 9, first_id=-1000))
    return catalog


def sql(catalog: Catalog, query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = catalog.sql(query).to_pylist()
    return found


def comparable(table: pa.Table) -> list[dict[str, Any]]:
    """Rows without the source version, floats rounded: equal whatever refresh wrote them."""

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 9)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = table.drop_columns(["logging_table_commit_version"]).to_pylist()
    return [clean(row) for row in data]


def test_refresh_writes_the_databricks_tables(catalog: Catalog) -> None:
    result = refresh_monitor(monitor(), catalog)

    assert result.full and result.windows_refreshed == 4  # three days, one week
    profile = catalog.table(PROFILE).read()
    for column in ("window", "granularity", "model_id", "log_type", "slice_key", "slice_value",
                   "column_name", "data_type", "logging_table_commit_version", "monitor_version",
                   "count", "avg", "quantiles", "frequent_items", "accuracy_score", "precision",
                   "confusion_matrix", "roc_auc", "log_loss", "squares", "root_squares"):  # fmt: skip
        assert column in profile.column_names
    tables = sql(
        catalog,
        f"""SELECT "window".start AS start, model_id, count FROM {PROFILE}
            WHERE column_name = ':table' AND slice_key IS NULL AND log_type = 'INPUT'
              AND granularity = '1 day' ORDER BY start, model_id""",
    )
    assert [r["count"] for r in tables if r["model_id"] == "*"] == [90, 90, 90]
    by_day: dict[Any, int] = {}
    for r in tables:
        if r["model_id"] != "*":
            by_day[r["start"]] = by_day.get(r["start"], 0) + r["count"]
    assert list(by_day.values()) == [90, 90, 90]
    slices = sql(
        catalog,
        f"""SELECT DISTINCT slice_key, slice_value FROM {PROFILE} WHERE slice_key IS NOT NULL
            ORDER BY ALL""",
    )
    assert slices == [{"slice_key": "cat", "slice_value": v} for v in ("a", "b", "c")] + [
        {"slice_key": "x > 0", "slice_value": v} for v in ("false", "true")
    ]
    baseline = sql(
        catalog,
        f"""SELECT count FROM {PROFILE} WHERE log_type = 'BASELINE' AND model_id = '*'
            AND column_name = ':table' AND slice_key IS NULL""",
    )
    assert [r["count"] for r in baseline] == [150, 150]  # one per granularity
    drift = sql(
        catalog,
        f"""SELECT drift_type, "window".start AS start, window_cmp FROM {DRIFT}
            WHERE granularity = '1 day' AND column_name = 'x' AND model_id = '*'
              AND slice_key IS NULL ORDER BY drift_type, start""",
    )
    assert [r["drift_type"] for r in drift] == ["BASELINE"] * 3 + ["CONSECUTIVE"] * 2
    assert all(r["window_cmp"] is None for r in drift[:3])
    assert drift[3]["window_cmp"]["start"] == DAY0  # day 1 against day 0; day 0 has none


def test_quality_metrics_match_sklearn(catalog: Catalog) -> None:
    refresh_monitor(monitor(), catalog)
    day = catalog.table(TABLE).read().to_pylist()
    labelled = [
        r for r in day if r["label"] is not None and r["timestamp"] < DAY0 + timedelta(days=1)
    ]
    truth = [str(r["label"]) for r in labelled]
    predicted = [str(int(r["prediction"])) for r in labelled]
    scores = [dict(r["probability"])["1"] for r in labelled]
    [row] = sql(
        catalog,
        f"""SELECT * FROM {PROFILE} WHERE column_name = ':table' AND slice_key IS NULL
            AND model_id = '*' AND log_type = 'INPUT' AND granularity = '1 day'
            AND "window".start = TIMESTAMPTZ '2024-03-04 00:00:00+00'""",
    )
    assert row["accuracy_score"] == pytest.approx(metrics.accuracy_score(truth, predicted))
    for name, func in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1_score", metrics.f1_score),
    ):
        assert row[name]["macro"] == pytest.approx(func(truth, predicted, average="macro"))
        assert row[name]["weighted"] == pytest.approx(func(truth, predicted, average="weighted"))
        per_class = func(truth, predicted, average=None, labels=["0", "1"])
        assert dict(row[name]["one_vs_all"]) == pytest.approx(
            dict(zip(["0", "1"], per_class, strict=True))
        )
    assert row["roc_auc"] == pytest.approx(metrics.roc_auc_score([t == "1" for t in truth], scores))
    assert row["log_loss"] == pytest.approx(
        metrics.log_loss(truth, [[1 - s, s] for s in scores], labels=["0", "1"])
    )
    matrix = {(c["prediction"], c["label"]): c["count"] for c in row["confusion_matrix"]}
    expected = metrics.confusion_matrix(truth, predicted, labels=["0", "1"])
    assert matrix == {
        (p, t): int(expected[i, j])
        for j, p in enumerate(["0", "1"])
        for i, t in enumerate(["0", "1"])
        if expected[i, j]
    }


def test_drift_columns_match_monitoring_drift(catalog: Catalog) -> None:
    refresh_monitor(monitor(), catalog)
    data = catalog.table(TABLE).read()
    day = [
        [r for r in data.to_pylist() if DAY0 + timedelta(days=d) <= r["timestamp"]
         < DAY0 + timedelta(days=d + 1)]
        for d in (0, 1)
    ]  # fmt: skip
    for column in ("x", "cat"):
        expected = column_drift(
            np.array([r[column] for r in day[0]], dtype=object),
            np.array([r[column] for r in day[1]], dtype=object),
            kind="numeric" if column == "x" else "categorical",
        ).metrics()
        [row] = sql(
            catalog,
            f"""SELECT * FROM {DRIFT} WHERE column_name = '{column}' AND slice_key IS NULL
                AND model_id = '*' AND drift_type = 'CONSECUTIVE' AND granularity = '1 day'
                AND "window".start = TIMESTAMPTZ '2024-03-05 00:00:00+00'""",
        )
        for name, value in expected.items():
            assert row[name] == pytest.approx(value), name
    [table_row] = sql(
        catalog,
        f"""SELECT count_delta, squares_delta FROM {DRIFT} WHERE column_name = ':table'
            AND slice_key IS NULL AND model_id = '*' AND drift_type = 'CONSECUTIVE'
            AND "window".start = TIMESTAMPTZ '2024-03-05 00:00:00+00'""",
    )
    assert table_row == {"count_delta": 0.0, "squares_delta": None}


def test_custom_metrics(catalog: Catalog) -> None:
    refresh_monitor(monitor(), catalog)
    first_day = [
        r for r in catalog.table(TABLE).read().to_pylist()
        if r["timestamp"] < DAY0 + timedelta(days=1)
    ]  # fmt: skip
    xs = np.array([r["x"] for r in first_day])
    [row] = sql(
        catalog,
        f"""SELECT squares, root_squares FROM {PROFILE} WHERE column_name = 'x'
            AND slice_key IS NULL AND model_id = '*' AND log_type = 'INPUT'
            AND granularity = '1 day' AND "window".start = TIMESTAMPTZ '2024-03-04 00:00:00+00'""",
    )
    assert row["squares"] == pytest.approx(float(np.mean(xs * xs)))
    assert row["root_squares"] == pytest.approx(math.sqrt(row["squares"]))
    [other] = sql(
        catalog,
        f"""SELECT root_squares FROM {PROFILE} WHERE column_name = 'n' AND slice_key IS NULL
            AND model_id = '*' AND log_type = 'INPUT' AND granularity = '1 day'
            AND "window".start = TIMESTAMPTZ '2024-03-04 00:00:00+00'""",
    )
    assert other["root_squares"] is None  # not an input column of the derived metric
    drifts = sql(
        catalog,
        f"""SELECT d.squares_delta, c.squares AS now, p.squares AS before
            FROM {DRIFT} d
            JOIN {PROFILE} c ON c."window" = d."window" AND c.column_name = d.column_name
              AND c.model_id = d.model_id AND c.slice_key IS NULL AND c.log_type = 'INPUT'
              AND c.granularity = d.granularity
            JOIN {PROFILE} p ON p."window" = d.window_cmp AND p.column_name = d.column_name
              AND p.model_id = d.model_id AND p.slice_key IS NULL AND p.log_type = 'INPUT'
              AND p.granularity = d.granularity
            WHERE d.column_name = 'x' AND d.slice_key IS NULL AND d.drift_type = 'CONSECUTIVE'""",
    )
    assert drifts
    for r in drifts:
        assert r["squares_delta"] == pytest.approx(r["now"] - r["before"])


def test_incremental_refresh_equals_full_refresh(catalog: Catalog) -> None:
    config = monitor()
    refresh_monitor(config, catalog)
    table = catalog.table(TABLE)
    table.append(rows(3, 90, 7, first_id=3000, shift=1.0))
    table.delete("id >= 2000 AND id < 2010")
    late = table.read(filter=[("id", "<", 30)])
    table.merge(late.set_column(late.schema.get_field_index("label"), "label", pa.array([1] * 30)))

    result = refresh_monitor(config, catalog)
    assert not result.full and result.reason == "incremental"
    assert result.windows_refreshed == 4  # days 0, 2 and 3, and the week
    incremental = [catalog.table(n).read() for n in (PROFILE, DRIFT)]
    assert refresh_monitor(config, catalog, full=True).full
    full = [catalog.table(n).read() for n in (PROFILE, DRIFT)]
    for after_incremental, after_full in zip(incremental, full, strict=True):
        assert comparable(after_incremental) == comparable(after_full)


def test_label_merge_changes_exactly_its_windows(catalog: Catalog) -> None:
    config = monitor()
    refresh_monitor(config, catalog)
    before = catalog.table(PROFILE).read()
    table = catalog.table(TABLE)
    day1 = table.read(filter=[("id", ">=", 1000), ("id", "<", 1090)])
    labels = pa.array([None if v is None else 1 - v for v in day1["label"].to_pylist()])
    table.merge(day1.set_column(day1.schema.get_field_index("label"), "label", labels))

    result = refresh_monitor(config, catalog)

    assert result.windows_refreshed == 2  # day 1 and its week
    after = catalog.table(PROFILE).read()
    day1_start = DAY0 + timedelta(days=1)

    def accuracy(table: pa.Table) -> dict[tuple[Any, ...], Any]:
        return {
            (r["granularity"], r["window"]["start"], r["model_id"], r["log_type"]): r[
                "accuracy_score"
            ]
            for r in table.to_pylist()
            if r["column_name"] == ":table" and r["slice_key"] is None
        }

    old, new = accuracy(before), accuracy(after)
    assert old.keys() == new.keys()
    changed = {k for k in old if old[k] != new[k]}
    assert {(k[0], k[1]) for k in changed} == {("1 day", day1_start), ("1 week", DAY0)}
    key = ("1 day", day1_start, "*", "INPUT")
    assert new[key] == pytest.approx(1 - old[key])
    untouched = [
        r for r in comparable(before)
        if (r["granularity"], r["window"]["start"]) not in {("1 day", day1_start), ("1 week", DAY0)}
    ]  # fmt: skip
    remaining = comparable(after)
    assert all(r in remaining for r in untouched)


def test_unchanged_table_is_up_to_date(catalog: Catalog) -> None:
    config = monitor()
    refresh_monitor(config, catalog)
    version = catalog.table(PROFILE).version
    result = refresh_monitor(config, catalog)
    assert result.windows_refreshed == 0 and result.reason.startswith("up to date")
    assert catalog.table(PROFILE).version == version


def test_regression_time_series_and_snapshot(catalog: Catalog) -> None:
    regression = monitor(
        baseline_table_name=None,
        slicing_exprs=[],
        custom_metrics=[],
        inference_log={
            "problem_type": "PROBLEM_TYPE_REGRESSION",
            "prediction_col": "x",
            "label_col": "n",
            "timestamp_col": "timestamp",
            "model_id_col": "model_id",
            "granularities": ["1 day"],
        },
    )
    refresh_monitor(regression, catalog)
    first = [
        r for r in catalog.table(TABLE).read().to_pylist()
        if r["timestamp"] < DAY0 + timedelta(days=1)
    ]  # fmt: skip
    y, p = [r["n"] for r in first], [r["x"] for r in first]
    [row] = sql(
        catalog,
        f"""SELECT * FROM {PROFILE} WHERE column_name = ':table' AND model_id = '*'
            AND "window".start = TIMESTAMPTZ '2024-03-04 00:00:00+00'""",
    )
    assert row["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y, p))
    assert row["root_mean_squared_error"] == pytest.approx(
        math.sqrt(metrics.mean_squared_error(y, p))
    )
    assert row["mean_absolute_error"] == pytest.approx(metrics.mean_absolute_error(y, p))
    assert row["mean_absolute_percentage_error"] == pytest.approx(
        metrics.mean_absolute_percentage_error(y, p)
    )
    assert row["r2_score"] == pytest.approx(metrics.r2_score(y, p))

    series = monitor(
        custom_metrics=[],
        inference_log=None,
        time_series={"timestamp_col": "timestamp", "granularities": ["1 day"]},
    )
    refresh_monitor(series, catalog, full=True)
    profile = catalog.table(PROFILE).read()
    assert "model_id" not in profile.column_names and "accuracy_score" not in profile.column_names
    assert (
        len(sql(catalog, f"SELECT DISTINCT \"window\" FROM {PROFILE} WHERE log_type = 'INPUT'"))
        == 3
    )

    snapshot = monitor(custom_metrics=[], inference_log=None, snapshot={})
    first_at = DAY0 + timedelta(days=10)
    refresh_monitor(snapshot, catalog, now=first_at)
    catalog.table(TABLE).append(rows(3, 50, 5, first_id=5000, shift=2.0))
    refresh_monitor(snapshot, catalog, now=first_at + timedelta(hours=1))
    windows = sql(
        catalog,
        f"""SELECT "window".start AS start, count FROM {PROFILE} WHERE column_name = ':table'
            AND log_type = 'INPUT' AND slice_key IS NULL ORDER BY start""",
    )
    assert [w["count"] for w in windows] == [270, 320]
    [consecutive] = sql(
        catalog,
        f"""SELECT window_cmp.start AS cmp, count_delta, ks_test FROM {DRIFT}
            WHERE drift_type = 'CONSECUTIVE' AND column_name = 'x' AND slice_key IS NULL""",
    )
    assert consecutive["cmp"] == first_at and consecutive["count_delta"] == 50
    assert consecutive["ks_test"]["statistic"] > 0


def test_bad_monitors_write_nothing(catalog: Catalog) -> None:
    missing = monitor(
        inference_log={
            "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
            "prediction_col": "prediction",
            "label_col": "churned",
            "timestamp_col": "timestamp",
            "model_id_col": "model_id",
            "granularities": ["1 day"],
        }
    )
    with pytest.raises(
        MonitorError, match=r"label_col 'churned' is not a column of main\.ml\.inferences"
    ):
        refresh_monitor(missing, catalog)
    with pytest.raises(MonitorError, match=r"slicing expression 'region' is not a column"):
        refresh_monitor(monitor(slicing_exprs=["region"]), catalog)
    bad_drift = monitor(
        custom_metrics=[
            {
                "type": "CUSTOM_METRIC_TYPE_DRIFT",
                "name": "nonsense",
                "input_columns": ["x"],
                "definition": "{{current_df}}.no_such_metric",
                "output_data_type": "double",
            }
        ]
    )
    with pytest.raises(MonitorError, match=r"custom metric\(s\) nonsense cannot be evaluated"):
        refresh_monitor(bad_drift, catalog)
    assert not catalog.table_exists(PROFILE) and not catalog.table_exists(DRIFT)
    with pytest.raises(MonitorError, match=r"granularity '2 days' is not supported"):
        monitor(
            inference_log={
                "problem_type": "PROBLEM_TYPE_REGRESSION",
                "prediction_col": "x",
                "timestamp_col": "timestamp",
                "model_id_col": "model_id",
                "granularities": ["2 days"],
            }
        )
