"""The spool's line format: what a server appends per request, and how a writer turns the lines
back into inference-table rows (DESIGN §7) column by column.

The request path pays for every byte and every Python object it makes, so a server appends
*one* JSON line per answered request, not one object per record (format 2)::

    {"id": "<request id>", "client": "<client_request_id>" | null,
     "context": "[\\"<endpoint>\\",\\"<served entity>\\",\\"<model id>\\",[\\"<column>\\",...]]",
     "ts": <epoch ms>, "status": 200, "ms": <execution time, ms>,
     "rows": [[<value>, ...], ...]                  (the numeric fast path: row-major)
       or "inputs": {"<column>": [<value>, ...], ...}  (any types: column-major),
     "predictions": [<prediction>, ...]}

``context`` is one string (JSON text) per endpoint, served entity, model version and input
columns: the server makes it once per combination (``Contexts``) and the writer decodes each
distinct one once per batch, so the fields that repeat on every line cost one string each.
A writer reads a batch of lines with Arrow's JSON reader and expands it with Arrow kernels
(``rows``): the request's fields repeated per record by ``take``, the values flattened out of
their lists, no Python object per record. Lines Arrow cannot read in one go (a line torn by a
crash, a column whose type changes within the batch) are read one by one instead.

Spools of format 1 (one JSON object per record, written by earlier versions) are still read,
so a spool left by an older server is finished after an upgrade.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import InferenceError

__all__ = [
    "FIELDS",
    "FORMAT",
    "RESERVED_COLUMNS",
    "Contexts",
    "decode",
    "record_lines",
    "request_line",
]

log = logging.getLogger(__name__)

FORMAT = 2
"""The format new spools are written in (their header says so); 1 is still read."""
FORMATS = (1, 2)

FIELDS = (
    "request_id",
    "client_request_id",
    "endpoint_name",
    "served_entity",
    "model_id",
    "timestamp",
    "status_code",
    "execution_time_ms",
    "inputs",
    "prediction",
)
"""The keys of one recorded row (``Capture.record``)."""

# the table's own columns, in order after the input columns, with the types they are stored as
META_TYPES: dict[str, pa.DataType] = {
    "model_id": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "request_id": pa.string(),
    "client_request_id": pa.string(),
    "endpoint_name": pa.string(),
    "served_entity": pa.string(),
    "status_code": pa.int32(),
    "execution_time_ms": pa.float64(),
}
RESERVED_COLUMNS = frozenset(["prediction", *META_TYPES])
"""Column names an input cannot have: the inference table uses them itself."""

HEADER_KEY = "lakestack_capture"
_REQUIRED = frozenset(FIELDS)
_CONTEXTS_KEPT = 1024  # distinct contexts a process remembers (endpoints x entities x versions)
# a request's fields in the line -> the table's column and type
_REQUEST_FIELDS = {
    "id": "request_id",
    "client": "client_request_id",
    "ts": "timestamp",
    "status": "status_code",
    "ms": "execution_time_ms",
}
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def _default(value: Any) -> Any:
    """orjson's fallback: numpy values it does not take natively (a non-contiguous array) as
    lists; anything else fails with the value in the message."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {brief(value)} is not JSON serializable")


