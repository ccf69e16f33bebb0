"""The Arrow schemas of ``<table>_profile_metrics`` and ``<table>_drift_metrics``.

Column names and types follow Databricks Lakehouse Monitoring (DESIGN §7), so SQL written for
Databricks monitors runs unchanged: ``window`` is ``struct<start, end>``, tests are
``struct<statistic, pvalue>``, precision/recall/F1 are ``struct<one_vs_all, macro, weighted>``.
Model-quality columns are there for inference logs only, custom metrics at the end.
"""

from __future__ import annotations

import pyarrow as pa

from lakestack.monitoring.monitor import BoundMonitor, metric_type

__all__ = ["STATE_KEY", "WINDOW", "drift_schema", "profile_schema"]

STATE_KEY = "lakestack.monitor.state"
"""Commit metadata of a refresh's writes: what was processed (JSON), for the next refresh."""

TIMESTAMP = pa.timestamp("us", tz="UTC")
WINDOW = pa.struct([("start", TIMESTAMP), ("end", TIMESTAMP)])
TEST = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
AVERAGED = pa.struct(
    [
        ("one_vs_all", pa.map_(pa.string(), pa.float64())),
        ("macro", pa.float64()),
        ("weighted", pa.float64()),
    ]
)
ITEMS = pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))
CONFUSION = pa.list_(
    pa.struct([("prediction", pa.string()), ("label", pa.string()), ("count", pa.int64())])
)


def _keys(bound: BoundMonitor, *, drift: bool) -> list[pa.Field]:
    fields = [pa.field("window", WINDOW)]
    if drift:
        fields += [pa.field("window_cmp", WINDOW), pa.field("drift_type", pa.string())]
    fields.append(pa.field("granularity", pa.string()))
    model = bound.config.model_id_col
    if model is not None:
        fields.append(pa.field(model, pa.string()))
    if not drift:
        fields.append(pa.field("log_type", pa.string()))
    fields += [
        pa.field("slice_key", pa.string()),
        pa.field("slice_value", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("data_type", pa.string()),
        pa.field("logging_table_commit_version", pa.int64()),
        pa.field("monitor_version", pa.int64()),
    ]
    return fields


def _custom(bound: BoundMonitor, *kinds: str) -> list[pa.Field]:
    return [
        pa.field(m.name, metric_type(m.output_data_type))
        for kind in kinds
        for m in bound.config.custom_metrics(kind)
    ]


def profile_schema(bound: BoundMonitor) -> pa.Schema:
    """The ``_profile_metrics`` columns of this monitor."""
    d, i = pa.float64(), pa.int64()
    fields = _keys(bound, drift=False)
    fields += [
        pa.field("count", i),
        pa.field("num_nulls", i),
        pa.field("num_zeros", i),
        pa.field("num_nan", i),
        pa.field("avg", d),
        pa.field("min", d),
        pa.field("max", d),
        pa.field("stddev", d),
        pa.field("median", d),
        pa.field("quantiles", pa.list_(d)),
        pa.field("distinct_count", i),
        pa.field("percent_null", d),
        pa.field("percent_zeros", d),
        pa.field("percent_distinct", d),
        pa.field("percent_nan", d),
        pa.field("min_length", d),
        pa.field("max_length", d),
        pa.field("avg_length", d),
        pa.field("frequent_items", ITEMS),
        pa.field("non_null_columns", pa.list_(pa.string())),
    ]
    problem = bound.config.problem_type
    if problem == "classification":
        fields += [
            pa.field("accuracy_score", d),
            pa.field("precision", AVERAGED),
            pa.field("recall", AVERAGED),
            pa.field("f1_score", AVERAGED),
            pa.field("confusion_matrix", CONFUSION),
            pa.field("roc_auc", d),
            pa.field("log_loss", d),
        ]
    elif problem == "regression":
        fields += [
            pa.field(name, d)
            for name in (
                "mean_squared_error",
                "root_mean_squared_error",
                "mean_absolute_error",
                "mean_absolute_percentage_error",
                "r2_score",
            )
        ]
    return pa.schema(fields + _custom(bound, "AGGREGATE", "DERIVED"))


def drift_schema(bound: BoundMonitor) -> pa.Schema:
    """The ``_drift_metrics`` columns of this monitor."""
    d = pa.float64()
    fields = _keys(bound, drift=True)
    fields += [
        pa.field("count_delta", d),
        pa.field("avg_delta", d),
        pa.field("percent_null_delta", d),
        pa.field("percent_zeros_delta", d),
        pa.field("percent_distinct_delta", d),
        pa.field(
            "non_null_columns_delta", pa.struct([("added", pa.int32()), ("missing", pa.int32())])
        ),
        pa.field("ks_test", TEST),
        pa.field("chi_squared_test", TEST),
        pa.field("js_distance", d),
        pa.field("wasserstein_distance", d),
        pa.field("population_stability_index", d),
        pa.field("tv_distance", d),
        pa.field("l_infinity_distance", d),
    ]
    return pa.schema(fields + _custom(bound, "DRIFT"))
