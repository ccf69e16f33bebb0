"""The same payloads to ``mlflow models serve`` and to lakestack: the same predictions.

A real MLflow scoring server (MLflow 3: FastAPI on uvicorn) serves version 1 of the model from
the registry, beside a lakestack server whose ``champion`` alias points at version 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.serving.conftest import (
    FEATURES,
    MODEL,
    Project,
    ThreadServer,
    flowers,
    free_port,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-serve") / "stderr.log"
    stderr = log.open("wb")
    bin_dir = Path(sys.executable).parent  # mlflow execs uvicorn from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": project.tracking.tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    mlflow = bin_dir / "mlflow"
    process = subprocess.Popen(
        [
            str(mlflow),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL}/1",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/ping").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            stderr.close()
            raise RuntimeError(f"mlflow models serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(30)
    stderr.close()


@pytest.fixture(scope="module")
def lakestack_server(project: Project) -> Iterator[ThreadServer]:
    from lakestack.serving.app import create_app
    from lakestack.serving.server import build_state

    bundle = project.bundle()
    server = ThreadServer(create_app(build_state(bundle, endpoint="iris"))).start()
    server.wait_healthy()
    yield server
    server.stop()


def payloads() -> list[tuple[str, Any, str]]:
    rows = flowers(7, seed=5)[FEATURES]
    records = rows.to_dict(orient="records")
    return [
        ("dataframe_split", {"dataframe_split": rows.to_dict(orient="split")}, "json"),
        (
            "dataframe_split no index",
            {"dataframe_split": {"columns": FEATURES, "data": rows.to_numpy().tolist()}},
            "json",
        ),
        ("dataframe_records", {"dataframe_records": records}, "json"),
        ("instances records", {"instances": records}, "json"),
        ("inputs columns", {"inputs": rows.to_dict(orient="list")}, "json"),
        ("integers", {"dataframe_records": [{f: i + 1 for i, f in enumerate(FEATURES)}]}, "json"),
        (
            "reordered columns",
            {
                "dataframe_split": {
                    "columns": FEATURES[::-1],
                    "data": rows[FEATURES[::-1]].to_numpy().tolist(),
                }
            },
            "json",
        ),
        ("extra column", {"dataframe_records": [{**r, "note": "x"} for r in records]}, "json"),
        ("client_request_id", {"dataframe_records": records, "client_request_id": "abc"}, "json"),
        ("csv", rows.to_csv(index=False), "csv"),
    ]


@pytest.mark.parametrize("name,payload,kind", payloads(), ids=[p[0] for p in payloads()])
def test_same_predictions_as_mlflow(
    mlflow_server: str, lakestack_server: ThreadServer, name: str, payload: Any, kind: str
) -> None:
    def post(url: str) -> httpx.Response:
        if kind == "csv":
            return httpx.post(url, content=payload, headers={"Content-Type": "text/csv"})
        return httpx.post(url, json=payload)

    theirs = post(f"{mlflow_server}/invocations")
    ours = post(
        f"{lakestack_server.url}/serving-endpoints/iris/served-entities/champion/invocations"
    )
    assert theirs.status_code == 200, theirs.text
    assert ours.status_code == 200, ours.text
    assert ours.json() == theirs.json()
    assert ours.headers["x-lakestack-model-version"] == f"{MODEL}/1"


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_records": [{"sepal_length": 1.0}]},
        {"nothing": []},
        {"dataframe_split": {"columns": FEATURES}, "inputs": {}},
    ],
    ids=["missing column", "no input field", "two input fields"],
)
def test_both_reject_bad_input_with_400(
    mlflow_server: str, lakestack_server: ThreadServer, payload: Any
) -> None:
    theirs = httpx.post(f"{mlflow_server}/invocations", json=payload)
    ours = httpx.post(f"{lakestack_server.url}/invocations", json=payload)
    assert theirs.status_code == ours.status_code == 400
    assert ours.json()["error_code"] == theirs.json()["error_code"]


def test_both_reject_other_content_types_with_415(
    mlflow_server: str, lakestack_server: ThreadServer
) -> None:
    theirs = httpx.post(
        f"{mlflow_server}/invocations", content=b"x", headers={"Content-Type": "text/plain"}
    )
    ours = httpx.post(
        f"{lakestack_server.url}/invocations", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert theirs.status_code == ours.status_code == 415