class Contexts:
    """The ``context`` strings of one process, made once per endpoint, served entity, model
    version and input columns; the columns are checked against the reserved names then."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._known: dict[tuple[str, ...], str] = {}

    def get(self, endpoint: str, entity: str, model_id: str, columns: Sequence[str]) -> str:
        """The context string.

        Raises:
            InferenceError: An input column has the name of a column the table adds.
        """
        key = (endpoint, entity, model_id, *columns)
        context = self._known.get(key)
        if context is None:
            if not RESERVED_COLUMNS.isdisjoint(columns):
                raise InferenceError(bad_inputs(self.table_name, dict.fromkeys(columns)))
            if len(self._known) >= _CONTEXTS_KEPT:
                self._known.clear()
            context = orjson.dumps([endpoint, entity, model_id, list(columns)]).decode()
            self._known[key] = context
        return context


def request_line(
    table_name: str,
    request_id: str,
    client_request_id: str | None,
    context: str,
    columns: Sequence[str],
    rows: Any,
    predictions: Any,
    *,
    timestamp_ms: int,
    execution_time_ms: float,
    status_code: int,
) -> bytes:
    """The spool line of one answered request (about a microsecond).

    ``rows`` is a list of row lists in ``columns`` order (written column-major, so that each
    column keeps its own type) or a 2-D numpy array (the numeric fast path, written as it is).
    ``predictions`` has one prediction per row; a single value stands for every row.

    Raises:
        InferenceError: A value JSON cannot represent.
    """
    line: dict[str, Any] = {
        "id": request_id,
        "client": client_request_id,
        "context": context,
        "ts": timestamp_ms,
        "status": status_code,
        "ms": execution_time_ms,
    }
    if isinstance(rows, list):
        line["inputs"] = dict(zip(columns, zip(*rows, strict=False), strict=False))
    else:
        line["rows"] = rows
    line["predictions"] = (
        predictions if isinstance(predictions, list) else [predictions] * len(rows)
    )
    return _dumps(table_name, line)


def record_lines(
    table_name: str, contexts: Contexts, records: Sequence[Mapping[str, Any]]
) -> bytes:
    """The spool lines of ``records`` (``Capture.record``'s rows, one line each), checked:
    every field there, inputs a mapping without reserved names, every value JSON.

    Raises:
        InferenceError: A bad record; nothing of the call is encoded.
    """
    for row in records:
        if not row.keys() >= _REQUIRED:
            missing = sorted(_REQUIRED.difference(row.keys()))
            raise InferenceError(
                f"inference table {table_name}: a record has no {', '.join(missing)} "
                f"(a record has: {', '.join(FIELDS)}); nothing was recorded"
            )
        inputs = row["inputs"]
        if not isinstance(inputs, Mapping) or not RESERVED_COLUMNS.isdisjoint(inputs):
            raise InferenceError(bad_inputs(table_name, inputs))
    lines = []
    for row in records:
        inputs = row["inputs"]
        context = contexts.get(
            row["endpoint_name"], row["served_entity"], row["model_id"], list(inputs)
        )
        line = {
            "id": row["request_id"],
            "client": row["client_request_id"],
            "context": context,
            "ts": row["timestamp"],
            "status": row["status_code"],
            "ms": row["execution_time_ms"],
            "inputs": {name: [value] for name, value in inputs.items()},
            "predictions": [row["prediction"]],
        }
        lines.append(_dumps(table_name, line))
    return b"".join(lines)


def _dumps(table_name: str, line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, default=_default, option=_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError; our own reason, if any, as its cause
        raise InferenceError(
            f"inference table {table_name}: a record holds a value that cannot be "
            f"stored ({exc.__cause__ or exc}); convert it to str, int, float, bool, None, "
            "list or dict (with str keys); nothing was recorded"
        ) from None


def bad_inputs(table_name: str, inputs: Any) -> str:
    """The message for inputs that are not a mapping or use a reserved column name."""
    where = f"inference table {table_name}"
    if not isinstance(inputs, Mapping):
        return (
            f"{where}: inputs must map input columns to values, got "
            f"{type(inputs).__name__} {brief(inputs)}; nothing was recorded"
        )
    clash = sorted(RESERVED_COLUMNS.intersection(inputs))
    return (
        f"{where}: input column '{clash[0]}' has the name of a column the table adds "
        f"({', '.join(sorted(RESERVED_COLUMNS))}); rename the input; nothing was recorded"
    )


def brief(value: Any) -> str:
    """``repr(value)``, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# reading ----------------------------------------------------------------------------------


def decode(data: bytes, version: int, path: Path) -> pa.Table | None:
    """The inference-table rows of complete spool lines of format ``version`` (the header line
    excluded); None when they hold no row (unreadable lines are skipped and logged)."""
    if not data:
        return None
    reader = _columnar if version == 2 else _columnar_v1
    try:
        table = reader(data)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, _IrregularError):
        table = None  # a torn line, a type that changes within the batch: line by line
    if table is None:
        records = _records(data.splitlines(), path)
        if not records:
            return None
        table = _to_arrow(records)
    if table.num_rows == 0:
        return None
    return table.select(
        [
            name
            for name, column in zip(table.column_names, table.columns, strict=True)
            if not pa.types.is_null(column.type)
        ]  # all null here: the column gets its type later
    )


def _read_json(data: bytes) -> pa.Table:
    import pyarrow.json as pajson

    options = pajson.ReadOptions(block_size=len(data) + 1, use_threads=False)  # one block
    return pajson.read_json(pa.BufferReader(data), read_options=options).combine_chunks()


class _IrregularError(Exception):
    """Lines the columnar reader does not take (the caller reads them line by line)."""


def _columnar(data: bytes) -> pa.Table:
    """Format 2 lines as rows, with Arrow kernels: one run per stretch of equal context."""
    import numpy as np

    lines = _read_json(data)
    if lines.num_rows == 0:
        raise _IrregularError
    contexts = pc.dictionary_encode(lines.column("context")).chunk(0)
    decoded = [orjson.loads(text) for text in contexts.dictionary.to_pylist()]
    codes = contexts.indices.to_numpy(zero_copy_only=False)
    bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
    parts = [
        _expand(lines.slice(start, stop - start), decoded[codes[start]])
        for start, stop in itertools.pairwise(bounds)
    ]
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="permissive")


