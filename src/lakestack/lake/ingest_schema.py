"""Table column types that ingestion gives or accepts: schema hints and Delta-compatible types.

``schemaHints`` in Auto Loader are a DDL column list (``"id bigint, amount decimal(10,2)"``); they
fix the type of named columns when the schema is inferred. Parquet files may hold Arrow types a
Delta table cannot (unsigned integers, nanosecond timestamps, times); ``normalize_arrow`` turns
them into the nearest Delta type without losing values.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa

from lakestack.errors import UsageError

__all__ = ["TIMESTAMP", "castable_to_string", "delta_type", "normalize_arrow", "parse_schema_hints"]

# Databricks `timestamp` is an instant (UTC); naive text is read as UTC, the session default
TIMESTAMP = pa.timestamp("us", tz="UTC")

_SQL_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "tinyint": pa.int8(),
    "byte": pa.int8(),
    "smallint": pa.int16(),
    "short": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": TIMESTAMP,
    "timestamp_ltz": TIMESTAMP,
    "timestamp_ntz": pa.timestamp("us"),
    "binary": pa.binary(),
}
_DECIMAL = re.compile(r"^(?:decimal|dec|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")


def parse_schema_hints(hints: str | dict[str, str] | None) -> dict[str, pa.DataType]:
    """Parse ``"id bigint, amount decimal(10,2)"`` (Auto Loader's ``schemaHints``) into types.

    Args:
        hints: A DDL-style column list, a ``{column: sql_type}`` mapping, or None.

    Returns:
        Arrow types by column name, in the order given.

    Raises:
        UsageError: an entry without a type, or a type that is not a supported SQL type.
    """
    if not hints:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(hints, dict):
        pairs = [(name, sql) for name, sql in hints.items()]
    else:
        for entry in _split_top_level(hints):
            name, _, sql = entry.strip().partition(" ")
            if not name or not sql.strip():
                raise UsageError(
                    f"schema hint '{entry.strip()}' needs a column and a type, "
                    "e.g. 'id bigint, amount double'"
                )
            pairs.append((name.strip("`"), sql))
    return {name: _sql_type(name, sql.strip()) for name, sql in pairs}


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "(<":
            depth += 1
        elif char in ")>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part for part in parts if part.strip()]


def _sql_type(column: str, sql: str) -> pa.DataType:
    lowered = sql.lower()
    if lowered in _SQL_TYPES:
        return _SQL_TYPES[lowered]
    match = _DECIMAL.match(lowered)
    if match:
        precision = int(match.group(1) or 10)
        scale = int(match.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise UsageError(
                f"schema hint for '{column}': {sql} needs 1 <= scale <= precision <= 38"
            )
        return pa.decimal128(precision, scale)
    known = ", ".join(sorted({*_SQL_TYPES, "decimal(p,s)"}))
    raise UsageError(f"schema hint for '{column}': unsupported type '{sql}'; use one of {known}")


def normalize_arrow(array: pa.Array) -> pa.Array:
    """Turn an Arrow array read from Parquet into types a Delta table can hold."""
    target = delta_type(array.type)
    if target == array.type:
        return array
    if target == pa.string() and not castable_to_string(array.type):
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in array.to_pylist()],
            type=pa.string(),
        )
    # Delta keeps microseconds: finer timestamps are truncated, everything else casts exactly
    return array.cast(target, safe=not _has_timestamp(target))


def _has_timestamp(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return True
    return any(_has_timestamp(t.field(i).type) for i in range(t.num_fields))


def delta_type(t: pa.DataType) -> pa.DataType:
    """The Delta-compatible Arrow type for ``t``."""
    if pa.types.is_dictionary(t):
        return delta_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):  # Delta has signed integers only: widen
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(t.bit_width, pa.decimal128(20))
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_time(t) or pa.types.is_duration(t) or pa.types.is_interval(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(delta_type(t.value_type))
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.string()
        return pa.struct([f.with_type(delta_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(delta_type(t.key_type), delta_type(t.item_type))
    return t


def castable_to_string(t: pa.DataType) -> bool:
    """Whether Arrow casts ``t`` to string (nested types are written as JSON instead)."""
    return not (pa.types.is_nested(t) or pa.types.is_dictionary(t) or pa.types.is_null(t))
