"""Schema hints, type inference and conversion that rescues what does not fit."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakestack.errors import UsageError
from lakestack.lake.ingest_schema import TIMESTAMP, normalize_arrow, parse_schema_hints
from lakestack.lake.ingest_types import convert, infer_type, raw_value, unify_types


def strings(*values: str | None) -> pa.Array:
    return pa.array(values, type=pa.string())


def test_schema_hints_parse_ddl_and_mappings() -> None:
    hints = parse_schema_hints("id bigint, amount decimal(10, 2), `when` timestamp, ok BOOLEAN")
    assert hints == {
        "id": pa.int64(),
        "amount": pa.decimal128(10, 2),
        "when": TIMESTAMP,
        "ok": pa.bool_(),
    }
    assert parse_schema_hints({"n": "int", "d": "date"}) == {"n": pa.int32(), "d": pa.date32()}
    assert parse_schema_hints(None) == {}


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ("id", r"schema hint 'id' needs a column and a type, e.g. 'id bigint, amount double'"),
        ("id uuid", r"schema hint for 'id': unsupported type 'uuid'; use one of .*bigint"),
        ("x decimal(50,2)", r"scale <= precision <= 38"),
    ],
)
def test_bad_schema_hints_say_what_to_write(hints: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_schema_hints(hints)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", None], pa.int64()),
        (["1", "2.5"], pa.float64()),
        (["true", "FALSE"], pa.bool_()),
        (["2024-01-31", "2024-02-01"], pa.date32()),
        (["2024-01-31 10:00:00", "2024-01-31T10:00:00+02:00"], TIMESTAMP),
        (["1", "x"], pa.string()),
        ([None, None], pa.string()),
    ],
)
def test_csv_text_infers_the_narrowest_type(
    values: list[str | None], expected: pa.DataType
) -> None:
    assert infer_type("strings", strings(*values)) == expected


def test_json_values_infer_nested_types_and_fall_back_to_string() -> None:
    assert infer_type("json", [1, None, 2]) == pa.int64()
    assert infer_type("json", [1, 2.5]) == pa.float64()
    assert infer_type("json", [True, 1]) == pa.string()
    assert infer_type("json", [{"a": 1}, {"b": ["x"]}]) == pa.struct(
        [("a", pa.int64()), ("b", pa.list_(pa.string()))]
    )
    # JSON has no timestamp type: ISO text stays text (Spark's inferTimestamp=false)
    assert infer_type("json", ["2024-01-01T00:00:00"]) == pa.string()


def test_types_unify_to_the_narrowest_common_type() -> None:
    assert unify_types(pa.int32(), pa.int64()) == pa.int64()
    assert unify_types(pa.int64(), pa.float64()) == pa.float64()
    assert unify_types(pa.date32(), TIMESTAMP) == TIMESTAMP
    assert unify_types(pa.int64(), pa.string()) == pa.string()
    assert unify_types(
        pa.struct([("a", pa.int64())]), pa.struct([("a", pa.float64()), ("b", pa.bool_())])
    ) == pa.struct([("a", pa.float64()), ("b", pa.bool_())])


def test_text_that_does_not_parse_is_reported_by_row() -> None:
    values = strings("1", "x", None, "4", "1.5")
    array, bad = convert("strings", values, pa.int64())
    assert array.to_pylist() == [1, None, None, 4, None]
    assert bad == [1, 4]
    assert [raw_value("strings", values, row) for row in bad] == ["x", "1.5"]


def test_timestamps_with_and_without_offset_are_utc_instants() -> None:
    array, bad = convert(
        "strings", strings("2024-01-01 10:00:00", "2024-01-01T10:00:00+02:00", "soon"), TIMESTAMP
    )
    assert array.to_pylist()[:2] == [
        datetime(2024, 1, 1, 10, tzinfo=timezone.utc),
        datetime(2024, 1, 1, 8, tzinfo=timezone.utc),
    ]
    assert bad == [2]


def test_fractions_finer_than_microseconds_are_truncated_as_spark_does() -> None:
    array, bad = convert(
        "strings",
        strings("2026-01-01 00:00:25.979625238", "2026-01-01T00:00:25.1234567+01:00"),
        TIMESTAMP,
    )
    assert bad == []
    assert array.to_pylist() == [
        datetime(2026, 1, 1, 0, 0, 25, 979625, tzinfo=timezone.utc),
        datetime(2025, 12, 31, 23, 0, 25, 123456, tzinfo=timezone.utc),
    ]


def test_json_values_convert_without_silent_truncation() -> None:
    values = [1, 2.5, "3", True, None, 2**70, 7]
    array, bad = convert("json", values, pa.int64())
    assert array.to_pylist() == [1, None, None, None, None, None, 7]
    assert bad == [1, 2, 3, 5]


def test_json_objects_with_unknown_nested_keys_are_rescued_whole() -> None:
    target = pa.struct([("a", pa.int64())])
    array, bad = convert("json", [{"a": 1}, {"a": 1, "b": 2}, {"a": "x"}], target)
    assert array.to_pylist()[0] == {"a": 1}
    assert bad == [1, 2]


def test_json_text_parses_into_dates_and_decimals_and_anything_into_strings() -> None:
    array, bad = convert("json", ["2024-03-01", 5, None], pa.date32())
    assert array.to_pylist() == [date(2024, 3, 1), None, None] and bad == [1]
    array, bad = convert("json", ["12.50", 3, "x"], pa.decimal128(10, 2))
    assert array.to_pylist() == [Decimal("12.50"), Decimal("3.00"), None] and bad == [2]
    array, bad = convert("json", ["a", 1, {"k": [1]}, None], pa.string())
    assert array.to_pylist() == ["a", "1", '{"k": [1]}', None] and bad == []


def test_parquet_values_narrowing_out_of_range_are_rescued() -> None:
    array, bad = convert("arrow", pa.array([1, 300, None], type=pa.int64()), pa.int8())
    assert array.to_pylist() == [1, None, None]
    assert bad == [1]
    array, bad = convert("arrow", pa.array([[1, 2]]), pa.string())
    assert array.to_pylist() == ["[1, 2]"] and bad == []


def test_parquet_types_become_delta_types() -> None:
    assert normalize_arrow(pa.array([1], type=pa.uint32())).type == pa.int64()
    assert normalize_arrow(pa.array(["a"]).dictionary_encode()).type == pa.string()
    assert normalize_arrow(pa.array([1], type=pa.timestamp("ns"))).type == pa.timestamp("us")
    assert normalize_arrow(pa.array([None], type=pa.null())).type == pa.string()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**62), max_value=2**62).map(str),
            st.sampled_from(["x", "1.5", "", " 7", "NaN"]),
            st.none(),
        ),
        max_size=200,
    )
)
def test_bisection_finds_exactly_the_values_that_do_not_parse(values: list[str | None]) -> None:
    array, bad = convert("strings", strings(*values), pa.int64())
    expected_bad = [
        i for i, v in enumerate(values) if v is not None and not v.lstrip("-").isdigit()
    ]
    assert bad == expected_bad
    assert array.to_pylist() == [
        None if v is None or i in expected_bad else int(v) for i, v in enumerate(values)
    ]


def test_parquet_values_of_another_kind_are_rescued_not_reinterpreted() -> None:
    array, bad = convert("arrow", pa.array([5, None, 0]), pa.bool_())
    assert array.to_pylist() == [None, None, None] and bad == [0, 2]
    when = pa.array([datetime(2024, 1, 1, 10, tzinfo=timezone.utc)], type=TIMESTAMP)
    assert convert("arrow", when, pa.date32())[1] == [0]
    assert convert("arrow", pa.array([5]), TIMESTAMP)[1] == [0]
    assert convert("arrow", pa.array([date(2024, 1, 1)]), TIMESTAMP)[1] == []
