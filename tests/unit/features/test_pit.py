"""The point-in-time join against a brute-force reference, property-tested.

Random keys (some missing from the feature table, some null), timestamps with ties between
input and feature rows, nulls in features, lookback windows, defaults, several lookups at once
(point-in-time and exact), and feature tables matched in chunks as small as one row. Keys are
small integers (matched by packing key and time into one integer), integers too far apart to
pack, or strings (both matched with Polars joins instead).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pds
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakestack.errors import FeatureError
from lakestack.features.lookup import BoundLookup, FeatureLookup
from lakestack.features.pit import join_features
from lakestack.features.table import FeatureTable

SECOND = 1_000_000
TS = pa.timestamp("us", tz="UTC")


def feature_table(name: str, keys: list[str], ts: str | None, columns: list[str]) -> FeatureTable:
    primary = [*keys, *([ts] if ts else [])]
    return FeatureTable(name, primary, [ts] if ts else [], None, {}, [*primary, *columns])


def reference(
    left: list[dict[str, Any]], rows: list[dict[str, Any]], lookup: BoundLookup
) -> dict[str, list[Any]]:
    """For every left row, by brute force: the matching feature values (or defaults)."""
    out: dict[str, list[Any]] = {name: [] for name in lookup.output_names}
    window = lookup.lookback_window
    for row in left:
        keys = [row[k] for k in lookup.lookup_key]
        match = None
        if None not in keys:
            candidates = [r for r in rows if [r[k] for k in lookup.table_keys] == keys]
            if lookup.timestamp_lookup_key:
                t = row[lookup.timestamp_lookup_key]
                ts_key = lookup.table_timestamp_key
                candidates = (
                    []
                    if t is None
                    else [
                        r
                        for r in candidates
                        if r[ts_key] <= t and (window is None or r[ts_key] >= t - window)
                    ]
                )
                candidates.sort(key=lambda r: r[ts_key])
            match = candidates[-1] if candidates else None
        for feature, output in zip(lookup.feature_names, lookup.output_names, strict=True):
            value = match[feature] if match is not None else None
            if value is None:
                value = lookup.default_values.get(output)
            out[output].append(value)
    return out


KEY_KINDS: dict[str, tuple[pa.DataType, Any]] = {
    "small integers": (pa.int64(), lambda k: k),
    "integers too far apart to pack": (pa.int64(), lambda k: k * 2**60),
    "strings": (pa.string(), lambda k: f"customer-{k}"),
}


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    times = st.integers(0, 12).map(lambda s: s * SECOND)
    series = draw(
        st.dictionaries(
            st.tuples(st.integers(0, 3), times),
            st.tuples(
                st.none() | st.floats(-5, 5, allow_nan=False),
                st.none() | st.sampled_from(["a", "b", "c"]),
            ),
            max_size=25,
        )
    )
    static = draw(st.dictionaries(st.integers(0, 3), st.none() | st.integers(-9, 9), max_size=4))
    left = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.none() | st.integers(0, 4),
                    "when": st.none() | times,
                    "label": st.integers(0, 1),
                }
            ),
            min_size=1,
            max_size=20,
        )
    )
    window = draw(st.none() | st.integers(0, 6).map(lambda s: timedelta(seconds=s)))
    second_window = draw(st.none() | st.integers(0, 3).map(lambda s: timedelta(seconds=s)))
    x_default = draw(st.none() | st.floats(-1, 1, allow_nan=False))
    chunk_rows = draw(st.integers(1, 30))
    batch_rows = draw(st.integers(1, 10))
    key_kind = draw(st.sampled_from(sorted(KEY_KINDS)))
    return {
        "key_kind": key_kind,
        "series": [{"id": k, "ts": t, "x": x, "s": s} for (k, t), (x, s) in series.items()],
        "static": [{"sid": k, "v": v} for k, v in static.items()],
        "left": left,
        "window": window,
        "second_window": second_window,
        "x_default": x_default,
        "chunk_rows": chunk_rows,
        "batch_rows": batch_rows,
    }


def in_batches(table: pa.Table, rows: int) -> pds.Dataset:
    """A dataset that yields ``table`` in batches of at most ``rows`` rows, as files would."""
    return pds.dataset(table.to_batches(max_chunksize=rows), schema=table.schema)


def as_timestamps(values: list[int | None]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(TS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_point_in_time_join_matches_brute_force(case: dict[str, Any]) -> None:
    key_type, as_key = KEY_KINDS[case["key_kind"]]

    def keys(values: list[int | None]) -> pa.Array:
        return pa.array([None if k is None else as_key(k) for k in values], key_type)

    series = pa.table(
        {
            "id": keys([r["id"] for r in case["series"]]),
            "ts": as_timestamps([r["ts"] for r in case["series"]]),
            "x": pa.array([r["x"] for r in case["series"]], pa.float64()),
            "s": pa.array([r["s"] for r in case["series"]], pa.string()),
        }
    )
    static = pa.table(
        {
            "sid": keys([r["sid"] for r in case["static"]]),
            "v": pa.array([r["v"] for r in case["static"]], pa.int32()),
        }
    )
    left_rows = case["left"]
    left = pa.table(
        {
            "id": keys([r["id"] for r in left_rows]),
            "when": as_timestamps([r["when"] for r in left_rows]),
            "label": pa.array([r["label"] for r in left_rows], pa.int64()),
        }
    )
    series_table = feature_table("main.fs.series", ["id"], "ts", ["x", "s"])
    static_table = feature_table("main.fs.static", ["sid"], None, ["v"])
    defaults = {"x": case["x_default"]} if case["x_default"] is not None else None
    lookups = [
        FeatureLookup(
            "main.fs.series",
            "id",
            timestamp_lookup_key="when",
            lookback_window=case["window"],
            default_values=defaults,
        ).bind(series_table, 1),
        FeatureLookup(
            "main.fs.series",
            "id",
            feature_names=["x"],
            rename_outputs={"x": "x_recent"},
            timestamp_lookup_key="when",
            lookback_window=case["second_window"],
        ).bind(series_table, 1),
        FeatureLookup(
            "main.fs.static", "id", rename_outputs={"v": "static_v"}, default_values={"v": 0}
        ).bind(static_table, 1),
    ]
    datasets = {
        "main.fs.series": in_batches(series, case["batch_rows"]),
        "main.fs.static": in_batches(static, case["batch_rows"]),
    }

    joined = join_features(
        left, lookups, lambda lk: datasets[lk.table_name], chunk_rows=case["chunk_rows"]
    )

    assert joined.column_names == ["id", "when", "label", "x", "s", "x_recent", "static_v"]
    assert joined.select(["id", "when", "label"]).equals(left)
    py_left = [{"id": r["id"], "when": r["when"], "label": r["label"]} for r in left_rows]
    # the reference compares the drawn small integers: the same matches as the mapped keys
    windows = [case["window"], case["second_window"], None]
    sources = [case["series"], case["series"], case["static"]]
    for lookup, rows, window in zip(lookups, sources, windows, strict=True):
        micro = lookup if window is None else _with_window_us(lookup, window)
        expected = reference(py_left, rows, micro)
        for name, values in expected.items():
            assert joined.column(name).to_pylist() == values, name


def _with_window_us(lookup: BoundLookup, window: timedelta) -> BoundLookup:
    # the reference compares plain integers (microseconds)
    from dataclasses import replace

    return replace(lookup, lookback_window=int(window.total_seconds() * SECOND))  # type: ignore[arg-type]


def test_input_timestamps_of_other_units_and_zones_are_compared_as_utc() -> None:
    table = pa.table(
        {
            "id": [1, 1],
            "ts": pa.array([10 * SECOND, 20 * SECOND], pa.int64()).cast(TS),
            "x": [1.0, 2.0],
        }
    )
    naive_ns = pa.array([15 * 10**9, 20 * 10**9, 9 * 10**9], pa.int64()).cast(pa.timestamp("ns"))
    left = pa.table({"id": [1, 1, 1], "when": naive_ns})
    lookup = FeatureLookup("main.fs.t", "id", timestamp_lookup_key="when").bind(
        feature_table("main.fs.t", ["id"], "ts", ["x"]), 0
    )
    joined = join_features(left, [lookup], lambda _: pds.dataset(table))
    assert joined.column("x").to_pylist() == [1.0, 2.0, None]


def test_dates_look_up_as_of_their_midnight() -> None:
    day = 86_400 * SECOND
    table = pa.table(
        {"id": [1, 1], "ts": pa.array([0, day + 1], pa.int64()).cast(TS), "x": [1.0, 2.0]}
    )
    left = pa.table({"id": [1, 1], "day": pa.array([0, 1], pa.int32()).cast(pa.date32())})
    lookup = FeatureLookup("main.fs.t", "id", timestamp_lookup_key="day").bind(
        feature_table("main.fs.t", ["id"], "ts", ["x"]), 0
    )
    joined = join_features(left, [lookup], lambda _: pds.dataset(table))
    assert joined.column("x").to_pylist() == [1.0, 1.0]


def test_a_key_of_another_kind_of_type_names_both_columns() -> None:
    table = pa.table({"id": [1], "x": [1.0]})
    left = pa.table({"customer": ["1"]})
    lookup = FeatureLookup("main.fs.t", "customer").bind(
        feature_table("main.fs.t", ["id"], None, ["x"]), 0
    )
    with pytest.raises(
        FeatureError, match=r"'customer' of the input is string.*'id' of feature table main.fs.t"
    ):
        join_features(left, [lookup], lambda _: pds.dataset(table))


def test_a_default_that_does_not_fit_the_feature_type_is_an_error() -> None:
    table = pa.table({"id": [1], "x": [1.0]})
    lookup = FeatureLookup("main.fs.t", "id", default_values={"x": "high"}).bind(
        feature_table("main.fs.t", ["id"], None, ["x"]), 0
    )
    with pytest.raises(FeatureError, match=r"default value 'high' for feature 'x' of main.fs.t"):
        join_features(pa.table({"id": [2]}), [lookup], lambda _: pds.dataset(table))


def test_an_empty_feature_table_gives_nulls_of_the_feature_types() -> None:
    table = pa.table({"id": pa.array([], pa.int64()), "x": pa.array([], pa.float32())})
    lookup = FeatureLookup("main.fs.t", "id").bind(
        feature_table("main.fs.t", ["id"], None, ["x"]), 0
    )
    joined = join_features(pa.table({"id": [1, 2]}), [lookup], lambda _: pds.dataset(table))
    assert joined.column("x").type == pa.float32()
    assert joined.column("x").to_pylist() == [None, None]


def test_an_empty_input_gets_empty_feature_columns() -> None:
    table = pa.table({"id": [1], "ts": pa.array([0], pa.int64()).cast(TS), "x": [1.0]})
    left = pa.table({"id": pa.array([], pa.int64()), "when": pa.array([], TS)})
    lookup = FeatureLookup("main.fs.t", "id", timestamp_lookup_key="when").bind(
        feature_table("main.fs.t", ["id"], "ts", ["x"]), 0
    )
    joined = join_features(left, [lookup], lambda _: pds.dataset(table))
    assert joined.num_rows == 0 and joined.column_names == ["id", "when", "x"]
    assert joined.schema.field("x").type == pa.float64()


@pytest.mark.parametrize("key_type", [pa.int64(), pa.string()])
def test_feature_rows_with_a_null_key_or_timestamp_match_nothing(key_type: pa.DataType) -> None:
    table = pa.table(
        {
            "id": pa.array([1, None, 1, 2], pa.int64()).cast(key_type),
            "ts": pa.array([10 * SECOND, 10 * SECOND, None, 10 * SECOND], pa.int64()).cast(TS),
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    left = pa.table(
        {
            "id": pa.array([1, None, 2], pa.int64()).cast(key_type),
            "when": pa.array([20 * SECOND] * 3, pa.int64()).cast(TS),
        }
    )
    lookup = FeatureLookup("main.fs.t", "id", timestamp_lookup_key="when").bind(
        feature_table("main.fs.t", ["id"], "ts", ["x"]), 0
    )
    joined = join_features(left, [lookup], lambda _: pds.dataset(table))
    assert joined.column("x").to_pylist() == [1.0, None, 4.0]


def test_lookups_of_several_tables_share_the_input_and_keep_their_own_columns() -> None:
    first = pa.table({"id": [1, 2], "ts": pa.array([0, 0], pa.int64()).cast(TS), "x": [1.0, 2.0]})
    second = pa.table({"id": [2, 3], "ts": pa.array([0, 0], pa.int64()).cast(TS), "y": ["b", "c"]})
    tables = {"main.fs.first": first, "main.fs.second": second}
    lookups = [
        FeatureLookup(name, "id", timestamp_lookup_key="when").bind(
            feature_table(name, ["id"], "ts", [column]), 0
        )
        for name, column in (("main.fs.first", "x"), ("main.fs.second", "y"))
    ]
    left = pa.table({"id": [3, 2, 1], "when": pa.array([1, 1, 1], pa.int64()).cast(TS)})
    joined = join_features(left, lookups, lambda lk: pds.dataset(tables[lk.table_name]))
    assert joined.column_names == ["id", "when", "x", "y"]
    assert joined.column("x").to_pylist() == [None, 2.0, 1.0]
    assert joined.column("y").to_pylist() == ["c", "b", None]
