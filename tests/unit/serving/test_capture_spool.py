"""The spool's line format: a request's line, and the rows a writer reads back from lines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from lakestack.errors import InferenceError
from lakestack.serving.capture_spool import Contexts, decode, record_lines, request_line

TABLE = "main.ml.iris_payload"
IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
WHERE = Path("capture-1-test.spool")


def line(
    request_id: str,
    rows: Any,
    predictions: Any,
    *,
    columns: list[str] = IRIS,
    model_id: str = "main.ml.iris/1",
    contexts: Contexts | None = None,
    client: str | None = None,
) -> bytes:
    context = (contexts or Contexts(TABLE)).get("iris", "champion", model_id, columns)
    return request_line(
        TABLE,
        request_id,
        client,
        context,
        columns,
        rows,
        predictions,
        timestamp_ms=1_700_000_000_123,
        execution_time_ms=0.25,
        status_code=200,
    )


def test_numeric_rows_become_one_row_per_record_with_the_request_fields() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
    data = line("r-1", rows, [0, 1], client="order-7") + line("r-2", rows[:1], [0])

    table = decode(data, 2, WHERE)

    assert table is not None
    assert table.column_names == [
        *IRIS,
        "prediction",
        "model_id",
        "timestamp",
        "request_id",
        "client_request_id",
        "endpoint_name",
        "served_entity",
        "status_code",
        "execution_time_ms",
    ]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("status_code").type == pa.int32()
    first, second, third = table.to_pylist()
    assert (first["sepal_length"], first["petal_width"], first["prediction"]) == (5.1, 0.2, 0)
    assert (second["sepal_length"], second["prediction"]) == (6.2, 1)
    assert [r["request_id"] for r in (first, second, third)] == ["r-1", "r-1", "r-2"]
    assert [r["client_request_id"] for r in (first, second, third)] == ["order-7"] * 2 + [None]
    assert first["timestamp"].timestamp() == 1_700_000_000.123
    assert (first["model_id"], first["endpoint_name"], first["served_entity"]) == (
        "main.ml.iris/1",
        "iris",
        "champion",
    )
    assert (first["status_code"], first["execution_time_ms"]) == (200, 0.25)


def test_list_rows_keep_each_column_type() -> None:
    columns = ["plan", "tenure", "monthly"]
    data = line("r-1", [["basic", 3, 20.5], ["pro", 12, 99.0]], ["no", "yes"], columns=columns)

    table = decode(data, 2, WHERE)

    assert table is not None
    types = {field.name: field.type for field in table.schema}
    assert (types["plan"], types["tenure"], types["monthly"]) == (
        pa.string(),
        pa.int64(),
        pa.float64(),
    )
    assert table.select([*columns, "prediction"]).to_pylist() == [
        {"plan": "basic", "tenure": 3, "monthly": 20.5, "prediction": "no"},
        {"plan": "pro", "tenure": 12, "monthly": 99.0, "prediction": "yes"},
    ]


def test_a_model_change_mid_batch_keeps_the_order_and_adds_the_new_column() -> None:
    contexts = Contexts(TABLE)
    wider = [*IRIS, "petal_ratio"]
    data = (
        line("r-1", np.array([[5.1, 3.5, 1.4, 0.2]]), [0], contexts=contexts)
        + line("r-2", np.array([[5.0, 3.4, 1.5, 0.2, 7.5]]), [1], columns=wider, model_id="m/2")
        + line("r-3", np.array([[6.0, 3.0, 4.8, 1.8]]), [2], contexts=contexts)
    )

    table = decode(data, 2, WHERE)

    assert table is not None
    assert table.column("request_id").to_pylist() == ["r-1", "r-2", "r-3"]
    assert table.column("petal_ratio").to_pylist() == [None, 7.5, None]
    assert table.column("model_id").to_pylist() == ["main.ml.iris/1", "m/2", "main.ml.iris/1"]
    assert table.column("prediction").to_pylist() == [0, 1, 2]


def test_a_torn_line_is_skipped_and_the_others_are_read(caplog: pytest.LogCaptureFixture) -> None:
    good = line("r-1", np.array([[5.1, 3.5, 1.4, 0.2]]), [0])
    torn = line("r-2", np.array([[5.0, 3.4, 1.5, 0.2]]), [1])[:40] + b"\n"

    with caplog.at_level(logging.WARNING):
        table = decode(good + torn + good.replace(b"r-1", b"r-3"), 2, WHERE)

    assert table is not None
    assert table.column("request_id").to_pylist() == ["r-1", "r-3"]
    assert "skipped an unreadable line" in caplog.text


def test_predictions_fewer_than_rows_pair_up_as_far_as_they_go() -> None:
    data = line("r-1", np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 4.8, 1.8]]), [2])
    table = decode(data, 2, WHERE)
    assert table is not None
    assert table.select(["sepal_length", "prediction"]).to_pylist() == [
        {"sepal_length": 5.1, "prediction": 2}
    ]


def test_one_prediction_for_every_row_and_numpy_views_are_stored() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2, 9.9], [6.0, 3.0, 4.8, 1.8, 9.9]])[:, :4]  # a view
    table = decode(line("r-1", rows, 1), 2, WHERE)
    assert table is not None
    assert table.select(["petal_width", "prediction"]).to_pylist() == [
        {"petal_width": 0.2, "prediction": 1},
        {"petal_width": 1.8, "prediction": 1},
    ]


def test_record_lines_are_read_back_as_the_records() -> None:
    record = {
        "request_id": "r-1",
        "client_request_id": None,
        "endpoint_name": "iris",
        "served_entity": "champion",
        "model_id": "main.ml.iris/1",
        "timestamp": 1_700_000_000_000,
        "status_code": 200,
        "execution_time_ms": 0.5,
        "inputs": {"x": 1.5, "hint": "a"},
        "prediction": [0.1, 0.9],
    }
    later = {**record, "request_id": "r-2", "inputs": {"x": 2.5, "y": True}}
    data = record_lines(TABLE, Contexts(TABLE), [record, later])

    table = decode(data, 2, WHERE)

    assert table is not None
    assert table.select(["x", "hint", "y", "prediction", "request_id"]).to_pylist() == [
        {"x": 1.5, "hint": "a", "y": None, "prediction": [0.1, 0.9], "request_id": "r-1"},
        {"x": 2.5, "hint": None, "y": True, "prediction": [0.1, 0.9], "request_id": "r-2"},
    ]


def test_format_1_lines_of_earlier_versions_are_still_read() -> None:
    record = {
        "request_id": "r-1",
        "client_request_id": "c-1",
        "endpoint_name": "iris",
        "served_entity": "champion",
        "model_id": "main.ml.iris/1",
        "timestamp": 1_700_000_000_000,
        "status_code": 200,
        "execution_time_ms": 1,
        "inputs": {"sepal_length": 5.1},
        "prediction": 0,
    }
    one = orjson.dumps(record) + b"\n"
    several = orjson.dumps([{**record, "request_id": "r-2"}, {**record, "request_id": "r-3"}])

    assert decode(one + one.replace(b"r-1", b"r-0"), 1, WHERE).num_rows == 2  # type: ignore[union-attr]
    table = decode(one + several + b"\n", 1, WHERE)  # a list per line: Arrow cannot, one by one
    assert table is not None
    assert table.column("request_id").to_pylist() == ["r-1", "r-2", "r-3"]
    assert table.schema.field("execution_time_ms").type == pa.float64()


def test_nothing_to_read_is_none() -> None:
    assert decode(b"", 2, WHERE) is None
    assert decode(b"not json\n", 2, WHERE) is None


def test_a_reserved_input_name_is_refused_once_per_context() -> None:
    contexts = Contexts(TABLE)
    with pytest.raises(InferenceError) as error:
        contexts.get("iris", "champion", "main.ml.iris/1", ["x", "timestamp"])
    assert str(error.value).startswith(
        "inference table main.ml.iris_payload: input column 'timestamp' has the name of a "
        "column the table adds (client_request_id, endpoint_name,"
    )
    assert contexts.get("iris", "champion", "m/1", IRIS) is contexts.get(
        "iris", "champion", "m/1", list(IRIS)
    )


def test_a_value_json_cannot_hold_is_refused() -> None:
    with pytest.raises(InferenceError, match=r"cannot be stored \(set \{1\} is not JSON"):
        line("r-1", [[{1}, 2.0, 3.0, 4.0]], [0])
