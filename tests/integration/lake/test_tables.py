"""Delta tables through the catalog: create, read, write, constraints, history, time travel."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakestack.errors import (
    AlreadyExistsError,
    ConstraintError,
    LakeError,
    NotFoundError,
    SchemaMismatchError,
)
from lakestack.lake import Catalog, Table

pytestmark = pytest.mark.integration


def orders(catalog: Catalog) -> Table:
    return catalog.create_table(
        "main.sales.orders",
        pd.DataFrame(
            {
                "id": [1, 2, 3],
                "amount": [10.0, 20.0, 30.0],
                "at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
            }
        ),
        primary_keys=["id"],
        not_null=["amount"],
        comment="one row per order",
        tags={"team": "sales"},
        properties={"owner": "ada"},
    )


def test_create_and_describe(catalog: Catalog) -> None:
    table = orders(catalog)
    info = table.info
    assert (info.name, info.version, info.primary_keys) == ("main.sales.orders", 1, ["id"])
    assert info.columns == [
        ("id", "int64", False),
        ("amount", "double", False),
        ("at", "timestamp[us]", True),
    ]
    assert info.comment == "one row per order" and info.tags == {"team": "sales"}
    assert info.properties["owner"] == "ada"
    assert [t.name for t in catalog.list_tables("main.sales")] == ["main.sales.orders"]
    with pytest.raises(AlreadyExistsError, match=r"table main\.sales\.orders exists already"):
        orders(catalog)
    assert (
        catalog.create_table("main.sales.orders", schema=table.schema, exist_ok=True).version == 1
    )


def test_missing_schema_and_table_are_named(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match=r"schema main\.nope does not exist; create it"):
        catalog.create_table("main.nope.t", pa.table({"a": [1]}))
    orders(catalog)
    with pytest.raises(
        NotFoundError,
        match=r"table main\.sales\.order does not exist; did you mean main\.sales\.orders\?",
    ):
        catalog.table("main.sales.order")
    # the default schema exists in every catalog
    assert catalog.create_table("dev.default.t", pa.table({"a": [1]})).version == 1
    assert "dev" in catalog.list_catalogs()


def test_reads_as_arrow_pandas_polars_with_pushdown(catalog: Catalog) -> None:
    table = orders(catalog)
    assert table.read(columns=["id"], filter=[("amount", ">", 15.0)]).to_pydict() == {"id": [2, 3]}
    assert table.read(filter=pc.field("id") == 1).num_rows == 1
    assert list(table.to_pandas(columns=["amount"])["amount"]) == [10.0, 20.0, 30.0]
    assert isinstance(table.to_polars(), pl.DataFrame)
    assert sum(b.num_rows for b in table.batches(batch_size=2)) == 3
    with pytest.raises(
        SchemaMismatchError, match=r"table main\.sales\.orders has no column 'nope'"
    ):
        table.read(columns=["nope"])


def test_append_merge_delete_and_time_travel(catalog: Catalog) -> None:
    table = orders(catalog)
    first = datetime.now(timezone.utc)
    time.sleep(0.05)
    assert table.append(pl.DataFrame({"id": [4], "amount": [40.0]})) == 2
    assert table.merge(pa.table({"id": [1, 5], "amount": [11.0, 50.0]})) == 3
    assert table.delete("id = 2") == 4
    current = table.read().sort_by("id")
    assert current.column("id").to_pylist() == [1, 3, 4, 5]
    assert current.column("amount").to_pylist() == [11.0, 30.0, 40.0, 50.0]
    assert table.read(version=1).num_rows == 3
    assert table.read(timestamp=first).column("id").to_pylist() == [1, 2, 3]
    assert [h["operation"] for h in table.history()] == [
        "DELETE",
        "MERGE",
        "WRITE",
        "WRITE",
        "CREATE TABLE",
    ]
    with pytest.raises(NotFoundError, match=r"table main\.sales\.orders has no version 99"):
        table.read(version=99)
    changes = table.changes(2)
    kinds = {(row["_change_type"], row["id"]) for row in changes.to_pylist()}
    assert ("insert", 4) in kinds and ("insert", 5) in kinds and ("delete", 2) in kinds
    assert ("update_postimage", 1) in kinds


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"id": [3], "amount": [1.0]}, ConstraintError, r"the primary key \(id=3\) exists already"),
        (
            {"id": [7, 7], "amount": [1.0, 2.0]},
            ConstraintError,
            r"2 rows with the primary key \(id=7\)",
        ),
        ({"id": [None, 8], "amount": [1.0, 2.0]}, ConstraintError, r"column 'id' is NOT NULL"),
        ({"id": [8], "amount": [None]}, ConstraintError, r"column 'amount' is NOT NULL"),
        ({"id": [8], "amount": ["lots"]}, SchemaMismatchError, r"column 'amount' is double"),
        ({"id": [8], "amount": [1.0], "extra": [1]}, SchemaMismatchError, r"has no column 'extra'"),
        ({"id": [8]}, SchemaMismatchError, r"has no column 'amount', which is NOT NULL"),
    ],
)
def test_a_bad_append_commits_nothing(
    catalog: Catalog, data: dict[str, list[object]], error: type[Exception], message: str
) -> None:
    table = orders(catalog)
    frame = pd.DataFrame(data)
    with pytest.raises(error, match=rf"main\.sales\.orders.*{message}"):
        table.append(frame)
    assert table.version == 1 and table.read().num_rows == 3


def test_merge_source_with_duplicate_keys_commits_nothing(catalog: Catalog) -> None:
    table = orders(catalog)
    with pytest.raises(
        ConstraintError, match=r"the merge source has 2 rows with the primary key \(id=1\)"
    ):
        table.merge(pd.DataFrame({"id": [1, 1], "amount": [1.0, 2.0]}))
    with pytest.raises(SchemaMismatchError, match="the source has no key column 'sku'"):
        table.merge(pd.DataFrame({"id": [1], "amount": [1.0]}), keys=["sku"])
    assert table.version == 1


def test_schema_evolution_and_overwrite(catalog: Catalog) -> None:
    table = orders(catalog)
    table.append(
        pd.DataFrame({"id": [9], "amount": [9.0], "channel": ["web"]}), schema_mode="merge"
    )
    assert table.schema.names == ["id", "amount", "at", "channel"]
    table.overwrite(pd.DataFrame({"id": [1], "amount": [1.0]}))
    assert table.read().num_rows == 1
    with pytest.raises(ConstraintError, match="keys must be unique"):
        table.overwrite(pd.DataFrame({"id": [1, 1], "amount": [1.0, 1.0]}))


def test_tags_comment_properties_and_app_transactions(catalog: Catalog) -> None:
    table = orders(catalog)
    table.set_tags({"pii": "no"})
    table.set_comment("orders, deduplicated")
    table.set_properties({"quality": "gold"})
    info = table.info
    assert info.tags == {"team": "sales", "pii": "no"}
    assert info.comment == "orders, deduplicated" and info.properties["quality"] == "gold"
    assert table.app_transaction_version("ingest") is None
    table.append(
        pa.table({"id": [10], "amount": [1.0]}),
        app_transaction=("ingest", 3),
        commit_metadata={"why": "test"},
    )
    assert table.app_transaction_version("ingest") == 3
    assert table.history(1)[0]["metadata"]["why"] == "test"


def test_volumes_and_drop(catalog: Catalog) -> None:
    path = catalog.create_volume("main.sales.landing")
    assert path.endswith("main/sales/landing")
    assert catalog.list_volumes("main.sales") == ["main.sales.landing"]
    orders(catalog)
    with pytest.raises(Exception, match=r"still holds main\.sales\.orders, main\.sales\.landing"):
        catalog.drop_schema("main.sales")
    catalog.drop_table("main.sales.orders")
    assert not catalog.table_exists("main.sales.orders")
    catalog.drop_schema("main.sales", cascade=True)
    assert catalog.list_schemas("main") == []


def test_optimize_compacts_small_files_and_keeps_rows_and_app_transactions(
    catalog: Catalog,
) -> None:
    catalog.create_schema("main.stream")
    table = catalog.create_table("main.stream.events", pa.table({"n": [0]}))
    for n in range(1, 6):
        table.append(pa.table({"n": [n]}), app_transaction=("feed", n))
    assert table.info.num_files == 6

    metrics = table.optimize(commit_metadata={"why": "test"})

    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"]) == (6, 1)
    assert table.info.num_files == 1
    assert sorted(table.read()["n"].to_pylist()) == [0, 1, 2, 3, 4, 5]
    assert table.app_transaction_version("feed") == 5
    last = table.history(1)[0]
    assert (last["operation"], last["metadata"]) == ("OPTIMIZE", {"why": "test"})
    assert table.read(version=5).num_rows == 5  # the replaced files still serve time travel
    assert table.optimize()["numFilesRemoved"] == 0  # nothing small left to compact


def test_vacuum_deletes_replaced_files_past_the_retention(catalog: Catalog) -> None:
    catalog.create_schema("main.stream")
    table = catalog.create_table("main.stream.events", pa.table({"n": [0]}))
    table.append(pa.table({"n": [1]}))
    table.optimize()

    assert table.vacuum() == []  # replaced seconds ago: within the 7-day retention
    with pytest.raises(LakeError, match=r"vacuum main\.stream\.events failed: .*retention"):
        table.vacuum(0)
    planned = table.vacuum(0, dry_run=True, enforce_retention_duration=False)
    assert len(planned) == 2
    assert sorted(table.vacuum(0, enforce_retention_duration=False)) == sorted(planned)
    assert sorted(table.read()["n"].to_pylist()) == [0, 1]
    with pytest.raises(FileNotFoundError):
        table.read(version=1)  # the files of the versions before the compaction are gone


def test_optimize_refuses_a_bad_target_size(catalog: Catalog) -> None:
    catalog.create_schema("main.stream")
    table = catalog.create_table("main.stream.events", pa.table({"n": [0]}))
    version = table.version
    with pytest.raises(LakeError, match="target_size must be a positive number of bytes, not 0"):
        table.optimize(target_size=0)
    assert table.version == version
