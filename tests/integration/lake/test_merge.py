"""``Table.merge`` with a source that has only some of the table's columns (labels by key)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakestack.errors import LakeError
from lakestack.lake import Catalog
from lakestack.lake.views import uniform_parts

pytestmark = pytest.mark.integration


def scored(catalog: Catalog) -> None:
    catalog.create_schema("main.ml")
    rows = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "feature": [0.5, 1.5, 2.5],
            "prediction": [0, 1, 1],
            "label": pa.array([None, None, None], pa.int64()),
        }
    )
    catalog.create_table("main.ml.scored", rows, primary_keys=["id"])


def test_a_merge_of_some_columns_keeps_the_others(catalog: Catalog) -> None:
    scored(catalog)
    table = catalog.table("main.ml.scored")

    labels = pa.table({"id": pa.array([2, 3, 4], pa.int64()), "label": pa.array([1, 0, 1])})
    table.merge(labels)

    rows = sorted(table.read().to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": 1, "feature": 0.5, "prediction": 0, "label": None},
        {"id": 2, "feature": 1.5, "prediction": 1, "label": 1},
        {"id": 3, "feature": 2.5, "prediction": 1, "label": 0},
        {"id": 4, "feature": None, "prediction": None, "label": 1},
    ]


def test_a_whole_row_merge_still_replaces_every_column(catalog: Catalog) -> None:
    scored(catalog)
    table = catalog.table("main.ml.scored")

    table.merge(pa.table({"id": [1], "feature": [9.0], "prediction": [1], "label": [1]}))

    first = next(r for r in table.read().to_pylist() if r["id"] == 1)
    assert first == {"id": 1, "feature": 9.0, "prediction": 1, "label": 1}


def test_a_partial_merge_without_the_key_commits_nothing(catalog: Catalog) -> None:
    scored(catalog)
    table = catalog.table("main.ml.scored")
    version = table.version

    with pytest.raises(LakeError, match="the data has no column 'id', which is NOT NULL"):
        table.merge(pa.table({"label": [1]}))
    assert table.version == version


def test_string_filters_work_after_a_merge_rewrote_files_in_view_types(catalog: Catalog) -> None:
    catalog.create_schema("main.ml")
    table = catalog.create_table(
        "main.ml.scored", pa.table({"id": ["a", "b", "c"], "model": ["1", "1", "2"]})
    )
    table.append(pa.table({"id": ["d"], "model": ["2"]}))
    table.merge(pa.table({"id": ["a"], "model": ["3"]}), keys=["id"])  # rewrites one file
    parts = uniform_parts(table.dataset())
    assert len(parts) == 2, "delta-rs wrote the merged file with plain strings: nothing to test"

    by_sql = catalog.sql("SELECT id FROM main.ml.scored WHERE model >= '2' ORDER BY id")
    by_read = table.read(["id"], filter=pc.field("model") == "2")
    by_batches = pa.Table.from_batches(list(table.batches(["id"], [("model", "in", ["3"])])))

    assert by_sql.column("id").to_pylist() == ["a", "c", "d"]
    assert sorted(by_read.column("id").to_pylist()) == ["c", "d"]
    assert by_read.schema.field("id").type == pa.string()
    assert by_batches.column("id").to_pylist() == ["a"]
