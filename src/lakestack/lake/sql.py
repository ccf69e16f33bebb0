"""SQL through DuckDB, for ``sql_task`` and notebooks' ``%sql`` cells.

Each workspace has one DuckDB database file (``<workspace root>/sql.duckdb``) so tables created by
one task are there for the next. Parameters are bound by DuckDB as named parameters, written
``$name`` or ``:name`` (Databricks SQL style). The lake issue adds ``catalog.schema.table`` names
over Delta tables on top of this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lakestack.errors import TaskError

__all__ = ["run_sql_script", "split_statements"]

_COLON_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def split_statements(sql: str) -> list[str]:
    """Split a script into statements with DuckDB's own parser (comments and quotes respected)."""
    import duckdb

    try:
        return [str(stmt.query).strip() for stmt in duckdb.extract_statements(sql)]
    except duckdb.Error as exc:
        raise TaskError(f"SQL does not parse: {str(exc).splitlines()[0]}") from exc


def run_sql_script(
    sql: str,
    *,
    parameters: Mapping[str, str],
    workspace_root: Path,
    out: TextIO,
    max_rows: int = 50,
) -> list[tuple[Any, ...]]:
    """Run every statement of ``sql``; print each result; return the last one's rows."""
    import duckdb

    workspace_root.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[Any, ...]] = []
    # Databricks SQL writes parameters as :name; DuckDB binds $name
    sql = _COLON_PARAM.sub(
        lambda m: f"${m.group(1)}" if m.group(1) in parameters else m.group(0), sql
    )
    with duckdb.connect(str(workspace_root / "sql.duckdb")) as con:
        for number, statement in enumerate(split_statements(sql), start=1):
            text = statement
            used = {
                name: parameters[name]
                for name in re.findall(r"\$([A-Za-z_]\w*)", text)
                if name in parameters
            }
            missing = sorted(set(re.findall(r"\$([A-Za-z_]\w*)", text)) - set(used))
            if missing:
                raise TaskError(
                    f"statement {number} uses parameter '{missing[0]}' that sql_task.parameters "
                    "does not set"
                )
            try:
                relation = con.execute(text, used) if used else con.execute(text)
                rows = relation.fetchall() if relation.description else []
                columns = [d[0] for d in relation.description or []]
            except duckdb.Error as exc:
                raise TaskError(f"statement {number} failed: {str(exc).splitlines()[0]}") from exc
            if columns:
                out.write(" | ".join(columns) + "\n")
                for row in rows[:max_rows]:
                    out.write(" | ".join(str(v) for v in row) + "\n")
                if len(rows) > max_rows:
                    out.write(f"... {len(rows) - max_rows} more rows\n")
    return rows
