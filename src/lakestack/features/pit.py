"""The point-in-time join: each input row gets the latest feature row at or before its timestamp.

For every lookup, and every input row: among the feature rows with the same key and a timestamp
``<=`` the row's lookup timestamp, take the latest (never a later one); if it is older than the
lookup timestamp minus ``lookback_window``, or there is none, the features are null (or their
default). Exact lookups (no timestamp) match on the key alone. The input's rows keep their order
and count: it is a left join, and duplicate input rows stay.

How, and why this way. The feature table is streamed in chunks of ``chunk_rows`` rows (or as
many rows as the input has, if more), never read whole: memory is bounded by a small multiple of
the input plus one chunk, whatever the table's size. Each chunk is
as-of joined (Polars ``join_asof``) against the input, sorted once by timestamp, and a row's
running best match is replaced when the chunk offers a later one. Since the latest row at or
before ``t`` over the whole table is the latest of the per-chunk latest rows, the result does
not depend on how the table is chunked. Only the key and timestamp columns of a chunk are
sorted; feature values are gathered by row index afterwards, which keeps sorting cheap when a
table has many features. Timestamps are compared as microseconds since the epoch; a timestamp
without a time zone is taken as UTC, and a date as its midnight UTC.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lakestack.errors import FeatureError
from lakestack.features.lookup import BoundLookup

__all__ = ["CHUNK_ROWS", "chunk_size", "join_features", "lookup_columns"]

CHUNK_ROWS = int(os.environ.get("LAKESTACK_FEATURE_CHUNK_ROWS", "2000000"))
_SCAN_BATCH = 1 << 20
_US_PER_DAY = 86_400_000_000

DatasetFor = Callable[[BoundLookup], pds.Dataset]


def chunk_size(input_rows: int, chunk_rows: int = CHUNK_ROWS) -> int:
    """Feature rows to hold at once for an input of ``input_rows`` rows.

    Each chunk is one more pass over the input, and a chunk as large as the input costs at most
    the input's memory again: fewer, larger chunks for large inputs.
    """
    return max(chunk_rows, input_rows)


def join_features(
    left: pa.Table,
    lookups: Sequence[BoundLookup],
    dataset_for: DatasetFor,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> pa.Table:
    """``left`` with every lookup's output columns appended, in ``left``'s row order.

    Args:
        left: The input rows (all their columns are kept as they are).
        lookups: Checked lookups; their output names must not collide.
        dataset_for: The feature table's dataset at the lookup's version.
        chunk_rows: How many feature rows to hold at once (see ``chunk_size``).
    """
    out = left
    for lookup in lookups:
        columns = lookup_columns(left, lookup, dataset_for(lookup), chunk_rows=chunk_rows)
        for name, column in zip(lookup.output_names, columns, strict=True):
            out = out.append_column(name, column)
    return out


def lookup_columns(
    left: pa.Table, lookup: BoundLookup, dataset: pds.Dataset, *, chunk_rows: int = CHUNK_ROWS
) -> list[pa.ChunkedArray]:
    """The looked-up feature columns for ``left``'s rows, one per feature, in row order."""
    schema = dataset.schema
    feature_types = [schema.field(name).type for name in lookup.feature_names]
    keys = [f"__k{i}" for i in range(len(lookup.lookup_key))]
    probe_columns: dict[str, Any] = {
        name: _key_column(left, column, schema, table_column, lookup.table_name)
        for name, column, table_column in zip(
            keys, lookup.lookup_key, lookup.table_keys, strict=True
        )
    }
    pit = lookup.timestamp_lookup_key is not None
    if pit:
        assert lookup.timestamp_lookup_key and lookup.table_timestamp_key
        probe_columns["__t"] = epoch_us(
            left.column(lookup.timestamp_lookup_key),
            what=f"column '{lookup.timestamp_lookup_key}' of the input",
        )
    probe = pl.DataFrame(pa.table(probe_columns)).with_row_index("__row")
    probe = probe.drop_nulls()  # a null key or timestamp matches nothing
    if pit:
        probe = probe.sort("__t")
    best: pl.DataFrame | None = None
    for chunk in _chunks(dataset, lookup, chunk_rows):
        candidate = _match_chunk(probe, chunk, lookup, keys)
        best = candidate if best is None else _better(best, candidate, pit)
    features = [f"__f{i}" for i in range(len(feature_types))]
    if best is None:
        best = pl.DataFrame(
            [
                pl.Series(f, pa.nulls(probe.height, t))
                for f, t in zip(features, feature_types, strict=True)
            ]
        )
    elif pit and lookup.lookback_window is not None:
        window = _window_us(lookup)
        too_old = (probe["__t"] - best["__ft"]) > window
        best = best.with_columns(
            [pl.when(too_old).then(None).otherwise(pl.col(f)).alias(f) for f in features]
        )
    result = best.select(features).with_columns(probe["__row"])
    if result.height == left.num_rows:
        result = result.sort("__row")
    else:
        rows = pl.DataFrame({"__row": pl.arange(0, left.num_rows, dtype=pl.UInt32, eager=True)})
        result = rows.join(result, on="__row", how="left", maintain_order="left")
    columns = []
    for feature, output, dtype in zip(features, lookup.output_names, feature_types, strict=True):
        series = result[feature]
        if output in lookup.default_values:
            series = _fill_default(series, lookup.default_values[output], lookup, output)
        columns.append(_as_type(series.to_arrow(), dtype))
    return [pa.chunked_array([c]) if isinstance(c, pa.Array) else c for c in columns]


