"""Refresh a monitor: write ``<table>_profile_metrics`` and ``<table>_drift_metrics``.

A refresh reads the monitored table at one version, profiles its windows (every granularity,
model and slice, INPUT rows from the table and BASELINE rows from the baseline table) and
compares each window with the previous one (CONSECUTIVE) and with the baseline (BASELINE).

It is incremental: each write records, in its commit metadata, the source version it read and a
digest of the monitor's configuration. The next refresh reads the table's change data feed since
that version, and recomputes only the windows whose rows were inserted, updated (labels merged
in later) or deleted, plus the CONSECUTIVE drift of the window after each of them; other
windows keep their rows. A changed configuration or baseline, a change feed that cannot be
read, or ``full=True`` recomputes everything. Each output table is replaced in one Delta commit,
after everything is computed, so a refresh that fails commits nothing.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import LakeError, MonitorError, NotFoundError
from lakestack.lake import duck
from lakestack.monitoring.custom import derived_metrics, drift_metrics
from lakestack.monitoring.drift import DriftRule
from lakestack.monitoring.drifting import DriftKey, Rows, group_drift, read_window
from lakestack.monitoring.monitor import BASELINE, INPUT, BoundMonitor, MonitorConfig
from lakestack.monitoring.profile import TABLE_COLUMN
from lakestack.monitoring.tables import STATE_KEY, drift_schema, profile_schema
from lakestack.monitoring.windowed import EXACT_ROWS, Pass, profile_groups, quote
from lakestack.monitoring.windows import Granularity, utc

if TYPE_CHECKING:
    from lakestack.lake import Catalog, Table
    from lakestack.monitoring.drift import ColumnDrift

__all__ = ["RefreshResult", "refresh_monitor"]

CONSECUTIVE = "CONSECUTIVE"
DELTAS = ("count", "avg", "percent_null", "percent_zeros", "percent_distinct")

ProfileKey = tuple[str | None, datetime | None, str | None, str | None, str | None, str]
"""(granularity, window start, model, slice key, slice value, column) of an INPUT row."""


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did.

    Attributes:
        windows_refreshed: Windows recomputed (all granularities); 0 when the table had not changed.
        profile_rows: Rows written to the profile table by this refresh (kept rows excluded).
        drift_rows: Rows written to the drift table by this refresh.
    """

    monitor: str
    table_name: str
    profile_table: str
    drift_table: str
    source_version: int
    monitor_version: int
    full: bool
    windows_refreshed: int
    profile_rows: int
    drift_rows: int
    seconds: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``--output json``, task values)."""
        return {
            "monitor": self.monitor,
            "table_name": self.table_name,
            "profile_table": self.profile_table,
            "drift_table": self.drift_table,
            "source_version": self.source_version,
            "monitor_version": self.monitor_version,
            "full": self.full,
            "windows_refreshed": self.windows_refreshed,
            "profile_rows": self.profile_rows,
            "drift_rows": self.drift_rows,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _State:
    """What the last refresh processed (the commit metadata of its writes)."""

    config: str
    source_version: int
    baseline_version: int | None
    monitor_version: int

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass
class _Window:
    """One window of one granularity (``None``: a snapshot)."""

    granularity: Granularity | None
    start: datetime
    end: datetime

    @property
    def label(self) -> str | None:
        return None if self.granularity is None else self.granularity.text


@dataclass
class _Plan:
    """What this refresh recomputes, per granularity text (None for a snapshot)."""

    windows: dict[str | None, list[_Window]] = field(default_factory=dict)
    present: dict[str | None, list[datetime]] = field(default_factory=dict)
    drift: dict[str | None, list[_Window]] = field(default_factory=dict)


def refresh_monitor(
    config: MonitorConfig,
    catalog: Catalog,
    *,
    full: bool = False,
    now: datetime | None = None,
    rule: DriftRule | None = None,
) -> RefreshResult:
    """Refresh ``config``'s output tables from its table (and baseline).

    Args:
        config: The monitor.
        catalog: The catalog holding the table, the baseline and the output schema.
        full: Recompute every window, dropping the rows of earlier refreshes.
        now: The snapshot time of a snapshot profile (default: the current time).
        rule: When drift statistics are computed (``DriftRule()`` by default).

    Raises:
        MonitorError: The table or baseline does not exist, lacks a column the monitor names,
            or a slicing expression or custom metric does not evaluate. Nothing is written.
    """
    began = time.monotonic()
    source = _table(catalog, config, config.table_name, "table_name")
    version = source.version
    dataset = source.dataset(version)
    bound = config.bind(dataset.schema)
    _check_expressions(bound, dataset.schema)
    baseline_table = (
        _table(catalog, config, config.spec.baseline_table_name, "baseline_table_name")
        if config.spec.baseline_table_name
        else None
    )
    baseline_version = baseline_table.version if baseline_table is not None else None
    state = _read_state(catalog, config)
    reason = _full_reason(config, state, baseline_version, full)
    monitor_version = 1
    if state is not None:
        monitor_version = state.monitor_version + int(state.config != config.config_hash)
    unchanged = state is not None and state.source_version == version
    if reason is None and unchanged and config.profile_type != "snapshot":
        return RefreshResult(
            config.key, config.table_name, config.profile_table, config.drift_table,
            version, monitor_version, False, 0, 0, 0, time.monotonic() - began,
            f"up to date: {config.table_name} is at version {version}, as last refreshed",
        )  # fmt: skip
    changes = None
    if reason is None and state is not None and config.profile_type != "snapshot":
        changes = _changes(source, state.source_version + 1, version)
        if changes is None:
            reason = "the change data feed since the last refresh cannot be read"
    incremental = reason is None
    run = _Refresh(
        config, bound, catalog, dataset, version, monitor_version, incremental, now, rule
    )
    plan = run.plan(changes)
    profile_rows = run.profile(plan)
    baseline_rows: list[dict[str, Any]] = []
    baseline_data: Rows | None = None
    if baseline_table is not None:
        baseline = _Baseline(run, baseline_table.dataset(baseline_version))
        baseline_data = baseline.rows()
        baseline_rows = baseline.profile() if not incremental else []
    existing = _Existing(catalog, config, incremental)
    lookup = existing.lookup(plan)
    for row in profile_rows:
        lookup.add(row)
    for row in baseline_rows:
        lookup.add(row)
    drift_rows = run.drift(plan, lookup, baseline_data)
    remove = {(g, w.start) for g, windows in plan.windows.items() for w in windows}
    remove_drift = remove | {(g, w.start) for g, windows in plan.drift.items() for w in windows}
    new_state = _State(config.config_hash, version, baseline_version, monitor_version)
    drift_table = existing.merged(config.drift_table, drift_schema(bound), drift_rows, remove_drift)
    profile_table = existing.merged(
        config.profile_table, profile_schema(bound), profile_rows + baseline_rows, remove
    )
    _write(catalog, config.drift_table, drift_table, new_state)
    _write(catalog, config.profile_table, profile_table, new_state)
    return RefreshResult(
        config.key,
        config.table_name,
        config.profile_table,
        config.drift_table,
        version,
        monitor_version,
        not incremental,
        sum(len(w) for w in plan.windows.values()),
        len(profile_rows) + len(baseline_rows),
        len(drift_rows),
        time.monotonic() - began,
        reason or "incremental",
    )


def _table(catalog: Catalog, config: MonitorConfig, name: str | None, what: str) -> Table:
    try:
        return catalog.table(str(name))
    except NotFoundError as exc:
        raise MonitorError(f"quality monitor '{config.key}': {what}: {exc}") from None


def _check_expressions(bound: BoundMonitor, schema: pa.Schema) -> None:
    """Slicing expressions and AGGREGATE metrics evaluated over no rows: errors come first."""
    config = bound.config
    empty = schema.empty_table()
    for expr in config.spec.slicing_exprs:
        try:
            duck.query(f"SELECT ({expr}) FROM src", {"src": empty})
        except LakeError as exc:
            raise MonitorError(
                f"quality monitor '{config.key}': slicing expression '{expr}' does not evaluate "
                f"on {config.table_name}: {exc}"
            ) from None
    for metric in config.custom_metrics("AGGREGATE"):
        for column in metric.input_columns:
            text = metric.definition.replace(
                "{{input_column}}", "*" if column == TABLE_COLUMN else quote(column)
            )
            try:
                duck.query(f"SELECT {text} FROM src", {"src": empty})
            except LakeError as exc:
                raise MonitorError(
                    f"quality monitor '{config.key}': custom metric '{metric.name}' does not "
                    f"evaluate for input column '{column}': {exc}; fix its definition"
                ) from None


def _read_state(catalog: Catalog, config: MonitorConfig) -> _State | None:
    """The state both output tables' last commits recorded, if they agree."""
    found = []
    for name in (config.profile_table, config.drift_table):
        if not catalog.table_exists(name):
            return None
        history = catalog.table(name).history(1)
        text = history[0]["metadata"].get(STATE_KEY) if history else None
        if not text:
            return None
        try:
            found.append(_State(**json.loads(text)))
        except (TypeError, ValueError):
            return None
    return found[0] if found[0] == found[1] else None


