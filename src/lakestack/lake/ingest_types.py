"""Column types for file ingestion: schema hints, inference, and conversion that rescues values.

Ingestion reads every file into raw columns of one of three kinds: ``strings`` (CSV: an Arrow
string array, nulls already applied), ``json`` (JSON lines: a list of Python values as
``json.loads`` returns them) and ``arrow`` (Parquet: a typed Arrow array). This module infers a
column type from raw values, unifies the types seen in several files, and converts raw values to
the table's type. A value that does not convert is never dropped: ``convert`` returns the row
numbers it could not convert, and the caller moves those values into the rescued data column.

Conversion is vectorised: a whole column is cast at once; only when that fails is the column
split in halves until the bad values are isolated, so a clean column costs one cast and a column
with a few bad values costs a few dozen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import UsageError

__all__ = [
    "TIMESTAMP",
    "RawKind",
    "RawValues",
    "convert",
    "infer_type",
    "normalize_arrow",
    "parse_schema_hints",
    "raw_value",
    "unify_types",
]

RawKind = Literal["strings", "json", "arrow"]
RawValues = Union[pa.Array, list[Any]]  # noqa: UP007 - a runtime alias, Python 3.10

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
_STRING_CANDIDATES = (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), TIMESTAMP)
_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


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
    target = _delta_type(array.type)
    if target == array.type:
        return array
    if target == pa.string() and not _castable_to_string(array.type):
        return pa.array([_dump(v) for v in array.to_pylist()], type=pa.string())
    return array.cast(target)


def _delta_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _delta_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):  # Delta has signed integers only: widen
        return {8: pa.int16(), 16: pa.int32()}.get(t.bit_width, pa.int64())
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_time(t) or pa.types.is_duration(t) or pa.types.is_interval(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_delta_type(t.value_type))
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.string()
        return pa.struct([f.with_type(_delta_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_delta_type(t.key_type), _delta_type(t.item_type))
    return t


def _castable_to_string(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_dictionary(t) or pa.types.is_null(t))


def infer_type(kind: RawKind, values: RawValues) -> pa.DataType:
    """The column type for raw values of one file (string when nothing fits better)."""
    if kind == "arrow":
        assert isinstance(values, pa.Array)
        return _delta_type(values.type)
    if kind == "strings":
        assert isinstance(values, pa.Array)
        present = values.drop_null()
        if len(present) == 0:
            return pa.string()
        for candidate in _STRING_CANDIDATES:
            try:
                _cast_strings(present, candidate)
            except _CONVERT_ERRORS:
                continue
            return candidate
        return pa.string()
    assert isinstance(values, list)
    return _infer_json(values)


def _infer_json(values: Sequence[Any]) -> pa.DataType:
    inferred: pa.DataType | None = None
    for value in values:
        if value is None:
            continue
        t = _json_value_type(value)
        inferred = t if inferred is None else unify_types(inferred, t)
        if inferred == pa.string():
            break
    return inferred if inferred is not None else pa.string()


def _json_value_type(value: Any) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64() if -(2**63) <= value < 2**63 else pa.float64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, dict):
        if not value:
            return pa.string()
        return pa.struct([pa.field(k, _infer_json([v])) for k, v in value.items()])
    if isinstance(value, list):
        return pa.list_(_infer_json(value))
    return pa.string()


def unify_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding values of both ``a`` and ``b`` (string when none does)."""
    if a == b:
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return a if a.bit_width >= b.bit_width else b
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a) for f in numeric) and any(f(b) for f in numeric):
        return pa.float64()
    if {a, b} == {pa.date32(), TIMESTAMP}:
        return TIMESTAMP
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = unify_types(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct([pa.field(name, t) for name, t in fields.items()])
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_types(a.value_type, b.value_type))
    return pa.string()


