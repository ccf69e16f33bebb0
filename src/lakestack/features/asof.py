"""The two passes of a lookup over a feature table: match the input's rows, gather the features.

A feature table is read twice, in the dataset's scan order, which is the same on every scan of
one dataset (its fragments in order, each fragment's rows in file order): a row's position in
that order is a stable row id.

``match`` reads only the key and timestamp columns, ``chunk_rows`` rows at a time, and finds for
each probe row the id of its matching feature row: the latest one with the same key and a
timestamp at or before the probe's. The latest match over the table is the latest of the
per-chunk matches, so the result does not depend on the chunking, and memory is bounded by one
chunk of keys and timestamps plus the probe. When the key is one integer column and a chunk's
key and timestamp ranges fit in 62 bits together, key and timestamp are packed into one int64
(key in the high bits): the chunk is then matched with one sort of the chunk and a binary search
per probe row, the probe sorted the same way once. Otherwise Polars ``join_asof(by=keys)`` (a
hash join for exact lookups) matches the chunk.

``gather`` streams only the feature columns, a scan batch at a time, and takes the matched rows
of each batch: the table's feature values are never all in memory, only the result's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lakestack.errors import FeatureError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

__all__ = ["Probe", "gather", "match"]

_SCAN_BATCH = 1 << 17
_PACKED_BITS = 62
_INT64_MIN = -(2**63)


@dataclass
class Probe:
    """The input rows to match, without those with a null key or timestamp.

    Attributes:
        frame: ``__row`` (the row's position in the input), the key columns ``__k0``... and, for
            a point-in-time lookup, ``__t`` (microseconds).
        keys: The key column names in ``frame``.
        pit: Whether it is a point-in-time lookup (``__t`` is set).
    """

    frame: pl.DataFrame
    keys: list[str]
    pit: bool
    _by_time: pl.DataFrame | None = field(default=None, repr=False)
    _by_key: tuple[Ints, Ints, Ints] | None = field(default=None, repr=False)

    @property
    def height(self) -> int:
        """The number of probe rows."""
        return self.frame.height

    @property
    def packable(self) -> bool:
        """Whether the key is one integer column that fits in an int64."""
        if len(self.keys) != 1:
            return False
        dtype = self.frame.schema[self.keys[0]]
        return bool(dtype.is_integer() and dtype != pl.UInt64)

    def by_time(self) -> pl.DataFrame:
        """``frame`` with ``__p`` (its position in ``frame``), sorted by timestamp."""
        if self._by_time is None:
            self._by_time = self.frame.with_row_index("__p").sort("__t")
        return self._by_time

    def by_key(self) -> tuple[Ints, Ints, Ints]:
        """The positions in ``frame`` that sort it by key and timestamp; the sorted keys, times.

        Only for a ``packable`` probe; timestamps are zeros for exact lookups. Sorted probes
        make the binary searches of a chunk walk it in order.
        """
        import numpy as np

        if self._by_key is None:
            key = self.frame[self.keys[0]].cast(pl.Int64).to_numpy()
            t = self.frame["__t"].to_numpy() if self.pit else np.zeros(self.height, np.int64)
            order = _pack_order(key, t)
            if order is None:
                frame = pl.DataFrame({"k": key, "t": t})
                order = frame.select(pl.arg_sort_by("k", "t")).to_series().to_numpy()
            order = order.astype(np.int64)
            self._by_key = (order, key[order], t[order])
        return self._by_key


def match(
    probe: Probe,
    dataset: pds.Dataset,
    key_columns: Sequence[str],
    ts_column: str | None,
    to_epoch_us: Callable[[Any], Any],
    chunk_rows: int,
) -> tuple[Ints, Ints]:
    """For each probe row, in ``probe.frame``'s order: the matching row id (-1: none), its time.

    Args:
        probe: The rows to match.
        dataset: The feature table.
        key_columns: The table's key columns, matching ``probe.keys``.
        ts_column: The table's timestamp key (point-in-time lookups), or None.
        to_epoch_us: Turns the table's timestamp column into int64 microseconds.
        chunk_rows: How many table rows to match at once.
    """
    import numpy as np

    best = np.full(probe.height, -1, np.int64)
    best_t = np.zeros(probe.height, np.int64)
    if probe.height == 0:
        return best, best_t
    # the packed matcher works in the probe's key order; the result is put back at the end
    order = probe.by_key()[0] if probe.packable else None
    columns = [*key_columns, *([ts_column] if ts_column else [])]
    for offset, batches in _chunks(dataset, columns, chunk_rows):
        keys = [[b.column(c) for b in batches] for c in key_columns]
        times = [to_epoch_us(b.column(ts_column)) for b in batches] if ts_column else None
        found = _match_packed(probe, keys[0], times, offset) if order is not None else None
        if found is None:
            ids, found_t = _match_frames(probe, keys, times, offset)
            if order is not None:
                ids, found_t = ids[order], found_t[order]
        else:
            ids, found_t = found
        # >=: among equal timestamps (which a primary key rules out) the last row read wins
        better = ids >= 0
        better &= (best < 0) | (found_t >= best_t)
        np.copyto(best, ids, where=better)
        np.copyto(best_t, found_t, where=better)
    if order is None:
        return best, best_t
    unsorted, unsorted_t = np.empty_like(best), np.empty_like(best_t)
    unsorted[order], unsorted_t[order] = best, best_t
    return unsorted, unsorted_t


def _chunks(
    dataset: pds.Dataset, columns: list[str], chunk_rows: int
) -> Iterator[tuple[int, list[pa.RecordBatch]]]:
    """``(row id of the first row, batches)``: the columns, about ``chunk_rows`` rows at a time."""
    pending: list[pa.RecordBatch] = []
    rows = offset = 0
    for batch in dataset.to_batches(
        columns=list(dict.fromkeys(columns)),
        batch_size=min(chunk_rows, _SCAN_BATCH),
        batch_readahead=2,
        fragment_readahead=1,
    ):
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            yield offset, pending
            offset += rows
            pending, rows = [], 0
    if rows:
        yield offset, pending


def _match_packed(
    probe: Probe, keys: list[pa.Array], times: list[pa.Array] | None, offset: int
) -> tuple[Ints, Ints] | None:
    """Match by packing (key, time) into one int64; None when the ranges do not fit.

    A row packs as ``(key - kmin + 1) << tbits | (t - tmin + 1)``, a row with a null key or
    time as 0, which no probe finds. A probe packs the same way with its time clipped to the
    chunk's range (before it: 0), so the last row packed at or below it is the latest at or
    before its time, if it has the probe's key. Results are in ``probe.by_key()`` order.
    """
    import numpy as np

    ranges = _ranges(keys, times)
    if ranges is None:  # every row has a null
        return np.full(probe.height, -1, np.int64), np.zeros(probe.height, np.int64)
    kmin, kmax, tmin, tmax = ranges
    tbits = (tmax - tmin + 1).bit_length() if times is not None else 0
    if (kmax - kmin + 1).bit_length() + tbits > _PACKED_BITS or _INT64_MIN in (kmin, tmin):
        return None
    packed = _pack(keys, times, kmin, tmin, tbits)
    order = pl.Series(packed).arg_sort().to_numpy()
    packed = packed[order]

    _, pk, pt = probe.by_key()
    outside = None
    if pk[0] < kmin or pk[-1] > kmax:  # sorted: the first and last key are the extremes
        outside = (pk < kmin) | (pk > kmax)
        pk = np.clip(pk, kmin, kmax)
    want = pk - (kmin - 1)
    want <<= tbits
    if times is not None:
        shifted = np.clip(pt, tmin - 1, tmax)
        shifted -= tmin - 1
        want |= shifted
    at = np.searchsorted(packed, want, side="right")
    at -= 1
    found = at >= 0
    if outside is not None:
        found &= ~outside
    np.maximum(at, 0, out=at)
    hit = packed[at]
    # the row found is at or below the probe: it has the probe's key if not below the key's 0
    found &= hit >= (want >> tbits) << tbits
    ids = order[at].astype(np.int64)
    ids += offset
    ids[~found] = -1
    if times is None:
        return ids, np.zeros(probe.height, np.int64)
    hit &= (1 << tbits) - 1
    hit += tmin - 1
    return ids, hit


def _ranges(keys: list[pa.Array], times: list[pa.Array] | None) -> tuple[int, int, int, int] | None:
    """The chunk's smallest and largest key and time; None when every row has a null."""
    kmin = kmax = tmin = tmax = None
    for i, key in enumerate(keys):
        low, high = (s.as_py() for s in pc.min_max(key).values())
        if low is not None:
            kmin = low if kmin is None else min(kmin, low)
            kmax = high if kmax is None else max(kmax, high)
        if times is not None:
            low, high = (s.as_py() for s in pc.min_max(times[i]).values())
            if low is not None:
                tmin = low if tmin is None else min(tmin, low)
                tmax = high if tmax is None else max(tmax, high)
    if kmin is None or kmax is None:
        return None
    if times is None:
        return kmin, kmax, 0, 0
    if tmin is None or tmax is None:
        return None
    return kmin, kmax, tmin, tmax


def _pack(
    keys: list[pa.Array], times: list[pa.Array] | None, kmin: int, tmin: int, tbits: int
) -> Ints:
    """The chunk's rows packed into one int64 array, batch by batch (no other full copy)."""
    import numpy as np

    packed = np.empty(sum(len(k) for k in keys), np.int64)
    start = 0
    for i, key in enumerate(keys):
        end = start + len(key)
        out = packed[start:end]
        np.subtract(_numbers(key), kmin - 1, out=out)
        out <<= tbits
        valid = pc.is_valid(key) if key.null_count else None
        if times is not None:
            out |= _numbers(times[i]) - (tmin - 1)
            if times[i].null_count:
                time_valid = pc.is_valid(times[i])
                valid = time_valid if valid is None else pc.and_(valid, time_valid)
        if valid is not None:
            out[~valid.to_numpy(zero_copy_only=False)] = 0
        start = end
    return packed


def _numbers(values: pa.Array) -> Ints:
    """An integer array as int64 numpy, nulls as zeros (the caller masks them)."""
    if values.null_count:
        values = pc.fill_null(values, 0)
    if values.type != pa.int64():
        values = values.cast(pa.int64())
    return values.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _pack_order(key: Ints, t: Ints) -> Ints | None:
    """The order that sorts (key, t), by packing both into one int64; None if they do not fit."""
    if key.size == 0:
        return key
    kmin, tmin = int(key.min()), int(t.min())
    tbits = (int(t.max()) - tmin).bit_length()
    if (int(key.max()) - kmin).bit_length() + tbits > _PACKED_BITS:
        return None
    packed = key - kmin
    packed <<= tbits
    packed |= t - tmin
    return pl.Series(packed).arg_sort().to_numpy()  # type: ignore[no-any-return]


def _match_frames(
    probe: Probe, keys: list[list[pa.Array]], times: list[pa.Array] | None, offset: int
) -> tuple[Ints, Ints]:
    """Match with Polars: ``join_asof`` by key for point-in-time lookups, a hash join else.

    Results are in ``probe.frame`` order.
    """
    import numpy as np

    columns: dict[str, Any] = {
        name: pa.chunked_array(arrays) for name, arrays in zip(probe.keys, keys, strict=True)
    }
    if times is not None:
        columns["__ft"] = pa.chunked_array(times, pa.int64())
    right = pl.DataFrame(pa.table(columns))
    ids = pl.int_range(offset, offset + right.height, dtype=pl.Int64)
    right = right.with_columns(ids.alias("__i")).drop_nulls()
    if probe.pit:
        matched = probe.by_time().join_asof(
            right.sort("__ft"),
            left_on="__t",
            right_on="__ft",
            by=probe.keys,
            strategy="backward",
            check_sortedness=False,
        )
    else:
        right = right.unique(subset=probe.keys, keep="last", maintain_order=True)
        matched = probe.frame.with_row_index("__p").join(right, on=probe.keys, how="left")
    found = np.full(probe.height, -1, np.int64)
    found_t = np.zeros(probe.height, np.int64)
    hit = matched.filter(pl.col("__i").is_not_null())
    at = hit["__p"].to_numpy()
    found[at] = hit["__i"].to_numpy()
    if probe.pit:
        found_t[at] = hit["__ft"].to_numpy()
    return found, found_t


def gather(
    dataset: pds.Dataset, columns: Sequence[str], positions: Ints, *, table: str
) -> pa.Table:
    """The ``columns`` of the rows at ``positions`` (row ids; -1 gives nulls), in that order.

    Only the feature columns are scanned, a batch at a time, and the scan stops after the last
    wanted row.
    """
    import numpy as np

    fields = pa.schema([dataset.schema.field(c) for c in columns])
    missing = int(np.count_nonzero(positions < 0))
    order = pl.Series(positions).arg_sort().to_numpy()[missing:]  # the -1s sort first
    ids = positions[order]
    parts: list[pa.RecordBatch] = []
    start = done = 0
    if ids.size:
        for batch in dataset.to_batches(
            columns=list(columns), batch_size=_SCAN_BATCH, batch_readahead=4, fragment_readahead=1
        ):
            end = start + batch.num_rows
            upto = int(np.searchsorted(ids, end, side="left"))
            if upto > done:
                parts.append(batch.take(pa.array(ids[done:upto] - start)))
            start, done = end, upto
            if done == ids.size:
                break
    if done != ids.size:
        raise FeatureError(
            f"feature table {table} had fewer rows on its second read than on its first: it "
            "changed while it was read; run the lookup again"
        )
    found = pa.Table.from_batches(parts, schema=fields) if parts else fields.empty_table()
    index = np.full(positions.size, -1, np.int64)
    index[order] = np.arange(order.size)
    return found.take(pa.array(index, mask=index < 0))
