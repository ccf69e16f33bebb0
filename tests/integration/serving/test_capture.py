"""The inference table writer on real Delta tables and real processes (SIGKILL included)."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from lakestack.bundle.specs.serving import ModelServingEndpointSpec
from lakestack.bundle.specs.settings import ServingSpec
from lakestack.errors import ConstraintError, InferenceError, SchemaMismatchError
from lakestack.lake import Catalog
from lakestack.serving.app import REQUEST_ID_HEADER, ServingState, create_app
from lakestack.serving.capture import Capture, Spooler, merge_labels, recover_spools
from lakestack.serving.capture_spool import Contexts, batch_line
from lakestack.serving.capture_writer import CaptureWriter
from lakestack.serving.endpoints import ModelSwitcher, build_endpoints
from lakestack.serving.models import ServedModel
from lakestack.serving.protocol import ColumnSpec, InputSchema

pytestmark = pytest.mark.integration

TABLE = "main.serving.iris_payload"

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lakestack.lake import Catalog
    from lakestack.serving.capture import Capture

    warehouse, spool, prefix, count, close = sys.argv[1:6]
    capture = Capture.open(
        Catalog(warehouse), "main.serving.iris_payload", Path(spool),
        flush_rows=40, flush_seconds=0.05,
    )
    for i in range(int(count)):
        capture.record([{
            "request_id": f"{prefix}-{i}", "client_request_id": None, "endpoint_name": "iris",
            "served_entity": "iris-1", "model_id": "main.ml.iris/1",
            "timestamp": 1_700_000_000_000 + i, "status_code": 200, "execution_time_ms": 0.5,
            "inputs": {"sepal_length": 5.0 + i, "petal_width": 0.2}, "prediction": i % 3,
        }])
        print(f"{prefix}-{i}", flush=True)
        time.sleep(0.0005)
    if close == "close":
        capture.close()
    else:
        time.sleep(60)
    """
)


def row(i: int, *, request: str | None = None, client: str | None = None) -> dict[str, Any]:
    return {
        "request_id": request or f"req-{i}",
        "client_request_id": client,
        "endpoint_name": "iris",
        "served_entity": "iris-1",
        "model_id": "main.ml.iris/1",
        "timestamp": 1_700_000_000_000 + i,
        "status_code": 200,
        "execution_time_ms": 0.25 * i,
        "inputs": {"sepal_length": 5.0 + i, "species_hint": f"s{i % 2}"},
        "prediction": i % 3,
    }


def child(
    warehouse: Path, spool: Path, prefix: str, count: int, close: bool
) -> subprocess.Popen[str]:
    args = [str(warehouse), str(spool), prefix, str(count), "close" if close else "stay"]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True, bufsize=1
    )


def spooled_lines(path: Path) -> list[bytes]:
    """The lines of a live spool: its data ends at the first zero byte (the stretch mapped
    ahead of the data reads as zeros)."""
    return path.read_bytes().split(b"\0", 1)[0].splitlines()


def request_ids(catalog: Catalog) -> list[str]:
    return [str(v) for v in catalog.table(TABLE).read(["request_id"])["request_id"].to_pylist()]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture
def catalog(warehouse: Path) -> Catalog:
    return Catalog(warehouse)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def test_every_recorded_row_is_in_the_table_after_close(catalog: Catalog, spool: Path) -> None:
    capture = Capture.open(catalog, TABLE, spool, flush_rows=7, flush_seconds=0.05)
    for i in range(50):
        capture.record([row(i)])
    capture.record([row(100 + i, request="req-batch") for i in range(5)])
    capture.close()

    ids = request_ids(catalog)
    assert sorted(ids) == sorted([f"req-{i}" for i in range(50)] + ["req-batch"] * 5)
    assert list(spool.glob("*.spool")) == []  # a fully written spool is deleted
    capture.close()  # idempotent


