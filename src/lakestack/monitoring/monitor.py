"""A monitor as the refresh needs it: the bundle's ``quality_monitors`` entry, checked against
the table it watches.

``MonitorConfig`` holds what the spec says (profile type, columns, granularities, slices,
custom metrics) in resolved form; ``bind`` checks it against the source table's schema, so a
column the spec names but the table lacks is one clear error before anything is computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from lakestack.bundle.specs.monitors import CustomMetricSpec, QualityMonitorSpec
from lakestack.errors import MonitorError
from lakestack.monitoring.drift import column_kind
from lakestack.monitoring.windows import Granularity, check_granularities, parse_granularity

__all__ = [
    "ALL_MODELS",
    "BASELINE",
    "INPUT",
    "BoundMonitor",
    "MonitorConfig",
    "check_monitor",
    "find_monitor",
    "metric_type",
]

ALL_MODELS = "*"
"""The model id of rows over every model."""
INPUT = "INPUT"
BASELINE = "BASELINE"
ProfileType = Literal["inference_log", "time_series", "snapshot"]
ProblemType = Literal["classification", "regression"]


@dataclass(frozen=True)
class MonitorConfig:
    """One monitor, resolved from its spec.

    Attributes:
        key: The resource key in the bundle (``quality_monitors.<key>``).
        spec: The spec as loaded.
        profile_type: ``inference_log``, ``time_series`` or ``snapshot``.
        granularities: The windows (empty for a snapshot).
    """

    key: str
    spec: QualityMonitorSpec
    profile_type: ProfileType
    granularities: tuple[Granularity, ...] = ()

    @classmethod
    def from_spec(cls, key: str, spec: QualityMonitorSpec) -> MonitorConfig:
        """Resolve a spec.

        Raises:
            MonitorError: A granularity that does not parse, or none given.
        """
        problems = check_monitor(key, spec)
        if problems:
            raise MonitorError(problems[0])
        profile: ProfileType
        texts: list[str] = []
        if spec.inference_log is not None:
            profile, texts = "inference_log", spec.inference_log.granularities
        elif spec.time_series is not None:
            profile, texts = "time_series", spec.time_series.granularities
        else:
            profile = "snapshot"
        windows = tuple(dict.fromkeys(parse_granularity(t) for t in texts))
        return cls(key, spec, profile, windows)

    @property
    def table_name(self) -> str:
        """The monitored table."""
        return self.spec.table_name

    @property
    def short_name(self) -> str:
        """The monitored table's own name (the last part)."""
        return self.spec.table_name.split(".")[-1]

    @property
    def profile_table(self) -> str:
        """``<output_schema>.<table>_profile_metrics``."""
        return f"{self.spec.output_schema_name}.{self.short_name}_profile_metrics"

    @property
    def drift_table(self) -> str:
        """``<output_schema>.<table>_drift_metrics``."""
        return f"{self.spec.output_schema_name}.{self.short_name}_drift_metrics"

    @property
    def timestamp_col(self) -> str | None:
        """The column windows are cut on (None for a snapshot)."""
        if self.spec.inference_log is not None:
            return self.spec.inference_log.timestamp_col
        if self.spec.time_series is not None:
            return self.spec.time_series.timestamp_col
        return None

    @property
    def model_id_col(self) -> str | None:
        """The model id column of an inference log."""
        log = self.spec.inference_log
        return None if log is None else log.model_id_col

    @property
    def prediction_col(self) -> str | None:
        log = self.spec.inference_log
        return None if log is None else log.prediction_col

    @property
    def label_col(self) -> str | None:
        log = self.spec.inference_log
        return None if log is None else log.label_col

    @property
    def proba_col(self) -> str | None:
        log = self.spec.inference_log
        return None if log is None else log.prediction_proba_col

    @property
    def problem_type(self) -> ProblemType | None:
        log = self.spec.inference_log
        if log is None:
            return None
        return "classification" if log.problem_type.endswith("CLASSIFICATION") else "regression"

    def custom_metrics(self, kind: str) -> list[CustomMetricSpec]:
        """The custom metrics of one kind: ``AGGREGATE``, ``DERIVED`` or ``DRIFT``."""
        return [m for m in self.spec.custom_metrics if m.type == f"CUSTOM_METRIC_TYPE_{kind}"]

    @property
    def config_hash(self) -> str:
        """A digest of everything that shapes the output rows; a change means a full refresh."""
        data = self.spec.model_dump(mode="json", exclude={"schedule", "notifications"})
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def bind(self, schema: pa.Schema) -> BoundMonitor:
        """Check the monitor against the source table's columns.

        Raises:
            MonitorError: A named column (timestamp, model id, prediction, label, probability,
                a slicing column) that the table does not have.
        """
        names = schema.names
        named = {
            "timestamp_col": self.timestamp_col,
            "model_id_col": self.model_id_col,
            "prediction_col": self.prediction_col,
            "label_col": self.label_col,
            "prediction_proba_col": self.proba_col,
        }
        for what, column in named.items():
            if column is not None and column not in names:
                raise MonitorError(
                    f"quality monitor '{self.key}': {what} '{column}' is not a column of "
                    f"{self.table_name} (columns: {', '.join(names)}); fix the monitor or the table"
                )
        for expr in self.spec.slicing_exprs:
            if expr in names or expr.strip('`"') in names:
                continue
            if _is_identifier(expr):
                raise MonitorError(
                    f"quality monitor '{self.key}': slicing expression '{expr}' is not a column "
                    f"of {self.table_name} (columns: {', '.join(names)}); fix slicing_exprs"
                )
        keys = {self.timestamp_col, self.model_id_col}
        profiled = [f.name for f in schema if f.name not in keys and _profiled_type(f.type)]
        for metric in self.spec.custom_metrics:
            for column in metric.input_columns:
                if column != ":table" and column not in names:
                    raise MonitorError(
                        f"quality monitor '{self.key}': custom metric '{metric.name}' has input "
                        f"column '{column}', which is not a column of {self.table_name}"
                    )
        types = {f.name: f.type for f in schema}
        return BoundMonitor(self, {n: types[n] for n in profiled}, types)


