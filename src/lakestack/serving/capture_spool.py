"""The spool's line format: what a server appends per micro-batch, and how a writer turns the
lines back into inference-table rows (DESIGN §7) column by column.

The request path pays for every byte, every Python object and every system call it makes, so a
server appends *one* JSON line per batch of requests that were predicted together (formats 3
and 4), not one per request or per record::

    {"ids": ["<request id>", ...], "clients": ["<client_request_id>" | null, ...],
     "counts": [<records of the request>, ...], "ms": [<execution time, ms>, ...],
     "status": [200, ...], "ts": <epoch ms>,
     "context": "[\\"<endpoint>\\",\\"<served entity>\\",\\"<model id>\\",[\\"<column>\\",...]]",
     "rows": [[<value>, ...], ...]                  (the numeric fast path: row-major)
       or "inputs": {"<column>": [<value>, ...], ...}  (any types: column-major),
     "predictions": [<prediction>, ...]}

``ids``, ``clients``, ``counts``, ``ms`` and ``status`` have one entry per request; ``rows`` (or
``inputs``) and ``predictions`` one per record, the requests' records one after the other in
``ids`` order. A lone request is a batch of one. ``context`` is one string (JSON text) per
endpoint, served entity, model version and input columns: the server makes it once per
combination (``Contexts``) and the writer decodes each distinct one once per read, so the
fields that repeat on every line cost one string each. A writer reads a run of lines with
Arrow's JSON reader and expands it with Arrow kernels (``rows``): each request's fields repeated
for its records by ``take``, the values flattened out of their lists, no Python object per
record. Lines Arrow cannot read in one go (a line torn by a crash, a column whose type changes
within the run) are read one by one instead.

``ms`` may be unrounded (the writer keeps microseconds). Format 4 differs from 3 only in the
file: it may end in zero bytes, space allocated ahead of the data (JSON text never holds a zero
byte, so the first one is where the data ends). Spools of format 3, format 2 (one line per
request: ``id``, ``client``, ``ms``, ``status`` as single values) and format 1 (one JSON object
per record), written by earlier versions, are still read, so a spool left by an older server
is finished after an upgrade.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import InferenceError

if TYPE_CHECKING:
    from lakestack.serving.batching import BatchHook, Queued
    from lakestack.serving.models import ServedModel

__all__ = [
    "FIELDS",
    "FORMAT",
    "RESERVED_COLUMNS",
    "Contexts",
    "batch_hook",
    "batch_line",
    "decode",
    "record_lines",
]

log = logging.getLogger(__name__)

FORMAT = 4
"""The format new spools are written in (their header says so); 1 to 3 are still read. Format
4 has format 3's lines in a file that may end in zero bytes: the space a memory-mapped spool
allocated ahead of its data (``capture``), which a reader stops at."""
FORMATS = (1, 2, 3, 4)

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
# a request's fields in a line of format 3 (lists) and 2 (single values) -> the table's column
_REQUEST_FIELDS = {
    "ids": "request_id",
    "clients": "client_request_id",
    "status": "status_code",
    "ms": "execution_time_ms",
}
# the request fields of format 3 typed up front: Arrow's JSON reader loses values of a list
# whose type it infers from a null first (a request without client_request_id)
_BATCH_SCHEMA = pa.schema(
    [
        ("ids", pa.list_(pa.string())),
        ("clients", pa.list_(pa.string())),
        ("counts", pa.list_(pa.int64())),
        ("ms", pa.list_(pa.float64())),
        ("status", pa.list_(pa.int64())),
        ("ts", pa.int64()),
        ("context", pa.string()),
    ]
)
_REQUEST_FIELDS_V2 = {
    "id": "request_id",
    "client": "client_request_id",
    "status": "status_code",
    "ms": "execution_time_ms",
    "ts": "timestamp",
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


def batch_line(
    table_name: str,
    context: str,
    columns: Sequence[str],
    request_ids: Sequence[str],
    client_request_ids: Sequence[str | None],
    counts: Sequence[int],
    execution_times_ms: Sequence[float],
    status_codes: Sequence[int],
    rows: Any,
    predictions: Any,
    *,
    timestamp_ms: int,
) -> bytes:
    """The spool line of a batch of answered requests (a few microseconds for the batch).

    The request fields have one entry per request; ``counts`` says how many of the records
    each has. ``rows`` holds the records of every request one after the other: a list of row
    lists in ``columns`` order (written column-major, so that each column keeps its own type)
    or a 2-D numpy array (the numeric fast path, written as it is). ``predictions`` has one
    prediction per record (a list or a numpy array); a single value stands for every record.

    Raises:
        InferenceError: A value JSON cannot represent.
    """
    if not (isinstance(predictions, list) or getattr(predictions, "ndim", 0) >= 1):
        predictions = [predictions] * len(rows)  # one value for every record
    if isinstance(rows, list):
        key, values = "inputs", dict(zip(columns, zip(*rows, strict=False), strict=False))
    else:
        key, values = "rows", rows
    line = {
        "ids": request_ids,
        "clients": client_request_ids,
        "counts": counts,
        "ms": execution_times_ms,
        "status": status_codes,
        "ts": timestamp_ms,
        "context": context,
        key: values,
        "predictions": predictions,
    }
    try:  # one call, not a helper: this runs on the request path, where every call counts
        return orjson.dumps(line, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise _unstorable(table_name, exc) from None


def batch_hook(
    table_name: str,
    contexts: Contexts,
    append: Callable[[bytes, int], None],
    endpoint: str,
    entity: str,
    jsonable: Callable[[Any], Any],
) -> BatchHook:
    """The batcher's ``on_batch`` hook of a served entity whose endpoint has an inference table:
    each predicted batch becomes one line, given to ``append`` (the recorder's spool) before any
    of its requests is answered.

    It runs once per batch on the request path, so it is one flat function: the numeric fast
    path (rows and predictions numpy arrays) builds the line in place, with what ``batch_line``
    writes (a test holds the two equal), the context looked up once per model version and
    columns, execution times unrounded (the writer keeps microseconds). In a running server
    spooling a batch took 13.6 µs before (a ``write`` per line, checks, rounding), 10-12 now.
    Other batches go through ``batch_line``, their predictions made JSON by ``jsonable`` first.

    The hook raises ``InferenceError`` for a value JSON cannot represent or a spool that cannot
    take the line (the batch's requests then fail); nothing of the batch is spooled.
    """
    known: list[Any] = [None, None, ""]  # the last batch's model id, columns and context
    perf_counter, now_s, dumps = time.perf_counter, time.time, orjson.dumps

    def on_batch(batch: Sequence[Queued], rows: Any, predictions: Any, model: ServedModel) -> None:
        now = perf_counter()
        ids: list[str] = []
        clients: list[str | None] = []
        counts: list[int] = []
        times: list[float] = []
        for queued in batch:  # one loop, not four comprehensions
            scoring = queued.scoring
            ids.append(queued.request_id)
            clients.append(scoring.client_request_id)
            counts.append(len(scoring.rows))
            times.append((now - queued.started) * 1000.0)
        columns = batch[0].scoring.columns
        if model.model_id != known[0] or columns != known[1]:
            context = contexts.get(endpoint, entity, model.model_id, columns)
            known[:] = model.model_id, columns, context
        if type(rows) is not np.ndarray or type(predictions) is not np.ndarray:
            line = batch_line(
                table_name, known[2], columns, ids, clients, counts, times,
                [200] * len(ids), rows, jsonable(predictions), timestamp_ms=int(now_s() * 1000),
            )  # fmt: skip
        else:
            try:
                line = dumps(
                    {
                        "ids": ids,
                        "clients": clients,
                        "counts": counts,
                        "ms": times,
                        "status": [200] * len(ids),
                        "ts": int(now_s() * 1000),
                        "context": known[2],
                        "rows": rows,
                        "predictions": predictions,
                    },
                    default=_default,
                    option=_OPTIONS,
                )
            except TypeError as exc:
                raise _unstorable(table_name, exc) from None
        append(line, len(rows))

    return on_batch


def record_lines(
    table_name: str, contexts: Contexts, records: Sequence[Mapping[str, Any]]
) -> bytes:
    """The spool lines of ``records`` (``Capture.record``'s rows, one line each, since each has
    its own timestamp), checked:
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
            "ids": [row["request_id"]],
            "clients": [row["client_request_id"]],
            "counts": [1],
            "ms": [row["execution_time_ms"]],
            "status": [row["status_code"]],
            "ts": row["timestamp"],
            "context": context,
            "inputs": {name: [value] for name, value in inputs.items()},
            "predictions": [row["prediction"]],
        }
        lines.append(_dumps(table_name, line))
    return b"".join(lines)


def _dumps(table_name: str, line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise _unstorable(table_name, exc) from None


def _unstorable(table_name: str, exc: TypeError) -> InferenceError:
    """The error for a value orjson cannot encode (``orjson.JSONEncodeError``, our own reason,
    if any, as its cause)."""
    return InferenceError(
        f"inference table {table_name}: a record holds a value that cannot be "
        f"stored ({exc.__cause__ or exc}); convert it to str, int, float, bool, None, "
        "list or dict (with str keys); nothing was recorded"
    )


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
    try:
        table = _columnar_v1(data) if version == 1 else _columnar(data, version)
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


def _read_json(data: bytes, schema: pa.Schema | None = None) -> pa.Table:
    """Lines read by Arrow's JSON reader, with ``schema`` for the fields it names.

    Raises:
        pyarrow.ArrowInvalid: Lines it cannot read, or read wrongly: a list whose first values
            are null and later ones strings or lists comes out with values missing (pyarrow
            25), which full validation catches (the caller then reads line by line).
    """
    import pyarrow.json as pajson

    options = pajson.ReadOptions(block_size=len(data) + 1, use_threads=False)  # one block
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    table = pajson.read_json(
        pa.BufferReader(data), read_options=options, parse_options=parse
    ).combine_chunks()
    table.validate(full=True)
    return table


class _IrregularError(Exception):
    """Lines the columnar reader does not take (the caller reads them line by line)."""


def _columnar(data: bytes, version: int) -> pa.Table:
    """Format 2 to 4 lines as rows, with Arrow kernels: one run per stretch of equal context."""
    lines = _read_json(data, _BATCH_SCHEMA if version >= 3 else None)
    if lines.num_rows == 0:
        raise _IrregularError
    contexts = pc.dictionary_encode(lines.column("context")).chunk(0)
    decoded = [orjson.loads(text) for text in contexts.dictionary.to_pylist()]
    codes = contexts.indices.to_numpy(zero_copy_only=False)
    bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
    parts = [
        _expand(lines.slice(start, stop - start), decoded[codes[start]], version)
        for start, stop in itertools.pairwise(bounds)
    ]
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="permissive")


def _expand(lines: pa.Table, context: list[Any], version: int) -> pa.Table:
    """The rows of lines that share one context: the values flattened out of their lists, each
    request's own fields repeated for its records (``take``), the context's constant."""
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
    if version == 2:  # a request per line
        requests = {name: lines.column(key).chunk(0) for key, name in _REQUEST_FIELDS_V2.items()}
        owners = pc.list_parent_indices(predictions)
    else:
        requests, owners = _batched_requests(lines, predictions)
    fields = {name: pc.take(values, owners) for name, values in requests.items()}
    fields["timestamp"] = pc.multiply(fields["timestamp"].cast(pa.int64()), 1000)
    for name, value in (
        ("model_id", model_id),
        ("endpoint_name", endpoint),
        ("served_entity", entity),
    ):
        fields[name] = pa.repeat(value, len(owners))
    # servers write execution times unrounded (rounding three floats a batch is request-path
    # time): kept to the microsecond here
    fields["execution_time_ms"] = pc.round(fields["execution_time_ms"].cast(pa.float64()), 3)
    for name, kind in META_TYPES.items():
        columns[name] = fields[name].cast(kind)
    return pa.table(columns)


def _batched_requests(lines: pa.Table, predictions: pa.ListArray) -> tuple[dict[str, Any], Any]:
    """The requests of format 3 lines, one entry per request, and for each record the index
    of its request (``counts`` of them in a row), checked against the records of each line."""
    ids = lines.column("ids").chunk(0)
    if ids.null_count:
        raise _IrregularError
    per_line = pc.list_value_length(ids)
    requests: dict[str, Any] = {}
    for key, name in _REQUEST_FIELDS.items():
        values = lines.column(key).chunk(0)
        if not per_line.equals(pc.list_value_length(values)):
            raise _IrregularError
        requests[name] = pc.list_flatten(values)
    lines_of_requests = pc.list_parent_indices(ids)  # the line of each request
    requests["timestamp"] = pc.take(lines.column("ts").chunk(0), lines_of_requests)
    counts = lines.column("counts").chunk(0)
    if not per_line.equals(pc.list_value_length(counts)):
        raise _IrregularError
    flat = pc.list_flatten(counts)
    if flat.null_count or (len(flat) and pc.min(flat).as_py() < 0):
        raise _IrregularError
    flat_counts = flat.to_numpy()
    owners = np.repeat(np.arange(len(flat_counts)), flat_counts)
    expected = pc.list_parent_indices(predictions).to_numpy(zero_copy_only=False)
    if not np.array_equal(lines_of_requests.to_numpy(zero_copy_only=False)[owners], expected):
        raise _IrregularError  # counts that do not add up to a line's records
    return requests, owners


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
        elif isinstance(item, dict) and "ids" in item:
            records.extend(_batch_records(item))
        elif isinstance(item, dict) and "context" in item:
            records.extend(_request_records(item))
        elif isinstance(item, dict) and HEADER_KEY not in item:
            records.append(item)
    return records


def _request_records(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one format 2 line (one request)."""
    batch = {
        "ids": [line.get("id")],
        "clients": [line.get("client")],
        "ms": [line.get("ms")],
        "status": [line.get("status")],
        "counts": [len(line.get("predictions") or [])],
    }
    return _batch_records({**line, **batch})


def _batch_records(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one format 3 line: each request's records paired with its predictions
    as far as both go."""
    endpoint, entity, model_id, names = orjson.loads(line["context"])
    if "rows" in line:
        inputs = [dict(zip(names, row, strict=False)) for row in line["rows"]]
    else:
        columns = line.get("inputs") or {}
        inputs = [
            dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)
        ]
    predictions = line.get("predictions") or []
    records: list[dict[str, Any]] = []
    start = 0
    requests = zip(
        *(line.get(key) or [] for key in ("ids", "clients", "counts", "ms", "status")),
        strict=False,
    )
    for request_id, client, count, ms, status in requests:
        meta = {
            "request_id": request_id,
            "client_request_id": client,
            "endpoint_name": endpoint,
            "served_entity": entity,
            "model_id": model_id,
            "timestamp": line.get("ts"),
            "status_code": status,
            "execution_time_ms": ms,
        }
        end = start + count
        records.extend(
            {**meta, "inputs": values, "prediction": prediction}
            for values, prediction in zip(inputs[start:end], predictions[start:end], strict=False)
        )
        start = end
    return records


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
        elif name == "execution_time_ms":  # to the microsecond, as in ``_expand``
            columns[name] = pc.round(pa.array(values).cast(kind), 3)
        else:
            columns[name] = pa.array(values).cast(kind)
    return pa.table(columns)
