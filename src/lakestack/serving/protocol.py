"""The scoring protocol of MLflow's scoring server and Databricks endpoints, parsed without pandas.

A request body becomes a :class:`Scoring`: the model's rows as one list per row in the model's
column order, plus ``params`` and ``client_request_id``. The JSON forms are MLflow's four
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``); CSV is read with the
standard library. Rows are checked against the model's signature once per request (missing
columns, values that are not numbers where the signature wants numbers), so a bad request is
answered 400 before it can join a batch, and a batch never fails for one request's fault.

Every protocol failure is an :class:`HttpError` carrying MLflow's error JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "INPUT_FIELDS",
    "NUMERIC_TYPES",
    "ColumnSpec",
    "HttpError",
    "InputSchema",
    "Scoring",
    "error_body",
    "parse_body",
    "predictions_body",
]

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})
_INTEGER_TYPES = frozenset({"long", "integer"})
_SCHEMA = "INVALID_PARAMETER_VALUE"  # MLflow's code when the input does not fit the signature
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class HttpError(Exception):
    """A request that cannot be answered with predictions; becomes MLflow's error JSON.

    Args:
        status: The HTTP status.
        message: One line naming the bad value and what is accepted.
        code: MLflow's error code; None means the status's (``BAD_REQUEST`` for 400).
    """

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    @property
    def error_code(self) -> str:
        """MLflow's ``error_code``: given, else the status's."""
        return self.code or _CODES.get(self.status, "INTERNAL_ERROR")

    def body(self) -> bytes:
        """The response body."""
        return error_body(self.error_code, self.message)


def error_body(code: str, message: str) -> bytes:
    """MLflow's error JSON: ``{"error_code": ..., "message": ...}``."""
    return orjson.dumps({"error_code": code, "message": message})


def predictions_body(predictions: Any) -> bytes:
    """``{"predictions": [...]}`` for a list or a numpy array of predictions."""
    values = predictions.tolist() if hasattr(predictions, "tolist") else predictions
    return orjson.dumps({"predictions": values})


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model signature: its name and MLflow type (``double``...)."""

    name: str
    type: str | None = None
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in order; ``columns`` is None when the model does not say.

    Attributes:
        columns: The declared columns, in the model's order.
        numeric: Every declared column holds numbers (or booleans): rows can become one float
            array with no per-column work.
    """

    columns: tuple[ColumnSpec, ...] | None
    numeric: bool = field(init=False)

    def __post_init__(self) -> None:
        numeric = self.columns is not None and all(
            (c.type or "double") in NUMERIC_TYPES for c in self.columns
        )
        object.__setattr__(self, "numeric", numeric)

    @classmethod
    def of(cls, columns: Sequence[ColumnSpec] | None) -> InputSchema:
        """A schema from column specs (None: the model declares nothing)."""
        return cls(tuple(columns) if columns is not None else None)

    @property
    def names(self) -> list[str] | None:
        """The declared column names, in order."""
        return None if self.columns is None else [c.name for c in self.columns]


@dataclass
class Scoring:
    """One request's rows in the model's column order, ready to join a batch.

    Attributes:
        columns: The column names of ``rows`` (the model's, when it declares them).
        rows: One list of values per row; a numpy float array on the numeric fast path.
        params: The request's ``params`` (passed to pyfunc models that take them).
        client_request_id: The caller's own id, kept in the inference table.
    """

    columns: list[str]
    rows: Any
    params: dict[str, Any] | None = None
    client_request_id: str | None = None

    def __len__(self) -> int:
        return len(self.rows)


def parse_body(body: bytes, content_type: str | None, schema: InputSchema) -> Scoring:
    """Parse a request body into the model's rows.

    Args:
        body: The raw body.
        content_type: The ``Content-Type`` header (``application/json``, ``text/csv``).
        schema: The model's input schema.

    Raises:
        HttpError: 415 for another content type or charset, 400 for a body that is not one of
            the accepted forms, a missing column, or a value of the wrong type.
    """
    kind = _content_kind(content_type)
    if kind == "csv":
        columns, rows = _csv_rows(body)
        return _ordered(columns, rows, schema, None, None, strings=True)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HttpError(400, _one_of_message())
    present = [key for key in INPUT_FIELDS if key in payload]
    if len(present) != 1:
        raise HttpError(400, _one_of_message(present))
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise HttpError(400, f"'params' must be a JSON object, not {_kind(params)}")
    client_id = payload.get("client_request_id")
    if client_id is not None and not isinstance(client_id, str):
        raise HttpError(400, f"'client_request_id' must be a string, not {_kind(client_id)}")
    key = present[0]
    columns, rows = _json_rows(key, payload[key], schema)
    return _ordered(columns, rows, schema, params, client_id, strings=False)