def _is_identifier(expr: str) -> bool:
    text = expr.strip()
    return text.replace("_", "a").isalnum() and not text[0].isdigit() if text else False


def _profiled_type(data_type: pa.DataType) -> bool:
    """Columns with a profile: numbers, strings, booleans, dates and timestamps."""
    return (
        column_kind(data_type) is not None
        or pa.types.is_temporal(data_type)
        or pa.types.is_null(data_type)
    )


@dataclass(frozen=True)
class BoundMonitor:
    """A monitor checked against its table: the columns profiled and their types."""

    config: MonitorConfig
    columns: dict[str, pa.DataType]
    types: dict[str, pa.DataType] = field(default_factory=dict)

    @property
    def drift_columns(self) -> list[str]:
        """The profiled columns with a drift kind (numbers, strings, booleans)."""
        return [n for n, t in self.columns.items() if column_kind(t) is not None]


def check_monitor(key: str, spec: QualityMonitorSpec) -> list[str]:
    """Problems that ``bundle validate`` can see without the table: granularities, metrics."""
    problems: list[str] = []
    log, series = spec.inference_log, spec.time_series
    granularities = log.granularities if log else series.granularities if series else None
    if granularities is not None:
        problems += check_granularities(key, granularities)
    seen: set[str] = set()
    for metric in spec.custom_metrics:
        if metric.name in seen:
            problems.append(
                f"quality monitor '{key}': custom metric '{metric.name}' is defined twice"
            )
        seen.add(metric.name)
        try:
            metric_type(metric.output_data_type)
        except MonitorError as exc:
            problems.append(f"quality monitor '{key}': custom metric '{metric.name}': {exc}")
        if not metric.input_columns:
            problems.append(
                f"quality monitor '{key}': custom metric '{metric.name}' has no input_columns; "
                "name columns or ':table'"
            )
    return problems


_METRIC_TYPES = {
    "double": pa.float64(),
    "float": pa.float32(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def metric_type(text: str) -> pa.DataType:
    """The Arrow type of a custom metric's ``output_data_type``.

    Accepts a Spark type name (``double``) or the JSON Databricks' SDK writes
    (``{"type": "double"}``, a ``StructField``'s JSON with ``"type": "double"``).

    Raises:
        MonitorError: A type that is not a number, string, boolean or timestamp.
    """
    name = text.strip()
    if name.startswith("{"):
        try:
            name = str(json.loads(name).get("type", ""))
        except (ValueError, AttributeError):
            name = text
    name = name.strip('"').lower()
    if name not in _METRIC_TYPES:
        raise MonitorError(
            f"output_data_type '{text}' is not supported; use one of {', '.join(_METRIC_TYPES)}"
        )
    return _METRIC_TYPES[name]


def find_monitor(monitors: Mapping[str, QualityMonitorSpec], name: str) -> MonitorConfig:
    """The monitor named by its bundle key or by its table's name.

    Raises:
        MonitorError: No such monitor (the message lists the bundle's monitors).
    """
    if name in monitors:
        return MonitorConfig.from_spec(name, monitors[name])
    for key, spec in monitors.items():
        if spec.table_name == name or spec.table_name.split(".")[-1] == name:
            return MonitorConfig.from_spec(key, spec)
    known = ", ".join(sorted(monitors)) or "none"
    raise MonitorError(
        f"quality monitor '{name}' is not in the bundle (monitors: {known}); "
        "give a key of resources.quality_monitors or the table it monitors"
    )
