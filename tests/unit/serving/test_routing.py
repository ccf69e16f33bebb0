"""Endpoints from specs, weighted routes, the metrics text, and micro-batching."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from lakestack.bundle.specs.serving import ModelServingEndpointSpec
from lakestack.bundle.specs.settings import ServingSpec
from lakestack.errors import UsageError
from lakestack.serving.batching import Batcher
from lakestack.serving.endpoints import build_endpoints
from lakestack.serving.metrics import Metrics
from lakestack.serving.models import ServedModel
from lakestack.serving.protocol import InputSchema, Scoring


def spec(name: str, **config: Any) -> ModelServingEndpointSpec:
    return ModelServingEndpointSpec.model_validate({"name": name, "config": config})


SPLIT = spec(
    "iris",
    served_entities=[
        {"name": "champion", "entity_name": "m.s.iris", "entity_version_alias": "champion"},
        {"entity_name": "m.s.iris", "entity_version": "2"},
    ],
    traffic_config={
        "routes": [
            {"served_entity_name": "champion", "traffic_percentage": 75},
            {"served_entity_name": "iris-2", "traffic_percentage": 25},
        ]
    },
    auto_capture_config={"catalog_name": "m", "schema_name": "s", "table_name_prefix": "iris"},
)


def test_endpoints_entities_and_capture_table() -> None:
    (endpoint,) = build_endpoints({"iris_endpoint": SPLIT}, ServingSpec())
    assert list(endpoint.entities) == ["champion", "iris-2"]
    assert endpoint.entities["champion"].alias == "champion"
    assert endpoint.entities["iris-2"].version == 2
    assert endpoint.capture_table == "m.s.iris_payload"


def test_routes_are_weighted() -> None:
    (endpoint,) = build_endpoints({"iris_endpoint": SPLIT}, ServingSpec())
    assert endpoint.choose(0.0).name == "champion"
    assert endpoint.choose(0.749).name == "champion"
    assert endpoint.choose(0.75).name == "iris-2"
    assert endpoint.choose(0.9999).name == "iris-2"


def test_endpoint_by_key_or_name_and_unknown_one() -> None:
    specs = {"iris_endpoint": SPLIT}
    assert build_endpoints(specs, ServingSpec(), only="iris_endpoint")[0].name == "iris"
    assert build_endpoints(specs, ServingSpec(), only="iris")[0].name == "iris"
    with pytest.raises(UsageError) as caught:
        build_endpoints(specs, ServingSpec(), only="wine")
    assert str(caught.value) == (
        "endpoint 'wine' is not in the target's model_serving_endpoints (endpoints: iris; keys: "
        "iris_endpoint)"
    )
    with pytest.raises(UsageError, match="the target has no model_serving_endpoints"):
        build_endpoints({}, ServingSpec())


def test_metrics_text() -> None:
    metrics = Metrics()
    metrics.observe("iris", "champion", 200, 0.0007, 3)
    metrics.observe("iris", "champion", 400, 0.2, 0)
    text = metrics.render()
    assert 'endpoint="iris",served_entity="champion"' in text
    assert 'status="400"} 1' in text
    assert "lakestack_serving_errors_total{" in text and text.count("} 1\n") >= 2
    assert 'le="0.001"} 1' in text and 'le="+Inf"} 2' in text
    assert "lakestack_serving_rows_total" in text


def _model(calls: list[int]) -> ServedModel:
    def predict(rows: Any, params: Any = None, columns: Any = None) -> Any:
        calls.append(len(rows))
        return np.asarray(rows)[:, 0] * 10

    return ServedModel("m", 1, InputSchema.of(None), predict, True, "sklearn")


def test_concurrent_requests_share_one_predict_and_a_lone_one_does_not_wait() -> None:
    calls: list[int] = []
    model = _model(calls)
    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=10.0)

    async def burst() -> list[Any]:
        futures = [
            batcher.submit(Scoring(["a"], np.array([[float(i)], [float(i)]]))) for i in range(5)
        ]
        return [(await f)[0].tolist() for f in futures]

    assert asyncio.run(burst()) == [[i * 10.0, i * 10.0] for i in range(5)]
    assert calls == [10]

    async def alone() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.submit(Scoring(["a"], np.array([[1.0]])))
        return loop.time() - started

    assert asyncio.run(alone()) < 1.0  # not the 10 s window
    assert calls == [10, 1]


def test_a_full_batch_flushes_and_a_failing_batch_is_retried_per_request() -> None:
    calls: list[int] = []
    model = _model(calls)
    batcher = Batcher(lambda: model, max_rows=4, wait_seconds=0)

    async def run() -> None:
        futures = [batcher.submit(Scoring(["a"], np.array([[1.0], [2.0]]))) for _ in range(3)]
        await asyncio.gather(*futures)

    asyncio.run(run())
    assert calls == [4, 2]

    def picky(rows: Any, params: Any = None, columns: Any = None) -> Any:
        if len(rows) > 1:
            raise ValueError("bad row")
        return np.asarray(rows)[:, 0]

    bad = ServedModel("m", 1, InputSchema.of(None), picky, True, "sklearn")
    batcher = Batcher(lambda: bad, max_rows=100, wait_seconds=0)

    async def mixed() -> list[Any]:
        ok = batcher.submit(Scoring(["a"], np.array([[1.0]])))
        fail = batcher.submit(Scoring(["a"], np.array([[1.0], [2.0]])))
        return list(await asyncio.gather(ok, fail, return_exceptions=True))

    ok, fail = asyncio.run(mixed())
    assert ok[0].tolist() == [1.0]
    assert isinstance(fail, ValueError)


def test_on_batch_sees_each_batch_before_its_requests_are_answered() -> None:
    calls: list[int] = []
    model = _model(calls)
    seen: list[tuple[list[str], list[float], list[float]]] = []

    def on_batch(batch: list[Any], rows: Any, predictions: Any, used: ServedModel) -> None:
        assert used is model and not any(q.future.done() for q in batch)
        seen.append(([q.request_id for q in batch], rows[:, 0].tolist(), predictions.tolist()))

    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=0, on_batch=on_batch)

    async def run() -> list[Any]:
        futures = [
            batcher.submit(Scoring(["a"], np.array([[float(i)]] * (i + 1))), f"r-{i}", 0.0)
            for i in range(3)
        ]
        answers = [(await f)[0].tolist() for f in futures]
        assert batcher.now(Scoring(["a"], np.array([[9.0]]))) is None  # the batch had company
        await batcher.submit(Scoring(["a"], np.array([[7.0]])), "r-alone", 0.0)
        return answers

    assert asyncio.run(run()) == [[0.0], [10.0, 10.0], [20.0, 20.0, 20.0]]
    assert seen == [
        (["r-0", "r-1", "r-2"], [0.0, 1.0, 1.0, 2.0, 2.0, 2.0], [0, 10, 10, 20, 20, 20]),
        (["r-alone"], [7.0], [70.0]),
    ]


def test_a_failing_on_batch_fails_every_request_of_the_batch() -> None:
    model = _model([])

    def on_batch(batch: list[Any], rows: Any, predictions: Any, used: ServedModel) -> None:
        raise OSError("no space left on device")

    batcher = Batcher(lambda: model, max_rows=100, wait_seconds=0, on_batch=on_batch)

    async def run() -> list[Any]:
        futures = [batcher.submit(Scoring(["a"], np.array([[1.0]]))) for _ in range(2)]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    assert [str(e) for e in asyncio.run(run())] == ["no space left on device"] * 2
