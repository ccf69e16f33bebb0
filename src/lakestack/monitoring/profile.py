"""Profile statistics of one window: the rows of a ``_profile_metrics`` table.

One window of a monitored table goes through one DuckDB query (through ``lakestack.lake.duck``)
that computes every column's statistics in a single scan, plus one query for the most frequent
values of the categorical columns. The result is one ``ColumnProfile`` per column and one for
the table (``column_name = ':table'``), with the Databricks column names, so the refresh only
adds the window, granularity, model id, slice and log type around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from lakestack.errors import MonitorError
from lakestack.lake import duck
from lakestack.lake.arrow import spark_type
from lakestack.monitoring.drift import column_kind

__all__ = ["NUM_QUANTILES", "TABLE_COLUMN", "TOP_K", "ColumnProfile", "profile_table", "spark_type"]

TABLE_COLUMN = ":table"
NUM_QUANTILES = 100
"""``quantiles`` holds the values at 0, 1/100, …, 1 (101 values, min to max), interpolated."""
TOP_K = 100
"""``frequent_items`` holds at most this many items, most frequent first."""


@dataclass(frozen=True)
class ColumnProfile:
    """One column's statistics in one window, named as in ``_profile_metrics``.

    ``count`` is the number of non-null values (the number of rows for ``:table``). Numeric
    statistics (``avg``, ``min``, ``max``, ``stddev``, ``median``, ``quantiles``) leave NaN out;
    ``stddev`` is the sample standard deviation, as Spark's ``stddev``. Percentages are in
    [0, 100]: ``percent_null`` of all rows, the others of the non-null values. A statistic that
    does not apply to the column's type is ``None``.
    """

    column_name: str
    data_type: str | None
    count: int
    num_nulls: int | None = None
    num_zeros: int | None = None
    num_nan: int | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    stddev: float | None = None
    median: float | None = None
    quantiles: list[float] | None = None
    distinct_count: int | None = None
    percent_null: float | None = None
    percent_zeros: float | None = None
    percent_distinct: float | None = None
    percent_nan: float | None = None
    min_length: float | None = None
    max_length: float | None = None
    avg_length: float | None = None
    frequent_items: list[dict[str, Any]] | None = None
    non_null_columns: list[str] | None = None

    def as_row(self) -> dict[str, Any]:
        """The profile-table columns of this profile as one row."""
        return asdict(self)


def profile_table(
    table: pa.Table,
    columns: Sequence[str] | None = None,
    *,
    num_quantiles: int = NUM_QUANTILES,
    top_k: int = TOP_K,
) -> list[ColumnProfile]:
    """Profile one window: the ``:table`` row first, then one row per column.

    Args:
        table: The window's rows.
        columns: Columns to profile, by default all of them.
        num_quantiles: ``quantiles`` holds the values at ``i / num_quantiles`` for
            ``i = 0 … num_quantiles``.
        top_k: Most frequent values kept in ``frequent_items`` (string and boolean columns).

    Raises:
        MonitorError: A named column is not in the table, or ``num_quantiles``/``top_k`` < 1.
    """
    if num_quantiles < 1 or top_k < 1:
        raise MonitorError(
            f"num_quantiles {num_quantiles} and top_k {top_k} must both be at least 1"
        )
    names = list(table.schema.names if columns is None else columns)
    for name in names:
        if name not in table.schema.names:
            raise MonitorError(
                f"column {name!r} is not in the table: its columns are "
                f"{', '.join(table.schema.names)}"
            )
    types = {name: table.schema.field(name).type for name in names}
    stats = _column_stats(table, names, types, num_quantiles)
    items = _frequent_items(table, [n for n in names if _is_categorical(types[n])], top_k)
    rows = table.num_rows
    profiles = [
        ColumnProfile(
            column_name=TABLE_COLUMN,
            data_type=None,
            count=rows,
            non_null_columns=[n for n in names if stats[n]["count"] > 0],
        )
    ]
    for name in names:
        profiles.append(_profile(name, types[name], stats[name], items.get(name), rows))
    return profiles


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_numeric(data_type: pa.DataType) -> bool:
    return column_kind(data_type) == "numeric"


def _is_categorical(data_type: pa.DataType) -> bool:
    return column_kind(data_type) == "categorical"


def _is_string(data_type: pa.DataType) -> bool:
    value_type = data_type.value_type if pa.types.is_dictionary(data_type) else data_type
    return _is_categorical(value_type) and not pa.types.is_boolean(value_type)


def _column_stats(
    table: pa.Table, names: list[str], types: dict[str, pa.DataType], num_quantiles: int
) -> dict[str, dict[str, Any]]:
    """Every column's aggregates in one scan; keys ``c<i>_<stat>`` map back to the columns."""
    levels = ", ".join(repr(i / num_quantiles) for i in range(num_quantiles + 1))
    selects = ["count(*) AS rows"]
    for i, name in enumerate(names):
        col, data_type, p = _quote(name), types[name], f"c{i}_"
        selects += [f"count({col}) AS {p}count", f"count(DISTINCT {col}) AS {p}distinct"]
        if _is_numeric(data_type):
            x = f"CAST({col} AS DOUBLE)"
            keep = f" FILTER (WHERE NOT isnan({x}))" if pa.types.is_floating(data_type) else ""
            selects += [
                f"min({x}){keep} AS {p}min",
                f"max({x}){keep} AS {p}max",
                f"avg({x}){keep} AS {p}avg",
                f"stddev_samp({x}){keep} AS {p}stddev",
                f"median({x}){keep} AS {p}median",
                f"quantile_cont({x}, [{levels}]){keep} AS {p}quantiles",
                f"count_if({x} = 0) AS {p}zeros",
                f"count_if(isnan({x})) AS {p}nan",
            ]
        elif _is_string(data_type):
            n = f"length(CAST({col} AS VARCHAR))"
            selects += [f"min({n}) AS {p}min_len", f"max({n}) AS {p}max_len"]
            selects += [f"avg({n}) AS {p}avg_len"]
    result = duck.query(f"SELECT {', '.join(selects)} FROM t", {"t": table}).to_pylist()[0]
    stats: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        prefix = f"c{i}_"
        stats[name] = {k[len(prefix) :]: v for k, v in result.items() if k.startswith(prefix)}
    return stats