def _full_reason(
    config: MonitorConfig, state: _State | None, baseline_version: int | None, full: bool
) -> str | None:
    if full:
        return "full refresh requested"
    if state is None:
        return "first refresh"
    if state.config != config.config_hash:
        return "the monitor's configuration changed"
    if state.baseline_version != baseline_version:
        return "the baseline table changed"
    return None


def _changes(source: Table, start: int, end: int) -> pa.Table | None:
    try:
        return source.changes(start, end)
    except LakeError:
        return None


class _Refresh:
    """The computations of one refresh over one version of the source."""

    def __init__(
        self,
        config: MonitorConfig,
        bound: BoundMonitor,
        catalog: Catalog,
        dataset: Any,
        version: int,
        monitor_version: int,
        incremental: bool,
        now: datetime | None,
        rule: DriftRule | None,
    ) -> None:
        self.config = config
        self.bound = bound
        self.catalog = catalog
        self.dataset = dataset
        self.version = version
        self.monitor_version = monitor_version
        self.incremental = incremental
        self.now = utc(now or datetime.now(timezone.utc)).replace(microsecond=0)
        self.rule = rule
        self.exact = dataset.count_rows() <= EXACT_ROWS
        self.inference = config.profile_type == "inference_log"
        self.timestamp = config.timestamp_col
        if self.timestamp is not None:
            self.ts_type = dataset.schema.field(self.timestamp).type
            self.ts_sql = _utc_sql(config, self.timestamp, self.ts_type)

    # planning --------------------------------------------------------------------------------

    def plan(self, changes: pa.Table | None) -> _Plan:
        """The windows to recompute: all of them, or those the changes touch."""
        plan = _Plan()
        if self.config.profile_type == "snapshot":
            window = _Window(None, self.now, self.now)
            plan.windows[None] = [window]
            plan.drift[None] = [window]
            return plan
        present = self._windows(self.dataset)
        touched = self._windows(changes) if changes is not None else None
        for granularity in self.config.granularities:
            text = granularity.text
            starts = present.get(text, [])
            plan.present[text] = starts
            chosen = starts if touched is None else touched.get(text, [])
            plan.windows[text] = [
                _Window(granularity, s, granularity.end(s)) for s in sorted(chosen)
            ]
            recompute = set(chosen)
            after = {starts[i + 1] for i, s in enumerate(starts[:-1]) if s in recompute}
            drift = sorted((recompute | after) & set(starts))
            plan.drift[text] = [_Window(granularity, s, granularity.end(s)) for s in drift]
        return plan

    def _windows(self, relation: Any) -> dict[str, list[datetime]]:
        """Per granularity, the starts of the windows that ``relation``'s rows fall in."""
        assert self.timestamp is not None
        granularities = self.config.granularities
        selects = ", ".join(
            f"list(DISTINCT {g.start_sql(self.ts_sql)}) AS g{i}"
            for i, g in enumerate(granularities)
        )
        column = quote(self.timestamp)
        sql = f"SELECT {selects} FROM src WHERE {column} IS NOT NULL"
        row = duck.query(sql, {"src": relation}).to_pylist()[0]
        return {
            g.text: sorted(utc(s) for s in (row[f"g{i}"] or []))
            for i, g in enumerate(granularities)
        }

    def source_of(self, windows: Iterable[_Window]) -> Any:
        """The source rows in ``windows`` (a filtered dataset: Parquet statistics prune)."""
        ranges = _merged(sorted((w.start, w.end) for w in windows))
        if self.timestamp is None or not ranges:
            return self.dataset
        column = pc.field(self.timestamp)
        expression = None
        for start, end in ranges:
            low, high = self._scalar(start), self._scalar(end)
            part = (column >= low) & (column < high)
            expression = part if expression is None else expression | part
        return self.dataset.filter(expression)

    def _scalar(self, moment: datetime) -> pa.Scalar:
        if pa.types.is_timestamp(self.ts_type):
            value = moment if self.ts_type.tz else moment.replace(tzinfo=None)
            return pa.scalar(value, self.ts_type)
        return pa.scalar(moment.replace(tzinfo=None), pa.timestamp("us")).cast(self.ts_type)

    # profile ---------------------------------------------------------------------------------

    def window_sql(self, granularity: Granularity | None) -> str:
        if granularity is None:
            return f"TIMESTAMP '{self.now.replace(tzinfo=None).isoformat(sep=' ')}'"
        return granularity.start_sql(self.ts_sql)

    def profile(self, plan: _Plan) -> list[dict[str, Any]]:
        """The INPUT profile rows of the windows the plan recomputes."""
        rows: list[dict[str, Any]] = []
        has_quality = self.inference and self.config.label_col is not None
        for text, windows in plan.windows.items():
            if not windows:
                continue
            granularity = windows[0].granularity
            scan = Pass(
                self.source_of(windows) if granularity is not None else self.dataset,
                self.window_sql(granularity),
                "",
                self.exact,
                models=self.inference,
            )
            groups = profile_groups(self.bound, scan, with_quality=has_quality)
            for (start, model, key, value), columns in groups.items():
                begin = self.now if granularity is None else utc(start)  # type: ignore[arg-type]
                end = begin if granularity is None else granularity.end(begin)
                for column, values in columns.items():
                    rows.append(
                        self.row(
                            {"start": begin, "end": end}, text, INPUT, model, key, value, column
                        )
                        | values
                    )
        derived_metrics(self.config.key, self.config.custom_metrics("DERIVED"), rows)
        return rows

    def row(
        self,
        window: dict[str, datetime | None],
        granularity: str | None,
        log_type: str | None,
        model: str | None,
        slice_key: str | None,
        slice_value: str | None,
        column: str,
    ) -> dict[str, Any]:
        """The key columns of one output row."""
        row: dict[str, Any] = {"window": window, "granularity": granularity}
        if self.config.model_id_col is not None:
            row[self.config.model_id_col] = model
        if log_type is not None:
            row["log_type"] = log_type
        row.update(
            slice_key=slice_key,
            slice_value=slice_value,
            column_name=column,
            logging_table_commit_version=self.version,
            monitor_version=self.monitor_version,
        )
        return row

    # drift -----------------------------------------------------------------------------------

    def drift(self, plan: _Plan, lookup: _Lookup, baseline: Rows | None) -> list[dict[str, Any]]:
        """CONSECUTIVE and BASELINE drift rows of the windows the plan names."""
        out: list[dict[str, Any]] = []
        columns = self.bound.drift_columns
        cache: dict[datetime, Rows] = {}
        for text, windows in plan.drift.items():
            cache.clear()
            for window in windows:
                current = self._read(window, cache)
                previous = lookup.previous(text, window.start, plan.present.get(text))
                if previous is not None:
                    reference = self._read_previous(window, previous, cache, lookup)
                    stats = {}
                    if reference is not None:
                        stats = group_drift(
                            self.bound,
                            current,
                            reference,
                            models=self.inference,
                            columns=columns,
                            rule=self.rule,
                        )
                    end = window.granularity.end(previous) if window.granularity else previous
                    compared: dict[str, datetime | None] = {"start": previous, "end": end}
                    references = functools.partial(lookup.get, text, previous)
                    out += self._drift_rows(
                        window, compared, CONSECUTIVE, stats, lookup, references
                    )
                if baseline is not None:
                    shared = [c for c in columns if c in baseline.table.column_names]
                    stats = group_drift(
                        self.bound,
                        current,
                        baseline,
                        models=self.inference,
                        columns=shared,
                        rule=self.rule,
                        fallback_to_all=True,
                    )
                    references = functools.partial(lookup.baseline, text)
                    out += self._drift_rows(window, None, BASELINE, stats, lookup, references)
                for start in [s for s in cache if s < window.start]:
                    del cache[start]
        derived = drift_metrics(
            self.config.key,
            self.config.custom_metrics("DRIFT"),
            [(r.pop("__cur"), r.pop("__ref")) for r in out],
        )
        for row, values in zip(out, derived, strict=True):
            row.update(values)
        return out

    def _read(self, window: _Window, cache: dict[datetime, Rows]) -> Rows:
        if window.start not in cache:
            source = self.source_of([window]) if window.granularity else self.dataset
            cache[window.start] = read_window(
                self.bound, source, "", models=self.inference, columns=self.bound.drift_columns
            )
        return cache[window.start]

    def _read_previous(
        self, window: _Window, previous: datetime, cache: dict[datetime, Rows], lookup: _Lookup
    ) -> Rows | None:
        if window.granularity is not None:
            return self._read(
                _Window(window.granularity, previous, window.granularity.end(previous)), cache
            )
        version = lookup.snapshot_version(previous)
        if version is None:
            return None
        try:
            table = self.catalog.table(self.config.table_name)
            dataset = table.dataset(version)
        except LakeError:
            return None  # the previous snapshot's version was vacuumed: no consecutive drift
        columns = [c for c in self.bound.drift_columns if c in dataset.schema.names]
        return read_window(self.bound, dataset, "", models=self.inference, columns=columns)

    def _drift_rows(
        self,
        window: _Window,
        window_cmp: dict[str, datetime | None] | None,
        drift_type: str,
        stats: dict[DriftKey, ColumnDrift],
        lookup: _Lookup,
        reference_of: Callable[..., dict[str, Any] | None],
    ) -> list[dict[str, Any]]:
        text = window.label
        rows = []
        for key, current in lookup.window(text, window.start):
            reference = reference_of(*key)
            if reference is None:
                continue
            model, slice_key, slice_value, column = key
            row = self.row(
                {"start": window.start, "end": window.end},
                text, None, model, slice_key, slice_value, column,
            )  # fmt: skip
            row.update(window_cmp=window_cmp, drift_type=drift_type)
            row["data_type"] = current.get("data_type")
            for name in DELTAS:
                now, then = current.get(name), reference.get(name)
                row[f"{name}_delta"] = None if now is None or then is None else now - then
            if column == TABLE_COLUMN:
                mine = set(current.get("non_null_columns") or [])
                theirs = set(reference.get("non_null_columns") or [])
                row["non_null_columns_delta"] = {
                    "added": len(mine - theirs),
                    "missing": len(theirs - mine),
                }
            found = stats.get(key)
            if found is not None:
                row.update(found.metrics())
            row["__cur"], row["__ref"] = current, reference
            rows.append(row)
        return rows