def _expand(lines: pa.Table, context: list[Any]) -> pa.Table:
    """The rows of requests that share one context: the values flattened out of their lists,
    each request's own fields repeated for its records (``take``), the context's constant."""
    endpoint, entity, model_id, names = context
    predictions = lines.column("predictions").chunk(0)
    lengths = pc.list_value_length(predictions)
    columns: dict[str, Any] = {}
    rows = _present(lines, "rows")
    if rows is not None:
        if not lengths.equals(pc.list_value_length(rows)):
            raise _IrregularError  # rows and predictions differ in number: zip them one by one
        flat = pc.list_flatten(rows)
        widths = pc.min_max(pc.list_value_length(flat)).as_py()
        if len(flat) and widths != {"min": len(names), "max": len(names)}:
            raise _IrregularError
        for index, name in enumerate(names):
            columns[name] = pc.list_element(flat, index)
    else:
        inputs = _present(lines, "inputs")
        if inputs is None:
            raise _IrregularError
        for name in names:
            values = pc.struct_field(inputs, name)
            if not lengths.equals(pc.list_value_length(values)):
                raise _IrregularError
            columns[name] = pc.list_flatten(values)
    columns["prediction"] = pc.list_flatten(predictions)
    parents = pc.list_parent_indices(predictions)
    fields = {name: pc.take(lines.column(key), parents) for key, name in _REQUEST_FIELDS.items()}
    fields["timestamp"] = pc.multiply(fields["timestamp"].cast(pa.int64()), 1000)
    for name, value in (
        ("model_id", model_id),
        ("endpoint_name", endpoint),
        ("served_entity", entity),
    ):
        fields[name] = pa.repeat(value, len(parents))
    for name, kind in META_TYPES.items():
        columns[name] = fields[name].cast(kind)
    return pa.table(columns)


def _present(lines: pa.Table, name: str) -> Any:
    """The column ``name`` when every line has it; None when no line has it."""
    if name not in lines.column_names:
        return None
    column = lines.column(name).chunk(0)
    if column.null_count == len(column):
        return None
    if column.null_count:
        raise _IrregularError  # both forms within one context
    return column


def _columnar_v1(data: bytes) -> pa.Table:
    """Format 1 lines (one object per record, inputs nested) as rows, with Arrow kernels."""
    rows = _read_json(data)
    columns: dict[str, Any] = {}
    if "inputs" in rows.column_names:
        inputs = rows.column("inputs")
        if pa.types.is_struct(inputs.type):
            for index, field in enumerate(inputs.type):
                columns[field.name] = pc.struct_field(inputs, [index])
    columns["prediction"] = rows.column("prediction")
    for name, kind in META_TYPES.items():
        column = rows.column(name)
        if name == "timestamp":
            column = pc.multiply(column.cast(pa.int64()), 1000)
        columns[name] = column.cast(kind)
    return pa.table(columns)


def _records(lines: list[bytes], path: Path) -> list[dict[str, Any]]:
    """The rows of spool lines one by one, as ``Capture.record`` takes them (the header and
    unreadable lines skipped, logged)."""
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("inference table spool %s: skipped an unreadable line", path)
            continue
        if isinstance(item, list):  # several rows in one line (format 1 of earlier versions)
            records.extend(item)
        elif isinstance(item, dict) and "context" in item:
            records.extend(_request_records(item))
        elif isinstance(item, dict) and HEADER_KEY not in item:
            records.append(item)
    return records


def _request_records(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one format 2 line."""
    endpoint, entity, model_id, names = orjson.loads(line["context"])
    if "rows" in line:
        inputs = [dict(zip(names, row, strict=False)) for row in line["rows"]]
    else:
        columns = line.get("inputs") or {}
        inputs = [
            dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)
        ]
    meta = {
        "request_id": line.get("id"),
        "client_request_id": line.get("client"),
        "endpoint_name": endpoint,
        "served_entity": entity,
        "model_id": model_id,
        "timestamp": line.get("ts"),
        "status_code": line.get("status"),
        "execution_time_ms": line.get("ms"),
    }
    predictions = line.get("predictions") or []
    return [
        {**meta, "inputs": values, "prediction": prediction}
        for values, prediction in zip(inputs, predictions, strict=False)
    ]


def _to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """DESIGN §7 rows: input columns (in first-seen order), then prediction and metadata."""
    inputs = [row.get("inputs") or {} for row in rows]
    names: dict[str, None] = {}
    for values in inputs:
        names.update(dict.fromkeys(values))
    columns: dict[str, pa.Array] = {}
    for name in names:
        columns[name] = pa.array([values.get(name) for values in inputs])
    columns["prediction"] = pa.array([row.get("prediction") for row in rows])
    for name, kind in META_TYPES.items():
        values = [row.get(name) for row in rows]
        if name == "timestamp":
            millis = pa.array(values, pa.int64())
            columns[name] = pc.multiply(millis, 1000).cast(kind)
        else:
            columns[name] = pa.array(values).cast(kind)
    return pa.table(columns)