def _content_kind(content_type: str | None) -> str:
    if not content_type:
        raise HttpError(415, _content_message(content_type))
    kind, *params = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    if kind not in ("application/json", "text/csv"):
        raise HttpError(415, _content_message(content_type))
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise HttpError(415, _content_message(content_type))
    return "csv" if kind == "text/csv" else "json"


def _content_message(content_type: str | None) -> str:
    return (
        f"content type {content_type or '(none)'!r} is not supported; send application/json "
        "(charset utf-8) or text/csv"
    )


def _one_of_message(present: Sequence[str] = ()) -> str:
    found = f" (found {', '.join(present)})" if present else ""
    return (
        "the input must be a JSON object with exactly one of the input fields "
        f"{', '.join(INPUT_FIELDS)}{found}"
    )


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _csv_rows(body: bytes) -> tuple[list[str], list[list[Any]]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "the CSV body is not UTF-8 text") from None
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise HttpError(400, f"the CSV body cannot be read: {exc}") from None
    if not lines:
        raise HttpError(400, "the CSV body is empty: send a header line and one line per row")
    return [c.strip() for c in lines[0]], lines[1:]


def _json_rows(key: str, value: Any, schema: InputSchema) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of one JSON input form; rows are lists in ``columns`` order."""
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise HttpError(400, f"'dataframe_split' must be an object, not {_kind(value)}")
        data = value.get("data")
        if not isinstance(data, list):
            raise HttpError(400, "'dataframe_split' needs 'data', a list of rows")
        columns = value.get("columns")
        if columns is None:
            columns = _positional(schema, data)
        if not isinstance(columns, list):
            raise HttpError(400, "'dataframe_split.columns' must be a list of column names")
        return [str(c) for c in columns], _row_lists(data, len(columns), "dataframe_split.data")
    if key == "dataframe_records":
        return _records(value, "dataframe_records", schema)
    if key == "instances":
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return _records(value, "instances", schema)
        if not isinstance(value, list):
            raise HttpError(400, f"'instances' must be a list, not {_kind(value)}")
        columns = _positional(schema, value)
        return columns, _row_lists(value, len(columns), "instances")
    if isinstance(value, dict):  # inputs, columnar
        columns = [str(c) for c in value]
        lists = [v if isinstance(v, list) else [v] for v in value.values()]
        if len({len(v) for v in lists}) > 1:
            raise HttpError(400, "the columns of 'inputs' have different lengths")
        return columns, [list(row) for row in zip(*lists, strict=False)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _records(value, "inputs", schema)
    if not isinstance(value, list):
        raise HttpError(400, f"'inputs' must be an object or a list, not {_kind(value)}")
    columns = _positional(schema, value)
    return columns, _row_lists(value, len(columns), "inputs")


def _positional(schema: InputSchema, rows: list[Any]) -> list[str]:
    """Column names for rows given without names: the model's, in order."""
    if schema.names is not None:
        return schema.names
    width = len(rows[0]) if rows and isinstance(rows[0], list) else 1
    return [str(i) for i in range(width)]


def _row_lists(data: list[Any], width: int, where: str) -> list[list[Any]]:
    rows = [row if isinstance(row, list) else [row] for row in data]
    for number, row in enumerate(rows):
        if len(row) != width:
            raise HttpError(
                400, f"row {number} of '{where}' has {len(row)} values; the columns are {width}"
            )
    return rows


def _records(value: Any, where: str, schema: InputSchema) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise HttpError(400, f"'{where}' must be a list of objects (one per row)")
    if schema.names is not None:
        columns = schema.names
    else:
        columns = list(dict.fromkeys(k for record in value for k in record))
    rows = []
    for number, record in enumerate(value):
        try:
            rows.append([record[c] for c in columns])
        except KeyError as exc:
            raise HttpError(
                400,
                f"row {number} of '{where}' has no column '{exc.args[0]}' (model columns: "
                f"{', '.join(columns)})",
                _SCHEMA,
            ) from None
    return columns, rows