def _utc_sql(config: MonitorConfig, column: str, data_type: pa.DataType) -> str:
    """SQL for a timestamp column as a naive UTC timestamp (what windows are cut on)."""
    name = quote(column)
    if pa.types.is_timestamp(data_type):
        return f"timezone('UTC', {name})" if data_type.tz else name
    if pa.types.is_date(data_type):
        return f"CAST({name} AS TIMESTAMP)"
    raise MonitorError(
        f"quality monitor '{config.key}': timestamp_col '{column}' of {config.table_name} is "
        f"{data_type}, not a timestamp or date; cast it, or name another column"
    )


def _merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted ranges with the touching or overlapping ones joined."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


class _Baseline:
    """The baseline table: its BASELINE profile rows and its rows for drift."""

    def __init__(self, run: _Refresh, dataset: Any) -> None:
        self.run = run
        self.dataset = dataset
        config = run.config
        names = dataset.schema.names
        columns = {n: t for n, t in run.bound.columns.items() if n in names}
        self.bound = BoundMonitor(config, columns, run.bound.types)
        self.models = run.inference and config.model_id_col in names

    def rows(self) -> Rows:
        """The baseline's drift columns, model id and slice values."""
        columns = list(self.bound.drift_columns)
        return read_window(self.bound, self.dataset, "", models=self.models, columns=columns)

    def profile(self) -> list[dict[str, Any]]:
        """BASELINE rows: the whole baseline as one window, under every granularity."""
        run, config = self.run, self.run.config
        names = self.dataset.schema.names
        quality = (
            run.inference
            and config.label_col in names
            and config.prediction_col in names
            and (config.proba_col is None or config.proba_col in names)
        )
        scan = Pass(
            self.dataset,
            "NULL::TIMESTAMP",
            "",
            self.dataset.count_rows() <= EXACT_ROWS,
            models=self.models,
            all_models="*" if run.inference else None,
        )
        groups = profile_groups(self.bound, scan, with_quality=bool(quality))
        window = self._span()
        texts: list[str | None] = [g.text for g in config.granularities] or [None]
        rows: list[dict[str, Any]] = []
        for text in texts:
            for (_, model, key, value), columns in groups.items():
                for column, values in columns.items():
                    rows.append(run.row(window, text, BASELINE, model, key, value, column) | values)
        derived_metrics(config.key, config.custom_metrics("DERIVED"), rows)
        return rows

    def _span(self) -> dict[str, datetime | None]:
        """The baseline's first and last timestamps (None without the timestamp column)."""
        column = self.run.timestamp
        if column is None or column not in self.dataset.schema.names:
            return {"start": None, "end": None}
        data_type = self.dataset.schema.field(column).type
        ts = _utc_sql(self.run.config, column, data_type)
        row = duck.query(
            f"SELECT min({ts}) AS lo, max({ts}) AS hi FROM src", {"src": self.dataset}
        ).to_pylist()[0]
        return {
            "start": None if row["lo"] is None else utc(row["lo"]),
            "end": None if row["hi"] is None else utc(row["hi"]),
        }


