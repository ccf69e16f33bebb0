"""The scoring protocol: the four JSON forms and CSV into the model's rows, and every 400/415."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from lakestack.serving.protocol import (
    ColumnSpec,
    HttpError,
    InputSchema,
    parse_body,
    predictions_body,
)

NUMERIC = InputSchema.of([ColumnSpec("a", "double"), ColumnSpec("b", "long")])
MIXED = InputSchema.of([ColumnSpec("a", "double"), ColumnSpec("name", "string")])
NONE = InputSchema.of(None)
JSON = "application/json"


def parse(payload: object, schema: InputSchema = NUMERIC, content_type: str = JSON) -> object:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_body(body, content_type, schema)


def fails(payload: object, status: int = 400, **kwargs: object) -> str:
    with pytest.raises(HttpError) as caught:
        parse(payload, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status
    return caught.value.message


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3.5, 4]]}},
        {"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1], [4, 3.5]]}},
        {"dataframe_split": {"data": [[1, 2], [3.5, 4]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3.5, "extra": "x"}]},
        {"instances": [[1, 2], [3.5, 4]]},
        {"instances": [{"a": 1, "b": 2}, {"a": 3.5, "b": 4}]},
        {"inputs": {"a": [1, 3.5], "b": [2, 4]}},
        {"inputs": [[1, 2], [3.5, 4]]},
    ],
)
def test_every_json_form_gives_the_same_float_rows(payload: object) -> None:
    scoring = parse(payload)
    assert scoring.columns == ["a", "b"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(scoring.rows, [[1.0, 2.0], [3.5, 4.0]])  # type: ignore[attr-defined]


def test_no_rows_give_an_empty_table_of_the_model_columns() -> None:
    scoring = parse({"dataframe_split": {"columns": ["a", "b"], "data": []}})
    assert scoring.rows.shape == (0, 2)  # type: ignore[attr-defined]


def test_csv_is_read_in_the_model_order() -> None:
    scoring = parse(b"b,a\n2,1\n4,3.5\n", content_type="text/csv")
    np.testing.assert_array_equal(scoring.rows, [[1.0, 2.0], [3.5, 4.0]])  # type: ignore[attr-defined]


def test_params_and_client_request_id_are_kept() -> None:
    scoring = parse({"inputs": {"a": [1], "b": [2]}, "params": {"k": 1}, "client_request_id": "r1"})
    assert scoring.params == {"k": 1}  # type: ignore[attr-defined]
    assert scoring.client_request_id == "r1"  # type: ignore[attr-defined]
    assert scoring.rows.tolist() == [[1.0, 2.0]]  # type: ignore[attr-defined]


def test_mixed_schemas_keep_strings_and_cast_csv_numbers() -> None:
    assert parse({"dataframe_records": [{"a": 1, "name": "x"}]}, MIXED).rows == [[1, "x"]]  # type: ignore[attr-defined]
    rows = parse(b"a,name\n1.5,x\n", MIXED, "text/csv").rows  # type: ignore[attr-defined]
    assert rows == [[1.5, "x"]]


def test_no_schema_takes_the_columns_given() -> None:
    scoring = parse({"dataframe_records": [{"x": 1, "y": "z"}]}, NONE)
    assert scoring.columns == ["x", "y"]  # type: ignore[attr-defined]
    assert scoring.rows == [[1, "z"]]  # type: ignore[attr-defined]


def test_missing_column_is_named() -> None:
    message = fails({"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    assert message == "the input has no column 'b' (model columns: a, b; given: a)"
    assert "no column 'b'" in fails({"dataframe_records": [{"a": 1}]})


def test_wrong_values_are_named() -> None:
    assert fails({"inputs": {"a": ["x"], "b": [1]}}) == "column 'a' takes numbers (double); got 'x'"
    assert (
        fails({"inputs": {"a": [1], "b": [1.5]}})
        == "column 'b' takes whole numbers (long); got 1.5"
    )
    assert "column 'a' takes numbers" in fails(
        {"dataframe_records": [{"a": "x", "name": "n"}]}, schema=MIXED
    )


def test_not_exactly_one_input_field() -> None:
    assert fails({"params": {}}).startswith(
        "the input must be a JSON object with exactly one of the input fields dataframe_split"
    )
    assert "(found instances, inputs)" in fails({"instances": [], "inputs": []})
    assert fails([1, 2]).startswith("the input must be a JSON object")
    assert fails(b"{not json").startswith("the body is not valid JSON")


def test_bad_shapes() -> None:
    assert fails({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}) == (
        "row 0 of 'dataframe_split.data' has 1 values; the columns are 2"
    )
    assert fails({"dataframe_split": [1]}) == "'dataframe_split' must be an object, not a list"
    assert (
        fails({"dataframe_records": [1]})
        == "'dataframe_records' must be a list of objects (one per row)"
    )
    assert (
        fails({"inputs": {"a": [1, 2], "b": [1]}})
        == "the columns of 'inputs' have different lengths"
    )
    assert fails({"inputs": 3}) == "'inputs' must be an object or a list, not int"
    assert fails({"inputs": [[1, 2]], "params": 3}) == "'params' must be a JSON object, not int"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/json; charset=latin-1", "text/csv; x=1"]
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(HttpError) as caught:
        parse_body(b"{}", content_type, NUMERIC)
    assert caught.value.status == 415
    assert "send application/json (charset utf-8) or text/csv" in caught.value.message


def test_charset_utf8_is_accepted() -> None:
    assert len(parse({"inputs": [[1, 2]]}, content_type="application/json; charset=UTF-8")) == 1  # type: ignore[arg-type]


def test_error_and_prediction_bodies() -> None:
    error = HttpError(413, "too big")
    assert orjson.loads(error.body()) == {
        "error_code": "REQUEST_LIMIT_EXCEEDED",
        "message": "too big",
    }
    assert orjson.loads(predictions_body(np.array([1, 2]))) == {"predictions": [1, 2]}
