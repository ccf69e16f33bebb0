"""SQL scripts for ``sql_task`` and notebooks' ``%sql`` cells.

Statements run in a ``SqlSession``: ``catalog.schema.table`` names are the catalog's Delta
tables; unqualified tables live in a per-workspace DuckDB scratch file
(``<workspace root>/sql.duckdb``), so a scratch table created by one task is there for the next.
Parameters are bound as named parameters, written ``$name`` or ``:name`` (Databricks SQL style).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lakestack.errors import LakeError, TaskError

__all__ = ["run_sql_script", "sql_cell", "workspace_catalog"]


def workspace_catalog(workspace_root: Path) -> Any:
    """The catalog of a task's workspace: ``LAKESTACK_WAREHOUSE`` or ``<root>/warehouse``."""
    from lakestack.lake.catalog import Catalog, default_catalog

    if os.environ.get("LAKESTACK_WAREHOUSE"):
        return default_catalog()
    return Catalog(workspace_root / "warehouse")


def run_sql_script(
    sql: str,
    *,
    parameters: Mapping[str, str],
    workspace_root: Path,
    out: TextIO,
    max_rows: int = 50,
) -> list[tuple[Any, ...]]:
    """Run every statement of ``sql``; print each result; return the last one's rows.

    Raises:
        TaskError: A statement fails (its number and the first line of the error).
    """
    from lakestack.lake.sqlengine import SqlSession, split_statements

    workspace_root.mkdir(parents=True, exist_ok=True)
    session = SqlSession(workspace_catalog(workspace_root), str(workspace_root / "sql.duckdb"))
    rows: list[tuple[Any, ...]] = []
    try:
        for number, statement in enumerate(split_statements(sql), start=1):
            try:
                result = session.execute(statement, parameters)
            except LakeError as exc:
                raise TaskError(f"statement {number} failed: {exc}") from None
            columns = result.column_names
            rows = [tuple(row.values()) for row in result.to_pylist()]
            if columns:
                out.write(" | ".join(columns) + "\n")
                for row in rows[:max_rows]:
                    out.write(" | ".join(str(v) for v in row) + "\n")
                if len(rows) > max_rows:
                    out.write(f"... {len(rows) - max_rows} more rows\n")
    finally:
        session.close()
    return rows


def sql_cell(query: str) -> Any:
    """A notebook's ``%sql`` cell: run it, return the last result as pandas (None for writes).

    The workspace comes from the task's environment (``LAKESTACK_WORKSPACE_ROOT``), else the
    bundle in the current directory; outside any bundle the cell runs in plain DuckDB.
    """
    from lakestack.lake.sqlengine import SqlSession

    root = os.environ.get("LAKESTACK_WORKSPACE_ROOT")
    if root:
        catalog, scratch = workspace_catalog(Path(root)), str(Path(root) / "sql.duckdb")
    else:
        from lakestack.errors import ConfigError
        from lakestack.lake.catalog import default_catalog

        try:
            catalog, scratch = default_catalog(), ":memory:"
        except ConfigError:  # a notebook outside any bundle: plain DuckDB
            catalog, scratch = None, ":memory:"
    result = SqlSession(catalog, scratch).run(query)
    return result.to_pandas() if result.num_columns else None