def convert(kind: RawKind, values: RawValues, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Convert raw values to ``target``; return the array and the rows that did not convert.

    Rows that did not convert are null in the array; their raw values are for the rescued data
    column (``raw_value``).
    """
    if kind == "json":
        assert isinstance(values, list)
        return _convert_json(values, target)
    assert isinstance(values, pa.Array)
    if values.type == target:
        return values, []
    if kind == "strings":
        return _bisect(len(values), lambda lo, hi: _cast_strings(values[lo:hi], target), target)
    if pa.types.is_string(target) and not _castable_to_string(values.type):
        return pa.array([_dump(v) for v in values.to_pylist()], type=pa.string()), []
    return _bisect(len(values), lambda lo, hi: pc.cast(values[lo:hi], target), target)


def raw_value(kind: RawKind, values: RawValues, row: int) -> Any:
    """The value of ``row`` as it was in the file, for the rescued data column."""
    if kind == "json":
        assert isinstance(values, list)
        return values[row]
    assert isinstance(values, pa.Array)
    return values[row].as_py()


def _dump(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _cast_strings(values: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target) and target.tz is not None:
        try:
            return pc.cast(values, target)
        except pa.ArrowInvalid:  # no zone offset in the text: it is in UTC already
            return pc.cast(pc.cast(values, pa.timestamp(target.unit)), target)
    return pc.cast(values, target)


def _convert_json(values: list[Any], target: pa.DataType) -> tuple[pa.Array, list[int]]:
    if pa.types.is_string(target):
        # JSON text of a number or an object fits a string column (as Spark reads it)
        return pa.array([_dump(v) for v in values], type=pa.string()), []
    if _parsed_from_text(target):
        texts: list[str | None] = []
        bad: list[int] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, str):
                texts.append(v)
            elif pa.types.is_decimal(target) and _is_number(v):
                texts.append(repr(v))
            else:
                texts.append(None)
                bad.append(i)
        array, more = convert("strings", pa.array(texts, type=pa.string()), target)
        return array, sorted(bad + more)
    bad = [i for i, v in enumerate(values) if not _fits(v, target)]
    if bad:
        bad_set = set(bad)
        values = [None if i in bad_set else v for i, v in enumerate(values)]
    array, more = _bisect(len(values), lambda lo, hi: pa.array(values[lo:hi], type=target), target)
    return array, sorted(bad + more)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parsed_from_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_temporal(t) or pa.types.is_decimal(t) or pa.types.is_binary(t))


def _fits(value: Any, t: pa.DataType) -> bool:
    """Whether a JSON value converts to ``t`` without losing anything."""
    if value is None:
        return True
    if pa.types.is_boolean(t):
        return isinstance(value, bool)
    if pa.types.is_integer(t):
        limit = 2 ** (t.bit_width - 1)
        return isinstance(value, int) and not isinstance(value, bool) and -limit <= value < limit
    if pa.types.is_floating(t):
        return _is_number(value)
    if pa.types.is_string(t):
        return isinstance(value, str)
    if pa.types.is_struct(t):
        names = {f.name: f.type for f in t}
        return isinstance(value, dict) and all(
            k in names and _fits(v, names[k]) for k, v in value.items()
        )
    if pa.types.is_list(t):
        return isinstance(value, list) and all(_fits(v, t.value_type) for v in value)
    return False


def _bisect(
    n: int, conv: Callable[[int, int], pa.Array], target: pa.DataType
) -> tuple[pa.Array, list[int]]:
    """Convert rows ``[0, n)`` with ``conv``; isolate the rows it fails on by halving."""
    pieces: list[pa.Array] = []
    bad: list[int] = []

    def go(lo: int, hi: int) -> None:
        if lo >= hi:
            return
        try:
            pieces.append(conv(lo, hi))
            return
        except pa.ArrowNotImplementedError:
            # no conversion exists between the types: every present value is rescued
            pieces.append(pa.nulls(hi - lo, target))
            bad.extend(range(lo, hi))
            return
        except _CONVERT_ERRORS:
            if hi - lo == 1:
                pieces.append(pa.nulls(1, target))
                bad.append(lo)
                return
        mid = (lo + hi) // 2
        go(lo, mid)
        go(mid, hi)

    go(0, n)
    if not pieces:
        return pa.array([], type=target), []
    return pa.concat_arrays([p.cast(target) for p in pieces]), bad