class _Lookup:
    """Profile rows by key: this refresh's and the kept ones the drift rows compare with."""

    def __init__(self, model_col: str | None) -> None:
        self.model_col = model_col
        self.inputs: dict[str | None, dict[datetime, dict[tuple[Any, ...], dict[str, Any]]]] = {}
        self.baselines: dict[str | None, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.versions: dict[datetime, int] = {}

    def add(self, row: dict[str, Any]) -> None:
        model = row.get(self.model_col) if self.model_col else None
        key = (model, row["slice_key"], row["slice_value"], row["column_name"])
        if row.get("log_type") == BASELINE:
            self.baselines.setdefault(row["granularity"], {})[key] = row
            return
        start = utc(row["window"]["start"])
        self.inputs.setdefault(row["granularity"], {}).setdefault(start, {})[key] = row
        self.versions[start] = int(row["logging_table_commit_version"])

    def window(
        self, granularity: str | None, start: datetime
    ) -> list[tuple[DriftKey, dict[str, Any]]]:
        rows = self.inputs.get(granularity, {}).get(start, {})
        return [(k, v) for k, v in rows.items()]  # type: ignore[misc]

    def get(self, granularity: str | None, start: datetime, *key: Any) -> dict[str, Any] | None:
        return self.inputs.get(granularity, {}).get(start, {}).get(tuple(key))

    def baseline(self, granularity: str | None, *key: Any) -> dict[str, Any] | None:
        rows = self.baselines.get(granularity, {})
        found = rows.get(tuple(key))
        if found is None:
            found = rows.get(("*", *key[1:]))
        return found

    def previous(
        self, granularity: str | None, start: datetime, present: list[datetime] | None
    ) -> datetime | None:
        """The latest window before ``start`` that has rows."""
        starts = present if present is not None else sorted(self.inputs.get(granularity, {}))
        earlier = [s for s in starts if s < start]
        return earlier[-1] if earlier else None

    def snapshot_version(self, start: datetime) -> int | None:
        return self.versions.get(start)


class _Existing:
    """The output tables as the last refresh left them (nothing when recomputing all)."""

    def __init__(self, catalog: Catalog, config: MonitorConfig, incremental: bool) -> None:
        self.catalog = catalog
        self.config = config
        self.incremental = incremental
        self.tables: dict[str, pa.Table | None] = {}

    def read(self, name: str) -> pa.Table | None:
        if name not in self.tables:
            keep = self.incremental and self.catalog.table_exists(name)
            self.tables[name] = self.catalog.table(name).read() if keep else None
        return self.tables[name]

    def lookup(self, plan: _Plan) -> _Lookup:
        """The kept INPUT rows of the windows drift compares with, and the BASELINE rows."""
        lookup = _Lookup(self.config.model_id_col)
        table = self.read(self.config.profile_table)
        if table is None or table.num_rows == 0:
            return lookup
        recomputed = {(g, w.start) for g, ws in plan.windows.items() for w in ws}
        wanted = set()
        for text, windows in plan.drift.items():
            present = plan.present.get(text)
            for window in windows:
                previous = _before(present, window.start) if present is not None else None
                if previous is not None:
                    wanted.add((text, previous))
                wanted.add((text, window.start))
        keys = _window_keys(table)
        log_types = table["log_type"].to_pylist()
        mask = [
            log == BASELINE
            or (log == INPUT and (key in wanted or plan.present.get(key[0]) is None))
            for key, log in zip(keys, log_types, strict=True)
        ]
        for row in table.filter(pa.array(mask, pa.bool_())).to_pylist():
            key = (
                row["granularity"],
                utc(row["window"]["start"]) if row["window"]["start"] else None,
            )
            if row["log_type"] == INPUT and key in recomputed:
                continue
            lookup.add(row)
        return lookup

    def merged(
        self,
        name: str,
        schema: pa.Schema,
        rows: list[dict[str, Any]],
        remove: set[tuple[str | None, datetime]],
    ) -> pa.Table:
        """The table to write: the kept rows and the new ones, sorted."""
        new = pa.Table.from_pylist(rows, schema=schema)
        old = self.read(name)
        if old is not None and old.num_rows and set(schema.names) == set(old.column_names):
            keys = _window_keys(old)
            drop = [key in remove for key in keys]
            if "log_type" in old.column_names:  # BASELINE rows stay: the baseline did not change
                logs = old["log_type"].to_pylist()
                drop = [d and log == INPUT for d, log in zip(drop, logs, strict=True)]
            kept = old.filter(pc.invert(pa.array(drop, pa.bool_()))).select(schema.names)
            new = pa.concat_tables([kept.cast(schema), new])
        return _sorted(new, self.config.model_id_col)


def _before(starts: list[datetime], start: datetime) -> datetime | None:
    earlier = [s for s in starts if s < start]
    return earlier[-1] if earlier else None


def _window_keys(table: pa.Table) -> list[tuple[str | None, datetime | None]]:
    starts = pc.struct_field(table["window"], "start").to_pylist()
    granularities = table["granularity"].to_pylist()
    return [(g, None if s is None else utc(s)) for g, s in zip(granularities, starts, strict=True)]


def _sorted(table: pa.Table, model_col: str | None) -> pa.Table:
    """Rows in reading order: granularity, window, log or drift type, model, slice, column."""
    names = ["granularity", "__start", "log_type", "drift_type", model_col or ""]
    names += ["slice_key", "slice_value", "column_name"]
    start = pc.struct_field(table["window"], "start")
    order = table.append_column("__start", start)
    keys = [(n, "ascending") for n in names if n and n in order.column_names]
    return order.sort_by(keys).drop_columns(["__start"])


def _write(catalog: Catalog, name: str, table: pa.Table, state: _State) -> None:
    """Replace the output table in one commit that records the refresh's state."""
    schema_name = name.rsplit(".", 1)[0]
    if not catalog.schema_exists(schema_name):
        catalog.create_schema(schema_name)
    if not catalog.table_exists(name):
        catalog.create_table(name, schema=table.schema)
    catalog.table(name).overwrite(
        table, schema_mode="overwrite", commit_metadata={STATE_KEY: state.dump()}
    )