def _ordered(
    columns: list[str],
    rows: list[list[Any]],
    schema: InputSchema,
    params: dict[str, Any] | None,
    client_id: str | None,
    *,
    strings: bool,
) -> Scoring:
    """Rows in the schema's column order (extra columns dropped), type-checked."""
    if schema.columns is None:
        return Scoring(columns, _cast_csv(rows) if strings else rows, params, client_id)
    names = [c.name for c in schema.columns]
    if columns != names:
        index = {name: i for i, name in enumerate(columns)}
        missing = [c.name for c in schema.columns if c.required and c.name not in index]
        if missing:
            raise HttpError(
                400,
                f"the input has no column {', '.join(repr(m) for m in missing)} (model columns: "
                f"{', '.join(names)}; given: {', '.join(columns) or 'none'})",
                _SCHEMA,
            )
        picks = [index.get(name) for name in names]
        rows = [[row[i] if i is not None else None for i in picks] for row in rows]
    if schema.numeric:
        return Scoring(names, _numeric(rows, schema), params, client_id)
    return Scoring(names, _typed(rows, schema, strings), params, client_id)


def _numeric(rows: list[list[Any]], schema: InputSchema) -> Any:
    """One float64 array of the rows: the fast path, no per-column work when values are good."""
    import numpy as np

    assert schema.columns is not None
    if not rows:
        return np.empty((0, len(schema.columns)), dtype=np.float64)
    try:
        array = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError):
        raise HttpError(400, _bad_value(rows, schema), _SCHEMA) from None
    if array.ndim != 2:
        array = array.reshape(len(rows), -1)
    assert schema.columns is not None
    for i, column in enumerate(schema.columns):
        if column.type == "float":  # MLflow casts to float32 first: the same values here
            array[:, i] = array[:, i].astype(np.float32)
        if column.type in _INTEGER_TYPES and len(array):
            values = array[:, i]
            if not np.array_equal(values, np.floor(values)):
                raise HttpError(
                    400,
                    code=_SCHEMA,
                    message=f"column '{column.name}' takes whole numbers ({column.type}); got "
                    f"{values[values != np.floor(values)][0]:g}",
                )
    return array


def _bad_value(rows: list[list[Any]], schema: InputSchema) -> str:
    assert schema.columns is not None
    for row in rows:
        for column, value in zip(schema.columns, row, strict=False):
            try:
                if value is None or isinstance(value, (list, dict)):
                    raise ValueError
                float(value)
            except (ValueError, TypeError):
                return (
                    f"column '{column.name}' takes numbers ({column.type or 'double'}); got "
                    f"{_short(value)}"
                )
    return "the rows are not a table of numbers"


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _typed(rows: list[list[Any]], schema: InputSchema, strings: bool) -> list[list[Any]]:
    """Rows of a schema with non-numeric columns: numbers checked and cast, the rest as given."""
    assert schema.columns is not None
    casts = [_caster(c) for c in schema.columns]
    out = []
    for row in rows:
        new = list(row)
        for i, cast in enumerate(casts):
            if cast is not None and new[i] is not None and (strings or isinstance(new[i], str)):
                new[i] = cast(new[i], schema.columns[i])
            elif cast is not None and new[i] is not None and not isinstance(new[i], (int, float)):
                raise HttpError(400, _type_message(schema.columns[i], new[i]), _SCHEMA)
        out.append(new)
    return out


def _caster(column: ColumnSpec) -> Any:
    if column.type not in NUMERIC_TYPES:
        return None

    def cast(value: Any, spec: ColumnSpec) -> Any:
        if isinstance(value, str):
            if spec.type == "boolean":
                return value.strip().lower() in ("true", "1")
            try:
                number = float(value)
            except ValueError:
                raise HttpError(400, _type_message(spec, value), _SCHEMA) from None
            return int(number) if spec.type in _INTEGER_TYPES and number.is_integer() else number
        return value

    return cast


def _type_message(column: ColumnSpec, value: Any) -> str:
    return f"column '{column.name}' takes numbers ({column.type}); got {_short(value)}"


def _cast_csv(rows: list[list[Any]]) -> list[list[Any]]:
    """CSV values of a model without a signature: numbers where they parse, else strings."""
    out = []
    for row in rows:
        new: list[Any] = []
        for value in row:
            try:
                number = float(value)
                new.append(int(number) if value.strip().lstrip("-").isdigit() else number)
            except ValueError:
                new.append(value)
        out.append(new)
    return out
