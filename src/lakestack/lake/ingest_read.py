"""Reading one source file into raw columns, without losing a row.

CSV is read with every column as text (types are applied later against the table's schema, so a
bad value costs one cell, not the file). JSON lines are parsed line by line. Parquet is read as
typed Arrow. What cannot be parsed as a column value stays in the row as rescued data: a CSV row
with more fields than the header keeps the extra fields as ``_c<position>``, a line that is not a
JSON object keeps its text as ``_corrupt_record``; the row is kept with its other columns null.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from lakestack.errors import UsageError
from lakestack.lake.ingest_schema import normalize_arrow
from lakestack.lake.ingest_source import FileEntry, Location
from lakestack.lake.ingest_types import RawKind, RawValues

__all__ = ["FORMATS", "CsvOptions", "RawFile", "csv_options", "read_file"]

FORMATS: dict[str, RawKind] = {"csv": "strings", "json": "json", "parquet": "arrow"}
_CSV_OPTIONS = {
    "header": "header",
    "sep": "sep",
    "delimiter": "sep",
    "quote": "quote",
    "escape": "escape",
    "encoding": "encoding",
    "charset": "encoding",
    "nullvalue": "null_value",
}
_JSON_OPTIONS = {"encoding": "encoding", "charset": "encoding"}


@dataclass
class RawFile:
    """The raw columns of one file, and the values rescued while parsing, by row."""

    entry: FileEntry
    kind: RawKind
    num_rows: int
    columns: dict[str, RawValues] = field(default_factory=dict)
    rescued: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class CsvOptions:
    """Spark's CSV reader options that ingestion supports (names as Spark spells them)."""

    header: bool = True
    sep: str = ","
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8"
    null_value: str = ""


def csv_options(format: str, options: Mapping[str, Any] | None) -> CsvOptions:
    """Validate the reader ``options`` for ``format``; the CSV ones as ``CsvOptions``.

    Raises:
        UsageError: an option the format does not take, or a bad value.
    """
    allowed = {"csv": _CSV_OPTIONS, "json": _JSON_OPTIONS, "parquet": {}}[format]
    values: dict[str, Any] = {}
    for name, value in (options or {}).items():
        key = allowed.get(name.lower())
        if key is None:
            valid = ", ".join(sorted(set(allowed))) or "none"
            raise UsageError(f"{format} files take no option '{name}'; valid options: {valid}")
        values[key] = value
    if "header" in values:
        values["header"] = str(values["header"]).lower() in ("true", "1", "yes")
    for key in ("sep", "quote", "escape"):
        if key in values and (not isinstance(values[key], str) or len(values[key]) != 1):
            raise UsageError(f"CSV option '{key}' must be one character, got {values[key]!r}")
    return CsvOptions(**values)


