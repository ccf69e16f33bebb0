"""What the monitoring report shows, read from a monitor's metric tables, its bundle and the
model registry.

``load_report`` gathers, for one granularity, the model-quality metrics of every window per model
id (``*`` for all models), the drift of every column per window (CONSECUTIVE and BASELINE, with
whether drift is declared) and which columns are identifiers (unique per row, left out of the
heatmaps), the thresholds of the bundle's violation checks on the monitor's table, the versions
registered and champion changes of the monitored models, the window where each model id began
to serve, and the latest window's profile. ``lakestack.monitoring.report`` draws it; keeping the
two apart makes the data testable without a browser.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import ModelNotFoundError, MonitorError
from lakestack.monitoring.drift import DriftRule
from lakestack.monitoring.monitor import ALL_MODELS, INPUT, MonitorConfig, find_monitor
from lakestack.monitoring.profile import TABLE_COLUMN
from lakestack.monitoring.windows import utc
from lakestack.utils.refs import substitute_refs

if TYPE_CHECKING:
    from lakestack.bundle import Bundle
    from lakestack.bundle.specs.monitors import QualityMonitorSpec
    from lakestack.lake import Catalog, Table
    from lakestack.registry import ModelRegistry

__all__ = [
    "DRIFT_METRIC",
    "DRIFT_TYPES",
    "IDENTIFIER_DISTINCT",
    "IDENTIFIER_MIN_COUNT",
    "PROFILE_STATS",
    "QUALITY_METRICS",
    "DriftCell",
    "ModelEvent",
    "MonitorReport",
    "ServiceStart",
    "Threshold",
    "check_thresholds",
    "drift_declared",
    "identifier_columns",
    "load_report",
    "metric_value",
    "model_events",
    "model_order",
    "service_starts",
]

QUALITY_METRICS = (
    "accuracy_score",
    "f1_score.macro",
    "precision.macro",
    "recall.macro",
    "roc_auc",
    "log_loss",
    "root_mean_squared_error",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "r2_score",
)
"""Profile-table metrics charted when present (``a.b`` is field ``b`` of struct column ``a``)."""

DRIFT_TYPES = ("CONSECUTIVE", "BASELINE")
DRIFT_METRIC = "js_distance"
"""The heatmap's colour: filled for every column kind, in [0, 1] (docs/monitoring.md)."""
CHECK_ENTRY_POINT = "monitor_check"
IDENTIFIER_DISTINCT = 99.0
"""A string column with at least this percent of distinct values is an identifier."""
IDENTIFIER_MIN_COUNT = 30
"""Windows where a column has fewer values do not count for or against it being an identifier."""

PROFILE_STATS = {
    "data_type": "type",
    "count": "count",
    "num_nulls": "nulls",
    "percent_null": "% null",
    "distinct_count": "distinct",
    "avg": "mean",
    "stddev": "stddev",
    "min": "min",
    "median": "median",
    "max": "max",
    "avg_length": "avg length",
}
"""The profile columns the report reads, and their headings in the latest window's table."""
_DRIFT_STATS = (
    "count_delta",
    "ks_test",
    "chi_squared_test",
    "js_distance",
    "wasserstein_distance",
    "population_stability_index",
    "tv_distance",
    "l_infinity_distance",
    "drift_detected",
)
_KEYS = ("window", "granularity", "log_type", "slice_key", "column_name")


@dataclass(frozen=True)
class Threshold:
    """A violation check's threshold on one metric: a ``monitor_check`` task of a bundle job."""

    metric: str
    value: float
    job: str
    task_key: str


@dataclass(frozen=True)
class ModelEvent:
    """A retrain (a version registered) or a promotion (a version became the champion)."""

    at: datetime
    kind: Literal["registered", "champion"]
    model: str
    version: int

    @property
    def label(self) -> str:
        """``v3 registered`` or ``v3 champion``."""
        return f"v{self.version} {self.kind}"


@dataclass(frozen=True)
class ServiceStart:
    """The first window holding a model id's rows: where that version went into service.

    Read from the profile table, so it is where the data says, whatever the clock said when the
    registry recorded the version (a scenario that simulates its days has windows in the past).

    Attributes:
        at: The window's start.
        model_id: The model id as the model id column holds it.
        promotion: The registry's champion change of the same version when it falls in that
            window or the one before: the same event, drawn once, as the promotion.
    """

    at: datetime
    model_id: str
    promotion: ModelEvent | None = None

    @property
    def label(self) -> str:
        """``main.churn.model/3 in service``."""
        return f"{self.model_id} in service"


