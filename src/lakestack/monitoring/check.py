"""The *monitor_check* task: MLOps Stacks' monitored-metric violation check, with safety rails.

MLOps Stacks' retraining job runs a notebook that reads one quality metric of the monitor's
``<table>_profile_metrics`` table and publishes ``is_metric_violated``; a ``condition_task`` on it
starts the training job with a ``run_job_task``. This task does the same, with the notebook's
parameters (``table_name_under_monitor``, ``metric_to_monitor``, ``metric_violation_threshold``,
``num_evaluation_windows``, ``num_violation_windows``) and its rule: the metric is past the
threshold in at least N of the latest M windows, and in the latest one.

Two safety rails keep a violation from retraining too often or for nothing, when
``model_name`` is given: a ``cooldown`` since the newest version of the model was registered,
and labels newer than that version (a retrain on the same labels would learn nothing new).
A rail that blocks turns ``is_metric_violated`` to ``"false"`` and names itself in
``retrain_blocked``, so the Stacks job runs unchanged.

Run it as a job task::

    - task_key: monitored_metric_violation_check
      python_wheel_task:
        package_name: lakestack
        entry_point: monitor_check
        named_parameters:
          table_name_under_monitor: ${var.catalog}.${var.schema}.predictions
          metric_to_monitor: root_mean_squared_error
          metric_violation_threshold: "100"
          num_evaluation_windows: "5"
          num_violation_windows: "2"
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import LakestackError, ModelNotFoundError, MonitorError
from lakestack.jobs.context import parameter_flag
from lakestack.monitoring.monitor import ALL_MODELS, INPUT
from lakestack.monitoring.profile import TABLE_COLUMN

if TYPE_CHECKING:
    from lakestack.bundle.specs.monitors import QualityMonitorSpec
    from lakestack.lake import Catalog
    from lakestack.registry import ModelRegistry

__all__ = [
    "COOLDOWN",
    "NEW_LABELS",
    "CheckResult",
    "Verdict",
    "check_metric",
    "main",
    "parse_duration",
    "violation",
]

COOLDOWN = "cooldown"
"""``retrain_blocked`` when the newest model version is more recent than the cooldown."""
NEW_LABELS = "no_new_labels"
"""``retrain_blocked`` when no labelled row is newer than the newest model version."""
_KEYS = ("window", "granularity", "log_type", "slice_key", "column_name")
_NOT_METRICS = {
    *_KEYS,
    "slice_value",
    "data_type",
    "logging_table_commit_version",
    "monitor_version",
}


@dataclass(frozen=True)
class Verdict:
    """What the Stacks rule says about the latest windows.

    Attributes:
        violated: At least ``num_violation_windows`` of the evaluated windows and the latest
            one are past the threshold.
        violated_windows: How many of the evaluated windows are past the threshold.
        evaluated_windows: How many windows were looked at (at most ``num_evaluation_windows``).
        latest_violated: The latest window is past the threshold.
        reason: One sentence saying why.
    """

    violated: bool
    violated_windows: int
    evaluated_windows: int
    latest_violated: bool
    reason: str


def violation(
    values_by_window: Mapping[Any, float | None],
    threshold: float,
    greater_is_better: bool,
    num_evaluation_windows: int,
    num_violation_windows: int,
) -> Verdict:
    """MLOps Stacks' rule over the latest ``num_evaluation_windows`` windows.

    A value is past the threshold when it is above it (``greater_is_better`` false, Stacks' only
    case: an error such as ``root_mean_squared_error``) or below it (true: a score such as
    ``f1_score.macro``); equal is not past. A window without a value (no labels yet: the
    metric is NULL) is not past, as in Stacks' SQL, so a latest window without labels never
    triggers.

    Args:
        values_by_window: The metric per window; keys order the windows (the window start).
        threshold: ``metric_violation_threshold``.
        greater_is_better: Whether a higher value is better.
        num_evaluation_windows: M, the latest windows looked at.
        num_violation_windows: N, how many of them must be past the threshold.

    Raises:
        MonitorError: M or N below 1, N above M (it could never be met), or a threshold that is
            not a finite number.
    """
    _check_rule(threshold, num_evaluation_windows, num_violation_windows)
    latest = sorted(values_by_window, reverse=True)[:num_evaluation_windows]
    side = "below" if greater_is_better else "above"

    def past(value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return value < threshold if greater_is_better else value > threshold

    if not latest:
        return Verdict(False, 0, 0, False, "not violated: no windows to evaluate")
    count = sum(past(values_by_window[w]) for w in latest)
    newest = values_by_window[latest[0]]
    latest_past = past(newest)
    violated = count >= num_violation_windows and latest_past
    shown = "no value" if newest is None else f"{newest:.6g}"
    summary = (
        f"{count} of the latest {len(latest)} windows {side} {threshold:g} "
        f"(need {num_violation_windows}); the latest is {shown}"
    )
    if violated:
        return Verdict(True, count, len(latest), True, f"violated: {summary}")
    if count >= num_violation_windows:
        summary += f", not {side} the threshold"
    return Verdict(False, count, len(latest), latest_past, f"not violated: {summary}")


def _check_rule(threshold: float, evaluation: int, violations: int) -> None:
    if not math.isfinite(threshold):
        raise MonitorError(f"metric_violation_threshold {threshold} is not a finite number")
    for name, value in (
        ("num_evaluation_windows", evaluation),
        ("num_violation_windows", violations),
    ):
        if value < 1:
            raise MonitorError(f"{name} {value} is not allowed: give a count of at least 1")
    if violations > evaluation:
        raise MonitorError(
            f"num_violation_windows {violations} is more than num_evaluation_windows "
            f"{evaluation}: the rule could never be met; lower it or look at more windows"
        )


@dataclass(frozen=True)
class CheckResult:
    """The check of one metric, and what the rails did.

    Attributes:
        metric: ``metric_to_monitor``.
        profile_table: The profile table read.
        granularity: The windows' granularity.
        values: The metric of the evaluated windows, latest first, as (window start, value).
        verdict: The rule's verdict.
        retrain_blocked: The rail that blocked a violation (``cooldown``, ``no_new_labels``),
            or ``""``.
        reason: The verdict's reason, and the rail's when one blocked.
    """

    metric: str
    profile_table: str
    granularity: str
    values: list[tuple[datetime, float | None]]
    verdict: Verdict
    retrain_blocked: str = ""
    reason: str = ""

    @property
    def is_metric_violated(self) -> bool:
        """The rule is met and no rail blocks: the retraining job should run."""
        return self.verdict.violated and not self.retrain_blocked

    def task_values(self) -> dict[str, Any]:
        """The task values: ``is_metric_violated`` is ``"true"`` or ``"false"``."""
        return {
            "is_metric_violated": str(self.is_metric_violated).lower(),
            "violated_windows": self.verdict.violated_windows,
            "retrain_blocked": self.retrain_blocked,
            "reason": self.reason,
        }


def check_metric(
    table_name_under_monitor: str,
    metric_to_monitor: str,
    metric_violation_threshold: float,
    *,
    num_evaluation_windows: int = 5,
    num_violation_windows: int = 2,
    greater_is_better: bool = False,
    granularity: str | None = None,
    model_id: str = ALL_MODELS,
    model_id_col: str | None = None,
    profile_metrics_table: str | None = None,
    model_name: str | None = None,
    cooldown: str | timedelta | None = None,
    label_col: str | None = None,
    timestamp_col: str | None = None,
    catalog: Catalog | None = None,
    registry: ModelRegistry | None = None,
    now: datetime | None = None,
) -> CheckResult:
    """Check a quality metric of a monitored table against Stacks' rule, then the rails.

    The metric is read from the ``:table`` rows of the profile table with ``slice_key`` NULL,
    ``log_type`` INPUT, one model id (``*``, all models, by default) and one granularity.
    Column names not given (``model_id_col``, ``label_col``, ``timestamp_col``) come from the
    bundle's quality monitor of the table when there is one, else ``model_id``/``timestamp``.

    Args:
        table_name_under_monitor: The monitored table, ``catalog.schema.table``.
        metric_to_monitor: A numeric column of the profile table, or a dotted path into a struct
            column (``f1_score.macro``).
        metric_violation_threshold: The threshold.
        num_evaluation_windows: M, the latest windows looked at.
        num_violation_windows: N, how many must be past the threshold.
        greater_is_better: True for scores (past means below), False for errors (above).
        granularity: The windows' granularity; by default the table's only one.
        model_id: The model id of the rows (``*``: over all models).
        model_id_col: The model id column of the profile table.
        profile_metrics_table: The profile table; by default ``<table>_profile_metrics`` beside
            the table (as Stacks reads it), or the bundle monitor's output table.
        model_name: The registered model the retraining job trains; turns the rails on.
        cooldown: The least time since its newest version (``"1 day"``, ``"6 hours"``).
        label_col: The label column of the monitored table.
        timestamp_col: Its timestamp column.
        catalog: The catalog; None means the workspace's.
        registry: The model registry; None means the workspace's.
        now: The current time (UTC); None means the clock.

    Raises:
        MonitorError: An unknown metric (the valid ones are listed), a missing profile table,
            a granularity or model id the table does not have, bad rule parameters, a
            cooldown without ``model_name``, or a registered model that does not exist.
    """
    _check_rule(metric_violation_threshold, num_evaluation_windows, num_violation_windows)
    wait = parse_duration(cooldown) if isinstance(cooldown, str) else cooldown
    if wait is not None and not model_name:
        raise MonitorError(
            "cooldown needs model_name: the cooldown runs from the newest version of the model "
            "the retraining job trains"
        )
    from lakestack.lake import default_catalog

    catalog = catalog or default_catalog()
    rail_columns = (label_col, timestamp_col) if model_name else ()
    known = (model_id_col, profile_metrics_table, *rail_columns)
    monitor = None if all(known) else _bundle_monitor(table_name_under_monitor)
    log = monitor.inference_log if monitor is not None else None
    profile = profile_metrics_table or _profile_table_of(table_name_under_monitor, monitor)
    id_col = model_id_col or (log.model_id_col if log is not None else "model_id")
    rows = _profile_rows(catalog, profile, metric_to_monitor, id_col)
    values, chosen = _window_values(rows, profile, metric_to_monitor, id_col, model_id, granularity)
    verdict = violation(
        dict(values),
        metric_violation_threshold,
        greater_is_better,
        num_evaluation_windows,
        num_violation_windows,
    )
    evaluated = sorted(values, reverse=True)[: verdict.evaluated_windows]
    result = CheckResult(
        metric_to_monitor, profile, chosen, evaluated, verdict, reason=verdict.reason
    )
    if not verdict.violated or not model_name:
        return result
    blocked, why = _rails(
        catalog,
        registry,
        table_name_under_monitor,
        model_name,
        wait,
        label_col or (log.label_col if log is not None else None),
        timestamp_col or _timestamp_col(monitor),
        _aware(now) if now else datetime.now(timezone.utc),
    )
    if not blocked:
        return result
    reason = f"{verdict.reason}; retraining blocked by the {blocked} rail: {why}"
    return CheckResult(
        metric_to_monitor,
        profile,
        chosen,
        evaluated,
        verdict,
        retrain_blocked=blocked,
        reason=reason,
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week)s?\s*$")


def parse_duration(text: str) -> timedelta:
    """``"1 day"``, ``"6 hours"``, ``"30 minutes"``, ``"2 weeks"``, ``"90 seconds"``.

    Raises:
        MonitorError: Text of another form.
    """
    match = _DURATION.match(text.lower())
    if match is None:
        raise MonitorError(
            f"cooldown '{text}' does not parse; give a number and a unit: seconds, minutes, "
            "hours, days or weeks (e.g. '1 day', '6 hours')"
        )
    return timedelta(**{match.group(2) + "s": float(match.group(1))})


# the profile table -----------------------------------------------------------------------


def _timestamp_col(monitor: QualityMonitorSpec | None) -> str:
    if monitor is not None and monitor.inference_log is not None:
        return monitor.inference_log.timestamp_col
    if monitor is not None and monitor.time_series is not None:
        return monitor.time_series.timestamp_col
    return "timestamp"


def _bundle_monitor(table: str) -> QualityMonitorSpec | None:
    """The bundle's quality monitor of ``table``: the job's bundle, else the one found from the
    working directory; None without a bundle or such a monitor."""
    from lakestack.bundle import load_bundle
    from lakestack.bundle.discover import find_bundle_file
    from lakestack.errors import ConfigError
    from lakestack.jobs.context import current_context

    ctx = current_context()
    try:
        file = find_bundle_file(ctx.bundle_root if ctx else None)
    except ConfigError:
        return None
    bundle = load_bundle(file, target=ctx.target if ctx else None)
    for spec in bundle.resources.quality_monitors.values():
        if spec.table_name == table:
            return spec
    return None


def _profile_table_of(table: str, monitor: QualityMonitorSpec | None) -> str:
    if monitor is not None:
        return f"{monitor.output_schema_name}.{table.split('.')[-1]}_profile_metrics"
    return f"{table}_profile_metrics"


def _profile_rows(catalog: Catalog, profile: str, metric: str, id_col: str) -> pa.Table:
    """The unsliced ``:table`` INPUT rows of the profile table, with the metric's column."""
    from lakestack.errors import NotFoundError

    try:
        table = catalog.table(profile)
    except NotFoundError as exc:
        raise MonitorError(
            f"profile table {profile} does not exist ({exc}); refresh the monitor first "
            "(lakestack monitors refresh), or pass profile_metrics_table"
        ) from None
    schema = table.schema
    missing = [c for c in _KEYS if c not in schema.names]
    if missing:
        raise MonitorError(
            f"table {profile} is not a profile metrics table: it has no column "
            f"{', '.join(repr(c) for c in missing)}"
        )
    _metric_type(schema, metric, profile, id_col)
    by_model = [id_col] if id_col in schema.names else []  # a time series has no model id
    rows = table.read(
        [*_KEYS, *by_model, metric.split(".")[0]],
        filter=(pc.field("column_name") == TABLE_COLUMN) & (pc.field("log_type") == INPUT),
    )
    return rows.filter(pc.is_null(rows["slice_key"]))