def _frequent_items(
    table: pa.Table, names: list[str], top_k: int
) -> dict[str, list[dict[str, Any]]]:
    """The ``top_k`` most frequent values per column, ties broken by the value."""
    if not names:
        return {}
    branches = [
        f"(SELECT {i} AS col, CAST({_quote(name)} AS VARCHAR) AS item, count(*) AS count "
        f"FROM t WHERE {_quote(name)} IS NOT NULL GROUP BY item "
        f"ORDER BY count DESC, item LIMIT {top_k})"
        for i, name in enumerate(names)
    ]
    sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) ORDER BY col, count DESC, item"
    items: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for row in duck.query(sql, {"t": table}).to_pylist():
        items[names[row["col"]]].append({"item": row["item"], "count": row["count"]})
    return items


def _percent(part: int | None, whole: int) -> float | None:
    return None if part is None or whole == 0 else 100.0 * part / whole


def _profile(
    name: str,
    data_type: pa.DataType,
    stats: dict[str, Any],
    items: list[dict[str, Any]] | None,
    rows: int,
) -> ColumnProfile:
    count = int(stats["count"])
    num_nulls = rows - count
    distinct = int(stats["distinct"])
    numeric = _is_numeric(data_type)
    # count_if over no rows is NULL in DuckDB; a profile counts zero of them
    zeros = int(stats["zeros"] or 0) if numeric else None
    nan = int(stats["nan"] or 0) if numeric else None
    return ColumnProfile(
        column_name=name,
        data_type=spark_type(data_type),
        count=count,
        num_nulls=num_nulls,
        num_zeros=zeros,
        num_nan=nan,
        avg=stats.get("avg"),
        min=stats.get("min"),
        max=stats.get("max"),
        stddev=stats.get("stddev"),
        median=stats.get("median"),
        quantiles=stats.get("quantiles"),
        distinct_count=distinct,
        percent_null=_percent(num_nulls, rows),
        percent_zeros=_percent(zeros, count),
        percent_distinct=_percent(distinct, count),
        percent_nan=_percent(nan, count),
        min_length=_float(stats.get("min_len")),
        max_length=_float(stats.get("max_len")),
        avg_length=stats.get("avg_len"),
        frequent_items=items,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