@dataclass(frozen=True)
class DriftCell:
    """One column's drift in one window, against the previous window or the baseline."""

    window: datetime
    column: str
    drift_type: str
    value: float | None
    declared: bool
    details: str


@dataclass
class MonitorReport:
    """What the page shows, read from the monitor's tables, the bundle and the registry.

    Attributes:
        name: The monitor's bundle key.
        spec: Its spec.
        profile_table: ``<output schema>.<table>_profile_metrics``.
        drift_table: ``<output schema>.<table>_drift_metrics``.
        granularity: The granularity shown (None: a snapshot's one window per refresh).
        granularities: Every granularity the tables hold.
        refreshed_at: The profile table's last commit.
        windows: (start, end) of each window shown, oldest first.
        rows: Rows of each window (all models), by window start.
        latest_rows: Rows of the latest window per model id (``*`` for all).
        quality: Metric -> model id -> (window start, value) points, oldest first.
        drift: One cell per column, window and drift type.
        thresholds: The violation checks on this monitor's table.
        events: Versions registered and champion changes of the monitored models.
        latest_profile: The latest window's profile rows (all models), one per column.
        in_service: Where each model id but the first began to serve, oldest first.
        identifiers: Columns unique per row (``identifier_columns``), sorted.
    """

    name: str
    spec: QualityMonitorSpec
    profile_table: str
    drift_table: str
    granularity: str | None
    granularities: list[str | None]
    refreshed_at: datetime | None
    windows: list[tuple[datetime, datetime]]
    rows: dict[datetime, int]
    latest_rows: dict[str, int]
    quality: dict[str, dict[str, list[tuple[datetime, float]]]]
    drift: list[DriftCell] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    events: list[ModelEvent] = field(default_factory=list)
    latest_profile: list[dict[str, Any]] = field(default_factory=list)
    in_service: list[ServiceStart] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)


def load_report(
    bundle: Bundle, catalog: Catalog, name: str, *, registry: ModelRegistry | None = None
) -> MonitorReport:
    """Read everything the report of monitor ``name`` shows.

    Raises:
        MonitorError: No such monitor, or its profile table is missing or empty.
    """
    config = find_monitor(bundle.resources.quality_monitors, name)
    model_col = config.model_id_col
    never = MonitorError(
        f"monitor {name} has no metrics yet; run `lakestack monitors refresh {name}`"
    )
    if not catalog.table_exists(config.profile_table):
        raise never
    table = catalog.table(config.profile_table)
    thresholds = check_thresholds(bundle, config)
    metrics = _charted_metrics(config, thresholds, table.schema)
    wanted = pc.field("column_name") == TABLE_COLUMN
    if model_col:
        wanted |= pc.field(model_col) == ALL_MODELS
    profile = _read(table, [*PROFILE_STATS, *metrics], model_col, wanted)
    granularities = _granularities(config, {r["granularity"] for r in profile})
    if not granularities:
        raise never
    granularity = granularities[0]
    profile = [r for r in profile if r["granularity"] == granularity]
    everything = [r for r in profile if _model(r, model_col) == ALL_MODELS]
    tables = [r for r in everything if r["column_name"] == TABLE_COLUMN]
    windows = sorted({(_start(r), utc(r["window"]["end"])) for r in tables})
    if not windows:
        raise never
    latest = windows[-1][0]
    per_model = [r for r in profile if r["column_name"] == TABLE_COLUMN]
    events = (
        [] if registry is None else model_events(registry, {_model(r, model_col) for r in profile})
    )
    drift: list[DriftCell] = []
    if catalog.table_exists(config.drift_table):
        wanted = pc.field("column_name") != TABLE_COLUMN
        if model_col:
            wanted &= pc.field(model_col) == ALL_MODELS
        source = catalog.table(config.drift_table)
        rows = _read(source, ["drift_type", *_DRIFT_STATS], model_col, wanted)
        counts = {(_start(r), r["column_name"]): r["count"] for r in everything}
        drift = _drift_cells([r for r in rows if r["granularity"] == granularity], counts)
    return MonitorReport(
        name=config.key,
        spec=config.spec,
        profile_table=config.profile_table,
        drift_table=config.drift_table,
        granularity=granularity,
        granularities=granularities,
        refreshed_at=_refreshed_at(table.history(limit=1)),
        windows=windows,
        rows={_start(r): int(r["count"]) for r in tables},
        latest_rows={
            _model(r, model_col): int(r["count"]) for r in per_model if _start(r) == latest
        },
        quality=_quality(per_model, metrics, model_col),
        drift=drift,
        thresholds=thresholds,
        events=events,
        latest_profile=sorted(
            (r for r in everything if _start(r) == latest and r["column_name"] != TABLE_COLUMN),
            key=lambda r: str(r["column_name"]),
        ),
        in_service=service_starts(
            [(_model(r, model_col), _start(r)) for r in per_model], windows, events
        ),
        identifiers=identifier_columns(r for r in everything if r["column_name"] != TABLE_COLUMN),
    )