def _metric_type(schema: pa.Schema, metric: str, profile: str, id_col: str) -> pa.DataType:
    """The type the dotted path names, if numeric; else an error listing the metrics."""
    parts = metric.split(".")
    found: pa.DataType | None = None
    not_metrics = {*_NOT_METRICS, id_col}
    if parts[0] in schema.names and parts[0] not in not_metrics:
        found = schema.field(parts[0]).type
        for part in parts[1:]:
            if not pa.types.is_struct(found) or found.get_field_index(part) < 0:
                found = None
                break
            found = found.field(part).type
    if found is not None and _numeric(found):
        return found
    valid = [
        path for f in schema if f.name not in not_metrics for path in _numeric_paths(f.name, f.type)
    ]
    raise MonitorError(
        f"metric '{metric}' is not a numeric column of {profile}; metrics there: "
        f"{', '.join(valid) or 'none'}"
    )


def _numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _numeric_paths(name: str, data_type: pa.DataType) -> list[str]:
    if _numeric(data_type):
        return [name]
    if pa.types.is_struct(data_type):
        return [
            path
            for i in range(data_type.num_fields)
            for path in _numeric_paths(f"{name}.{data_type.field(i).name}", data_type.field(i).type)
        ]
    return []


def _window_values(
    rows: pa.Table,
    profile: str,
    metric: str,
    id_col: str,
    model_id: str,
    granularity: str | None,
) -> tuple[list[tuple[datetime, float | None]], str]:
    """(window start, metric) of one model id and granularity, and the granularity."""
    present = sorted(set(rows["granularity"].drop_null().to_pylist()))
    if granularity is None:
        if len(present) > 1:
            raise MonitorError(
                f"{profile} has windows of several granularities ({', '.join(present)}); "
                "pass granularity"
            )
        granularity = present[0] if present else ""
    elif rows.num_rows and granularity not in present:
        raise MonitorError(
            f"{profile} has no '{granularity}' windows; its granularities: {', '.join(present)}"
        )
    rows = rows.filter(pc.field("granularity") == granularity)
    if id_col not in rows.column_names:
        if model_id != ALL_MODELS:
            raise MonitorError(f"{profile} has no model id column '{id_col}'; leave model_id out")
        return _by_window(rows, profile, metric, granularity, model_id), granularity
    ids = set(rows[id_col].cast(pa.string()).drop_null().to_pylist())
    if rows.num_rows and model_id not in ids:
        raise MonitorError(
            f"{profile} has no rows of model id '{model_id}' ({id_col}: {', '.join(sorted(ids))})"
        )
    rows = rows.filter(pc.equal(rows[id_col].cast(pa.string()), model_id))
    return _by_window(rows, profile, metric, granularity, model_id), granularity


