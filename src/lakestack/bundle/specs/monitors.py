"""Specs for ``quality_monitors`` (Lakehouse Monitoring): profile and drift tables per window."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lakestack.bundle.specs.base import Spec, ignored

__all__ = [
    "CustomMetricSpec",
    "InferenceLogSpec",
    "MonitorScheduleSpec",
    "QualityMonitorSpec",
    "SnapshotSpec",
    "TimeSeriesSpec",
]


def _three_level(value: str, what: str) -> str:
    if "${" not in value and len(value.split(".")) != 3:
        raise ValueError(f"{what} must be a three-level name catalog.schema.table, got '{value}'")
    return value


class CustomMetricSpec(Spec):
    """A metric computed by a SQL expression on each window."""

    type: Literal[
        "CUSTOM_METRIC_TYPE_AGGREGATE", "CUSTOM_METRIC_TYPE_DERIVED", "CUSTOM_METRIC_TYPE_DRIFT"
    ]
    name: str
    input_columns: list[str]
    definition: str
    output_data_type: str


class InferenceLogSpec(Spec):
    """A table of model predictions, profiled per model and window."""

    problem_type: Literal["PROBLEM_TYPE_CLASSIFICATION", "PROBLEM_TYPE_REGRESSION"]
    prediction_col: str
    timestamp_col: str
    model_id_col: str
    granularities: list[str]
    label_col: str | None = None
    prediction_proba_col: str | None = None


class TimeSeriesSpec(Spec):
    """A table profiled per time window."""

    timestamp_col: str
    granularities: list[str]


class SnapshotSpec(Spec):
    """A table profiled as a whole on every refresh."""


class MonitorScheduleSpec(Spec):
    """When to refresh the monitor."""

    quartz_cron_expression: str
    timezone_id: str = "UTC"
    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"


class QualityMonitorSpec(Spec):
    """A monitor on ``table_name`` writing its metric tables to ``output_schema_name``."""

    table_name: str
    output_schema_name: str
    assets_dir: str | None = None
    baseline_table_name: str | None = None
    slicing_exprs: list[str] = Field(default_factory=list)
    custom_metrics: list[CustomMetricSpec] = Field(default_factory=list)
    inference_log: InferenceLogSpec | None = None
    time_series: TimeSeriesSpec | None = None
    snapshot: SnapshotSpec | None = None
    schedule: MonitorScheduleSpec | None = None
    notifications: dict[str, Any] | None = None
    skip_builtin_dashboard: bool = False
    warehouse_id: Any = ignored("SQL warehouse: metrics are computed on this machine")
    data_classification_config: Any = ignored("data classification")

    @field_validator("table_name")
    @classmethod
    def _table(cls, value: str) -> str:
        return _three_level(value, "table_name")

    @field_validator("baseline_table_name")
    @classmethod
    def _baseline(cls, value: str | None) -> str | None:
        return None if value is None else _three_level(value, "baseline_table_name")

    @field_validator("output_schema_name")
    @classmethod
    def _schema(cls, value: str) -> str:
        if "${" not in value and len(value.split(".")) != 2:
            raise ValueError(f"output_schema_name must be catalog.schema, got '{value}'")
        return value

    @model_validator(mode="after")
    def _one_profile(self) -> QualityMonitorSpec:
        given = [
            n for n in ("inference_log", "time_series", "snapshot") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a quality monitor needs exactly one of inference_log, time_series, snapshot"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self