def metric_value(row: Mapping[str, Any], metric: str) -> float | None:
    """The value of ``metric`` in a profile row: a column, or ``column.field`` of a struct.

    None when the metric is missing, NULL or NaN.
    """
    value: Any = row
    for part in metric.split("."):
        if not isinstance(value, Mapping) or value.get(part) is None:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def check_thresholds(bundle: Bundle, monitor: MonitorConfig) -> list[Threshold]:
    """The thresholds of the bundle's ``monitor_check`` tasks on this monitor's table.

    A task counts when it is a ``python_wheel_task`` of package ``lakestack``, entry point
    ``monitor_check``, whose ``table_name_under_monitor`` is the monitor's table (or key).
    ``{{job.parameters.<name>}}`` references take the job parameter's default; a task whose
    metric or threshold cannot be known before a run is left out.
    """
    found = []
    for job_key, job in bundle.resources.jobs.items():
        defaults = {p.name: str(p.default) for p in job.parameters}
        for task in job.tasks:
            wheel = task.python_wheel_task
            if wheel is None or (wheel.package_name, wheel.entry_point) != (
                "lakestack",
                CHECK_ENTRY_POINT,
            ):
                continue
            params = _with_defaults(wheel.named_parameters or _named(wheel.parameters), defaults)
            if params.get("table_name_under_monitor") not in (monitor.table_name, monitor.key):
                continue
            metric = params.get("metric_to_monitor")
            value = _float(params.get("metric_violation_threshold"))
            if metric and value is not None:
                found.append(Threshold(metric, value, job_key, task.task_key))
    return found


def model_events(registry: ModelRegistry, model_ids: Iterable[str]) -> list[ModelEvent]:
    """Every version registered and every champion change of the models behind ``model_ids``.

    A model id names a registered version as ``<name>/<version>`` (inference tables write it so)
    or ``models:/<name>/<version>``; other ids, and models the registry does not have, are
    skipped.
    """
    names = sorted({parsed[0] for parsed in map(_model_version, model_ids) if parsed})
    events = []
    for name in names:
        try:
            versions = registry.versions(name)
        except ModelNotFoundError:
            continue
        for version in versions:
            events.append(ModelEvent(version.created_at, "registered", name, version.version))
            if version.champion_since is not None:
                events.append(ModelEvent(version.champion_since, "champion", name, version.version))
    return sorted(events, key=lambda e: (e.at, e.model, e.version, e.kind))


def service_starts(
    served: Iterable[tuple[str, datetime]],
    windows: Sequence[tuple[datetime, datetime]],
    events: Iterable[ModelEvent] = (),
) -> list[ServiceStart]:
    """Where each model id began to serve: its first window, for every id but the first.

    The model ids first seen in the earliest window were serving before the windows begin:
    they get none.

    Args:
        served: (model id, window start) of each window a model id has rows in; ``*`` is
            skipped.
        windows: (start, end) of the windows, to match promotions.
        events: The registry's events; a champion change of the version a model id names
            (``<name>/<version>``), in its first window or the one before, is its promotion.
    """
    first: dict[str, datetime] = {}
    for model_id, start in served:
        if model_id != ALL_MODELS and (model_id not in first or start < first[model_id]):
            first[model_id] = start
    if not first:
        return []
    earliest = min(first.values())
    ends = dict(windows)
    champions = sorted((e for e in events if e.kind == "champion"), key=lambda e: e.at)
    starts = []
    for model_id, start in first.items():
        if start == earliest:
            continue
        before = max((s for s, _ in windows if s < start), default=start)
        version = _model_version(model_id)
        promotion = next(
            (
                e
                for e in champions
                if (e.model, e.version) == version and before <= e.at < ends.get(start, start)
            ),
            None,
        )
        starts.append(ServiceStart(start, model_id, promotion))
    return sorted(starts, key=lambda s: (s.at, model_order(s.model_id)))


