"""The server on loopback: alias swaps under load, traffic split, auth, every error status,
health, reload from the deploy side, graceful stop, and schemathesis over the OpenAPI document."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import mlflow.pyfunc
import pytest

from lakestack.registry import log_model
from tests.integration.serving.conftest import BUNDLE, FEATURES, MODEL, Project, free_port

pytestmark = pytest.mark.integration

ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.5, -1.0, 0.7, 0.1]]}}
CHAMPION = "/serving-endpoints/iris/served-entities/champion/invocations"


with warnings.catch_warnings():  # MLflow warns about predict with and without type hints
    warnings.simplefilter("ignore", UserWarning)

    class Sleeper(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """Answers each row with its ``seconds`` after sleeping that long."""

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints: MLflow warns about them
            time.sleep(float(model_input["seconds"].max()))
            return model_input["seconds"].tolist()


@pytest.fixture(scope="module")
def slow_model(project: Project) -> str:
    project.tracking.activate()
    name = "main.ml.slow"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        log_model(
            Sleeper(),
            flavor=mlflow.pyfunc,
            name="model",
            registered_model_name=name,
            pip_requirements=[],
        )
    return name


SLOW_BUNDLE = """
bundle: {name: serve}
targets:
  dev: {default: true}
lakestack:
  serving: {request_timeout_seconds: 0.5, max_body_bytes: 2000, tokens_env: SERVE_TEST_TOKENS}
resources:
  model_serving_endpoints:
    slow:
      name: slow
      config:
        served_entities: [{name: v1, entity_name: main.ml.slow, entity_version: "1"}]
