"""Custom metrics of a monitor that are computed from other metrics: DERIVED and DRIFT.

AGGREGATE metrics are SQL aggregates over a window's rows and are computed in the profile pass
(``lakestack.monitoring.windowed``). The two other kinds are SQL expressions over metrics:

- DERIVED: an expression over the metrics of the same profile row, e.g.
  ``sqrt(squared_sum / count)``; ``{{input_column}}`` is the row's column name as a string.
- DRIFT: an expression over the metrics of a window's row and of its comparison row (the
  previous window or the baseline), written ``{{current_df}}.<metric>`` and
  ``{{base_df}}.<metric>``, e.g. ``{{current_df}}.avg - {{base_df}}.avg``.

Each is evaluated by DuckDB over an Arrow table of the rows, one query per kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lakestack.bundle.specs.monitors import CustomMetricSpec
from lakestack.errors import LakeError, MonitorError
from lakestack.lake import duck

__all__ = ["derived_metrics", "drift_metrics"]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _applies(metric: CustomMetricSpec, column: str = "column_name") -> str:
    names = ", ".join(_literal(c) for c in metric.input_columns)
    return f"{column} IN ({names})"


def _evaluate(
    monitor: str, metrics: Sequence[CustomMetricSpec], sql: str, relations: dict[str, Any]
) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = duck.query(sql, relations).to_pylist()
    except LakeError as exc:
        shown = ", ".join(m.name for m in metrics)
        raise MonitorError(
            f"quality monitor '{monitor}': custom metric(s) {shown} cannot be evaluated: {exc}; "
            "fix the definition"
        ) from None
    return rows


def derived_metrics(
    monitor: str, metrics: Sequence[CustomMetricSpec], rows: list[dict[str, Any]]
) -> None:
    """Add each DERIVED metric to the profile ``rows`` it applies to (their ``column_name`` is
    one of its ``input_columns``), in place; other rows get None.

    Raises:
        MonitorError: A definition DuckDB cannot evaluate over the rows' metrics.
    """
    if not metrics or not rows:
        return
    table = _metric_table(rows)
    selects = [
        f"CASE WHEN {_applies(m)} THEN ("
        f"{m.definition.replace('{{input_column}}', 'column_name')}) END AS {_alias(i)}"
        for i, m in enumerate(metrics)
    ]
    sql = f"SELECT {', '.join(selects)} FROM rows ORDER BY __i"
    for row, values in zip(rows, _evaluate(monitor, metrics, sql, {"rows": table}), strict=True):
        for i, metric in enumerate(metrics):
            row[metric.name] = values[_alias(i)]


def drift_metrics(
    monitor: str,
    metrics: Sequence[CustomMetricSpec],
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Each DRIFT metric for each (current, comparison) pair of profile rows.

    Returns:
        One mapping of metric name to value per pair, in order (None where the pair's column is
        not one of the metric's ``input_columns``).

    Raises:
        MonitorError: A definition DuckDB cannot evaluate.
    """
    if not metrics:
        return [{} for _ in pairs]
    if not pairs:
        return []
    current = _metric_table([c for c, _ in pairs])
    base = _metric_table([b for _, b in pairs])
    selects = []
    for metric in metrics:
        text = metric.definition.replace("{{current_df}}", "cur").replace("{{base_df}}", "base")
        text = text.replace("{{input_column}}", "cur.column_name")
        selects.append(f"CASE WHEN {_applies(metric, 'cur.column_name')} THEN ({text}) END")
    sql = (
        f"SELECT {', '.join(f'{s} AS {_alias(i)}' for i, s in enumerate(selects))} "
        "FROM cur JOIN base USING (__i) ORDER BY __i"
    )
    results = _evaluate(monitor, metrics, sql, {"cur": current, "base": base})
    return [{m.name: r[_alias(i)] for i, m in enumerate(metrics)} for r in results]


def _alias(index: int) -> str:
    return f"__metric_{index}"


def _metric_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows' scalar metrics as a table with a row index ``__i`` (nested values left out)."""
    names = list(dict.fromkeys(k for row in rows for k in row if k != "window"))
    data: dict[str, Any] = {"__i": list(range(len(rows)))}
    for name in names:
        values = [r.get(name) for r in rows]
        if any(isinstance(v, (list, dict)) for v in values):
            continue
        try:
            data[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue
    return pa.table(data)
