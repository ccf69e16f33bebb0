"""A monitor's spec resolved and checked: names, granularities, columns, custom metrics."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.errors import MonitorError
from lakestack.monitoring.custom import derived_metrics, drift_metrics
from lakestack.monitoring.monitor import MonitorConfig, check_monitor, find_monitor, metric_type

SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("model_id", pa.string()),
        ("prediction", pa.float64()),
        ("label", pa.int64()),
        ("x", pa.float64()),
        ("cat", pa.string()),
        ("probability", pa.map_(pa.string(), pa.float64())),
    ]
)


def spec(**changes: Any) -> QualityMonitorSpec:
    data: dict[str, Any] = {
        "table_name": "main.ml.preds",
        "output_schema_name": "main.mon",
        "inference_log": {
            "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
            "prediction_col": "prediction",
            "label_col": "label",
            "timestamp_col": "ts",
            "model_id_col": "model_id",
            "granularities": ["1 day", "1 week"],
        },
    }
    data.update(changes)
    return QualityMonitorSpec.model_validate(data)


def metric(kind: str, name: str = "m", **changes: Any) -> dict[str, Any]:
    return {
        "type": f"CUSTOM_METRIC_TYPE_{kind}",
        "name": name,
        "input_columns": ["x"],
        "definition": "avg({{input_column}})",
        "output_data_type": "double",
    } | changes


def test_names_of_the_output_tables() -> None:
    config = MonitorConfig.from_spec("churn", spec())
    assert config.profile_table == "main.mon.preds_profile_metrics"
    assert config.drift_table == "main.mon.preds_drift_metrics"
    assert [g.text for g in config.granularities] == ["1 day", "1 week"]
    assert config.problem_type == "classification" and config.profile_type == "inference_log"


def test_find_monitor_by_key_or_table() -> None:
    monitors = {"churn": spec()}
    assert find_monitor(monitors, "churn").key == "churn"
    assert find_monitor(monitors, "main.ml.preds").key == "churn"
    assert find_monitor(monitors, "preds").key == "churn"
    with pytest.raises(
        MonitorError, match=r"quality monitor 'nope' is not in the bundle \(monitors: churn\)"
    ):
        find_monitor(monitors, "nope")


def test_bind_profiles_columns_but_the_keys_and_nested_ones() -> None:
    bound = MonitorConfig.from_spec("churn", spec()).bind(SCHEMA)
    assert list(bound.columns) == ["prediction", "label", "x", "cat"]
    assert bound.drift_columns == ["prediction", "label", "x", "cat"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"slicing_exprs": ["region"]},
            r"slicing expression 'region' is not a column of main\.ml\.preds",
        ),
        (
            {"custom_metrics": [metric("AGGREGATE", input_columns=["y"])]},
            r"custom metric 'm' has input column 'y', which is not a column",
        ),
    ],
)
def test_bind_names_what_the_table_lacks(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MonitorError, match=message):
        MonitorConfig.from_spec("churn", spec(**changes)).bind(SCHEMA)


def test_bind_names_a_missing_named_column() -> None:
    log = spec().inference_log
    assert log is not None
    changed = spec(inference_log=log.model_dump() | {"prediction_proba_col": "proba"})
    with pytest.raises(
        MonitorError,
        match=r"^quality monitor 'churn': prediction_proba_col 'proba' is not a column of "
        r"main\.ml\.preds \(columns: ts, model_id, .*\); fix the monitor or the table$",
    ):
        MonitorConfig.from_spec("churn", changed).bind(SCHEMA)


def test_check_monitor_lists_problems_validate_can_see() -> None:
    log = spec().inference_log
    assert log is not None
    bad = spec(
        inference_log=log.model_dump() | {"granularities": ["1 day", "daily"]},
        custom_metrics=[
            metric("AGGREGATE"),
            metric("DERIVED"),
            metric("DRIFT", "d", output_data_type="array<int>"),
        ],
    )
    assert check_monitor("churn", bad) == [
        "quality monitor 'churn': granularity 'daily' does not parse; use one of '5 minutes', "
        "'30 minutes', '1 hour', '1 day', '1 week', '2 weeks', '3 weeks', '4 weeks', '1 month', "
        "'1 year'",
        "quality monitor 'churn': custom metric 'm' is defined twice",
        "quality monitor 'churn': custom metric 'd': output_data_type 'array<int>' is not "
        "supported; use one of double, float, int, integer, bigint, long, string, boolean, "
        "timestamp",
    ]


@pytest.mark.parametrize(
    ("text", "arrow"),
    [
        ("double", pa.float64()),
        ('{"type": "double"}', pa.float64()),
        ('{"name": "output", "type": "long", "nullable": true, "metadata": {}}', pa.int64()),
        ("STRING", pa.string()),
    ],
)
def test_metric_type(text: str, arrow: pa.DataType) -> None:
    assert metric_type(text) == arrow


def test_config_hash_follows_what_shapes_the_rows() -> None:
    base = MonitorConfig.from_spec("churn", spec()).config_hash
    scheduled = spec(schedule={"quartz_cron_expression": "0 0 8 * * ?"})
    assert MonitorConfig.from_spec("churn", scheduled).config_hash == base
    sliced = spec(slicing_exprs=["cat"])
    assert MonitorConfig.from_spec("churn", sliced).config_hash != base


def test_derived_metrics_apply_to_their_columns() -> None:
    specs = QualityMonitorSpec.model_validate(
        {
            "table_name": "a.b.c",
            "output_schema_name": "a.b",
            "snapshot": {},
            "custom_metrics": [metric("DERIVED", "double_avg", definition="2 * avg")],
        }
    ).custom_metrics
    rows = [
        {"column_name": ":table", "count": 3, "avg": None},
        {"column_name": "x", "count": 3, "avg": 1.5},
        {"column_name": "y", "count": 3, "avg": 4.0},
    ]
    derived_metrics("m", specs, rows)
    assert [r["double_avg"] for r in rows] == [None, 3.0, None]


def test_drift_metrics_compare_current_and_base() -> None:
    specs = QualityMonitorSpec.model_validate(
        {
            "table_name": "a.b.c",
            "output_schema_name": "a.b",
            "snapshot": {},
            "custom_metrics": [
                metric("DRIFT", "ratio", definition="{{current_df}}.avg / {{base_df}}.avg")
            ],
        }
    ).custom_metrics
    pairs = [
        ({"column_name": "x", "avg": 3.0}, {"column_name": "x", "avg": 1.5}),
        ({"column_name": "y", "avg": 3.0}, {"column_name": "y", "avg": 1.0}),
    ]
    assert drift_metrics("m", specs, pairs) == [{"ratio": 2.0}, {"ratio": None}]
    bad = [s.model_copy(update={"definition": "{{current_df}}.nope"}) for s in specs]
    with pytest.raises(MonitorError, match=r"custom metric\(s\) ratio cannot be evaluated"):
        drift_metrics("m", bad, pairs)
