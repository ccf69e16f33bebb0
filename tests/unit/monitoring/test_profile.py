"""Profile statistics of one window against numpy, with the Databricks names."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lakestack.errors import MonitorError
from lakestack.lake.arrow import spark_type
from lakestack.monitoring import TABLE_COLUMN, profile_table

RNG = np.random.default_rng(3)
X = RNG.normal(5.0, 2.0, 500)


def window() -> pa.Table:
    x = X.copy()
    x[:3] = 0.0
    mask = np.zeros(500, dtype=bool)
    mask[-10:] = True
    return pa.table(
        {
            "x": pa.array(x, mask=mask),
            "n": pa.array(RNG.integers(0, 5, 500), pa.int32()),
            "plan": pa.array(["basic"] * 300 + ["pro"] * 150 + [None] * 50),
            "churn": pa.array([True] * 100 + [False] * 400),
        }
    )


def by_name(table: pa.Table, **kwargs: int) -> dict[str, dict[str, object]]:
    return {p.column_name: p.as_row() for p in profile_table(table, **kwargs)}


def test_numeric_statistics_match_numpy() -> None:
    table = window()
    values = table["x"].drop_null().to_numpy()
    x = by_name(table, num_quantiles=4)["x"]
    assert x["data_type"] == "double"
    assert (x["count"], x["num_nulls"], x["num_zeros"], x["num_nan"]) == (490, 10, 3, 0)
    assert x["avg"] == pytest.approx(values.mean())
    assert x["stddev"] == pytest.approx(values.std(ddof=1))
    assert x["min"] == pytest.approx(values.min()) and x["max"] == pytest.approx(values.max())
    assert x["median"] == pytest.approx(np.median(values))
    assert x["quantiles"] == pytest.approx(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))
    assert x["distinct_count"] == len(np.unique(values))
    assert x["percent_null"] == pytest.approx(2.0)
    assert x["percent_zeros"] == pytest.approx(100 * 3 / 490)
    assert x["frequent_items"] is None


def test_categorical_statistics() -> None:
    profiles = by_name(window(), top_k=1)
    plan = profiles["plan"]
    assert plan["data_type"] == "string"
    assert (plan["count"], plan["num_nulls"], plan["distinct_count"]) == (450, 50, 2)
    assert plan["percent_distinct"] == pytest.approx(100 * 2 / 450)
    assert plan["frequent_items"] == [{"item": "basic", "count": 300}]
    assert (plan["min_length"], plan["max_length"]) == (3.0, 5.0)
    assert plan["avg_length"] == pytest.approx((300 * 5 + 150 * 3) / 450)
    assert plan["avg"] is None and plan["num_zeros"] is None
    churn = profiles["churn"]
    assert churn["data_type"] == "boolean"
    assert churn["frequent_items"] == [{"item": "false", "count": 400}]
    assert profiles["n"]["data_type"] == "int"


def test_table_row_comes_first() -> None:
    table = window().append_column("empty", pa.nulls(500, pa.float64()))
    profiles = profile_table(table)
    assert profiles[0].column_name == TABLE_COLUMN
    assert profiles[0].count == 500
    assert profiles[0].non_null_columns == ["x", "n", "plan", "churn"]
    assert [p.column_name for p in profiles[1:]] == ["x", "n", "plan", "churn", "empty"]
    empty = profiles[-1]
    assert (empty.count, empty.num_nulls, empty.percent_null) == (0, 500, 100.0)
    assert empty.avg is None and empty.percent_distinct is None


def test_nan_is_counted_and_left_out_of_the_statistics() -> None:
    table = pa.table({"x": pa.array([1.0, float("nan"), 3.0, None])})
    x = by_name(table)["x"]
    assert (x["count"], x["num_nulls"], x["num_nan"]) == (3, 1, 1)
    assert x["avg"] == 2.0 and x["max"] == 3.0
    assert x["percent_nan"] == pytest.approx(100 / 3)


def test_empty_window() -> None:
    profiles = by_name(window().slice(0, 0))
    assert profiles[TABLE_COLUMN]["count"] == 0
    assert profiles[TABLE_COLUMN]["non_null_columns"] == []
    x = profiles["x"]
    assert (x["count"], x["num_nulls"], x["num_zeros"]) == (0, 0, 0)
    assert x["avg"] is None and x["quantiles"] is None and x["percent_null"] is None
    assert profiles["plan"]["frequent_items"] == []


def test_constant_column_and_odd_names() -> None:
    table = pa.table({'a "quoted" name': [7] * 20})
    row = by_name(table, num_quantiles=2)['a "quoted" name']
    assert row["stddev"] == 0.0 and row["quantiles"] == [7.0, 7.0, 7.0]
    assert row["distinct_count"] == 1 and row["percent_distinct"] == 5.0


def test_selected_columns_and_bad_arguments() -> None:
    assert [p.column_name for p in profile_table(window(), ["plan"])] == [TABLE_COLUMN, "plan"]
    with pytest.raises(MonitorError) as err:
        profile_table(window(), ["price"])
    assert str(err.value) == "column 'price' is not in the table: its columns are x, n, plan, churn"
    with pytest.raises(MonitorError, match="num_quantiles 0 and top_k 100 must both be at least 1"):
        profile_table(window(), num_quantiles=0)


@pytest.mark.parametrize(
    ("arrow", "spark"),
    [
        (pa.int64(), "bigint"),
        (pa.float32(), "float"),
        (pa.string(), "string"),
        (pa.decimal128(10, 2), "decimal(10,2)"),
        (pa.timestamp("us", "UTC"), "timestamp"),
        (pa.timestamp("us"), "timestamp_ntz"),
        (pa.dictionary(pa.int32(), pa.string()), "string"),
    ],
)
def test_spark_type_names(arrow: pa.DataType, spark: str) -> None:
    assert spark_type(arrow) == spark