def _match_chunk(
    probe: pl.DataFrame, chunk: pa.Table, lookup: BoundLookup, keys: list[str]
) -> pl.DataFrame:
    """For each probe row, the chunk's matching row: its timestamp (``__ft``) and features."""
    right_columns: dict[str, Any] = {
        key: chunk.column(column) for key, column in zip(keys, lookup.table_keys, strict=True)
    }
    pit = lookup.table_timestamp_key is not None
    if pit:
        assert lookup.table_timestamp_key
        right_columns["__ft"] = epoch_us(
            chunk.column(lookup.table_timestamp_key),
            what=f"timestamp key '{lookup.table_timestamp_key}' of {lookup.table_name}",
        )
    right = pl.DataFrame(pa.table(right_columns)).with_row_index("__i")
    if pit:
        matched = probe.select(*keys, "__t").join_asof(
            right.sort("__ft"),
            left_on="__t",
            right_on="__ft",
            by=keys,
            strategy="backward",
            check_sortedness=False,
        )
    else:
        matched = probe.select(keys).join(right, on=keys, how="left", maintain_order="left")
    index = matched["__i"].to_arrow()
    features = chunk.select(lookup.feature_names).take(index)
    names = [f"__f{i}" for i in range(features.num_columns)]
    frame = pl.DataFrame(features.rename_columns(names))
    marker = matched["__ft"] if pit else matched["__i"].is_not_null().alias("__ft")
    return frame.with_columns(marker)


def _better(best: pl.DataFrame, candidate: pl.DataFrame, pit: bool) -> pl.DataFrame:
    """Per row, the candidate where it is a later match than the best so far."""
    new, old = candidate["__ft"], best["__ft"]
    take = (new > old).fill_null(False) | (old.is_null() & new.is_not_null()) if pit else new
    return best.select(
        [
            pl.when(take).then(candidate[name]).otherwise(pl.col(name)).alias(name)
            for name in best.columns
        ]
    )


def _chunks(dataset: pds.Dataset, lookup: BoundLookup, chunk_rows: int) -> Iterator[pa.Table]:
    """The table's key, timestamp and feature columns, ``chunk_rows`` rows at a time."""
    ts = [lookup.table_timestamp_key] if lookup.table_timestamp_key else []
    columns = list(dict.fromkeys([*lookup.table_keys, *ts, *lookup.feature_names]))
    pending: list[pa.RecordBatch] = []
    rows = 0
    # little read-ahead: each batch held in advance is memory the join cannot use
    for batch in dataset.to_batches(
        columns=columns,
        batch_size=min(chunk_rows, _SCAN_BATCH),
        batch_readahead=1,
        fragment_readahead=1,
    ):
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


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


def _fill_default(series: pl.Series, value: Any, lookup: BoundLookup, output: str) -> pl.Series:
    try:
        return series.fill_null(pl.lit(value).cast(series.dtype, strict=True))
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise FeatureError(
            f"default value {value!r} for feature '{output}' of {lookup.table_name} does not fit "
            f"its type {series.dtype}: {str(exc).splitlines()[0]}"
        ) from None


def _as_type(values: pa.Array | pa.ChunkedArray, dtype: pa.DataType) -> Any:
    return values if values.type == dtype else values.cast(dtype)
