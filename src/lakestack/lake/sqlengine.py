"""SQL over the catalog, in DuckDB, with Databricks SQL's three-level names and time travel.

DuckDB has no Delta Lake it can use offline (its ``delta`` extension is downloaded at run time),
so lakestack reads Delta through delta-rs and hands DuckDB Arrow datasets: each
``catalog.schema.table`` in a query (optionally with ``VERSION AS OF n`` or
``TIMESTAMP AS OF '...'``) is registered as a lazy dataset scan, with projection and filter
pushdown, under a private name. A name counts as a table reference only when its first part is
a catalog of the warehouse, so ``alias.column.field`` expressions are left alone.

Writes are the statements Databricks SQL users write in jobs, mapped onto the catalog:
``CREATE CATALOG|SCHEMA``, ``CREATE [OR REPLACE] TABLE ... AS SELECT``, ``CREATE TABLE (...)``,
``INSERT INTO | INSERT OVERWRITE``, ``DELETE FROM``, ``DROP TABLE|SCHEMA``. So are the statements
that look the catalog up, with Databricks' output columns: ``DESCRIBE [TABLE] [EXTENDED] t``,
``DESCRIBE HISTORY t [LIMIT n]``, ``SHOW CATALOGS``, ``SHOW SCHEMAS [IN c]``, ``SHOW TABLES [IN
c.s]``, ``SHOW COLUMNS IN t``, ``SHOW TBLPROPERTIES t``. Everything else runs in DuckDB itself
(on an in-memory database, or a scratch file for ``sql_task``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakestack.errors import LakeError
from lakestack.lake.arrow import spark_type
from lakestack.lake.views import register

if TYPE_CHECKING:
    import duckdb

    from lakestack.lake.catalog import Catalog

__all__ = ["SqlSession", "split_statements"]

_NAME = r"(?:`[^`]+`|[A-Za-z_][\w-]*)"
_TABLE = rf"{_NAME}\.{_NAME}\.{_NAME}"
_SCHEMA = rf"{_NAME}\.{_NAME}"
_TRAVEL = re.compile(
    r"\s+(?:FOR\s+SYSTEM_TIME\s+)?(?:VERSION\s+AS\s+OF\s+(\d+)|TIMESTAMP\s+AS\s+OF\s+'([^']+)')",
    re.IGNORECASE,
)
_REF = re.compile(rf"(?<![\w.`$]){_TABLE}(?![\w.`(])")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
LOCK_WAIT_SECONDS = 600.0
_LEADING_COMMENTS = re.compile(r"^(?:\s*(?:--[^\n]*|/\*.*?\*/))*", re.DOTALL)
_IDENTIFIER = re.compile(r"IDENTIFIER\(\s*(?:\$([A-Za-z_]\w*)|'([^']*)')\s*\)", re.IGNORECASE)
_COLON_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# Databricks SQL names a monitor table's column ``window``, a reserved word in DuckDB: quoted
# where it is a column (not a ``WINDOW w AS (...)`` clause, not Spark's ``window()`` function)
_WINDOW_COLUMN = re.compile(r"(?<![\w`\"$])window\b(?!\s*\()(?!\s+\w+\s+AS\s*\()", re.I)
# a double-quoted token right after a comparison is a string in Spark SQL (``= ":table"``),
# an identifier in DuckDB: such tokens are turned into string literals
_COMPARED = re.compile(r"(?:=|<>|<|>)\s*$")

_CREATE_CATALOG = re.compile(
    rf"^CREATE\s+CATALOG\s+(IF\s+NOT\s+EXISTS\s+)?({_NAME})(?:\s+COMMENT\s+'([^']*)')?$", re.I
)
_CREATE_SCHEMA = re.compile(
    rf"^CREATE\s+(?:SCHEMA|DATABASE)\s+(IF\s+NOT\s+EXISTS\s+)?({_SCHEMA})"
    r"(?:\s+COMMENT\s+'([^']*)')?$",
    re.I,
)
_DROP_SCHEMA = re.compile(
    rf"^DROP\s+(?:SCHEMA|DATABASE)\s+(IF\s+EXISTS\s+)?({_SCHEMA})(\s+CASCADE)?$", re.I
)
_DROP_TABLE = re.compile(rf"^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?({_TABLE})$", re.I)
_CTAS = re.compile(
    rf"^CREATE\s+(OR\s+REPLACE\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?({_TABLE})\s+AS\s+(.+)$",
    re.I | re.S,
)
_CREATE_COLUMNS = re.compile(
    rf"^CREATE\s+(OR\s+REPLACE\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?({_TABLE})\s*(\(.+\))"
    r"(?:\s+COMMENT\s+'([^']*)')?$",
    re.I | re.S,
)
_INSERT = re.compile(
    rf"^INSERT\s+(INTO|OVERWRITE)\s+(?:TABLE\s+)?({_TABLE})\s*(\([^)]*\))?\s*(.+)$", re.I | re.S
)
_DELETE = re.compile(rf"^DELETE\s+FROM\s+({_TABLE})(?:\s+WHERE\s+(.+))?$", re.I | re.S)
_DESCRIBE_HISTORY = re.compile(
    rf"^(?:DESCRIBE|DESC)\s+HISTORY\s+({_TABLE})(?:\s+LIMIT\s+(\d+))?$", re.I
)
_DESCRIBE = re.compile(
    rf"^(?:DESCRIBE|DESC)\s+(?:TABLE\s+)?(?:(EXTENDED|FORMATTED)\s+)?({_TABLE})$", re.I
)
_SHOW_CATALOGS = re.compile(r"^SHOW\s+CATALOGS$", re.I)
_SHOW_SCHEMAS = re.compile(rf"^SHOW\s+(?:SCHEMAS|DATABASES)(?:\s+(?:IN|FROM)\s+({_NAME}))?$", re.I)
_SHOW_TABLES = re.compile(rf"^SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+({_SCHEMA}))?$", re.I)
_SHOW_COLUMNS = re.compile(rf"^SHOW\s+COLUMNS\s+(?:IN|FROM)\s+({_TABLE})$", re.I)
_SHOW_PROPERTIES = re.compile(rf"^SHOW\s+TBLPROPERTIES\s+({_TABLE})$", re.I)


def split_statements(sql: str) -> list[str]:
    """Split a script on the semicolons outside strings, quoted names and comments.

    DuckDB's own splitter parses each statement, and Databricks SQL (``COMMENT '...'``,
    ``VERSION AS OF``) is not DuckDB SQL, so the split is lexical.
    """
    statements: list[str] = []
    current: list[str] = []
    position = 0
    for quoted in [*_QUOTED.finditer(sql), None]:
        end = quoted.start() if quoted else len(sql)
        code = sql[position:end]
        *done, rest = code.split(";")
        for piece in done:
            current.append(piece)
            statements.append("".join(current))
            current = []
        current.append(rest)
        if quoted:
            current.append(quoted.group(0))
            position = quoted.end()
    statements.append("".join(current))
    return [text for text in (s.strip() for s in statements) if _QUOTED.sub("", text).strip()]


def _unquote(name: str) -> str:
    return ".".join(part.strip("`") for part in re.findall(_NAME, name))


class SqlSession:
    """One DuckDB connection that sees the catalog's tables by their three-level names."""

    def __init__(self, catalog: Catalog | None, database: str = ":memory:") -> None:

        self._catalog = catalog
        self.con: duckdb.DuckDBPyConnection = _connect(database)
        self.con.execute("SET asof_loop_join_threshold = 0")  # see lakestack.lake.duck
        self._registered = 0

    @property
    def catalog(self) -> Catalog:
        """The catalog; an error when the session has none (a notebook outside any bundle)."""
        if self._catalog is None:
            raise LakeError(
                "no catalog here: run inside a bundle folder (or a job) to use catalog tables"
            )
        return self._catalog

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run every statement of ``sql``; return the last one's result (empty for writes)."""
        result = pa.table({})
        try:
            for statement in split_statements(sql):
                result = self.execute(statement, params)
        finally:
            self.close()
        return result

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one statement."""
        params = {str(k): v for k, v in (params or {}).items()}
        text = _LEADING_COMMENTS.sub("", statement).strip().rstrip(";").strip()
        # Databricks SQL writes parameters as :name; DuckDB binds $name
        text = _COLON_PARAM.sub(
            lambda m: f"${m.group(1)}" if m.group(1) in params else m.group(0), text
        )
        text = _IDENTIFIER.sub(lambda m: _identifier(m, params), text)
        for pattern, handler in (
            (_CREATE_CATALOG, self._create_catalog),
            (_CREATE_SCHEMA, self._create_schema),
            (_DROP_SCHEMA, self._drop_schema),
            (_DROP_TABLE, self._drop_table),
            (_CTAS, self._ctas),
            (_CREATE_COLUMNS, self._create_columns),
            (_INSERT, self._insert),
            (_DELETE, self._delete),
            (_DESCRIBE_HISTORY, self._describe_history),
            (_DESCRIBE, self._describe),
            (_SHOW_CATALOGS, self._show_catalogs),
            (_SHOW_SCHEMAS, self._show_schemas),
            (_SHOW_TABLES, self._show_tables),
            (_SHOW_COLUMNS, self._show_columns),
            (_SHOW_PROPERTIES, self._show_properties),
        ):
            match = pattern.match(text)
            if match:
                return handler(match, params)
        return self.query(text, params)

    def query(self, text: str, params: Mapping[str, Any]) -> pa.Table:
        """Run a statement in DuckDB with lake tables substituted; return its rows."""
        import duckdb

        rewritten = self._rewrite(text)
        used = self._bind(rewritten, params)
        try:
            cursor = self.con.execute(rewritten, used) if used else self.con.execute(rewritten)
            if cursor.description is None:
                return pa.table({})
            result = cursor.to_arrow_table()
        except duckdb.Error as exc:
            raise LakeError(f"SQL failed: {str(exc).strip().splitlines()[0]}") from None
        return result if isinstance(result, pa.Table) else pa.table(result)

    # rewriting ----------------------------------------------------------------------------

    def _rewrite(self, text: str) -> str:
        catalogs = set(self._catalog.list_catalogs()) if self._catalog is not None else set()
        out: list[str] = []
        position = 0
        # only code between quoted strings, quoted identifiers and comments is rewritten
        for quoted in _QUOTED.finditer(text):
            code = text[position : quoted.start()]
            out.append(self._rewrite_code(code, catalogs))
            out.append(_spark_literal(quoted.group(0), code))
            position = quoted.end()
        out.append(self._rewrite_code(text[position:], catalogs))
        return "".join(out)

    def _rewrite_code(self, code: str, catalogs: set[str]) -> str:
        code = _WINDOW_COLUMN.sub('"window"', code)
        out: list[str] = []
        position = 0
        for ref in _REF.finditer(code):
            name = _unquote(ref.group(0)).lower()
            if name.split(".")[0] not in catalogs:
                continue
            end = ref.end()
            version: int | None = None
            timestamp: str | None = None
            travel = _TRAVEL.match(code, end)
            if travel:
                version = int(travel.group(1)) if travel.group(1) else None
                timestamp = travel.group(2)
                end = travel.end()
            alias = self._register(name, version, timestamp)
            out.append(code[position : ref.start()])
            out.append(f"{alias} AS {_alias_for(name)}" if _needs_alias(code, end) else alias)
            position = end
        out.append(code[position:])
        return "".join(out)

    def _register(self, name: str, version: int | None, timestamp: str | None) -> str:
        table = self.catalog.table(name)
        self._registered += 1
        alias = f"__lake_{self._registered}"
        register(self.con, alias, table.dataset(version, timestamp), table.uri)
        return alias

    def _bind(self, text: str, params: Mapping[str, Any]) -> dict[str, Any]:
        names = set(re.findall(r"\$([A-Za-z_]\w*)", _QUOTED.sub("", text)))
        missing = sorted(names - set(params))
        if missing:
            raise LakeError(f"the query uses parameter '{missing[0]}', which has no value")
        return {name: params[name] for name in names}

    # statements ---------------------------------------------------------------------------

    def _create_catalog(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        self.catalog.create_catalog(_unquote(m.group(2)), m.group(3), exist_ok=bool(m.group(1)))
        return pa.table({})

    def _create_schema(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        self.catalog.create_schema(_unquote(m.group(2)), m.group(3), exist_ok=bool(m.group(1)))
        return pa.table({})

    def _drop_schema(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        name = _unquote(m.group(2))
        if m.group(1) and not self.catalog.schema_exists(name):
            return pa.table({})
        self.catalog.drop_schema(name, cascade=bool(m.group(3)))
        return pa.table({})

    def _drop_table(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        self.catalog.drop_table(_unquote(m.group(2)), missing_ok=bool(m.group(1)))
        return pa.table({})

    def _ctas(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        replace, if_not_exists, name, select = m.groups()
        name = _unquote(name)
        exists = self.catalog.table_exists(name)
        if exists and if_not_exists:
            return pa.table({})
        rows = self.query(select, params)
        if exists and replace:
            self.catalog.table(name).overwrite(rows, schema_mode="overwrite")
        else:
            self.catalog.create_table(name, rows)
        return pa.table({})

    def _create_columns(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        replace, if_not_exists, name, columns, comment = m.groups()
        name = _unquote(name)
        if self.catalog.table_exists(name):
            if if_not_exists:
                return pa.table({})
            if replace:
                self.catalog.drop_table(name)
        schema, not_null, keys = self._ddl_schema(columns)
        self.catalog.create_table(
            name, schema=schema, primary_keys=keys, not_null=not_null, comment=comment
        )
        return pa.table({})

    def _ddl_schema(self, columns: str) -> tuple[pa.Schema, list[str], list[str]]:
        import duckdb

        scratch = duckdb.connect(":memory:")
        try:
            scratch.execute(f"CREATE TABLE ddl {columns}")
            result = scratch.execute("SELECT * FROM ddl").to_arrow_table()
            schema = result.schema if isinstance(result, pa.Table) else pa.table(result).schema
            nullable = scratch.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'ddl' AND is_nullable = 'NO'"
            ).fetchall()
            keys = scratch.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = 'ddl' AND constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        except duckdb.Error as exc:
            raise LakeError(f"CREATE TABLE: {str(exc).strip().splitlines()[0]}") from None
        finally:
            scratch.close()
        primary = list(keys[0][0]) if keys else []
        not_null = [row[0] for row in nullable if row[0] not in primary]
        return schema, not_null, primary

    def _insert(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        mode, name, columns, source = m.groups()
        table = self.catalog.table(_unquote(name))
        rows = self.query(source, params)
        if columns:
            names = [c.strip().strip('`"') for c in columns.strip("()").split(",")]
            if len(names) != rows.num_columns:
                raise LakeError(
                    f"INSERT INTO {table.name}: {len(names)} columns named, "
                    f"{rows.num_columns} given"
                )
            rows = rows.rename_columns(names)
        elif rows.column_names != table.schema.names[: rows.num_columns]:
            # positional insert, as in SQL: the source's columns in the table's order
            rows = rows.rename_columns(table.schema.names[: rows.num_columns])
        if mode.upper() == "OVERWRITE":
            table.overwrite(rows)
        else:
            table.append(rows)
        return pa.table({"num_inserted_rows": [rows.num_rows]})

    def _delete(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        name, predicate = m.groups()
        table = self.catalog.table(_unquote(name))
        version = table.delete(predicate.strip() if predicate else None)
        # the commit's own metrics, rather than counting the table before and after
        commit = next((h for h in table.history(5) if h["version"] == version), None)
        deleted = int((commit or {}).get("metrics", {}).get("num_deleted_rows", 0))
        return pa.table({"num_affected_rows": [deleted]})

    # looking the catalog up ----------------------------------------------------------------

    def _describe(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        """``DESCRIBE [TABLE] [EXTENDED] t``: a row per column; EXTENDED adds the table's
        details under ``# Detailed Table Information``, as Databricks prints them."""
        name = _unquote(m.group(2))
        table = self.catalog.table(name)
        info = table.info
        types = {f.name: spark_type(f.type) for f in table.schema}
        rows: list[tuple[str, str, str | None]] = [
            (column, types.get(column, kind), None) for column, kind, _ in info.columns
        ]
        if info.partition_by:
            rows += [("# Partition Information", "", ""), ("# col_name", "data_type", "comment")]
            rows += [(c, types.get(c, ""), None) for c in info.partition_by]
        if m.group(1):
            catalog, schema, short = name.split(".")
            properties = ",".join(f"{k}={v}" for k, v in sorted(info.properties.items()))
            rows += [
                ("", "", ""),
                ("# Detailed Table Information", "", ""),
                ("Catalog", catalog, ""),
                ("Database", schema, ""),
                ("Table", short, ""),
                ("Type", "MANAGED", ""),
                ("Location", info.uri, ""),
                ("Provider", "delta", ""),
                ("Version", str(info.version), ""),
                *([("Comment", info.comment, "")] if info.comment else []),
                ("Table Properties", f"[{properties}]", ""),
            ]
            if info.primary_keys:
                keys = ", ".join(f"`{k}`" for k in info.primary_keys)
                rows += [("# Constraints", "", ""), (f"{short}_pk", f"PRIMARY KEY ({keys})", "")]
        return _rows(["col_name", "data_type", "comment"], rows)

    def _describe_history(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        """``DESCRIBE HISTORY t [LIMIT n]``: the table's commits, newest first."""
        limit = int(m.group(2)) if m.group(2) else None
        history = self.catalog.table(_unquote(m.group(1))).history(limit)
        return pa.table(
            {
                "version": pa.array([h["version"] for h in history], pa.int64()),
                "timestamp": pa.array(
                    [datetime.fromisoformat(h["timestamp"]) for h in history],
                    pa.timestamp("us", tz="UTC"),
                ),
                "operation": pa.array([h["operation"] for h in history], pa.string()),
                "operationParameters": _json_column(h["parameters"] for h in history),
                "operationMetrics": _json_column(h["metrics"] for h in history),
                "userMetadata": _json_column(h["metadata"] or None for h in history),
            }
        )

    def _show_catalogs(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        return _rows(["catalog"], [(c,) for c in self.catalog.list_catalogs()])

    def _show_schemas(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        """``SHOW SCHEMAS IN c``: the schema names; without a catalog, every ``catalog.schema``."""
        if m.group(1):
            names = [s.split(".", 1)[1] for s in self.catalog.list_schemas(_unquote(m.group(1)))]
        else:
            names = [s for c in self.catalog.list_catalogs() for s in self.catalog.list_schemas(c)]
        return _rows(["databaseName"], [(n,) for n in names])

    def _show_tables(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        """``SHOW TABLES IN c.s``: the schema's tables; without a schema, every table of the
        warehouse, its ``database`` written ``catalog.schema`` (there is no current schema)."""
        schema = _unquote(m.group(1)) if m.group(1) else None
        rows = []
        for info in self.catalog.list_tables(schema):
            catalog, database, table = info.name.split(".")
            rows.append((database if schema else f"{catalog}.{database}", table, False))
        return _rows(["database", "tableName", "isTemporary"], rows)

    def _show_columns(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        schema = self.catalog.table(_unquote(m.group(1))).schema
        return _rows(["col_name"], [(f.name,) for f in schema])

    def _show_properties(self, m: re.Match[str], params: Mapping[str, Any]) -> pa.Table:
        info = self.catalog.table(_unquote(m.group(1))).info
        return _rows(["key", "value"], sorted(info.properties.items()))


def _rows(columns: list[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """A result table from rows (each value typed by its column's first non-null value)."""
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})


def _json_column(values: Iterable[Any]) -> pa.Array:
    return pa.array(
        [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
    )


def _spark_literal(quoted: str, before: str) -> str:
    """A double-quoted token compared with something, as Spark reads it: a string literal."""
    if not quoted.startswith('"') or not _COMPARED.search(before):
        return quoted
    value = quoted[1:-1].replace('""', '"')
    return "'" + value.replace("'", "''") + "'"


def _connect(database: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open ``database``; a scratch file another task holds is waited for, not an error.

    DuckDB lets one process at a time open a database file, and parallel ``sql_task``s share
    the workspace's scratch file: they take turns.
    """
    import duckdb

    deadline = time.monotonic() + wait_seconds
    pause = 0.02
    while True:
        try:
            return duckdb.connect(database)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise LakeError(f"cannot open {database}: {str(exc).splitlines()[0]}") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _identifier(match: re.Match[str], params: Mapping[str, Any]) -> str:
    """``IDENTIFIER(:name)`` / ``IDENTIFIER('a.b.c')``: a table or column name from a value."""
    if match.group(1) is not None:
        if match.group(1) not in params:
            raise LakeError(f"IDENTIFIER(:{match.group(1)}): the parameter has no value")
        value = str(params[match.group(1)])
    else:
        value = match.group(2)
    if not re.fullmatch(rf"{_NAME}(?:\.{_NAME}){{0,2}}", value):
        raise LakeError(f"IDENTIFIER('{value}') is not a name: expected catalog.schema.table")
    return value


def _alias_for(name: str) -> str:
    return '"' + name.rsplit(".", 1)[1] + '"'


_CLAUSE = re.compile(
    r"\s*(?:$|\)|,|;|WHERE\b|GROUP\b|ORDER\b|LIMIT\b|JOIN\b|LEFT\b|RIGHT\b|INNER\b|FULL\b|"
    r"CROSS\b|ON\b|USING\b|UNION\b|EXCEPT\b|INTERSECT\b|HAVING\b|QUALIFY\b|WINDOW\b|ASOF\b|"
    r"POSITIONAL\b|NATURAL\b|ANTI\b|SEMI\b|OFFSET\b)",
    re.IGNORECASE,
)


def _needs_alias(code: str, end: int) -> bool:
    """True when no alias follows the table reference: keep ``table.column`` working."""
    return bool(_CLAUSE.match(code, end))