def _by_window(
    rows: pa.Table, profile: str, metric: str, granularity: str, model_id: str
) -> list[tuple[datetime, float | None]]:
    """(window start, metric) of each row, one row per window."""
    values = rows[metric.split(".")[0]]
    for part in metric.split(".")[1:]:
        values = pc.struct_field(values, part)
    starts = pc.struct_field(rows["window"], "start").to_pylist()
    numbers = values.cast(pa.float64()).to_pylist()
    by_window: dict[datetime, float | None] = {}
    for start, number in zip(starts, numbers, strict=True):
        if start in by_window:
            raise MonitorError(
                f"{profile} has two '{granularity}' rows of model id '{model_id}' for the "
                f"window starting {start}; refresh the monitor"
            )
        by_window[start] = number
    return list(by_window.items())


# the rails --------------------------------------------------------------------------------


def _rails(
    catalog: Catalog,
    registry: ModelRegistry | None,
    table: str,
    model_name: str,
    cooldown: timedelta | None,
    label_col: str | None,
    timestamp_col: str,
    now: datetime,
) -> tuple[str, str]:
    """The first rail that blocks and why, or ``("", "")``."""
    trained = _last_training(registry, model_name)
    if trained is None:
        return "", ""  # never trained: nothing to cool down from, every label is new
    if cooldown is not None and now - trained < cooldown:
        return COOLDOWN, (
            f"{model_name} version registered at {trained:%Y-%m-%d %H:%M:%S} UTC, "
            f"less than the cooldown {cooldown} ago"
        )
    if label_col is None:
        raise MonitorError(
            f"the label rail needs the label column of {table}: pass label_col, or declare "
            "label_col in the bundle's quality monitor of the table"
        )
    newer = _labels_since(catalog, table, label_col, timestamp_col, trained)
    if newer == 0:
        return NEW_LABELS, (
            f"no row of {table} with a {label_col} label is newer than {model_name}'s newest "
            f"version (registered at {trained:%Y-%m-%d %H:%M:%S} UTC)"
        )
    return "", ""


