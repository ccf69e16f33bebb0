"""Profile statistics of every window, model and slice of a table in one DuckDB pass.

``profile_table`` profiles one window; a refresh has hundreds (windows by models by slices), so
this module writes them as one grouped query: each row gets its window start, its model id and
one copy per slice (``UNNEST`` of the slicing expressions), and ``GROUPING SETS`` adds the
all-models group (``*``) beside each model. The most frequent values of the categorical
columns come from a second pass over the same rows, unpivoted; confusion counts of a classifier
from a third. Only the columns the queries name are read (DuckDB pushes the projection into the
Parquet scan), and the rows stream: memory holds the groups' aggregates, not the table.

Large tables get sketches: past ``EXACT_ROWS`` rows in the source, quantiles come from a
t-digest (``approx_quantile``) and distinct counts from HyperLogLog (``approx_count_distinct``),
as Databricks' profiles do; below it both are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import LakeError, MonitorError
from lakestack.lake import duck
from lakestack.lake.arrow import spark_type
from lakestack.monitoring.drift import column_kind
from lakestack.monitoring.monitor import ALL_MODELS, BoundMonitor
from lakestack.monitoring.profile import NUM_QUANTILES, TABLE_COLUMN, TOP_K
from lakestack.monitoring.quality import (
    MAPE_EPSILON,
    canonical_class,
    classification_metrics,
    probability_scores,
    regression_metrics,
)

__all__ = ["EXACT_ROWS", "GroupKey", "Pass", "quote", "profile_groups", "slice_selects"]

EXACT_ROWS = 100_000
"""Sources with at most this many rows get exact quantiles and distinct counts."""

GroupKey = tuple[datetime | None, str | None, str | None, str | None]
"""(window start, model id or ``*``, slice key, slice value) of one profiled group."""


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def slice_selects(exprs: Sequence[str]) -> str:
    """SQL giving each row one ``__s`` struct per slice: the whole table, then each expression."""
    if not exprs:  # one copy of each row: no unnest
        return "{'k': NULL::VARCHAR, 'v': NULL::VARCHAR} AS __s"
    items = ["{'k': NULL::VARCHAR, 'v': NULL::VARCHAR}"]
    items += [f"{{'k': {_literal(e)}, 'v': CAST(({e}) AS VARCHAR)}}" for e in exprs]
    return f"unnest([{', '.join(items)}]) AS __s"


@dataclass(frozen=True)
class Pass:
    """What one grouped pass reads: the source, how its window is cut, which rows.

    Attributes:
        source: The rows (an Arrow dataset or table), registered as ``src``.
        window_sql: SQL for a row's window start (a UTC timestamp), or a constant.
        where: SQL filter on the source rows, or ``""``.
        exact: Exact quantiles and distinct counts (else sketches).
        models: Group by the model id column too, beside ``*`` (an inference log).
        all_models: Without ``models``, the rows' model id: ``*`` for an inference log whose
            rows have no model column (a baseline), None for a time series or snapshot.
    """

    source: Any
    window_sql: str
    where: str
    exact: bool
    models: bool
    all_models: str | None = None


def _keys_sql(bound: BoundMonitor, scan: Pass) -> str:
    """The relation ``sliced``: every source row with ``__w``, ``__m`` and one ``__s`` per slice."""
    model_col = bound.config.model_id_col
    model = f"CAST({quote(model_col)} AS VARCHAR)" if scan.models and model_col else "NULL"
    where = f" WHERE {scan.where}" if scan.where else ""
    return (
        f"sliced AS (SELECT *, {scan.window_sql} AS __w, {model} AS __m, "
        f"{''.join(_numbers(bound))}"
        f"{slice_selects(bound.config.spec.slicing_exprs)} FROM src{where})"
    )


def _numbers(bound: BoundMonitor) -> list[str]:
    """``__x<i>``: each numeric column as a double, NaN as NULL (computed once per row, so the
    statistics need no FILTER each)."""
    out = []
    for i, (name, data_type) in enumerate(bound.columns.items()):
        if column_kind(data_type) != "numeric":
            continue
        x = f"CAST({quote(name)} AS DOUBLE)"
        if pa.types.is_floating(data_type):
            x = f"CASE WHEN isnan({x}) THEN NULL ELSE {x} END"
        out.append(f"{x} AS __x{i}, ")
    return out


def _grouping(scan: Pass, *extra: str) -> str:
    tail = "".join(f", {e}" for e in extra)
    if scan.models:
        return f"GROUPING SETS ((__w, __s{tail}, __m), (__w, __s{tail}))"
    return f"__w, __s{tail}"


def _model_keys(scan: Pass) -> str:
    """The model id and whether the row is the all-models group, as selected columns."""
    if scan.models:
        return "__m, grouping(__m) AS __all"
    return "NULL AS __m, 0 AS __all"


def _model_of(row: Mapping[str, Any], scan: Pass) -> str | None:
    if not scan.models:
        return scan.all_models
    return ALL_MODELS if row["__all"] else row["__m"]


def _run(sql: str, scan: Pass, what: str, monitor: str) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = duck.query(sql, {"src": scan.source}).to_pylist()
    except LakeError as exc:
        raise MonitorError(f"quality monitor '{monitor}': {what}: {exc}") from None
    return rows


def profile_groups(
    bound: BoundMonitor, scan: Pass, *, with_quality: bool
) -> dict[GroupKey, dict[str, dict[str, Any]]]:
    """Profile every (window, model, slice) group of ``scan``'s rows.

    Returns:
        Per group, per column name (``:table`` first), the profile-table values of that row:
        the statistics of ``ColumnProfile``, the AGGREGATE custom metrics, and on ``:table``
        the model-quality metrics when ``with_quality``.

    Raises:
        MonitorError: A slicing expression or custom metric that DuckDB cannot evaluate.
    """
    names = list(bound.columns)
    selects, aggregates = _aggregate_selects(bound, scan, with_quality)
    rows = _aggregate_rows(bound, scan, selects)
    items = _frequent_items(bound, scan)
    confusion = _confusion(bound, scan) if with_quality else {}
    probabilities = _probabilities(bound, scan) if with_quality else {}
    out: dict[GroupKey, dict[str, dict[str, Any]]] = {}
    for row in rows:
        key: GroupKey = (row["__w"], _model_of(row, scan), row["__s"]["k"], row["__s"]["v"])
        total = int(row["rows"])
        columns: dict[str, dict[str, Any]] = {}
        table_row: dict[str, Any] = {
            "data_type": None,
            "count": total,
            "non_null_columns": [n for i, n in enumerate(names) if row[f"c{i}_count"]],
        }
        table_row.update(aggregates.table(row))
        if with_quality:
            table_row.update(_quality(bound, row, confusion.get(key), probabilities.get(key)))
        columns[TABLE_COLUMN] = table_row
        for i, name in enumerate(names):
            stats = {k[len(f"c{i}_") :]: v for k, v in row.items() if k.startswith(f"c{i}_")}
            values = _column_values(bound.columns[name], stats, total)
            values["frequent_items"] = items.get((key, i))
            values.update(aggregates.column(row, name))
            columns[name] = values
        out[key] = columns
    return out


def _aggregate_rows(bound: BoundMonitor, scan: Pass, selects: list[str]) -> list[dict[str, Any]]:
    """The aggregates of every group, the all-models groups included.

    Per model first; a window with one model has the same all-models group, copied rather than
    aggregated again (batch inference writes one model version per window, usually), and only
    the windows with several models are aggregated over all of them in a second query.
    """
    monitor = bound.config.key
    keys = _keys_sql(bound, scan)
    body = ", ".join(selects)
    if not scan.models:
        sql = f"WITH {keys} SELECT __w, NULL AS __m, 0 AS __all, __s, {body} FROM sliced "
        return _run(sql + "GROUP BY __w, __s", scan, "profile query failed", monitor)
    sql = f"WITH {keys} SELECT __w, __m, 0 AS __all, __s, {body} FROM sliced GROUP BY __w, __s, __m"
    rows = _run(sql, scan, "profile query failed", monitor)
    models: dict[Any, set[Any]] = {}
    for row in rows:
        models.setdefault(row["__w"], set()).add(row["__m"])
    shared = [w for w, found in models.items() if len(found) > 1]
    rows += [{**row, "__m": None, "__all": 1} for row in rows if len(models[row["__w"]]) == 1]
    if shared:
        chosen = [
            "__w IS NULL" if w is None else f"__w = TIMESTAMP '{w.isoformat(sep=' ')}'"
            for w in shared
        ]
        sql = (
            f"WITH {keys} SELECT __w, NULL AS __m, 1 AS __all, __s, {body} FROM sliced "
            f"WHERE {' OR '.join(chosen)} GROUP BY __w, __s"
        )
        rows += _run(sql, scan, "profile query failed", monitor)
    return rows


class _Aggregates:
    """The AGGREGATE custom metrics' select aliases, and reading them back from a row."""

    def __init__(self, bound: BoundMonitor) -> None:
        self.selects: list[str] = []
        self._by_column: dict[str, list[tuple[str, str]]] = {}
        for j, metric in enumerate(bound.config.custom_metrics("AGGREGATE")):
            for column in metric.input_columns:
                alias = f"m{j}_{len(self.selects)}"
                text = metric.definition.replace(
                    "{{input_column}}", "*" if column == TABLE_COLUMN else quote(column)
                )
                self.selects.append(f"({text}) AS {alias}")
                self._by_column.setdefault(column, []).append((metric.name, alias))

    def table(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {name: row[alias] for name, alias in self._by_column.get(TABLE_COLUMN, [])}

    def column(self, row: Mapping[str, Any], column: str) -> dict[str, Any]:
        return {name: row[alias] for name, alias in self._by_column.get(column, [])}


def _aggregate_selects(
    bound: BoundMonitor, scan: Pass, with_quality: bool
) -> tuple[list[str], _Aggregates]:
    levels = ", ".join(repr(i / NUM_QUANTILES) for i in range(NUM_QUANTILES + 1))
    quantile = "quantile_cont" if scan.exact else "approx_quantile"
    selects = ["count(*) AS rows"]
    for i, (name, data_type) in enumerate(bound.columns.items()):
        col, p = quote(name), f"c{i}_"
        distinct = (
            f"count(DISTINCT {col})"
            if scan.exact
            else f"least(approx_count_distinct({col}), count({col}))"
        )
        selects += [f"count({col}) AS {p}count", f"{distinct} AS {p}distinct"]
        kind = column_kind(data_type)
        if kind == "numeric":
            x = f"__x{i}"
            nan = f"count_if(isnan({col}))" if pa.types.is_floating(data_type) else "0"
            selects += [
                f"min({x}) AS {p}min",
                f"max({x}) AS {p}max",
                f"avg({x}) AS {p}avg",
                f"stddev_samp({x}) AS {p}stddev",
                f"{quantile}({x}, [{levels}]) AS {p}quantiles",
                f"count_if({x} = 0) AS {p}zeros",
                f"{nan} AS {p}nan",
            ]
        elif kind == "categorical" and not pa.types.is_boolean(_value_type(data_type)):
            n = f"length(CAST({col} AS VARCHAR))"
            selects += [f"min({n}) AS {p}min_len", f"max({n}) AS {p}max_len"]
            selects += [f"avg({n}) AS {p}avg_len"]
    aggregates = _Aggregates(bound)
    selects += aggregates.selects
    config = bound.config
    if with_quality and config.problem_type == "regression":
        y, yhat = quote(config.label_col or ""), quote(config.prediction_col or "")
        y, yhat = f"CAST({y} AS DOUBLE)", f"CAST({yhat} AS DOUBLE)"
        labelled = f" FILTER (WHERE {y} IS NOT NULL AND {yhat} IS NOT NULL)"
        selects += [
            f"count(*){labelled} AS q_count",
            f"sum(({y} - {yhat}) ^ 2){labelled} AS q_sse",
            f"sum(abs({y} - {yhat})){labelled} AS q_sae",
            f"sum(abs({y} - {yhat}) / greatest(abs({y}), {MAPE_EPSILON!r})){labelled} AS q_sape",
            f"var_pop({y}){labelled} AS q_var",
        ]
    return selects, aggregates


def _value_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _percent(part: int | None, whole: int) -> float | None:
    return None if part is None or whole == 0 else 100.0 * part / whole


def _column_values(data_type: pa.DataType, stats: Mapping[str, Any], rows: int) -> dict[str, Any]:
    count = int(stats["count"])
    distinct = int(stats["distinct"] or 0)
    numeric = column_kind(data_type) == "numeric"
    zeros = int(stats.get("zeros") or 0) if numeric else None
    nan = int(stats.get("nan") or 0) if numeric else None
    quantiles = stats.get("quantiles")
    num_nulls = rows - count
    return {
        "data_type": spark_type(data_type),
        "count": count,
        "num_nulls": num_nulls,
        "num_zeros": zeros,
        "num_nan": nan,
        "avg": stats.get("avg"),
        "min": stats.get("min"),
        "max": stats.get("max"),
        "stddev": stats.get("stddev"),
        "median": quantiles[NUM_QUANTILES // 2] if quantiles else None,
        "quantiles": quantiles,
        "distinct_count": distinct,
        "percent_null": _percent(num_nulls, rows),
        "percent_zeros": _percent(zeros, count),
        "percent_distinct": _percent(distinct, count),
        "percent_nan": _percent(nan, count),
        "min_length": _float(stats.get("min_len")),
        "max_length": _float(stats.get("max_len")),
        "avg_length": stats.get("avg_len"),
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _frequent_items(
    bound: BoundMonitor, scan: Pass
) -> dict[tuple[GroupKey, int], list[dict[str, Any]]]:
    """The ``TOP_K`` most frequent values of each categorical column in each group."""
    chosen = [
        (i, name)
        for i, (name, t) in enumerate(bound.columns.items())
        if column_kind(t) == "categorical"
    ]
    if not chosen:
        return {}
    indexes = ", ".join(str(i) for i, _ in chosen)
    values = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for _, n in chosen)
    sql = (
        f"WITH {_keys_sql(bound, scan)}, "
        f"items AS (SELECT __w, __m, __s, unnest([{indexes}]) AS __col, "
        f"unnest([{values}]) AS __item FROM sliced) "
        f"SELECT * FROM (SELECT __w, {_model_keys(scan)}, __s, __col, "
        f"__item, count(*) AS __n FROM items WHERE __item IS NOT NULL "
        f"GROUP BY {_grouping(scan, '__col', '__item')}) "
        f"QUALIFY row_number() OVER (PARTITION BY __w, __m, __all, __s, __col "
        f"ORDER BY __n DESC, __item) <= {TOP_K} ORDER BY __n DESC, __item"
    )
    out: dict[tuple[GroupKey, int], list[dict[str, Any]]] = {}
    for row in _run(sql, scan, "frequent items query failed", bound.config.key):
        key: GroupKey = (row["__w"], _model_of(row, scan), row["__s"]["k"], row["__s"]["v"])
        out.setdefault((key, row["__col"]), []).append(
            {"item": row["__item"], "count": int(row["__n"])}
        )
    return out


def _labelled(bound: BoundMonitor) -> str:
    config = bound.config
    y, yhat = quote(config.label_col or ""), quote(config.prediction_col or "")
    return f"{y} IS NOT NULL AND {yhat} IS NOT NULL"


def _confusion(bound: BoundMonitor, scan: Pass) -> dict[GroupKey, list[tuple[str, str, int]]]:
    """(prediction, label, count) of the labelled rows of each group, classes as text."""
    config = bound.config
    if config.problem_type != "classification" or config.label_col is None:
        return {}
    y, yhat = quote(config.label_col), quote(config.prediction_col or "")
    sql = (
        f"WITH {_keys_sql(bound, scan)} "
        f"SELECT __w, {_model_keys(scan)}, __s, "
        f"CAST({yhat} AS VARCHAR) AS __p, CAST({y} AS VARCHAR) AS __y, count(*) AS __n "
        f"FROM sliced WHERE {_labelled(bound)} GROUP BY {_grouping(scan, '__p', '__y')}"
    )
    merged: dict[GroupKey, dict[tuple[str, str], int]] = {}
    for row in _run(sql, scan, "confusion query failed", config.key):
        key: GroupKey = (row["__w"], _model_of(row, scan), row["__s"]["k"], row["__s"]["v"])
        pair = (canonical_class(row["__p"]), canonical_class(row["__y"]))
        counts = merged.setdefault(key, {})
        counts[pair] = counts.get(pair, 0) + int(row["__n"])
    return {k: [(p, y, n) for (p, y), n in v.items()] for k, v in merged.items()}


def _probabilities(bound: BoundMonitor, scan: Pass) -> dict[GroupKey, dict[str, Any]]:
    """ROC AUC and log loss of each group, from its labelled rows' class probabilities.

    One query reads the labels and one column per class (a map's values by key, or the one
    probability of a binary problem's greater class); groups are cut with Arrow's ``group_by``
    and scored with numpy, so no row becomes a Python object.
    """
    import numpy as np

    config = bound.config
    if config.problem_type != "classification" or not config.label_col or not config.proba_col:
        return {}
    y, proba = quote(config.label_col), quote(config.proba_col)
    is_map = pa.types.is_map(bound.types[config.proba_col])
    keys: list[Any] = []
    if is_map:
        found = _run(
            f"SELECT DISTINCT unnest(map_keys({proba})) AS k FROM src WHERE {proba} IS NOT NULL",
            scan,
            "probability query failed",
            config.key,
        )
        keys = sorted(row["k"] for row in found)
        columns = [
            f"list_extract(map_extract({proba}, {_literal(str(k))}), 1) AS __p{j}"
            for j, k in enumerate(keys)
        ]
    else:
        columns = [f"CAST({proba} AS DOUBLE) AS __p0"]
    model = "__m" if scan.models else "NULL"
    sql = (
        f"WITH {_keys_sql(bound, scan)} "
        f"SELECT __w, {model} AS __m, __s.k AS __sk, __s.v AS __sv, CAST({y} AS VARCHAR) AS __y, "
        f"{', '.join(columns)} FROM sliced WHERE {_labelled(bound)} AND {proba} IS NOT NULL"
    )
    try:
        table = duck.query(sql, {"src": scan.source})
    except LakeError as exc:
        raise MonitorError(
            f"quality monitor '{config.key}': probability query failed: {exc}"
        ) from None
    if table.num_rows == 0:
        return {}
    uniques = pc.unique(table["__y"])
    texts = [canonical_class(v) for v in uniques.to_pylist()]
    distinct = sorted(set(texts))
    if is_map:
        classes = sorted({canonical_class(k) for k in keys} | set(distinct))
    elif len(distinct) == 2:
        classes = distinct
    else:
        return {}  # one probability needs exactly two classes
    position = {c: i for i, c in enumerate(classes)}
    label_index = np.array([position[t] for t in texts])
    y_index = label_index[pc.index_in(table["__y"], uniques).to_numpy(zero_copy_only=False)]
    matrix = np.zeros((table.num_rows, len(classes)))
    if is_map:
        for j, k in enumerate(keys):
            values = table[f"__p{j}"].to_numpy(zero_copy_only=False)
            matrix[:, position[canonical_class(k)]] = np.nan_to_num(values.astype(np.float64))
    else:
        positive = table["__p0"].to_numpy(zero_copy_only=False).astype(np.float64)
        matrix[:, 1], matrix[:, 0] = positive, 1.0 - positive
    indexed = table.select(["__w", "__m", "__sk", "__sv"]).append_column(
        "__i", pa.array(np.arange(table.num_rows))
    )
    groupings = [["__w", "__sk", "__sv"]] + (
        [["__w", "__m", "__sk", "__sv"]] if scan.models else []
    )
    out: dict[GroupKey, dict[str, Any]] = {}
    for grouping in groupings:
        grouped = indexed.group_by(grouping, use_threads=False).aggregate([("__i", "list")])
        for row in grouped.to_pylist():
            rows = np.array(row["__i_list"])
            model_id = (
                row["__m"]
                if "__m" in grouping
                else (ALL_MODELS if scan.models else scan.all_models)
            )
            key: GroupKey = (row["__w"], model_id, row["__sk"], row["__sv"])
            out[key] = probability_scores(y_index[rows], matrix[rows])
    return out


def _quality(
    bound: BoundMonitor,
    row: Mapping[str, Any],
    confusion: list[tuple[str, str, int]] | None,
    probabilities: dict[str, Any] | None,
) -> dict[str, Any]:
    config = bound.config
    if config.problem_type == "regression":
        return regression_metrics(
            int(row["q_count"] or 0), row["q_sse"], row["q_sae"], row["q_sape"], row["q_var"]
        )
    values = classification_metrics(confusion or [])
    if values and config.proba_col:
        values.update(probabilities or {"roc_auc": None, "log_loss": None})
    return values