def identifier_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The columns unique per row (an id such as ``customerID``), from their profile rows.

    A column is one when its ``data_type`` is ``string`` and it has at least
    ``IDENTIFIER_DISTINCT`` percent distinct values (``distinct_count`` of ``count``) in every
    window where it has ``IDENTIFIER_MIN_COUNT`` values or more, and there is such a window. Its
    values never repeat, so each window's distribution is disjoint from every other's and its
    drift is total whatever happens. Numeric columns are never identifiers: a measurement is
    nearly unique per row too, and its drift (a KS test over its range) means something.
    """
    unique: dict[str, bool] = {}
    for row in rows:
        count, distinct = row.get("count"), row.get("distinct_count")
        if row.get("data_type") != "string" or distinct is None or count is None:
            continue
        if count >= IDENTIFIER_MIN_COUNT:
            column = str(row["column_name"])
            many = 100.0 * distinct >= IDENTIFIER_DISTINCT * count
            unique[column] = unique.get(column, True) and many
    return sorted(column for column, yes in unique.items() if yes)


def drift_declared(row: Mapping[str, Any], count: int | None, rule: DriftRule) -> bool:
    """Whether the drift row's column drifted under ``rule``.

    A ``drift_detected`` column, when the table has one, decides. Otherwise the rule is applied
    to the stored statistics as ``column_drift`` applies it: a numeric column by the KS p-value
    and statistic, a categorical one by the chi-squared p-value and Cramér's V, which needs the
    window's ``count`` of the column (the comparison's is ``count - count_delta``).
    """
    if row.get("drift_detected") is not None:
        return bool(row["drift_detected"])
    ks, chi = row.get("ks_test"), row.get("chi_squared_test")
    if ks and ks.get("pvalue") is not None and ks.get("statistic") is not None:
        return bool(ks["pvalue"] < rule.alpha and ks["statistic"] >= rule.min_ks_statistic)
    if not chi or chi.get("pvalue") is None or count is None or row.get("count_delta") is None:
        return False
    total = 2 * count - row["count_delta"]
    if total <= 0:
        return False
    cramers_v = math.sqrt(max(chi["statistic"], 0.0) / total)
    return bool(chi["pvalue"] < rule.alpha and cramers_v >= rule.min_cramers_v)


def _read(
    table: Table, columns: Sequence[str], model_col: str | None, wanted: pc.Expression
) -> list[dict[str, Any]]:
    """Whole-table, INPUT rows of ``table`` that are ``wanted``, with those of ``columns`` it has
    (``a.b`` reads struct column ``a``)."""
    names = table.schema.names
    missing = [c for c in ("window", "granularity", "slice_key", "column_name") if c not in names]
    if model_col and model_col not in names:
        missing.append(model_col)
    if missing:
        raise MonitorError(
            f"table {table.name} has no column {', '.join(missing)}: it is not a monitor's "
            "metric table; drop it and refresh the monitor"
        )
    condition = pc.field("slice_key").is_null() & wanted
    if "log_type" in names:
        condition &= pc.field("log_type") == INPUT
    roots = [c.split(".")[0] for c in [*_KEYS, model_col or "", *columns]]
    keep = [c for c in dict.fromkeys(roots) if c in names]
    rows: list[dict[str, Any]] = table.read(keep, condition).to_pylist()
    return rows


def _charted_metrics(
    monitor: MonitorConfig, thresholds: Sequence[Threshold], schema: pa.Schema
) -> list[str]:
    custom = [
        m.name
        for kind in ("AGGREGATE", "DERIVED")
        for m in monitor.custom_metrics(kind)
        if TABLE_COLUMN in m.input_columns
    ]
    candidates = dict.fromkeys([*QUALITY_METRICS, *custom, *(t.metric for t in thresholds)])
    return [m for m in candidates if m.split(".")[0] in schema.names]


def _granularities(monitor: MonitorConfig, present: set[str | None]) -> list[str | None]:
    """The granularities in the tables (None: a snapshot's), the bundle's order first."""
    declared: list[str | None] = [g.text for g in monitor.granularities if g.text in present]
    return declared + sorted((g for g in present if g not in declared), key=str)


def _quality(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], model_col: str | None
) -> dict[str, dict[str, list[tuple[datetime, float]]]]:
    quality: dict[str, dict[str, list[tuple[datetime, float]]]] = {}
    for metric in metrics:
        series: dict[str, list[tuple[datetime, float]]] = {}
        for row in sorted(rows, key=_start):
            value = metric_value(row, metric)
            if value is not None:
                series.setdefault(_model(row, model_col), []).append((_start(row), value))
        if series:
            quality[metric] = {m: series[m] for m in sorted(series, key=model_order)}
    return quality


def _drift_cells(
    rows: Iterable[Mapping[str, Any]], counts: Mapping[tuple[datetime, str], int | None]
) -> list[DriftCell]:
    rule = DriftRule()
    cells = []
    for row in rows:
        if row.get("drift_type") not in DRIFT_TYPES:
            continue
        start, column = _start(row), str(row["column_name"])
        cells.append(
            DriftCell(
                window=start,
                column=column,
                drift_type=str(row["drift_type"]),
                value=metric_value(row, DRIFT_METRIC),
                declared=drift_declared(row, counts.get((start, column)), rule),
                details=_drift_details(row),
            )
        )
    return sorted(cells, key=lambda c: (c.drift_type, c.column, c.window))


def _drift_details(row: Mapping[str, Any]) -> str:
    parts = []
    for label, metric in (
        ("KS D", "ks_test.statistic"),
        ("KS p", "ks_test.pvalue"),
        ("χ²", "chi_squared_test.statistic"),
        ("χ² p", "chi_squared_test.pvalue"),
        ("PSI", "population_stability_index"),
        ("Wasserstein", "wasserstein_distance"),
        ("TV", "tv_distance"),
        ("L∞", "l_infinity_distance"),
    ):
        value = metric_value(row, metric)
        if value is not None:
            parts.append(f"{label} {value:.3g}")
    return " · ".join(parts) or "not computed (too few values)"


def _with_defaults(params: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """``params`` with ``{{job.parameters.x}}`` replaced by defaults; others left out."""

    def default(path: str) -> str:
        prefix = "job.parameters."
        if path.startswith(prefix) and path[len(prefix) :] in defaults:
            return defaults[path[len(prefix) :]]
        raise KeyError(path)

    resolved = {}
    for name, value in params.items():
        try:
            resolved[name] = substitute_refs(str(value), default)
        except KeyError:
            continue
    return resolved


def _named(arguments: Sequence[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` command-line parameters as a mapping."""
    named: dict[str, str] = {}
    items = [str(a) for a in arguments]
    for i, item in enumerate(items):
        if not item.startswith("--"):
            continue
        key, equals, value = item[2:].partition("=")
        if not equals and i + 1 < len(items) and not items[i + 1].startswith("--"):
            value = items[i + 1]
        named[key] = value
    return named


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _model_version(model_id: str) -> tuple[str, int] | None:
    name, slash, version = model_id.removeprefix("models:/").rpartition("/")
    return (name, int(version)) if slash and name and version.isdigit() else None


def _model(row: Mapping[str, Any], model_col: str | None) -> str:
    return ALL_MODELS if model_col is None else str(row[model_col])


def model_order(model_id: str) -> tuple[bool, list[Any]]:
    """Sort key of model ids: ``*`` first, then ``m/2`` before ``m/10``."""
    parts = re.split(r"(\d+)", model_id)
    return model_id != ALL_MODELS, [int(p) if p.isdigit() else p for p in parts]


def _start(row: Mapping[str, Any]) -> datetime:
    return utc(row["window"]["start"])


def _refreshed_at(history: Sequence[Mapping[str, Any]]) -> datetime | None:
    return datetime.fromisoformat(history[0]["timestamp"]) if history else None
