"""One batch of raw files to one Arrow table in the target table's schema.

The table's schema is the contract. A column the table does not have yet is a new column, typed
by inference over the batch (or by a schema hint) and added to the table with the batch. A value
that does not fit its column's type, a column whose name matches a table column only when case
is ignored, and whatever the reader rescued while parsing go to the rescued data column as one
JSON object per row, Auto Loader's format: ``{"amount": "12,5", "_file_path": "/Volumes/..."}``.
The other columns of that row are kept. No row is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from lakestack.errors import SchemaMismatchError
from lakestack.lake.ingest_read import RawFile
from lakestack.lake.ingest_schema import TIMESTAMP
from lakestack.lake.ingest_types import convert, infer_type, raw_value, unify_types

__all__ = ["METADATA_COLUMN", "METADATA_TYPE", "Batch", "build_batch", "target_schema"]

METADATA_COLUMN = "_metadata"
METADATA_TYPE = pa.struct(
    [
        pa.field("file_path", pa.string()),
        pa.field("file_name", pa.string()),
        pa.field("file_size", pa.int64()),
        pa.field("file_modification_time", TIMESTAMP),
        pa.field("ingestion_time", TIMESTAMP),
    ]
)


@dataclass
class Batch:
    """A batch ready to append: its rows, the columns it adds, rows with rescued data."""

    data: pa.Table
    new_columns: list[str]
    rescued_rows: int


def build_batch(
    raws: Sequence[RawFile],
    table_schema: pa.Schema | None,
    *,
    table: str,
    hints: dict[str, pa.DataType],
    rescued_column: str | None,
    include_metadata: bool,
) -> Batch:
    """Convert ``raws`` to one table in ``table_schema`` plus the batch's new columns.

    Raises:
        SchemaMismatchError: a value does not fit its column and there is no rescued data
            column to keep it; or the table's rescued data column is not a string column.
    """
    schema = target_schema(
        raws,
        table_schema,
        table=table,
        hints=hints,
        rescued_column=rescued_column,
        include_metadata=include_metadata,
    )
    known = set(table_schema.names) if table_schema is not None else set()
    new_columns = [name for name in schema.names if name not in known]
    now = datetime.now(timezone.utc)
    parts = [_convert_file(raw, schema, rescued_column, now, table) for raw in raws]
    data = pa.concat_tables([p for p, _ in parts]) if parts else schema.empty_table()
    return Batch(data, new_columns, sum(count for _, count in parts))


def target_schema(
    raws: Sequence[RawFile],
    table_schema: pa.Schema | None,
    *,
    table: str,
    hints: dict[str, pa.DataType],
    rescued_column: str | None,
    include_metadata: bool,
) -> pa.Schema:
    """The table's schema plus the batch's new columns (and the rescued and metadata columns).

    Raises:
        SchemaMismatchError: the table's rescued data column is not a string column.
    """
    fields = list(table_schema) if table_schema is not None else []
    reserved = [rescued_column, METADATA_COLUMN if include_metadata else None]
    taken = {f.name.lower() for f in fields} | {n.lower() for n in reserved if n}
    new: dict[str, pa.DataType] = {}
    for raw in raws:
        for name, values in raw.columns.items():
            if name.lower() in taken and name not in new:
                continue  # a table column, or a case variant of one (rescued, as Auto Loader)
            seen = infer_type(raw.kind, values)
            new[name] = unify_types(new[name], seen) if name in new else seen
            taken.add(name.lower())
    fields.extend(pa.field(name, hints.get(name, t)) for name, t in new.items())
    names = {f.name for f in fields}
    if rescued_column and rescued_column not in names:
        fields.append(pa.field(rescued_column, pa.string()))
    if include_metadata and METADATA_COLUMN not in names:
        fields.append(pa.field(METADATA_COLUMN, METADATA_TYPE))
    schema = pa.schema(fields)
    if rescued_column and not pa.types.is_string(schema.field(rescued_column).type):
        raise SchemaMismatchError(
            f"table {table} has a column {rescued_column} of type "
            f"{schema.field(rescued_column).type}, but it is the rescued data column and must "
            "be a string; pass another rescued_data_column"
        )
    return schema


def _convert_file(
    raw: RawFile, schema: pa.Schema, rescued_column: str | None, now: datetime, table: str
) -> tuple[pa.Table, int]:
    n = raw.num_rows
    rescued: dict[int, dict[str, Any]] = {row: dict(fields) for row, fields in raw.rescued.items()}
    by_lower = {f.name.lower(): f.name for f in schema}
    exact = set(schema.names)
    with_metadata = METADATA_COLUMN in exact and schema.field(METADATA_COLUMN).type == METADATA_TYPE
    generated = {rescued_column, METADATA_COLUMN if with_metadata else None} - {None}
    for name, values in raw.columns.items():
        if name in exact and name not in generated:
            continue
        if name.lower() in by_lower:  # a case variant, or a reserved column name in the file
            for row in range(n):
                value = raw_value(raw.kind, values, row)
                if value is not None:
                    rescued.setdefault(row, {})[name] = value
    arrays: list[pa.Array] = []
    for f in schema:
        values = raw.columns.get(f.name)
        if values is None or f.name in generated:
            arrays.append(pa.nulls(n, f.type))
            continue
        array, bad = convert(raw.kind, values, f.type)
        for row in bad:
            value = raw_value(raw.kind, values, row)
            if value is not None:
                rescued.setdefault(row, {})[f.name] = value
        arrays.append(array)
    if rescued and rescued_column is None:
        row, fields = min(rescued.items())
        column, value = next(iter(fields.items()))
        raise SchemaMismatchError(
            f"{raw.entry.display} row {row + 1}: value {value!r} of column {column} does not fit "
            f"table {table}; set rescued_data_column to keep such values instead"
        )
    if rescued_column:
        texts: list[str | None] = [None] * n
        for row, fields in rescued.items():
            fields["_file_path"] = raw.entry.display
            texts[row] = json.dumps(fields, default=str, ensure_ascii=False)
        arrays[schema.get_field_index(rescued_column)] = pa.array(texts, type=pa.string())
    if with_metadata:
        arrays[schema.get_field_index(METADATA_COLUMN)] = _metadata(raw, n, now)
    return pa.Table.from_arrays(arrays, schema=schema), len(rescued)


def _metadata(raw: RawFile, n: int, now: datetime) -> pa.Array:
    entry = raw.entry
    modified = datetime.fromtimestamp(entry.mtime_ns / 1e9, tz=timezone.utc)
    value = {
        "file_path": entry.display,
        "file_name": entry.display.rsplit("/", 1)[-1],
        "file_size": entry.size,
        "file_modification_time": modified,
        "ingestion_time": now,
    }
    return pa.repeat(pa.scalar(value, type=METADATA_TYPE), n)
