"""The point-in-time join: each input row gets the latest feature row at or before its timestamp.

For every lookup, and every input row: among the feature rows with the same key and a timestamp
``<=`` the row's lookup timestamp, take the latest (never a later one); if it is older than the
lookup timestamp minus ``lookback_window``, or there is none, the features are null (or their
default). Exact lookups (no timestamp) match on the key alone. The input's rows keep their order
and count: it is a left join, and duplicate input rows stay.

How, and why this way. Each lookup reads its feature table twice (``lakestack.features.asof``):
first only the key and timestamp columns, in chunks of ``MATCH_ROWS`` rows, to find each input
row's matching feature row by its position in the table; then only the feature columns, batch
by batch, taking just the matched rows. Memory is bounded by one chunk of keys and timestamps
plus the input and the looked-up columns, whatever the table's size; the feature values of the
table are never all in memory, and the table is sorted by key and timestamp only, a chunk at a
time. Timestamps are compared as microseconds since the epoch; a timestamp without a time zone
is taken as UTC, and a date as its midnight UTC.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lakestack.errors import FeatureError
from lakestack.features.asof import Probe, gather, match
from lakestack.features.lookup import BoundLookup

__all__ = [
    "CHUNK_ROWS",
    "MATCH_ROWS",
    "DatasetFor",
    "epoch_us",
    "join_features",
    "lookup_columns",
]

CHUNK_ROWS = int(os.environ.get("LAKESTACK_FEATURE_CHUNK_ROWS", "2000000"))
"""Rows of a streamed input (``score_batch`` of a ``RecordBatchReader``) looked up at once."""
MATCH_ROWS = int(os.environ.get("LAKESTACK_FEATURE_MATCH_ROWS", "4000000"))
"""Rows of a feature table whose keys and timestamps are matched at once."""
_US_PER_DAY = 86_400_000_000

DatasetFor = Callable[[BoundLookup], pds.Dataset]


def join_features(
    left: pa.Table,
    lookups: Sequence[BoundLookup],
    dataset_for: DatasetFor,
    *,
    chunk_rows: int = MATCH_ROWS,
) -> pa.Table:
    """``left`` with every lookup's output columns appended, in ``left``'s row order.

    Lookups run one after the other (each one's sorts and scans already use every core);
    lookups with the same input columns share the input's sorted keys and timestamps.

    Args:
        left: The input rows (all their columns are kept as they are).
        lookups: Checked lookups; their output names must not collide.
        dataset_for: The feature table's dataset at the lookup's version.
        chunk_rows: How many feature table rows to match at once (keys and timestamps only).
    """
    probes: dict[tuple[Any, ...], Probe] = {}
    out = left
    for lookup in lookups:
        dataset = dataset_for(lookup)
        key = _probe_key(lookup, dataset.schema)
        if key not in probes:
            probes[key] = _probe(left, lookup, dataset.schema)
        columns = _lookup(left.num_rows, lookup, dataset, probes[key], chunk_rows)
        for name, column in zip(lookup.output_names, columns, strict=True):
            out = out.append_column(name, column)
    return out


def lookup_columns(
    left: pa.Table, lookup: BoundLookup, dataset: pds.Dataset, *, chunk_rows: int = MATCH_ROWS
) -> list[pa.ChunkedArray]:
    """The looked-up feature columns for ``left``'s rows, one per feature, in row order."""
    probe = _probe(left, lookup, dataset.schema)
    return _lookup(left.num_rows, lookup, dataset, probe, chunk_rows)


def _lookup(
    rows: int, lookup: BoundLookup, dataset: pds.Dataset, probe: Probe, chunk_rows: int
) -> list[pa.ChunkedArray]:
    import numpy as np

    if not lookup.feature_names:
        return []
    ts_column = lookup.table_timestamp_key if probe.pit else None
    what = f"timestamp key '{ts_column}' of {lookup.table_name}"
    found, found_t = match(
        probe,
        dataset,
        lookup.table_keys,
        ts_column,
        lambda values: epoch_us(values, what=what),
        chunk_rows,
    )
    if probe.pit and lookup.lookback_window is not None:
        t = probe.frame["__t"].to_numpy()
        found[(found >= 0) & (t - found_t > _window_us(lookup))] = -1
    positions = np.full(rows, -1, np.int64)
    positions[probe.frame["__row"].to_numpy()] = found
    features = gather(dataset, lookup.feature_names, positions, table=lookup.table_name)
    columns = []
    for feature, output in zip(lookup.feature_names, lookup.output_names, strict=True):
        column = features.column(feature)
        if output in lookup.default_values:
            column = _fill_default(column, lookup.default_values[output], lookup, output)
        columns.append(column)
    return columns


def _probe_key(lookup: BoundLookup, schema: pa.Schema) -> tuple[Any, ...]:
    """What makes two lookups' probes equal: the input columns and the table's key types."""
    types = tuple(str(schema.field(c).type) for c in lookup.table_keys)
    return (tuple(lookup.lookup_key), lookup.timestamp_lookup_key, types)


def _probe(left: pa.Table, lookup: BoundLookup, schema: pa.Schema) -> Probe:
    """The input's keys (cast to the table's key types) and timestamps, without nulls."""
    keys = [f"__k{i}" for i in range(len(lookup.lookup_key))]
    columns: dict[str, Any] = {
        name: _key_column(left, column, schema, table_column, lookup.table_name)
        for name, column, table_column in zip(
            keys, lookup.lookup_key, lookup.table_keys, strict=True
        )
    }
    pit = lookup.timestamp_lookup_key is not None
    if pit:
        assert lookup.timestamp_lookup_key and lookup.table_timestamp_key
        columns["__t"] = epoch_us(
            left.column(lookup.timestamp_lookup_key),
            what=f"column '{lookup.timestamp_lookup_key}' of the input",
        )
    frame = pl.DataFrame(pa.table(columns)).with_row_index("__row").drop_nulls()
    return Probe(frame, keys, pit)


def _kind(dtype: pa.DataType) -> str:
    for kind, test in (
        ("integer", pa.types.is_integer),
        ("floating", pa.types.is_floating),
        (
            "string",
            lambda t: (
                pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            ),
        ),
        ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
        ("timestamp", pa.types.is_timestamp),
        ("date", pa.types.is_date),
        ("decimal", pa.types.is_decimal),
        ("boolean", pa.types.is_boolean),
    ):
        if test(dtype):
            return kind
    return str(dtype)


def _key_column(
    left: pa.Table, column: str, schema: pa.Schema, table_column: str, table_name: str
) -> pa.ChunkedArray:
    """The input's key column, cast to the table's key type (same kind of type only)."""
    values = left.column(column)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    wanted = schema.field(table_column).type
    if values.type == wanted:
        return values
    # pandas turns an integer column with a missing value into floats: accept whole numbers
    pandas_ints = _kind(values.type) == "floating" and _kind(wanted) == "integer"
    if _kind(values.type) != _kind(wanted) and not pandas_ints:
        raise FeatureError(
            f"lookup key '{column}' of the input is {values.type} but key '{table_column}' of "
            f"feature table {table_name} is {wanted}; cast the input column to {wanted}"
        )
    try:
        return values.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureError(
            f"lookup key '{column}' of the input does not fit key '{table_column}' of feature "
            f"table {table_name} ({wanted}): {exc}"
        ) from None


def epoch_us(values: pa.ChunkedArray | pa.Array, *, what: str) -> pa.ChunkedArray | pa.Array:
    """Timestamps, dates or integers as int64 microseconds since the epoch (integers as is)."""
    dtype = values.type
    if pa.types.is_timestamp(dtype):
        if dtype.unit != "us":
            values = pc.cast(values, pa.timestamp("us", dtype.tz), safe=False)
        return pc.cast(values, pa.int64())
    if pa.types.is_date(dtype):
        days = pc.cast(pc.cast(values, pa.date32()), pa.int32())
        return pc.multiply(pc.cast(days, pa.int64()), _US_PER_DAY)
    if pa.types.is_integer(dtype):
        return pc.cast(values, pa.int64())
    raise FeatureError(
        f"{what} is {dtype}; a point-in-time lookup needs a timestamp, a date or an integer"
    )


def _window_us(lookup: BoundLookup) -> int:
    assert lookup.lookback_window is not None
    window = lookup.lookback_window
    return (window.days * 86_400 + window.seconds) * 1_000_000 + window.microseconds


def _fill_default(
    column: pa.ChunkedArray, value: Any, lookup: BoundLookup, output: str
) -> pa.ChunkedArray:
    series = pl.Series(column)
    try:
        filled = series.fill_null(pl.lit(value).cast(series.dtype, strict=True))
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise FeatureError(
            f"default value {value!r} for feature '{output}' of {lookup.table_name} does not fit "
            f"its type {series.dtype}: {str(exc).splitlines()[0]}"
        ) from None
    result = filled.to_arrow()
    if result.type != column.type:
        result = result.cast(column.type)
    return pa.chunked_array([result]) if isinstance(result, pa.Array) else result