def test_the_table_has_the_design_row_shape(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        capture.record([row(1, client="c-1"), row(2)])

    table = catalog.table(TABLE)
    assert table.schema.names == [
        "sepal_length",
        "species_hint",
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
    types = {field.name: field.type for field in table.schema}
    assert types["timestamp"] == pa.timestamp("us", tz="UTC")
    assert types["status_code"] == pa.int32()
    assert types["execution_time_ms"] == pa.float64()
    assert types["sepal_length"] == pa.float64()
    first = table.read().sort_by("request_id").to_pylist()[0]
    assert first["timestamp"].timestamp() == 1_700_000_000.001
    assert first["client_request_id"] == "c-1"
    assert (first["prediction"], first["model_id"], first["execution_time_ms"]) == (
        1,
        "main.ml.iris/1",
        0.25,
    )


def test_new_input_columns_are_added_and_missing_ones_are_null(
    catalog: Catalog, spool: Path
) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        capture.record([row(1)])
        capture.flush()
        later = row(2)
        later["inputs"] = {"sepal_length": 7.0, "petal_width": 0.3}
        capture.record([later])

    rows = {r["request_id"]: r for r in catalog.table(TABLE).read().to_pylist()}
    assert rows["req-1"]["petal_width"] is None
    assert rows["req-2"]["species_hint"] is None
    assert rows["req-2"]["petal_width"] == 0.3


def test_sigkill_loses_no_answered_row_and_reopening_writes_none_twice(
    warehouse: Path, catalog: Catalog, spool: Path
) -> None:
    proc = child(warehouse, spool, "killed", 100_000, close=False)
    assert proc.stdout is not None
    answered = []
    for line in proc.stdout:
        answered.append(line.strip())
        if len(answered) == 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert list(spool.glob("*.spool")), "the killed process left its spool"
    assert catalog.table_exists(TABLE), "some batches were written before the kill"
    before = len(request_ids(catalog))

    Capture.open(catalog, TABLE, spool).close()  # recovers the dead process's spool
    Capture.open(catalog, TABLE, spool).close()  # nothing left to recover

    ids = request_ids(catalog)
    assert set(answered) <= set(ids)
    assert len(ids) == len(set(ids)), "a row was written twice"
    assert len(ids) >= before
    assert list(spool.glob("*.spool")) == []


def test_a_failed_write_resumes_at_the_offset_the_table_recorded(
    catalog: Catalog, spool: Path
) -> None:
    capture = Capture.open(catalog, TABLE, spool, flush_seconds=3600)
    capture.record([row(i) for i in range(3)])
    capture.flush()
    capture.record([row(i) for i in range(3, 5)])
    # a write that committed but failed afterwards, as a lost connection would leave it
    capture._flushed, capture._error = 0, RuntimeError("connection lost after the commit")
    capture.close()

    assert sorted(request_ids(catalog)) == [f"req-{i}" for i in range(5)]
    assert recover_spools(catalog, spool) == 0


def test_two_processes_record_at_once(warehouse: Path, catalog: Catalog, spool: Path) -> None:
    procs = [child(warehouse, spool, name, 400, close=True) for name in ("a", "b")]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]

    ids = request_ids(catalog)
    assert sorted(ids) == sorted(line for out in outputs for line in out.split())
    assert len(ids) == 800
    spools = {entry["metadata"].get("lakestack.spool") for entry in catalog.table(TABLE).history()}
    assert len(spools - {None}) == 2  # one spool, and one app id, per process


def test_a_live_process_spool_is_not_recovered_by_another(catalog: Catalog, spool: Path) -> None:
    first = Capture.open(catalog, TABLE, spool, flush_seconds=3600)
    first.record([row(1)])
    assert recover_spools(catalog, spool) == 0  # first holds its spool's lock
    second = Capture.open(catalog, TABLE, spool, flush_seconds=3600)
    second.record([row(2)])
    second.close()
    assert first.spool_path.exists()
    first.close()
    assert sorted(request_ids(catalog)) == ["req-1", "req-2"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"prediction": object()},
            "inference table main.serving.iris_payload: a record holds a value that cannot be "
            "stored (object <object object at",
        ),
        (
            {"inputs": {"sepal_length": {1, 2}}},
            "a record holds a value that cannot be stored (set {1, 2} is not JSON serializable)",
        ),
        (
            {"status_code": None, "inputs": {"timestamp": 1}},
            "input column 'timestamp' has the name of a column the table adds (client_request_id,",
        ),
        ({"inputs": [1.0, 2.0]}, "inputs must map input columns to values, got list [1.0, 2.0]"),
        ({"prediction": {1: "a"}}, "cannot be stored (Dict key must be str)"),
    ],
)
def test_a_bad_record_raises_and_spools_nothing(
    catalog: Catalog, spool: Path, bad: dict[str, Any], message: str
) -> None:
    capture = Capture.open(catalog, TABLE, spool)
    size = capture.spool_path.stat().st_size
    with pytest.raises(InferenceError, match="nothing was recorded") as error:
        capture.record([row(1), {**row(2), **bad}])
    assert message in str(error.value)
    assert capture.spool_path.stat().st_size == size
    capture.record([row(3)])
    capture.close()
    assert request_ids(catalog) == ["req-3"]