"""


def test_alias_moved_twice_under_load_fails_no_request(project: Project, serve_bundle: Any) -> None:
    registry = project.registry
    registry.set_alias(MODEL, "champion", 1)
    server = serve_bundle(project.bundle())
    seen: collections.Counter[str] = collections.Counter()
    failures: list[str] = []

    async def load() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            stop = asyncio.Event()

            async def user() -> None:
                while not stop.is_set():
                    response = await client.post(CHAMPION, json=ROW)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                    seen[response.headers.get("x-lakestack-model-version", "none")] += 1

            async def mover() -> None:
                for version in (2, 3):
                    await asyncio.sleep(1.0)
                    await asyncio.to_thread(registry.set_alias, MODEL, "champion", version)
                deadline = time.monotonic() + 20
                while seen[f"{MODEL}/3"] < 50 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                while sum(seen.values()) < 2000 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                stop.set()

            await asyncio.gather(mover(), *(user() for _ in range(16)))

    try:
        asyncio.run(load())
    finally:
        registry.set_alias(MODEL, "champion", 1)
    assert failures == []
    assert sum(seen.values()) >= 2000
    assert set(seen) <= {f"{MODEL}/1", f"{MODEL}/2", f"{MODEL}/3"}
    assert seen[f"{MODEL}/1"] > 0 and seen[f"{MODEL}/3"] >= 50


def test_traffic_split_follows_the_percentages(project: Project, serve_bundle: Any) -> None:
    server = serve_bundle(project.bundle())

    async def count() -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(25):
                responses = await asyncio.gather(
                    *(
                        client.post("/serving-endpoints/iris/invocations", json=ROW)
                        for _ in range(40)
                    )
                )
                counts.update(r.headers["x-lakestack-served-entity"] for r in responses)
        return counts

    counts = count_ = asyncio.run(count())
    assert sum(count_.values()) == 1000
    assert 0.74 <= counts["champion"] / 1000 <= 0.86
    single = httpx.post(
        f"{server.url}/serving-endpoints/iris/served-entities/v2/invocations", json=ROW
    )
    assert single.headers["x-lakestack-model-version"] == f"{MODEL}/2"


def test_error_statuses_auth_and_timeout(
    project: Project, slow_model: str, serve_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVE_TEST_TOKENS", "secret-1, secret-2")
    server = serve_bundle(project.bundle(SLOW_BUNDLE))
    url = f"{server.url}/serving-endpoints/slow/invocations"
    good = {"Authorization": "Bearer secret-2"}
    fast = {"dataframe_records": [{"seconds": 0.0}]}

    def post(path: str = url, **kwargs: Any) -> httpx.Response:
        return httpx.post(path, timeout=10, **kwargs)

    unauthorized = post(json=fast)
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "a valid bearer token is required: send Authorization: Bearer <token>",
    }
    assert post(json=fast, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert post(f"{server.url}/-/reload").status_code == 401
    ok = post(json=fast, headers=good)
    assert ok.status_code == 200 and ok.json() == {"predictions": [0.0]}
    assert ok.headers["x-lakestack-model-version"] == "main.ml.slow/1"

    timeout = post(json={"dataframe_records": [{"seconds": 1.5}]}, headers=good)
    assert timeout.status_code == 504
    assert timeout.json()["message"] == (
        "the request was not answered within 0.5 s (serving.request_timeout_seconds)"
    )
    too_big = post(
        content=b"{" + b" " * 3000 + b"}", headers={**good, "Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    assert "more than serving.max_body_bytes (2000)" in too_big.json()["message"]
    assert post(content=b"x", headers={**good, "Content-Type": "text/plain"}).status_code == 415
    bad = post(json={"inputs": {"other": [1]}}, headers=good)
    assert bad.status_code == 400 and "'seconds'" in bad.json()["message"]
    empty = post(json={"dataframe_split": {"columns": ["seconds"], "data": []}}, headers=good)
    assert empty.status_code == 400
    assert empty.json()["message"] == "the request has no records; send at least one row"
    missing = post(f"{server.url}/serving-endpoints/nope/invocations", json=fast, headers=good)
    assert missing.status_code == 404
    assert missing.json()["message"] == "no endpoint 'nope' here (endpoints: slow)"
    entity = post(
        f"{server.url}/serving-endpoints/slow/served-entities/v9/invocations",
        json=fast,
        headers=good,
    )
    assert entity.json()["message"] == "endpoint 'slow' has no served entity 'v9' (served: v1)"
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'served_entity="v1",pid="' in metrics and 'status="504"} 1' in metrics


def test_health_waits_for_the_models_and_reload_reads_aliases_now(
    project: Project, serve_bundle: Any
) -> None:
    from lakestack.serving.discovery import ServerInfo, reload_servers

    registry = project.registry
    registry.delete_alias(MODEL, "staging")
    text = BUNDLE.replace(
        "entity_version_alias: champion", "entity_version_alias: staging"
    ).replace("alias_poll_seconds: 0.2", "alias_poll_seconds: 600")
    server = serve_bundle(project.bundle(text), wait=False)
    deadline = time.monotonic() + 30
    while "not set" not in httpx.get(f"{server.url}/health").text and time.monotonic() < deadline:
        time.sleep(0.05)
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 503
    assert "alias 'staging' of model main.ml.iris is not set" in health.text
    assert httpx.post(f"{server.url}{CHAMPION}", json=ROW).status_code == 503

    registry.set_alias(MODEL, "staging", 2)
    root = project.root / ".lakestack"
    (root / "serving").mkdir(parents=True, exist_ok=True)
    info = ServerInfo("iris", "127.0.0.1", server.port, os.getpid(), [MODEL], None)
    (root / "serving" / "iris.json").write_text(json.dumps(info.__dict__))
    try:
        assert reload_servers(root, "other.model") == []
        assert reload_servers(root, MODEL) == ["iris"]
    finally:
        (root / "serving" / "iris.json").unlink()
    assert httpx.get(f"{server.url}/health").status_code == 200
    answer = httpx.post(f"{server.url}{CHAMPION}", json=ROW)
    assert answer.headers["x-lakestack-model-version"] == f"{MODEL}/2"


def test_cli_serves_and_stops_gracefully(project: Project, slow_model: str) -> None:
    project.bundle(
        SLOW_BUNDLE.replace("request_timeout_seconds: 0.5", "request_timeout_seconds: 30").replace(
            ", tokens_env: SERVE_TEST_TOKENS", ""
        )
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    env.pop("MLFLOW_TRACKING_URI", None)
    lakestack = Path(sys.executable).parent / "lakestack"
    process = subprocess.Popen(
        [str(lakestack), "serve", "--port", str(port)],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    server_file = project.root / ".lakestack" / "serving" / "slow.json"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                "the server did not start"
            )
            time.sleep(0.1)
        assert json.loads(server_file.read_text())["port"] == port
        answers: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{url}/invocations", json={"dataframe_records": [{"seconds": 1.0}]}, timeout=30
                )
            )
        )
        slow.start()
        time.sleep(0.4)  # the request is in flight
        process.send_signal(signal.SIGTERM)
        slow.join(30)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)
    assert answers[0].status_code == 200 and answers[0].json() == {"predictions": [1.0]}
    assert process.returncode == 0, err
    assert "Server stopped" in out
    assert not server_file.exists()


def test_schemathesis_finds_no_server_error(project: Project, serve_bundle: Any) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    server = serve_bundle(project.bundle())
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")

    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=op.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=server.url)
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label}: {response.status_code} {response.text[:200]}"
                )

        check()
    assert failures == []
