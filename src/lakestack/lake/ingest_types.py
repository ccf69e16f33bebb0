"""Column types for file ingestion: inference, and conversion that rescues what does not fit.

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
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.lake.ingest_schema import TIMESTAMP, castable_to_string, delta_type

__all__ = ["RawKind", "RawValues", "convert", "infer_type", "raw_value", "unify_types"]

RawKind = Literal["strings", "json", "arrow"]
RawValues = Union[pa.Array, list[Any]]  # noqa: UP007 - a runtime alias, Python 3.10

_STRING_CANDIDATES = (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), TIMESTAMP)
_SAMPLE = 256
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2})$"
_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


def infer_type(kind: RawKind, values: RawValues) -> pa.DataType:
    """The column type for raw values of one file (string when nothing fits better)."""
    if kind == "arrow":
        assert isinstance(values, pa.Array)
        return delta_type(values.type)
    if kind == "strings":
        assert isinstance(values, pa.Array)
        present = values.drop_null()
        if len(present) == 0:
            return pa.string()
        sample = present[:_SAMPLE]
        for candidate in _STRING_CANDIDATES:
            try:
                # a failing cast costs as much as the column is long: try a sample first
                _cast_strings(sample, candidate)
                _cast_strings(present, candidate)
            except _CONVERT_ERRORS:
                continue
            return candidate
        return pa.string()
    assert isinstance(values, list)
    return _infer_json(values)


def _infer_json(values: Sequence[Any]) -> pa.DataType:
    # pyarrow's own inference (in C) agrees with the rules below wherever it succeeds
    inferred_fast = _arrow_guess(values)
    if inferred_fast is not None:
        return _json_normal(inferred_fast.type)
    inferred: pa.DataType | None = None
    for value in values:
        if value is None:
            continue
        t = _json_value_type(value)
        inferred = t if inferred is None else unify_types(inferred, t)
        if inferred == pa.string():
            break
    return inferred if inferred is not None else pa.string()


def _arrow_guess(values: Sequence[Any]) -> pa.Array | None:
    """``pa.array(values)``, or None when the values mix types pyarrow will not mix."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None


def _json_normal(t: pa.DataType) -> pa.DataType:
    """A type pyarrow inferred from JSON values, as ``_json_value_type`` would have it."""
    if pa.types.is_null(t) or (pa.types.is_struct(t) and t.num_fields == 0):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_json_normal(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_json_normal(t.value_type))
    return t


def _lossless(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether every value of type ``source`` converts to ``target`` exactly."""
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_integer(source) and pa.types.is_integer(target):
        return bool(target.bit_width >= source.bit_width)
    if pa.types.is_integer(source) and pa.types.is_floating(target):
        return True
    if pa.types.is_floating(source) and pa.types.is_floating(target):
        return bool(target.bit_width >= source.bit_width)
    if pa.types.is_struct(source) and pa.types.is_struct(target):
        names = {f.name: f.type for f in target}
        return all(f.name in names and _lossless(f.type, names[f.name]) for f in source)
    if pa.types.is_list(source) and pa.types.is_list(target):
        return _lossless(source.value_type, target.value_type)
    return False


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
    if pa.types.is_string(target) and not castable_to_string(values.type):
        return pa.array([_dump(v) for v in values.to_pylist()], type=pa.string()), []
    if not _value_preserving(values.type, target):
        # Arrow would cast 5 to true or an integer to an instant: rescue the values instead
        present = pc.indices_nonzero(values.is_valid()).to_pylist()
        return pa.nulls(len(values), target), present
    return _bisect(len(values), lambda lo, hi: pc.cast(values[lo:hi], target), target)


def _value_preserving(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether a (safe) Arrow cast from ``source`` to ``target`` keeps what a value means."""
    types = pa.types
    if types.is_string(source) or types.is_string(target):
        return True  # parsing and formatting
    kinds = (
        lambda t: types.is_integer(t) or types.is_floating(t) or types.is_decimal(t),
        lambda t: types.is_date(t) or types.is_timestamp(t),
        types.is_boolean,
        types.is_binary,
        types.is_struct,
        types.is_list,
    )
    if types.is_timestamp(source) and types.is_date(target):
        return False  # drops the time of day
    return any(kind(source) and kind(target) for kind in kinds)


def raw_value(kind: RawKind, values: RawValues, row: int) -> Any:
    """The value of ``row`` as it was in the file, for the rescued data column."""
    if kind == "json":
        assert isinstance(values, list)
        return values[row]
    assert isinstance(values, pa.Array)
    return values[row].as_py()


_FINER_THAN_MICROS = r"(\.\d{6})\d+"


def _dump(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _cast_strings(values: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target):
        # Spark keeps microseconds and drops finer digits (pandas writes nanoseconds)
        values = pc.replace_substring_regex(values, _FINER_THAN_MICROS, r"\1")
    if pa.types.is_timestamp(target) and target.tz is not None:
        # text with a zone offset is an instant; text without one is read as UTC
        zoned = pc.match_substring_regex(values, _ZONE)
        aware = pc.cast(pc.if_else(zoned, values, None), target)
        naive = pc.cast(pc.if_else(zoned, None, values), pa.timestamp(target.unit))
        return pc.if_else(zoned, aware, naive.cast(target))
    return pc.cast(values, target)


def _convert_json(values: list[Any], target: pa.DataType) -> tuple[pa.Array, list[int]]:
    guess = _arrow_guess(values)
    if guess is not None and guess.type == target:
        return guess, []
    if pa.types.is_string(target):
        # JSON text of a number or an object fits a string column (as Spark reads it)
        return pa.array([_dump(v) for v in values], type=pa.string()), []
    if guess is not None and not _parsed_from_text(target) and _lossless(guess.type, target):
        return pa.array(values, type=target), []
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