def test_a_record_without_a_field_names_it(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        incomplete = row(1)
        del incomplete["model_id"]
        with pytest.raises(InferenceError) as error:
            capture.record([incomplete])
    assert str(error.value) == (
        "inference table main.serving.iris_payload: a record has no model_id (a record has: "
        "request_id, client_request_id, endpoint_name, served_entity, model_id, timestamp, "
        "status_code, execution_time_ms, inputs, prediction); nothing was recorded"
    )
    assert not catalog.table_exists(TABLE)


def test_numpy_values_are_numbers_and_nan_is_missing(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        inputs = {"x": np.float32(0.5), "y": float("nan")}
        capture.record([{**row(1), "prediction": np.int64(2), "inputs": inputs}])
        capture.record([{**row(2), "prediction": 1, "inputs": {"x": 1.5, "y": 2.0}}])
    assert catalog.table(TABLE).read(["x", "y", "prediction"]).to_pylist() == [
        {"x": 0.5, "y": None, "prediction": 2},
        {"x": 1.5, "y": 2.0, "prediction": 1},
    ]


def test_bad_settings_are_refused(catalog: Catalog, spool: Path) -> None:
    with pytest.raises(
        InferenceError, match=r"flush_rows=0 and flush_seconds=1\.0 must be positive"
    ):
        Capture.open(catalog, TABLE, spool, flush_rows=0)


def test_labels_merge_by_client_request_id(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        capture.record([row(i, request="req-a", client="order-a") for i in range(3)])
        capture.record([row(3, request="req-b", client="order-b")])
        capture.record([row(4, request="req-c")])

    merge_labels(
        catalog,
        TABLE,
        [{"client_request_id": "order-a", "label": 1}, {"client_request_id": "x", "label": 0}],
    )
    merge_labels(catalog, TABLE, pa.table({"client_request_id": ["order-b"], "label": [2]}))
    merge_labels(catalog, TABLE, [{"client_request_id": "order-b", "label": 0}])  # corrected

    rows = catalog.table(TABLE).read(["request_id", "label"]).to_pylist()
    labels = sorted((r["request_id"], r["label"]) for r in rows)
    assert labels == [("req-a", 1), ("req-a", 1), ("req-a", 1), ("req-b", 0), ("req-c", None)]


def test_labels_merge_by_request_id(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        capture.record([row(1), row(2)])
    merge_labels(
        catalog, TABLE, [{"request_id": "req-2", "y": 0.5}], key="request_id", label_column="y"
    )
    assert sorted(
        map(tuple, (r.values() for r in catalog.table(TABLE).read(["request_id", "y"]).to_pylist()))
    ) == [
        ("req-1", None),
        ("req-2", 0.5),
    ]


def test_bad_labels_write_nothing(catalog: Catalog, spool: Path) -> None:
    with Capture.open(catalog, TABLE, spool) as capture:
        capture.record([row(1, client="c1")])
    version = catalog.table(TABLE).version

    twice = [{"client_request_id": "c1", "label": 1}, {"client_request_id": "c1", "label": 0}]
    with pytest.raises(ConstraintError, match="a client_request_id appears more than once"):
        merge_labels(catalog, TABLE, twice)
    with pytest.raises(SchemaMismatchError, match="have no column 'label'"):
        merge_labels(catalog, TABLE, [{"client_request_id": "c1", "y": 1}])
    with pytest.raises(SchemaMismatchError, match="has no key column 'order_id'"):
        merge_labels(catalog, TABLE, [{"order_id": "c1", "label": 1}], key="order_id")
    assert catalog.table(TABLE).version == version


def test_served_requests_are_spooled_one_line_each_and_written_by_the_writer(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    iris = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    spooler.record_request(
        "r-1", "order-1", "iris", "champion", "main.ml.iris/2", iris,
        np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]), [0, 1], execution_time_ms=0.5,
    )  # fmt: skip
    spooler.record_request(
        "r-2", None, "iris", "challenger", "main.ml.iris/3", ["plan", "tenure"],
        [["basic", 3]], [2], execution_time_ms=0.7,
    )  # fmt: skip
    assert len(spooled_lines(spooler.spool_path)) == 3  # the header and a line each
    spooler.close()

    writer = CaptureWriter(catalog, spool)
    assert writer.write_once()

    rows = catalog.table(TABLE).read().sort_by("request_id").to_pylist()
    assert [(r["request_id"], r["served_entity"], r["prediction"]) for r in rows] == [
        ("r-1", "champion", 0),
        ("r-1", "champion", 1),
        ("r-2", "challenger", 2),
    ]
    assert (rows[1]["sepal_length"], rows[1]["plan"], rows[2]["tenure"]) == (6.2, None, 3)
    assert list(spool.glob("*.spool")) == []


def test_a_format_1_spool_of_an_earlier_version_is_recovered(catalog: Catalog, spool: Path) -> None:
    spool.mkdir()
    header = {"lakestack_capture": 1, "table": TABLE, "pid": 1}
    lines = [orjson.dumps(header), *(orjson.dumps(row(i)) for i in range(3))]
    (spool / "capture-1-0123456789ab.spool").write_bytes(b"\n".join(lines) + b"\n")

    assert recover_spools(catalog, spool) == 1

    assert sorted(request_ids(catalog)) == ["req-0", "req-1", "req-2"]
    assert list(spool.glob("*.spool")) == []


def test_a_spool_of_an_unknown_format_is_left_in_place(
    catalog: Catalog, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool.mkdir()
    newer = spool / "capture-1-0123456789ab.spool"
    newer.write_bytes(orjson.dumps({"lakestack_capture": 9, "table": TABLE}) + b"\n{}\n")

    assert recover_spools(catalog, spool) == 0
    assert CaptureWriter(catalog, spool).write_once()

    assert newer.exists() and not catalog.table_exists(TABLE)
    assert (
        "it has format 9, which this version of lakestack does not read (it reads 1, 2, 3, 4)"
        in (caplog.text)
    )


def test_the_writer_compacts_every_n_commits_and_at_a_graceful_stop(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    writer = CaptureWriter(catalog, spool, compact_every=3)
    for i in range(7):  # seven passes, a commit each
        spooler.record([row(i)])
        assert writer.write_once()
        writer.compact()
    table = catalog.table(TABLE)
    operations = [entry["operation"] for entry in reversed(table.history())]
    assert operations.count("OPTIMIZE") == 2  # after the 3rd and the 6th commit
    assert table.info.num_files == 2  # the 6 first rows in one file, the 7th in its own

    spooler.record([row(7)])
    spooler.close()
    stopping = threading.Event()
    stopping.set()
    assert writer.run(stopping)  # a graceful stop: write the rest, compact

    assert table.info.num_files == 1
    assert sorted(request_ids(catalog)) == sorted(f"req-{i}" for i in range(8))
    assert table.history(1)[0]["operation"] == "OPTIMIZE"
    assert list(spool.glob("*.spool")) == []


def serving_state(spooler: Spooler) -> ServingState:
    """An endpoint ``iris`` capturing into ``spooler``, its model given directly (no registry):
    the prediction is ten times the first input."""
    spec = ModelServingEndpointSpec.model_validate(
        {"name": "iris", "config": {"served_entities": [
            {"name": "v3", "entity_name": "m.s.iris", "entity_version": "3"}
        ]}}
    )  # fmt: skip
    settings = ServingSpec()
    endpoint = build_endpoints({"iris": spec}, settings)[0]
    schema = InputSchema.of([ColumnSpec("a", "double"), ColumnSpec("b", "double")])

    def predict(rows: Any, params: Any = None, columns: Any = None) -> Any:
        return (rows[:, 0] * 10).astype("int64")

    endpoint.entities["v3"].model = ServedModel("m.s.iris", 3, schema, predict, True, "sklearn")
    switcher = ModelSwitcher(None, [endpoint], 60.0)  # type: ignore[arg-type]  # never polled
    return ServingState({"iris": endpoint}, switcher, settings, captures={"iris": spooler})


async def post_all(app: Any, bodies: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    """POST the bodies as concurrent ASGI calls: the status, request id and JSON of each."""
    answers: list[tuple[int, str, Any]] = [(0, "", None)] * len(bodies)

    async def post(index: int, body: bytes) -> None:
        start: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                request_id = dict(start["headers"]).get(REQUEST_ID_HEADER.encode(), b"")
                answers[index] = (
                    start["status"],
                    request_id.decode(),
                    orjson.loads(message["body"]),
                )

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/invocations",
            "headers": [(b"content-type", b"application/json")],
        }
        await app(scope, receive, send)

    await asyncio.gather(*(post(i, orjson.dumps(b)) for i, b in enumerate(bodies)))
    return answers


async def post_together(app: Any, bodies: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """POST the bodies as concurrent ASGI calls, all answered: the request id and predictions."""
    answers = await post_all(app, bodies)
    assert [status for status, _, _ in answers] == [200] * len(bodies), answers
    return [(request_id, answer["predictions"]) for _, request_id, answer in answers]


def test_the_table_keeps_thirty_minutes_of_log_and_delta_deletes_older_log_files(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    spooler.record([row(0)])
    assert CaptureWriter(catalog, spool).write_once()
    table = catalog.table(TABLE)
    configuration = table.delta().metadata().configuration
    assert configuration["delta.checkpointInterval"] == "10"
    assert configuration["delta.logRetentionDuration"] == "interval 30 minutes"

    table.set_properties({"delta.logRetentionDuration": "interval 1 second"})  # the owner's
    writer = CaptureWriter(catalog, spool, compact_every=0)  # a new writer keeps it
    for i in range(1, 25):  # a commit each
        spooler.record([row(i)])
        assert writer.write_once()
        if i == 12:
            time.sleep(1.5)  # the first 13 commits' log files expire
    spooler.close()

    assert table.delta().metadata().configuration["delta.logRetentionDuration"] == (
        "interval 1 second"
    )
    kept = sorted(int(p.stem) for p in Path(table.uri, "_delta_log").glob("*.json"))
    # the commits expired before the sleep are gone up to a checkpoint; all since are there
    assert 0 < kept[0] < 15
    assert kept == list(range(kept[0], catalog.table(TABLE).version + 1))
    assert sorted(request_ids(catalog)) == sorted(f"req-{i}" for i in range(25))


def test_concurrent_requests_are_one_spool_line_and_a_row_per_record(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    app = create_app(serving_state(spooler))
    bodies: list[dict[str, Any]] = [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[i + j / 10, 0.0] for j in range(i)]}}
        | ({"client_request_id": f"order-{i}"} if i % 2 else {})
        for i in range(1, 6)
    ]  # request i has i records; odd ones a client_request_id

    answers = asyncio.run(post_together(app, bodies))

    header, alone, batch = spooled_lines(spooler.spool_path)
    assert orjson.loads(header)["lakestack_capture"] == 4
    assert orjson.loads(alone)["ids"] == [answers[0][0]]  # the first is predicted inline
    assert orjson.loads(batch)["ids"] == [request_id for request_id, _ in answers[1:]]
    spooler.close()
    assert CaptureWriter(catalog, spool).write_once()

    rows = catalog.table(TABLE).read().to_pylist()
    expected = [
        (request_id, f"order-{i}" if i % 2 else None, i + j / 10, predictions[j])
        for i, (request_id, predictions) in enumerate(answers, start=1)
        for j in range(i)
    ]
    assert [
        (r["request_id"], r["client_request_id"], r["a"], r["prediction"]) for r in rows
    ] == expected
    assert {(r["model_id"], r["served_entity"], r["status_code"]) for r in rows} == {
        ("m.s.iris/3", "v3", 200)
    }
    assert all(r["execution_time_ms"] >= 0 for r in rows)
    assert all(r["execution_time_ms"] == round(r["execution_time_ms"], 3) for r in rows)


# the memory-mapped spool ------------------------------------------------------------------


def ab_line(request_id: str, a: float) -> bytes:
    """The spool line of a one-record request to the ``iris`` endpoint of ``serving_state``."""
    context = Contexts(TABLE).get("iris", "v3", "m.s.iris/3", ["a", "b"])
    return batch_line(
        TABLE, context, ["a", "b"], [request_id], [None], [1], [0.5], [200],
        np.array([[a, 0.0]]), np.array([int(a * 10)]), timestamp_ms=1_700_000_000_000,
    )  # fmt: skip


def test_a_closed_spool_is_cut_to_its_data(spool: Path) -> None:
    spooler = Spooler.open(TABLE, spool)
    spooler.record_request("r-1", None, "iris", "v3", "m.s.iris/3", ["a", "b"],
                           np.array([[1.0, 0.0]]), np.array([10]), execution_time_ms=0.5)  # fmt: skip
    path = spooler.spool_path
    assert path.stat().st_size >= 2**20  # room allocated ahead of the data, read as zeros

    spooler.close()

    data = path.read_bytes()
    assert b"\0" not in data
    assert [orjson.loads(line).get("ids") for line in data.splitlines()] == [None, ["r-1"]]


def test_a_line_longer_than_the_mapped_stretch_is_spooled_and_written_whole(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    rows = np.column_stack([np.arange(300_000) / 7, np.zeros(300_000)])  # a line over 4 MiB
    spooler.record_request("big", None, "iris", "v3", "m.s.iris/3", ["a", "b"], rows,
                           np.arange(300_000), execution_time_ms=12.5)  # fmt: skip
    spooler.record_request("small", None, "iris", "v3", "m.s.iris/3", ["a", "b"],
                           np.array([[1.0, 0.0]]), np.array([10]), execution_time_ms=0.5)  # fmt: skip
    assert len(spooled_lines(spooler.spool_path)[1]) > 4 * 2**20
    spooler.close()

    assert CaptureWriter(catalog, spool).write_once()

    table = catalog.table(TABLE).read(["request_id", "a", "prediction"])
    assert table.num_rows == 300_001
    assert table.column("prediction").to_pylist()[-2:] == [299_999, 10]
    assert table.column("a").to_pylist()[123_456] == 123_456 / 7
    assert list(spool.glob("*.spool")) == []


def test_a_reader_never_takes_a_line_still_being_copied_into_a_live_spool(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)  # alive: the writer follows it, never claims it
    spooler.record_request("r-1", None, "iris", "v3", "m.s.iris/3", ["a", "b"],
                           np.array([[1.0, 0.0]]), np.array([10]), execution_time_ms=0.5)  # fmt: skip
    end = len(spooler.spool_path.read_bytes().split(b"\0", 1)[0])
    line = ab_line("r-2", 2.0)
    fd = os.open(spooler.spool_path, os.O_WRONLY)
    writer = CaptureWriter(catalog, spool)
    try:
        # a copy caught halfway, its last bytes (the newline) already there: a hole before them
        os.pwrite(fd, line[:20], end)
        os.pwrite(fd, line[40:], end + 40)
        assert writer.write_once()
        assert request_ids(catalog) == ["r-1"]

        os.pwrite(fd, line[20:40], end + 20)  # the copy completes
        assert writer.write_once()
        assert sorted(request_ids(catalog)) == ["r-1", "r-2"]
    finally:
        os.close(fd)
        writer.close()
        spooler.close()


def test_a_line_torn_by_a_killed_owner_is_dropped_and_its_spool_finished(
    catalog: Catalog, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool.mkdir()
    header = orjson.dumps({"lakestack_capture": 4, "table": TABLE, "pid": 1}) + b"\n"
    torn = ab_line("r-2", 2.0)
    torn = torn[:20] + b"\0" * 20 + torn[40:]  # the owner was killed in the middle of the copy
    dead = spool / "capture-1-0123456789ab.spool"
    dead.write_bytes(header + ab_line("r-1", 1.0) + torn + b"\0" * 4096)

    assert recover_spools(catalog, spool) == 1

    assert request_ids(catalog) == ["r-1"]
    assert not dead.exists()
    assert "bytes of a line torn when its process died are dropped" in caplog.text


def test_a_full_disk_fails_the_request_and_spools_nothing(
    catalog: Catalog, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    spooler = Spooler.open(TABLE, spool)
    app = create_app(serving_state(spooler))
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 0.0]]}}
    with monkeypatch.context() as patched:
        patched.setattr(os, "posix_fallocate", no_room)
        [(status, _, error)] = asyncio.run(post_all(app, [body]))
    assert status == 500
    assert "cannot spool to" in error["message"]
    assert (
        "(No space left on device); free space on its disk or give another spool_dir"
        in (error["message"])
    )
    assert len(spooled_lines(spooler.spool_path)) == 1  # the header only

    [(request_id, _)] = asyncio.run(post_together(app, [body]))  # room again
    spooler.close()
    assert CaptureWriter(catalog, spool).write_once()
    assert request_ids(catalog) == [request_id]
