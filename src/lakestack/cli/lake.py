"""``lakestack tables`` and ``lakestack sql``: the catalog from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lakestack.cli.common import bundle_options, command, open_workspace, parse_pairs

if TYPE_CHECKING:
    from lakestack.console import Console

__all__ = ["sql", "tables"]


@click.group()
def tables() -> None:
    """The Delta tables of the target's catalog."""


@tables.command("list")
@click.argument("schema", required=False)
@bundle_options
@command
def tables_list(
    console: Console,
    schema: str | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """List the tables of SCHEMA (catalog.schema), or of every schema."""
    with open_workspace(console, target, variables) as ws:
        infos = ws.catalog.list_tables(schema)
        rows = [
            {
                "name": i.name,
                "columns": len(i.columns),
                "version": i.version,
                "primary_keys": ", ".join(i.primary_keys),
                "comment": i.comment or "",
            }
            for i in infos
        ]
        if output == "json":
            console.result([i.to_dict() for i in infos])
        else:
            console.table(
                rows,
                columns=["name", "columns", "version", "primary_keys", "comment"],
                title="Tables",
            )


@tables.command("show")
@click.argument("name")
@bundle_options
@command
def tables_show(
    console: Console, name: str, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Show a table's columns, keys, comment, tags and properties."""
    with open_workspace(console, target, variables) as ws:
        info = ws.catalog.table(name).info.to_dict()
        if output == "json":
            console.result(info)
            return
        columns = info.pop("columns")
        console.result({k: v for k, v in info.items() if v not in (None, [], {})}, title=name)
        keys = set(info["primary_keys"])
        console.table(
            [
                {
                    "column": c["name"],
                    "type": c["type"],
                    "null": "" if c["nullable"] else "NOT NULL",
                    "key": "PK" if c["name"] in keys else "",
                }
                for c in columns
            ],
            columns=["column", "type", "null", "key"],
            title="Columns",
        )


@tables.command("history")
@click.argument("name")
@click.option("--limit", type=int, default=None, help="Only the newest N versions.")
@bundle_options
@command
def tables_history(
    console: Console,
    name: str,
    limit: int | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Show a table's versions, newest first."""
    with open_workspace(console, target, variables) as ws:
        history = ws.catalog.table(name).history(limit)
        if output == "json":
            console.result(history)
            return
        rows = [
            {
                "version": h["version"],
                "timestamp": h["timestamp"],
                "operation": h["operation"],
                "parameters": {
                    k: v
                    for k, v in h["parameters"].items()
                    if v not in ("[]", None) and k not in {"metadata", "protocol", "location"}
                },
            }
            for h in history
        ]
        console.table(
            rows, columns=["version", "timestamp", "operation", "parameters"], title="History"
        )


@click.command("sql")
@click.argument("query", required=False)
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read the SQL from a file.",
)
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="A :name parameter (repeatable)."
)
@click.option(
    "--max-rows", type=int, default=100, show_default=True, help="Rows to print (text output)."
)
@bundle_options
@command
def sql(
    console: Console,
    query: str | None,
    file: str | None,
    params: tuple[str, ...],
    max_rows: int,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Run SQL over the catalog (DuckDB): catalog.schema.table names, VERSION AS OF n."""
    from lakestack.errors import UsageError

    if (query is None) == (file is None):
        raise UsageError("give the SQL as an argument or with --file, not both")
    text = Path(file).read_text(encoding="utf-8") if file else str(query)
    with open_workspace(console, target, variables) as ws:
        result = ws.catalog.sql(text, parse_pairs(params, "--param"))
        rows: list[dict[str, Any]] = result.slice(
            0, max_rows if output != "json" else None
        ).to_pylist()
        if output == "json":
            console.result(rows)
        elif result.num_columns:
            console.table(rows, columns=result.column_names, title="")
            if result.num_rows > max_rows:
                console.info(f"... {result.num_rows - max_rows} more rows (--max-rows)")
        else:
            console.info("OK")
