"""The spool's line format: a batch's line, and the rows a writer reads back from lines (of this
format and the earlier ones)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from lakestack.errors import InferenceError
from lakestack.serving.batching import Queued
from lakestack.serving.capture_spool import (
    FORMAT,
    Contexts,
    batch_hook,
    batch_line,
    decode,
    record_lines,
)
from lakestack.serving.protocol import Scoring

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
    """The line of a batch of one request."""
    context = (contexts or Contexts(TABLE)).get("iris", "champion", model_id, columns)
    return batch_line(
        TABLE,
        context,
        columns,
        [request_id],
        [client],
        [len(rows)],
        [0.25],
        [200],
        rows,
        predictions,
        timestamp_ms=1_700_000_000_123,
    )


def v2_line(request_id: str, rows: list[list[float]], predictions: list[int]) -> bytes:
    """A line of format 2 (one request per line), as the previous version wrote it."""
    context = Contexts(TABLE).get("iris", "champion", "main.ml.iris/1", IRIS)
    return orjson.dumps(
        {"id": request_id, "client": None, "context": context, "ts": 1_700_000_000_123,
         "status": 200, "ms": 0.25, "rows": rows, "predictions": predictions},
        option=orjson.OPT_APPEND_NEWLINE,
    )  # fmt: skip


def test_numeric_rows_become_one_row_per_record_with_the_request_fields() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
    data = line("r-1", rows, [0, 1], client="order-7") + line("r-2", rows[:1], [0])

    table = decode(data, FORMAT, WHERE)

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


def test_a_batch_line_becomes_one_row_per_record_of_each_request() -> None:
    context = Contexts(TABLE).get("iris", "champion", "main.ml.iris/1", IRIS)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.3, 3.3, 6.0, 2.5], [5.0] * 4])
    data = batch_line(
        TABLE, context, IRIS, ["r-1", "r-2", "r-3"], ["order-1", None, "order-3"], [1, 2, 1],
        [0.5, 0.75, 1.0], [200, 200, 200], rows, np.array([0, 1, 2, 0]),
        timestamp_ms=1_700_000_000_123,
    )  # fmt: skip

    assert data.count(b"\n") == 1
    table = decode(data, FORMAT, WHERE)

    assert table is not None
    assert table.select(["request_id", "client_request_id", "sepal_length", "prediction"]).to_pylist() == [
        {"request_id": "r-1", "client_request_id": "order-1", "sepal_length": 5.1, "prediction": 0},
        {"request_id": "r-2", "client_request_id": None, "sepal_length": 6.2, "prediction": 1},
        {"request_id": "r-2", "client_request_id": None, "sepal_length": 6.3, "prediction": 2},
        {"request_id": "r-3", "client_request_id": "order-3", "sepal_length": 5.0, "prediction": 0},
    ]  # fmt: skip
    assert table.column("execution_time_ms").to_pylist() == [0.5, 0.75, 0.75, 1.0]
    assert set(table.column("timestamp").to_pylist()) == {table.column("timestamp")[0].as_py()}
    assert table.schema.field("client_request_id").type == pa.string()


class _Model:
    model_id = "main.ml.iris/1"


def hooked(rows: Any, predictions: Any, jsonable: Any = None) -> list[bytes]:
    """The lines the server's batch hook spools for three requests of the given rows (the
    second has two records), predicted together."""
    lines: list[bytes] = []
    hook = batch_hook(
        TABLE, Contexts(TABLE), lambda line, _: lines.append(line), "iris", "champion",
        jsonable or (lambda p: p),
    )  # fmt: skip
    numeric = isinstance(rows, np.ndarray)
    parts = [rows[0:1], rows[1:3], rows[3:4]]
    batch = [
        Queued(Scoring(IRIS, part, None, client), f"r-{i}", time.perf_counter())
        for i, (part, client) in enumerate(zip(parts, ["order-1", None, "order-3"], strict=True))
    ]
    hook(batch, rows if numeric else [r for part in parts for r in part], predictions, _Model)  # type: ignore[arg-type]
    return lines


def test_the_batch_hook_spools_what_batch_line_writes() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.3, 3.3, 6.0, 2.5], [5.0] * 4])
    context = Contexts(TABLE).get("iris", "champion", "main.ml.iris/1", IRIS)
    fast = orjson.loads(hooked(rows, np.array([0, 1, 2, 0]))[0])
    expected = orjson.loads(batch_line(
        TABLE, context, IRIS, ["r-0", "r-1", "r-2"], ["order-1", None, "order-3"], [1, 2, 1],
        fast["ms"], [200] * 3, rows, np.array([0, 1, 2, 0]), timestamp_ms=fast["ts"],
    ))  # fmt: skip

    assert fast == expected
    assert all(0 <= ms < 1000 for ms in fast["ms"])


def test_the_batch_hook_spools_other_rows_and_predictions_through_batch_line() -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.3, 3.3, 6.0, 2.5], [5.0] * 4]
    labels = np.array(["setosa", "versicolor", "virginica", "setosa"], dtype=object)

    [line] = hooked(rows, labels, jsonable=lambda p: p.tolist())
    table = decode(line, FORMAT, WHERE)

    assert table is not None
    assert table.column("prediction").to_pylist() == labels.tolist()
    assert table.column("request_id").to_pylist() == ["r-0", "r-1", "r-1", "r-2"]
    assert table.column("petal_width").to_pylist() == [0.2, 1.3, 2.5, 5.0]


def test_execution_times_are_kept_to_the_microsecond_in_both_readers() -> None:
    """Servers spool execution times unrounded (rounding is request-path time); the table keeps
    them to the microsecond, whether Arrow reads the lines or the line-by-line fallback does."""
    context = Contexts(TABLE).get("iris", "champion", "main.ml.iris/1", IRIS)
    data = batch_line(
        TABLE, context, IRIS, ["r-1", "r-2"], [None, None], [1, 1], [0.52499999, 1.0000004],
        [200, 200], np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]), np.array([0, 1]),
        timestamp_ms=1_700_000_000_123,
    )  # fmt: skip
    torn = b'{"ids": ["r-0"'  # a line torn by a crash sends the run to the line-by-line reader

    columnar, one_by_one = decode(data, FORMAT, WHERE), decode(data + torn + b"\n", FORMAT, WHERE)

    assert columnar is not None and one_by_one is not None
    assert columnar.column("execution_time_ms").to_pylist() == [0.525, 1.0]
    assert one_by_one.column("execution_time_ms").to_pylist() == [0.525, 1.0]


def test_batch_lines_of_several_contexts_and_sizes_keep_their_order() -> None:
    contexts = Contexts(TABLE)
    one = contexts.get("iris", "champion", "m/1", IRIS)
    two = contexts.get("iris", "challenger", "m/2", ["plan", "tenure"])
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
    data = (
        batch_line(TABLE, one, IRIS, ["a", "b"], [None, None], [1, 1], [1.0, 2.0], [200, 200],
                   rows, [0, 1], timestamp_ms=1)
        + batch_line(TABLE, two, ["plan", "tenure"], ["c"], ["x"], [2], [3.0], [200],
                     [["basic", 3], ["pro", 12]], [1, 0], timestamp_ms=2)
        + batch_line(TABLE, one, IRIS, ["d"], [None], [1], [4.0], [200], rows[1:], [1],
                     timestamp_ms=3)
    )  # fmt: skip

    table = decode(data, FORMAT, WHERE)

    assert table is not None
    assert table.column("request_id").to_pylist() == ["a", "b", "c", "c", "d"]
    assert table.column("served_entity").to_pylist() == ["champion"] * 2 + ["challenger"] * 2 + [
        "champion"
    ]
    assert table.column("tenure").to_pylist() == [None, None, 3, 12, None]
    assert table.column("client_request_id").to_pylist() == [None, None, "x", "x", None]


def test_counts_that_do_not_match_the_records_pair_up_as_far_as_they_go() -> None:
    context = Contexts(TABLE).get("iris", "champion", "m/1", IRIS)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
    line = orjson.loads(batch_line(
        TABLE, context, IRIS, ["a", "b"], [None, None], [1, 1], [1.0, 2.0], [200, 200], rows,
        [0, 1], timestamp_ms=1,
    ))  # fmt: skip
    data = orjson.dumps({**line, "counts": [2, 1]}) + b"\n"  # the second request has no row

    table = decode(data, FORMAT, WHERE)

    assert table is not None
    assert table.select(["request_id", "prediction"]).to_pylist() == [
        {"request_id": "a", "prediction": 0},
        {"request_id": "a", "prediction": 1},
    ]


def test_format_2_lines_of_the_previous_version_are_still_read() -> None:
    data = v2_line("r-1", [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]], [0, 1]) + v2_line(
        "r-2", [[5.0, 3.4, 1.5, 0.2]], [2]
    )

    table = decode(data, 2, WHERE)
    torn = decode(data + data[:30] + b"\n", 2, WHERE)  # read line by line

    assert table is not None and torn is not None
    for read in (table, torn):
        assert read.select(["request_id", "sepal_length", "prediction"]).to_pylist() == [
            {"request_id": "r-1", "sepal_length": 5.1, "prediction": 0},
            {"request_id": "r-1", "sepal_length": 6.2, "prediction": 1},
            {"request_id": "r-2", "sepal_length": 5.0, "prediction": 2},
        ]
        assert read.column("timestamp")[0].as_py().timestamp() == 1_700_000_000.123


def test_list_rows_keep_each_column_type() -> None:
    columns = ["plan", "tenure", "monthly"]
    data = line("r-1", [["basic", 3, 20.5], ["pro", 12, 99.0]], ["no", "yes"], columns=columns)

    table = decode(data, FORMAT, WHERE)

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


def test_values_null_in_the_first_lines_and_strings_later_are_all_kept() -> None:
    columns = ["plan", "tenure"]
    data = (
        line("r-1", [[None, 3], [None, 4]], [0, 1], columns=columns)
        + line("r-2", [["pro", 12]], [1], columns=columns)
        + line("r-3", [[None, 5]], [0], columns=columns)
    )

    table = decode(data, FORMAT, WHERE)  # Arrow's JSON reader alone drops one of the nulls

    assert table is not None
    assert table.select(["request_id", "plan", "tenure"]).to_pylist() == [
        {"request_id": "r-1", "plan": None, "tenure": 3},
        {"request_id": "r-1", "plan": None, "tenure": 4},
        {"request_id": "r-2", "plan": "pro", "tenure": 12},
        {"request_id": "r-3", "plan": None, "tenure": 5},
    ]


def test_a_model_change_mid_batch_keeps_the_order_and_adds_the_new_column() -> None:
    contexts = Contexts(TABLE)
    wider = [*IRIS, "petal_ratio"]
    data = (
        line("r-1", np.array([[5.1, 3.5, 1.4, 0.2]]), [0], contexts=contexts)
        + line("r-2", np.array([[5.0, 3.4, 1.5, 0.2, 7.5]]), [1], columns=wider, model_id="m/2")
        + line("r-3", np.array([[6.0, 3.0, 4.8, 1.8]]), [2], contexts=contexts)
    )

    table = decode(data, FORMAT, WHERE)

    assert table is not None
    assert table.column("request_id").to_pylist() == ["r-1", "r-2", "r-3"]
    assert table.column("petal_ratio").to_pylist() == [None, 7.5, None]
    assert table.column("model_id").to_pylist() == ["main.ml.iris/1", "m/2", "main.ml.iris/1"]
    assert table.column("prediction").to_pylist() == [0, 1, 2]


def test_a_torn_line_is_skipped_and_the_others_are_read(caplog: pytest.LogCaptureFixture) -> None:
    good = line("r-1", np.array([[5.1, 3.5, 1.4, 0.2]]), [0])
    torn = line("r-2", np.array([[5.0, 3.4, 1.5, 0.2]]), [1])[:40] + b"\n"

    with caplog.at_level(logging.WARNING):
        table = decode(good + torn + good.replace(b"r-1", b"r-3"), FORMAT, WHERE)

    assert table is not None
    assert table.column("request_id").to_pylist() == ["r-1", "r-3"]
    assert "skipped an unreadable line" in caplog.text


def test_predictions_fewer_than_rows_pair_up_as_far_as_they_go() -> None:
    data = line("r-1", np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 4.8, 1.8]]), [2])
    table = decode(data, FORMAT, WHERE)
    assert table is not None
    assert table.select(["sepal_length", "prediction"]).to_pylist() == [
        {"sepal_length": 5.1, "prediction": 2}
    ]


def test_one_prediction_for_every_row_and_numpy_views_are_stored() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2, 9.9], [6.0, 3.0, 4.8, 1.8, 9.9]])[:, :4]  # a view
    table = decode(line("r-1", rows, 1), FORMAT, WHERE)
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

    table = decode(data, FORMAT, WHERE)

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
    assert decode(b"", FORMAT, WHERE) is None
    assert decode(b"not json\n", FORMAT, WHERE) is None


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
