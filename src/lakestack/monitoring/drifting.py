"""Statistical drift between two windows' rows, for every model and slice, from Arrow arrays.

The refresh reads the rows of a window once (``read_window``: the drift columns, the model id
and each slicing expression's value), then ``group_drift`` compares it with the rows of the
previous window or of the baseline, group by group (all models and each model; the whole table
and each slice), column by column with ``column_drift``. Columns are compared on a thread pool:
the sorting and binning inside are numpy's, which runs without the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import LakeError, MonitorError
from lakestack.lake import duck
from lakestack.monitoring.drift import ColumnDrift, DriftRule, column_drift
from lakestack.monitoring.monitor import ALL_MODELS, BoundMonitor
from lakestack.monitoring.windowed import quote

__all__ = ["DriftKey", "Rows", "group_drift", "read_window"]

DriftKey = tuple[str | None, str | None, str | None, str]
"""(model id or ``*``, slice key, slice value, column) of one drift row."""

MODEL = "__m"


@dataclass(frozen=True)
class Rows:
    """One window's rows: the drift columns, ``__m`` (model id) and ``__s<i>`` per slice."""

    table: pa.Table
    has_models: bool

    def groups(
        self, exprs: list[str], models: bool
    ) -> Iterator[tuple[str | None, str | None, str | None, pa.Table]]:
        """(model, slice key, slice value, rows) for the whole table and each model and slice."""
        model_sets: list[tuple[str | None, pa.Table]] = [
            (ALL_MODELS if models else None, self.table)
        ]
        if models and self.has_models:
            column = self.table[MODEL]
            for value in pc.unique(column).to_pylist():
                if value is not None:
                    model_sets.append((value, self.table.filter(pc.equal(column, value))))
        for model, rows in model_sets:
            yield model, None, None, rows
            for i, expr in enumerate(exprs):
                column = rows[f"__s{i}"]
                for value in pc.unique(column).to_pylist():
                    if value is not None:
                        yield model, expr, value, rows.filter(pc.equal(column, value))


def read_window(
    bound: BoundMonitor, source: Any, where: str, *, models: bool, columns: list[str]
) -> Rows:
    """The drift columns of the rows matching ``where``, with model id and slice values.

    Raises:
        MonitorError: A slicing expression that DuckDB cannot evaluate.
    """
    config = bound.config
    selects = [quote(c) for c in columns]
    model_col = config.model_id_col
    if models and model_col:
        selects.append(f"CAST({quote(model_col)} AS VARCHAR) AS {MODEL}")
    for i, expr in enumerate(config.spec.slicing_exprs):
        selects.append(f"CAST(({expr}) AS VARCHAR) AS __s{i}")
    sql = f"SELECT {', '.join(selects) or '1 AS __one'} FROM src" + (
        f" WHERE {where}" if where else ""
    )
    try:
        table = duck.query(sql, {"src": source})
    except LakeError as exc:
        raise MonitorError(
            f"quality monitor '{config.key}': reading a window failed: {exc}"
        ) from None
    return Rows(table, models and model_col is not None)


def group_drift(
    bound: BoundMonitor,
    current: Rows,
    reference: Rows,
    *,
    models: bool,
    columns: list[str],
    rule: DriftRule | None = None,
    fallback_to_all: bool = False,
) -> dict[DriftKey, ColumnDrift]:
    """``column_drift`` of every column in every group that both sides have.

    Args:
        current: The window's rows.
        reference: The previous window's rows, or the baseline's.
        models: Compare per model as well as over all models (``*``).
        columns: The columns to compare (each must be in both tables).
        fallback_to_all: A group the reference lacks is compared with the reference's group
            over all models (a baseline without that model, or without a model column).
    """
    exprs = list(bound.config.spec.slicing_exprs)
    jobs: list[tuple[DriftKey, pa.ChunkedArray, pa.ChunkedArray]] = []
    same: dict[DriftKey, DriftKey] = {}
    reference_groups: dict[tuple[str | None, str | None, str | None], pa.Table] = {}
    for model, key, value, rows in reference.groups(exprs, models):
        reference_groups[(model, key, value)] = rows
    current_all: dict[tuple[str | None, str | None], int] = {}
    for model, key, value, rows in current.groups(exprs, models):
        ref = reference_groups.get((model, key, value))
        if ref is None and fallback_to_all:
            ref = reference_groups.get((ALL_MODELS, key, value))
        if ref is None:
            continue
        if model == ALL_MODELS:
            current_all[(key, value)] = rows.num_rows
        everything = reference_groups.get((ALL_MODELS, key, value))
        # one model in both windows: its group holds the same rows as the all-models group
        if (
            model != ALL_MODELS
            and current_all.get((key, value)) == rows.num_rows
            and everything is not None
            and everything.num_rows == ref.num_rows
        ):
            for column in columns:
                same[(model, key, value, column)] = (ALL_MODELS, key, value, column)
            continue
        for column in columns:
            jobs.append(((model, key, value, column), ref[column], rows[column]))
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(
            lambda job: column_drift(job[1], job[2], column_name=job[0][3], rule=rule), jobs
        )
        found = {job[0]: result for job, result in zip(jobs, results, strict=True)}
    return found | {key: found[alias] for key, alias in same.items() if alias in found}
