"""Turn what users hand to a write (pandas, Polars, Arrow) into Arrow that fits a table.

Delta stores timestamps in microseconds; pandas hands out nanoseconds. Data is cast to the
table's schema here, column by column, so that a value that does not fit names its column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import ConstraintError, SchemaMismatchError

__all__ = ["as_arrow", "check_not_null", "fit_to_schema", "normalize_schema", "spark_type"]


def as_arrow(data: Any) -> pa.Table:
    """An Arrow table from a pandas or Polars DataFrame, Arrow data or an Arrow stream.

    Raises:
        SchemaMismatchError: ``data`` is none of these.
    """
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif type(data).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(data, preserve_index=False)
    elif type(data).__module__.startswith("polars"):
        table = data.to_arrow()
    elif hasattr(data, "__arrow_c_stream__"):
        table = pa.table(data)
    else:
        raise SchemaMismatchError(
            f"cannot write a {type(data).__name__}; pass a pandas or Polars DataFrame or Arrow data"
        )
    return table.replace_schema_metadata(None)


def _normal_type(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(dtype) and dtype.unit != "us":
        return pa.timestamp("us", tz=dtype.tz)
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_dictionary(dtype):
        return _normal_type(dtype.value_type)
    if pa.types.is_date64(dtype):
        return pa.date32()
    return dtype


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with the types Delta stores (microsecond timestamps, plain strings)."""
    return pa.schema(
        [pa.field(f.name, _normal_type(f.type), nullable=f.nullable) for f in schema],
    )


def fit_to_schema(
    table: pa.Table, schema: pa.Schema, *, table_name: str, allow_new: bool = False
) -> pa.Table:
    """Cast ``table`` to ``schema``: same column order, missing nullable columns as nulls.

    Args:
        table: The data to write.
        schema: The table's schema.
        table_name: For messages.
        allow_new: Keep columns the table does not have (schema evolution) at the end.

    Raises:
        SchemaMismatchError: An unknown column (without ``allow_new``), a missing NOT NULL
            column, or a value that cannot be cast to its column's type.
    """
    names = set(table.column_names)
    extra = [n for n in table.column_names if n not in schema.names]
    if extra and not allow_new:
        raise SchemaMismatchError(
            f"table {table_name} has no column '{extra[0]}' (columns: "
            f"{', '.join(schema.names)}); drop it, or write with schema_mode='merge' to add it"
        )
    columns: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for field in schema:
        if field.name not in names:
            if not field.nullable:
                raise SchemaMismatchError(
                    f"table {table_name}: the data has no column '{field.name}', which is NOT NULL"
                )
            columns.append(pa.nulls(table.num_rows, field.type))
            fields.append(field)
            continue
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatchError(
                    f"table {table_name}: column '{field.name}' is {field.type}, and the data's "
                    f"{table.column(field.name).type} does not fit ({str(exc).splitlines()[0]})"
                ) from None
        columns.append(column)
        fields.append(field)
    for name in extra:
        column = table.column(name)
        dtype = _normal_type(column.type)
        columns.append(column.cast(dtype) if dtype != column.type else column)
        fields.append(pa.field(name, dtype))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def check_not_null(table: pa.Table, columns: Sequence[str], *, table_name: str) -> None:
    """Raise ConstraintError when a NOT NULL (or primary-key) column holds a null."""
    for name in columns:
        if name in table.column_names and table.column(name).null_count:
            count = table.column(name).null_count
            raise ConstraintError(
                f"table {table_name}: column '{name}' is NOT NULL and {count} row(s) of the data "
                "have no value; nothing was written"
            )


def iter_chunks(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    """``table`` in slices of at most ``rows`` rows."""
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def distinct_count(table: pa.Table, keys: Sequence[str]) -> int:
    """The number of distinct key tuples in ``table``."""
    if len(keys) == 1:
        return int(pc.count_distinct(table.column(keys[0]), mode="all").as_py())
    return int(table.select(list(keys)).group_by(list(keys)).aggregate([]).num_rows)


_SPARK_NAMES = {
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.uint8(): "smallint",
    pa.uint16(): "int",
    pa.uint32(): "bigint",
    pa.uint64(): "decimal(20,0)",
    pa.float16(): "float",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.string_view(): "string",
    pa.binary(): "binary",
    pa.large_binary(): "binary",
    pa.binary_view(): "binary",
    pa.date32(): "date",
    pa.null(): "void",
}


def spark_type(data_type: pa.DataType) -> str:
    """The Spark SQL name of an Arrow type, as Databricks prints it: ``bigint``,
    ``array<string>``, ``struct<a:int,b:double>``, ``map<string,bigint>``."""
    if pa.types.is_dictionary(data_type):
        return spark_type(data_type.value_type)
    name = _SPARK_NAMES.get(data_type)
    if name is not None:
        return name
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "timestamp" if data_type.tz else "timestamp_ntz"
    if pa.types.is_map(data_type):
        return f"map<{spark_type(data_type.key_type)},{spark_type(data_type.item_type)}>"
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return f"array<{spark_type(data_type.value_type)}>"
    if pa.types.is_struct(data_type):
        fields = ",".join(f"{f.name}:{spark_type(f.type)}" for f in data_type)
        return f"struct<{fields}>"
    return str(data_type)
