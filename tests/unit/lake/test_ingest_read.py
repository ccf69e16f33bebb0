"""Reading source files into raw columns: every row kept, what does not parse set aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakestack.errors import UsageError
from lakestack.lake.ingest_read import RawFile, csv_options, read_file
from lakestack.lake.ingest_source import list_files, open_location


def read(
    tmp_path: Path, name: str, content: str | bytes, fmt: str = "csv", **options: Any
) -> RawFile:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    location = open_location(str(tmp_path), None)
    (entry,) = list(list_files(location, name))
    kind = {"csv": "strings", "json": "json", "parquet": "arrow"}[fmt]
    return read_file(location, entry, kind, csv_options(fmt, options))  # type: ignore[arg-type]


def column(raw: RawFile, name: str) -> list[Any]:
    values = raw.columns[name]
    return values.to_pylist() if isinstance(values, pa.Array) else list(values)


def test_csv_columns_are_text_with_empty_fields_null(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", 'id,name\n1,"x, y"\n2,\n3,"multi\nline"\n')
    assert raw.num_rows == 3
    assert column(raw, "id") == ["1", "2", "3"]
    assert column(raw, "name") == ["x, y", None, "multi\nline"]
    assert raw.rescued == {}


def test_csv_rows_with_extra_fields_keep_them_and_short_rows_are_padded(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b\n1,2\n3,4,5,6\n7\n")
    assert raw.num_rows == 3
    rows = sorted(zip(column(raw, "a"), column(raw, "b"), strict=True))
    assert rows == [("1", "2"), ("3", "4"), ("7", None)]
    (extra,) = raw.rescued.values()
    assert extra == {"_c2": "5", "_c3": "6"}
    assert column(raw, "a")[next(iter(raw.rescued))] == "3"


def test_csv_header_names_repeated_or_missing_get_spark_names(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,a,,b\n1,2,3,4\n")
    assert list(raw.columns) == ["a0", "a1", "_c2", "b"]
    raw = read(tmp_path, "b.csv", "1,2\n3,4\n", header="false")
    assert list(raw.columns) == ["_c0", "_c1"] and raw.num_rows == 2


def test_csv_options_separator_null_value_and_encoding(tmp_path: Path) -> None:
    raw = read(
        tmp_path,
        "a.csv",
        "k;v\né;NA\n".encode("latin-1"),
        sep=";",
        nullValue="NA",
        encoding="latin-1",
    )
    assert column(raw, "k") == ["é"] and column(raw, "v") == [None]


def test_csv_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", b"k,v\n1,caf\xe9\n2,ok\n")
    assert column(raw, "v") == ["caf\ufffd", "ok"]


def test_csv_unterminated_quote_keeps_the_text(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", 'id,name\n1,"open\n2,b\n')
    assert raw.num_rows >= 1
    text = " ".join(str(v) for name in raw.columns for v in column(raw, name))
    assert "open" in text and "2,b" in text


def test_empty_files_have_no_rows(tmp_path: Path) -> None:
    assert read(tmp_path, "a.csv", "").num_rows == 0
    header_only = read(tmp_path, "b.csv", "a,b\n")
    assert header_only.num_rows == 0 and list(header_only.columns) == ["a", "b"]


def test_json_lines_keep_corrupt_lines_as_rows(tmp_path: Path) -> None:
    raw = read(
        tmp_path,
        "a.json",
        '{"id": 1, "v": "a"}\nnot json\n\n[1, 2]\n{"id": 2, "w": {"k": 1}}\n',
        "json",
    )
    assert raw.num_rows == 4
    assert column(raw, "id") == [1, None, None, 2]
    assert column(raw, "w") == [None, None, None, {"k": 1}]
    assert raw.rescued == {1: {"_corrupt_record": "not json"}, 2: {"_corrupt_record": "[1, 2]"}}


def test_parquet_is_read_typed(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"n": pa.array([1, 2], type=pa.uint16()), "s": ["a", "b"]}), path)
    location = open_location(str(tmp_path), None)
    (entry,) = list_files(location, None)
    raw = read_file(location, entry, "arrow", csv_options("parquet", None))
    assert raw.columns["n"].type == pa.int32()
    assert column(raw, "s") == ["a", "b"]


def test_listing_skips_hidden_files_and_filters_by_glob(tmp_path: Path) -> None:
    for name in [
        "a.csv",
        "b.json",
        "_SUCCESS",
        ".x.csv.crc",
        "sub/c.csv",
        "_tmp/d.csv",
        "2024/e.csv",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    location = open_location(str(tmp_path), None)
    assert sorted(e.rel for e in list_files(location, None)) == [
        "2024/e.csv",
        "a.csv",
        "b.json",
        "sub/c.csv",
    ]
    assert sorted(e.rel for e in list_files(location, "*.csv")) == [
        "2024/e.csv",
        "a.csv",
        "sub/c.csv",
    ]
    assert [e.rel for e in list_files(location, "2024/*")] == ["2024/e.csv"]


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        (
            "csv",
            {"delimter": ";"},
            r"csv files take no option 'delimter'; valid options: .*delimiter",
        ),
        (
            "json",
            {"sep": ","},
            r"json files take no option 'sep'; valid options: charset, encoding",
        ),
        (
            "parquet",
            {"header": "true"},
            r"parquet files take no option 'header'; valid options: none",
        ),
        ("csv", {"sep": ";;"}, r"CSV option 'sep' must be one character"),
    ],
)
def test_bad_reader_options_are_named(fmt: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        csv_options(fmt, options)
