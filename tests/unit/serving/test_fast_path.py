"""The scoring fast path: raw ASGI invocation routes beside FastAPI's, and inline prediction of a
lone request (no model registry: entities get their model directly)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from lakestack.bundle.specs.serving import ModelServingEndpointSpec
from lakestack.bundle.specs.settings import ServingSpec
from lakestack.serving.app import ServingState, create_app
from lakestack.serving.batching import Batcher
from lakestack.serving.endpoints import ModelSwitcher, build_endpoints
from lakestack.serving.models import ServedModel
from lakestack.serving.protocol import ColumnSpec, InputSchema, Scoring

SCHEMA = InputSchema.of([ColumnSpec("a", "double"), ColumnSpec("b", "double")])


def _model(calls: list[int]) -> ServedModel:
    def predict(rows: Any, params: Any = None, columns: Any = None) -> Any:
        calls.append(len(rows))
        return np.asarray(rows)[:, 0] * 10

    return ServedModel("m.s.iris", 3, SCHEMA, predict, True, "sklearn")


def _row(value: float) -> Scoring:
    return Scoring(["a", "b"], np.array([[value, 0.0]]))


def test_a_lone_request_is_predicted_inline_and_a_burst_queues() -> None:
    calls: list[int] = []
    model = _model(calls)
    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=10.0)

    async def run() -> None:
        answer = batcher.now(_row(1.0))
        assert answer is not None and answer[0].tolist() == [10.0] and answer[1] is model
        assert batcher.now(_row(2.0)) is None  # a second request in the same loop turn queues
        burst = [batcher.submit(_row(float(i))) for i in range(3)]
        assert [(await f)[0].tolist() for f in burst] == [[0.0], [10.0], [20.0]]
        assert batcher.now(_row(1.0)) is None  # the last batch had company: keep batching
        await batcher.submit(_row(1.0))  # a lone batch ...
        await asyncio.sleep(0)
        assert batcher.now(_row(1.0)) is not None  # ... and lone requests go inline again
        await asyncio.sleep(0)
        batcher.arriving = 1  # another request's body is still arriving: wait for it
        assert batcher.now(_row(1.0)) is None

    asyncio.run(run())
    assert calls == [1, 3, 1, 1]


def test_a_failing_inline_prediction_raises_to_the_caller() -> None:
    def broken(rows: Any, params: Any = None, columns: Any = None) -> Any:
        raise ValueError("bad row")

    model = ServedModel("m", 1, SCHEMA, broken, True, "sklearn")
    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=0)

    async def run() -> None:
        batcher.now(_row(1.0))

    with pytest.raises(ValueError, match="bad row"):
        asyncio.run(run())


def test_a_lone_request_is_a_batch_of_one_for_the_hook_before_it_is_answered() -> None:
    model = _model([])
    seen: list[tuple[list[str], list[float], Any]] = []

    def hook(batch: Any, rows: Any, predictions: Any, used: Any) -> None:
        seen.append(([q.request_id for q in batch], rows.tolist(), predictions.tolist()))

    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=0, on_batch=hook)

    async def run() -> None:
        answer = batcher.now(_row(2.0), "r-1", 0.0)
        assert answer is not None and answer[0].tolist() == [20.0]
        assert seen == [(["r-1"], [[2.0, 0.0]], [20.0])]  # spooled before now() returned
        await asyncio.sleep(0)
        batcher.on_batch = lambda *args: (_ for _ in ()).throw(OSError("disk full"))
        with pytest.raises(OSError, match="disk full"):  # not spooled: not answered
            batcher.now(_row(3.0), "r-2", 0.0)

    asyncio.run(run())


def _state(tokens: tuple[bytes, ...] = (), **settings: Any) -> ServingState:
    spec = ModelServingEndpointSpec.model_validate(
        {
            "name": "iris",
            "config": {
                "served_entities": [
                    {"name": "v3", "entity_name": "m.s.iris", "entity_version": "3"}
                ]
            },
        }
    )
    serving = ServingSpec(**settings)
    endpoints = build_endpoints({"iris": spec}, serving)
    for entity in endpoints[0].entities.values():
        entity.model = _model([])
    switcher = ModelSwitcher(None, endpoints, 60.0)  # type: ignore[arg-type]  # never polled here
    return ServingState({"iris": endpoints[0]}, switcher, serving, tokens=tokens)


def _post(state: ServingState, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            if body is None and "content" not in kwargs:
                return await client.get(path)
            return await client.post(path, json=body, **kwargs)

    return asyncio.run(run())


ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 0.0]]}}


@pytest.mark.parametrize(
    "path",
    [
        "/invocations",
        "/serving-endpoints/iris/invocations",
        "/serving-endpoints/iris/served-entities/v3/invocations",
        "/serving-endpoints/iris/served-models/v3/invocations",
    ],
)
def test_invocation_routes_answer_with_headers(path: str) -> None:
    state = _state()
    first, second = _post(state, path, ROW), _post(state, path, ROW)
    assert first.status_code == 200, first.text
    assert first.json() == {"predictions": [15.0]}
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-lakestack-served-entity"] == "v3"
    assert first.headers["x-lakestack-model-version"] == "m.s.iris/3"
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_what_the_fast_path_does_not_know_goes_to_fastapi() -> None:
    state = _state()
    missing = _post(state, "/serving-endpoints/nope/invocations", ROW)
    assert missing.status_code == 404
    assert missing.json()["message"] == "no endpoint 'nope' here (endpoints: iris)"
    entity = _post(state, "/serving-endpoints/iris/served-entities/v9/invocations", ROW)
    assert entity.status_code == 404
    assert entity.json()["message"] == ("endpoint 'iris' has no served entity 'v9' (served: v3)")
    assert _post(state, "/serving-endpoints/iris/invocations").status_code == 405  # a GET
    paths = _post(state, "/openapi.json").json()["paths"]
    assert "/serving-endpoints/{name}/invocations" in paths
    assert "/invocations" in paths


def test_fast_path_errors_auth_size_and_content_type() -> None:
    state = _state(tokens=(b"s3cret",), max_body_bytes=200)
    path = "/serving-endpoints/iris/invocations"
    denied = _post(state, path, ROW)
    assert denied.status_code == 401
    assert denied.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "a valid bearer token is required: send Authorization: Bearer <token>",
    }
    assert denied.headers["x-lakestack-served-entity"] == "v3"
    auth = {"Authorization": "Bearer s3cret"}
    assert _post(state, path, ROW, headers=auth).json() == {"predictions": [15.0]}
    big = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]] * 40}}
    too_large = _post(state, path, big, headers=auth)
    assert too_large.status_code == 413
    assert too_large.json()["message"].startswith("the body has ")
    text = _post(state, path, None, content=b"a", headers={**auth, "content-type": "text/plain"})
    assert text.status_code == 415


def test_a_body_in_chunks_is_read_whole() -> None:
    state = _state()
    body = b'{"inputs": [[2.0, 0.0], [3.0, 1.0]]}'

    async def chunks() -> Any:
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                "/invocations", content=chunks(), headers={"content-type": "application/json"}
            )

    answer = asyncio.run(run())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [20.0, 30.0]}


def test_array_predictions_equal_sklearn_for_linear_and_other_models() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from lakestack.serving.models import _linear_parts, _on_array

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    labels = {
        "binary": (x[:, 0] + x[:, 1] > 0).astype(int),
        "multiclass": np.digitize(x[:, 0], [-0.5, 0.5]),
        "strings": np.array(["no", "yes"])[(x[:, 2] > 0).astype(int)],
    }
    models = [
        LogisticRegression(max_iter=500),
        RidgeClassifier(),
        SGDClassifier(random_state=0),
        LinearSVC(),
        RandomForestClassifier(n_estimators=5, random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression()),
    ]
    probe = rng.normal(scale=3, size=(200, 5))
    for model in models:
        for y in labels.values():
            model.fit(x, y)
            direct = _on_array(model)
            for rows in (probe, probe[:1]):
                assert np.array_equal(direct(rows), model.predict(rows)), (model, y[:3])
    assert _linear_parts(LogisticRegression().fit(x, labels["binary"])) is not None
    assert _linear_parts(RandomForestClassifier(n_estimators=2).fit(x, labels["binary"])) is None
    with pytest.raises(ValueError, match="NaN"):  # sklearn's own check still runs
        _on_array(LogisticRegression().fit(x, labels["binary"]))(np.array([[np.nan] * 5]))


def test_fastapi_routes_score_as_the_fast_path_does() -> None:
    state = _state()
    app = create_app(state)
    app._fast = {}  # type: ignore[attr-defined]  # every request goes through FastAPI's routing

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.post(path, json=ROW)
                for path in (
                    "/invocations",
                    "/serving-endpoints/iris/invocations",
                    "/serving-endpoints/iris/served-models/v3/invocations",
                )
            ]

    for answer in asyncio.run(run()):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [15.0]}
        assert answer.headers["x-lakestack-model-version"] == "m.s.iris/3"