def _aware(moment: datetime) -> datetime:
    """A naive time is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _last_training(registry: ModelRegistry | None, model_name: str) -> datetime | None:
    """When the newest version of the model was registered; None without versions."""
    if registry is None:
        from lakestack.registry import ModelRegistry

        registry = ModelRegistry.default()
    try:
        versions = registry.versions(model_name)
    except ModelNotFoundError as exc:
        raise MonitorError(
            f"model_name {model_name}: {exc}; name the model the retraining job trains"
        ) from None
    return versions[0].created_at if versions else None


def _labels_since(
    catalog: Catalog, table: str, label_col: str, timestamp_col: str, since: datetime
) -> int:
    """Rows of ``table`` with a label and a timestamp after ``since``."""
    source = catalog.table(table)
    schema = source.schema
    for column in (label_col, timestamp_col):
        if column not in schema.names:
            raise MonitorError(
                f"table {table} has no column '{column}' (columns: {', '.join(schema.names)})"
            )
    stamp_type = schema.field(timestamp_col).type
    if not pa.types.is_timestamp(stamp_type):
        raise MonitorError(
            f"column '{timestamp_col}' of {table} is {stamp_type}, not a timestamp; pass the "
            "timestamp column as timestamp_col"
        )
    moment = since.astimezone(timezone.utc)
    if stamp_type.tz is None:
        moment = moment.replace(tzinfo=None)  # naive timestamps are UTC
    bound = pa.scalar(moment, stamp_type)
    labelled = source.read(
        [label_col],
        filter=(pc.field(timestamp_col) > bound) & pc.field(label_col).is_valid(),
    )
    return int(labelled.num_rows)


# the task --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor_check",
        description="Check a monitored metric against MLOps Stacks' violation rule "
        "(the retraining job's check task); publish is_metric_violated.",
    )

    def option(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", dest=name, **kwargs)

    option("table_name_under_monitor", required=True, help="the monitored table")
    option("metric_to_monitor", required=True, help="a profile metric, e.g. f1_score.macro")
    option("metric_violation_threshold", required=True, type=float, help="the threshold")
    option("num_evaluation_windows", type=int, default=5, help="M, the latest windows")
    option("num_violation_windows", type=int, default=2, help="N, windows past the threshold")
    option("greater_is_better", type=parameter_flag, default=False, help="true for scores")
    option("granularity", default=None, help="the windows' granularity, e.g. '1 day'")
    option("model_id", default=ALL_MODELS, help="the model id of the rows ('*': all models)")
    option("model_id_col", default=None, help="the model id column of the profile table")
    option("profile_metrics_table", default=None, help="the profile table to read")
    option("model_name", default=None, help="the model the retraining job trains (rails)")
    option("cooldown", default=None, help="least time since its newest version, e.g. '1 day'")
    option("label_col", default=None, help="the label column of the monitored table")
    option("timestamp_col", default=None, help="the timestamp column of the monitored table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``monitor_check`` entry point: check, report in the log, publish task values.

    Raises:
        MonitorError: An unknown metric or bad parameters (one line saying what to fix).
    """
    from lakestack.jobs.context import publish_task_values

    args = _parser().parse_args(argv)
    result = check_metric(
        args.table_name_under_monitor,
        args.metric_to_monitor,
        args.metric_violation_threshold,
        num_evaluation_windows=args.num_evaluation_windows,
        num_violation_windows=args.num_violation_windows,
        greater_is_better=args.greater_is_better,
        granularity=args.granularity or None,
        model_id=args.model_id,
        model_id_col=args.model_id_col or None,
        profile_metrics_table=args.profile_metrics_table or None,
        model_name=args.model_name or None,
        cooldown=args.cooldown or None,
        label_col=args.label_col or None,
        timestamp_col=args.timestamp_col or None,
    )
    publish_task_values(result.task_values())
    _report(result)
    return 0


def _report(result: CheckResult) -> None:
    """The check in the task's log."""
    out = sys.stdout
    out.write(f"is_metric_violated: {str(result.is_metric_violated).lower()}\n")
    out.write(
        f"{result.metric} in {result.profile_table} ({result.granularity}): {result.reason}\n"
    )
    for start, value in result.values:
        out.write(f"  {start:%Y-%m-%d %H:%M}  {'NULL' if value is None else f'{value:.6g}'}\n")
    out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LakestackError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)
