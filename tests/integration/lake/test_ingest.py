"""Incremental ingestion into real Delta tables: new files only, inference, evolution, rescue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakestack.lake
from lakestack.errors import ConstraintError, LakeError, NotFoundError, SchemaMismatchError
from lakestack.lake import Catalog
from lakestack.lake.ingest import ingest_files, main

pytestmark = pytest.mark.integration

TABLE = "main.bronze.events"


@pytest.fixture
def lake(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_schema("main.bronze")
    return catalog


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def drop(folder: Path, name: str, text: str, age: int = 0) -> Path:
    """Write a file; ``age`` seconds in the past orders files deterministically."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    stamp = 1_700_000_000 + age
    os.utime(path, (stamp, stamp))
    return path


def rows(catalog: Catalog, table: str = TABLE) -> list[dict[str, object]]:
    return sorted(catalog.table(table).read().to_pylist(), key=lambda r: str(r.get("id")))


def test_each_run_ingests_only_new_files_and_reports_them(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id,amount\n1,1.5\n2,2.5\n", age=1)
    drop(landing, "b.csv", "id,amount\n3,3.5\n", age=2)
    first = ingest_files(lake, str(landing), TABLE)
    assert (first.files, first.rows, first.rescued_rows, first.table_created) == (2, 3, 0, True)
    table = lake.table(TABLE)
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.names[-1] == "_rescued_data"
    assert first.table_version == table.version

    again = ingest_files(lake, str(landing), TABLE)
    assert (again.files, again.rows, again.skipped_files, again.batches) == (0, 0, 2, 0)
    assert again.table_version == first.table_version

    drop(landing, "c.csv", "id,amount\n4,4.5\n", age=3)
    third = ingest_files(lake, str(landing), TABLE)
    assert (third.files, third.rows, third.skipped_files) == (1, 1, 2)
    assert [r["id"] for r in rows(lake)] == [1, 2, 3, 4]
    assert json.loads(json.dumps(third.to_dict()))["rows"] == 1


def test_values_that_do_not_fit_are_rescued_with_the_rest_of_the_row(
    lake: Catalog, landing: Path
) -> None:
    drop(landing, "a.csv", "id,amount,day\n1,1.5,2024-01-01\n", age=1)
    ingest_files(lake, str(landing), TABLE)
    drop(landing, "b.csv", "id,amount,day\n2,12;5,2024-01-02\n3,3,not a day,surplus\n", age=2)
    result = ingest_files(lake, str(landing), TABLE)
    assert (result.rows, result.rescued_rows) == (2, 2)
    by_id = {r["id"]: r for r in rows(lake)}
    assert by_id[2]["amount"] is None and str(by_id[2]["day"]) == "2024-01-02"
    path = str(landing / "b.csv")
    assert json.loads(by_id[2]["_rescued_data"]) == {"amount": "12;5", "_file_path": path}
    assert json.loads(by_id[3]["_rescued_data"]) == {
        "day": "not a day",
        "_c3": "surplus",
        "_file_path": path,
    }
    assert by_id[3]["amount"] == 3.0
    assert by_id[1]["_rescued_data"] is None


def test_new_columns_are_added_and_old_rows_read_null(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id,amount\n1,1.5\n", age=1)
    ingest_files(lake, str(landing), TABLE)
    drop(landing, "b.csv", "id,amount,country,Amount\n2,2.5,FR,9\n", age=2)
    result = ingest_files(lake, str(landing), TABLE)
    assert result.new_columns == ["country"]
    by_id = {r["id"]: r for r in rows(lake)}
    assert by_id[1]["country"] is None and by_id[2]["country"] == "FR"
    # a column that matches an existing one only when case is ignored is rescued, as Auto Loader
    assert json.loads(by_id[2]["_rescued_data"])["Amount"] == "9"


def test_schema_hints_override_inference(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id,amount,code\n1,1.5,007\n")
    ingest_files(lake, str(landing), TABLE, schema_hints="amount decimal(10,2), code string")
    schema = lake.table(TABLE).schema
    assert schema.field("amount").type == pa.decimal128(10, 2)
    assert rows(lake)[0]["code"] == "007"


def test_json_lines_with_corrupt_lines_and_nested_values(lake: Catalog, landing: Path) -> None:
    drop(
        landing,
        "a.json",
        '{"id": 1, "tags": ["a"], "geo": {"lat": 1.5}}\n{broken\n{"id": "two"}\n',
        age=1,
    )
    result = ingest_files(lake, str(landing), TABLE, format="json")
    assert (result.rows, result.rescued_rows) == (3, 1)
    table = lake.table(TABLE)
    assert table.schema.field("id").type == pa.string()  # "two" made the first batch's id text
    assert table.schema.field("geo").type == pa.struct([("lat", pa.float64())])
    corrupt = [r for r in table.read().to_pylist() if r["_rescued_data"]]
    assert json.loads(corrupt[0]["_rescued_data"])["_corrupt_record"] == "{broken"

    drop(landing, "b.json", '{"id": 3, "geo": {"lat": "north"}, "extra": true}\n', age=2)
    result = ingest_files(lake, str(landing), TABLE, format="json")
    assert result.new_columns == ["extra"]
    last = next(r for r in lake.table(TABLE).read().to_pylist() if r["id"] == "3")
    assert last["geo"] is None and last["extra"] is True
    assert json.loads(last["_rescued_data"])["geo"] == {"lat": "north"}


def test_parquet_files_with_drifting_types(lake: Catalog, landing: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "score": [0.5, 0.7]}), landing / "a.parquet")
    ingest_files(lake, str(landing), TABLE, format="parquet")
    pq.write_table(pa.table({"id": ["3", "x"], "score": [0.9, None]}), landing / "b.parquet")
    result = ingest_files(lake, str(landing), TABLE, format="parquet")
    assert (result.rows, result.rescued_rows) == (2, 1)
    assert [r["id"] for r in rows(lake)] == [1, 2, 3, None]


def test_corrupt_parquet_fails_the_run_unless_ignored(lake: Catalog, landing: Path) -> None:
    pq.write_table(pa.table({"id": [1]}), landing / "a.parquet")
    drop(landing, "b.parquet", "this is not parquet")
    with pytest.raises(
        LakeError, match=r"cannot read .*b\.parquet as parquet .*ignore_corrupt_files=True"
    ):
        ingest_files(lake, str(landing), TABLE, format="parquet")
    result = ingest_files(lake, str(landing), TABLE, format="parquet", ignore_corrupt_files=True)
    assert result.rows == 1 and result.corrupt_files == [str(landing / "b.parquet")]


def test_batches_follow_the_file_limit_and_commit_one_version_each(
    lake: Catalog, landing: Path
) -> None:
    for i in range(5):
        drop(landing, f"f{i}.csv", f"id\n{i}\n", age=i)
    result = ingest_files(lake, str(landing), TABLE, max_files_per_batch=2)
    assert (result.batches, result.files, result.rows) == (3, 5, 5)
    history = lake.table(TABLE).history()
    batches = [h for h in history if h.get("operation") == "WRITE"]
    assert len(batches) == 3


def test_volume_paths_metadata_and_glob(lake: Catalog, tmp_path: Path) -> None:
    folder = Path(lake.create_volume("main.bronze.landing"))
    drop(folder, "2024/a.csv", "id\n1\n")
    drop(folder, "2024/notes.txt", "not data")
    result = ingest_files(
        lake, "/Volumes/main/bronze/landing", TABLE, glob="*.csv", include_metadata=True
    )
    assert result.files == 1
    meta = rows(lake)[0]["_metadata"]
    assert meta["file_path"] == "/Volumes/main/bronze/landing/2024/a.csv"
    assert (meta["file_name"], meta["file_size"]) == ("a.csv", 5)


def test_existing_files_can_be_left_out(lake: Catalog, landing: Path) -> None:
    lake.create_table(TABLE, schema=pa.schema([("id", pa.int64())]))
    drop(landing, "old.csv", "id\n1\n", age=1)
    first = ingest_files(lake, str(landing), TABLE, include_existing_files=False)
    assert first.files == 0
    drop(landing, "new.csv", "id\n2\n", age=2)
    assert ingest_files(lake, str(landing), TABLE, include_existing_files=False).files == 1
    assert [r["id"] for r in rows(lake)] == [2]


def test_rewritten_files_count_once_unless_overwrites_are_allowed(
    lake: Catalog, landing: Path
) -> None:
    drop(landing, "a.csv", "id\n1\n", age=1)
    ingest_files(lake, str(landing), TABLE)
    drop(landing, "a.csv", "id\n1\n2\n", age=5)
    assert ingest_files(lake, str(landing), TABLE).files == 0
    assert ingest_files(lake, str(landing), TABLE, allow_overwrites=True).files == 1
    assert [r["id"] for r in rows(lake)] == [1, 1, 2]


def test_a_batch_breaking_the_primary_key_commits_nothing(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id,v\n1,a\n", age=1)
    ingest_files(lake, str(landing), TABLE, primary_keys=["id"])
    version = lake.table(TABLE).version
    drop(landing, "b.csv", "id,v\n2,b\n1,again\n", age=2)
    with pytest.raises(
        ConstraintError, match=r"main\.bronze\.events: the primary key \(id=1\) exists already"
    ):
        ingest_files(lake, str(landing), TABLE)
    assert lake.table(TABLE).version == version
    drop(landing, "b.csv", "id,v\n2,b\n", age=3)  # fixed in place: the planned batch is redone
    result = ingest_files(lake, str(landing), TABLE)
    assert result.recovered_batches == [2] and [r["id"] for r in rows(lake)] == [1, 2]


def test_without_a_rescued_data_column_bad_values_fail_loudly(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id\n1\n", age=1)
    ingest_files(lake, str(landing), TABLE, rescued_data_column=None)
    drop(landing, "b.csv", "id\nseven\n", age=2)
    with pytest.raises(
        SchemaMismatchError,
        match=r"b\.csv row 1: value 'seven' of column id does not fit table main\.bronze\.events",
    ):
        ingest_files(lake, str(landing), TABLE, rescued_data_column=None)


def test_a_recreated_table_is_not_silently_refilled(
    lake: Catalog, landing: Path, tmp_path: Path
) -> None:
    drop(landing, "a.csv", "id\n1\n")
    checkpoint = str(tmp_path / "ckpt")
    ingest_files(lake, str(landing), TABLE, checkpoint=checkpoint)
    lake.drop_table(TABLE)
    with pytest.raises(LakeError, match="the table was recreated or restored"):
        ingest_files(lake, str(landing), TABLE, checkpoint=checkpoint)


def test_missing_source_and_schema_are_named(lake: Catalog, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"source folder '.*nowhere' does not exist"):
        ingest_files(lake, str(tmp_path / "nowhere"), TABLE)
    drop(tmp_path / "in", "a.csv", "id\n1\n")
    with pytest.raises(NotFoundError, match=r"schema main\.silver does not exist"):
        ingest_files(lake, str(tmp_path / "in"), "main.silver.t")


def test_the_command_prints_one_json_line(
    lake: Catalog, landing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop(landing, "a.csv", "id;v\n1;x\n")
    code = main(
        ["--warehouse", lake.root, "--source", str(landing), "--table", TABLE, "--option", "sep=;"]
    )
    out = capsys.readouterr()
    assert code == 0
    assert json.loads(out.out)["rows"] == 1
    assert (
        main(
            [
                "--warehouse",
                lake.root,
                "--source",
                str(landing),
                "--table",
                TABLE,
                "--format",
                "json",
                "--option",
                "sep=;",
            ]
        )
        == 2
    )
    assert "json files take no option 'sep'" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_without_a_warning(lake: Catalog, landing: Path) -> None:
    drop(landing, "a.csv", "id,v\n1,x\n")
    where = ["--warehouse", str(lake.root), "--source", str(landing), "--table", TABLE]
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "lakestack.lake.ingest", *where],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["rows"] == 1
    # the package still offers the function, however its modules were imported
    assert lakestack.lake.ingest_files is ingest_files


def test_unreadable_first_files_do_not_stop_the_table_being_created(
    lake: Catalog, landing: Path
) -> None:
    drop(landing, "a.parquet", "not parquet", age=1)
    pq.write_table(pa.table({"id": [1, 2]}), landing / "b.parquet")
    os.utime(landing / "b.parquet", (1_700_000_009, 1_700_000_009))
    result = ingest_files(
        lake,
        str(landing),
        TABLE,
        format="parquet",
        max_files_per_batch=1,
        ignore_corrupt_files=True,
    )
    assert (result.rows, result.table_created) == (2, True)
    assert result.corrupt_files == [str(landing / "a.parquet")]
    assert ingest_files(lake, str(landing), TABLE, format="parquet").skipped_files == 2


def test_a_checkpoint_in_a_volume_and_a_byte_limit(lake: Catalog, landing: Path) -> None:
    lake.create_volume("main.bronze.checkpoints")
    for i in range(4):
        drop(
            landing,
            f"f{i}.csv",
            "id\n" + "\n".join(f"{i * 100 + r:03d}" for r in range(20)) + "\n",
            age=i,
        )
    size = (landing / "f0.csv").stat().st_size
    result = ingest_files(
        lake,
        str(landing),
        TABLE,
        checkpoint="/Volumes/main/bronze/checkpoints/events",
        max_bytes_per_batch=2 * size,
    )
    assert (result.batches, result.files, result.rows) == (2, 4, 80)
    assert result.checkpoint == "/Volumes/main/bronze/checkpoints/events"
    assert (
        Path(lake.volume_path("main.bronze.checkpoints")) / "events" / "offsets" / "2.json"
    ).exists()