def read_file(location: Location, entry: FileEntry, kind: RawKind, opts: CsvOptions) -> RawFile:
    """Read ``entry`` into raw columns (CSV and JSON never fail on content; Parquet may)."""
    if kind == "arrow":
        import pyarrow.parquet as pq

        table = pq.read_table(entry.path, filesystem=location.fs)
        columns: dict[str, RawValues] = {
            name: normalize_arrow(col.combine_chunks())
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
        return RawFile(entry, kind, table.num_rows, columns)
    with location.fs.open_input_file(entry.path) as handle:
        data = handle.read()
    if kind == "json":
        return _read_json(entry, _decode(data, opts.encoding)[0])
    return _read_csv(entry, data, opts)


def _decode(data: bytes, encoding: str) -> tuple[str, bool]:
    """The text of ``data``; bytes that are not valid become U+FFFD, as Spark reads them."""
    try:
        return data.decode(encoding), True
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace"), False
    except LookupError as exc:
        raise UsageError(f"unknown encoding '{encoding}'; use a Python codec name") from exc


def _read_json(entry: FileEntry, text: str) -> RawFile:
    records: list[dict[str, Any]] = []
    rescued: dict[int, dict[str, Any]] = {}
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            rescued[len(records)] = {"_corrupt_record": line.rstrip("\r")}
            record = {}
        records.append(record)
    n = len(records)
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        for key, value in record.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * n
            column[i] = value
    return RawFile(entry, "json", n, dict(columns), rescued)


def _read_csv(entry: FileEntry, data: bytes, opts: CsvOptions) -> RawFile:
    text, valid = _decode(data, opts.encoding)
    if not text.strip():
        return RawFile(entry, "strings", 0)
    first = next(_csv_rows(text, opts), [])
    names = _column_names(first, opts.header)
    buffer = (
        data if valid and opts.encoding.replace("_", "-").lower() in ("utf-8", "utf8") else None
    )
    try:
        return _read_csv_arrow(entry, buffer or text.encode("utf-8"), names, opts)
    except pa.ArrowInvalid:
        # pyarrow gives up on some malformed files (an unterminated quote at the end);
        # Python's csv module reads anything, more slowly
        return _read_csv_python(entry, text, names, opts)


def _column_names(first: list[str], header: bool) -> list[str]:
    if not header:
        return [f"_c{i}" for i in range(len(first))]
    names: list[str] = []
    for i, name in enumerate(first):
        name = name.strip() or f"_c{i}"
        # a repeated header name gets its position appended, as Spark does
        names.append(f"{name}{i}" if name in names or first.count(name) > 1 else name)
    return names


def _read_csv_arrow(entry: FileEntry, data: bytes, names: list[str], opts: CsvOptions) -> RawFile:
    malformed: list[str] = []

    def keep_aside(row: Any) -> str:
        malformed.append(row.text)
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if opts.header else 0),
        parse_options=pacsv.ParseOptions(
            delimiter=opts.sep,
            quote_char=opts.quote,
            escape_char=opts.escape or False,
            newlines_in_values=True,
            invalid_row_handler=keep_aside,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[opts.null_value],
        ),
    )
    columns: dict[str, RawValues] = {
        name: col.combine_chunks() for name, col in zip(names, table.columns, strict=True)
    }
    raw = RawFile(entry, "strings", table.num_rows, columns)
    if malformed:
        rows = [next(_csv_rows(t, opts), []) for t in malformed]
        extra = _rows_to_raw(entry, rows, names, opts)
        raw = _concat(raw, extra)
    return raw


def _read_csv_python(entry: FileEntry, text: str, names: list[str], opts: CsvOptions) -> RawFile:
    rows = [row for row in _csv_rows(text, opts) if row]
    return _rows_to_raw(entry, rows[1:] if opts.header else rows, names, opts)


def _csv_rows(text: str, opts: CsvOptions) -> Iterator[list[str]]:
    return csv.reader(
        io.StringIO(text),
        delimiter=opts.sep,
        quotechar=opts.quote,
        escapechar=opts.escape,
        strict=False,
    )


def _rows_to_raw(
    entry: FileEntry, rows: list[list[str]], names: list[str], opts: CsvOptions
) -> RawFile:
    """Rows of fields to raw columns: missing fields are null, extra fields are rescued."""
    width = len(names)
    columns = [
        [None if i >= len(row) or row[i] == opts.null_value else row[i] for row in rows]
        for i in range(width)
    ]
    rescued = {
        r: {f"_c{i}": value for i, value in enumerate(row) if i >= width}
        for r, row in enumerate(rows)
        if len(row) > width
    }
    arrays: dict[str, RawValues] = {
        name: pa.array(values, type=pa.string())
        for name, values in zip(names, columns, strict=True)
    }
    return RawFile(entry, "strings", len(rows), arrays, rescued)


def _concat(a: RawFile, b: RawFile) -> RawFile:
    columns: dict[str, RawValues] = {}
    for name, values in a.columns.items():
        other = b.columns[name]
        assert isinstance(values, pa.Array) and isinstance(other, pa.Array)
        columns[name] = pa.concat_arrays([values, other])
    rescued = {**a.rescued, **{a.num_rows + r: fields for r, fields in b.rescued.items()}}
    return RawFile(a.entry, a.kind, a.num_rows + b.num_rows, columns, rescued)
