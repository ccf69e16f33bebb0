"""Looking the catalog up in SQL as Databricks SQL does: DESCRIBE, DESCRIBE HISTORY and SHOW,
with Databricks' output columns."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from lakestack.errors import LakeError
from lakestack.lake import Catalog

pytestmark = pytest.mark.integration


@pytest.fixture
def orders(catalog: Catalog) -> Catalog:
    catalog.sql(
        "CREATE TABLE main.sales.orders (id BIGINT NOT NULL, amount DOUBLE, region STRING, "
        "PRIMARY KEY (id)) COMMENT 'one row per order'"
    )
    catalog.sql("INSERT INTO main.sales.orders VALUES (1, 9.5, 'eu'), (2, 3.0, 'us')")
    catalog.create_table(
        "main.sales.baskets",
        pa.table({"id": [1], "items": [["a", "b"]], "total": pa.array([1.5], pa.float32())}),
    )
    return catalog


def test_describe_gives_each_column_its_spark_type(orders: Catalog) -> None:
    for statement in ("DESCRIBE main.sales.baskets", "DESC TABLE main.sales.baskets"):
        rows = orders.sql(statement).to_pylist()
        assert [(r["col_name"], r["data_type"]) for r in rows] == [
            ("id", "bigint"),
            ("items", "array<string>"),
            ("total", "float"),
        ]


def test_describe_extended_adds_the_table_details(orders: Catalog) -> None:
    rows = orders.sql("DESCRIBE TABLE EXTENDED main.sales.orders").to_pylist()
    details = {r["col_name"]: r["data_type"] for r in rows}

    assert [r["col_name"] for r in rows[:3]] == ["id", "amount", "region"]
    assert "# Detailed Table Information" in details
    assert (details["Catalog"], details["Database"], details["Table"]) == (
        "main",
        "sales",
        "orders",
    )
    assert (details["Provider"], details["Comment"], details["Version"]) == (
        "delta",
        "one row per order",
        "1",
    )
    assert "delta.enableChangeDataFeed=true" in details["Table Properties"]
    assert details["orders_pk"] == "PRIMARY KEY (`id`)"


def test_describe_history_lists_the_commits_newest_first(orders: Catalog) -> None:
    orders.sql("DELETE FROM main.sales.orders WHERE id = 2")

    history = orders.sql("DESCRIBE HISTORY main.sales.orders").to_pylist()
    latest = orders.sql("DESCRIBE HISTORY main.sales.orders LIMIT 1").to_pylist()

    assert [h["version"] for h in history] == [2, 1, 0]
    assert [h["operation"] for h in history] == ["DELETE", "WRITE", "CREATE TABLE"]
    assert json.loads(history[1]["operationParameters"])["mode"] == "Append"
    assert history[0]["timestamp"] >= history[2]["timestamp"]
    assert latest == history[:1]


def test_show_catalogs_schemas_tables_columns_and_properties(orders: Catalog) -> None:
    orders.create_schema("other.ml")

    assert orders.sql("SHOW CATALOGS").column("catalog").to_pylist() == ["main", "other"]
    assert orders.sql("SHOW SCHEMAS IN main").column("databaseName").to_pylist() == ["sales"]
    assert orders.sql("SHOW DATABASES").column("databaseName").to_pylist() == [
        "main.sales",
        "other.ml",
    ]
    assert orders.sql("SHOW TABLES IN main.sales").to_pylist() == [
        {"database": "sales", "tableName": "baskets", "isTemporary": False},
        {"database": "sales", "tableName": "orders", "isTemporary": False},
    ]
    assert orders.sql("SHOW TABLES").column("database").to_pylist() == ["main.sales"] * 2
    assert orders.sql("SHOW COLUMNS IN main.sales.orders").column("col_name").to_pylist() == [
        "id",
        "amount",
        "region",
    ]
    properties = orders.sql("SHOW TBLPROPERTIES main.sales.orders").to_pylist()
    assert {"key": "delta.enableChangeDataFeed", "value": "true"} in properties


def test_describing_a_missing_table_names_it_and_the_schema_tables(orders: Catalog) -> None:
    with pytest.raises(LakeError, match=r"table main.sales.nope does not exist \(tables in main"):
        orders.sql("DESCRIBE main.sales.nope")
