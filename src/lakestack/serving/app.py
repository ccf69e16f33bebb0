"""The HTTP application: MLflow's scoring routes and Databricks' endpoint routes on FastAPI.

FastAPI for its OpenAPI document (schemathesis tests the server through it); the handlers take
the raw ``Request`` and return raw ``Response`` objects, so no pydantic model runs per request,
and there is no ``BaseHTTPMiddleware``: auth, the body limit and the timeout are plain calls in
the one invocation path. Bodies are parsed with orjson into the model's rows
(:mod:`lakestack.serving.protocol`) and answered with orjson.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from lakestack.serving.endpoints import Endpoint, ModelSwitcher, ServedEntity
from lakestack.serving.metrics import Metrics
from lakestack.serving.models import to_jsonable
from lakestack.serving.protocol import HttpError, parse_body

if TYPE_CHECKING:
    from lakestack.bundle.specs.settings import ServingSpec

__all__ = [
    "ENTITY_HEADER",
    "REQUEST_ID_HEADER",
    "VERSION_HEADER",
    "CaptureSink",
    "ServingState",
    "create_app",
]

ENTITY_HEADER = "x-lakestack-served-entity"
VERSION_HEADER = "x-lakestack-model-version"
REQUEST_ID_HEADER = "x-request-id"
_JSON = "application/json"
_log = logging.getLogger(__name__)

_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs.",
    "properties": {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
                "index": {"type": "array"},
            },
        },
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "instances": {"type": "array"},
        "inputs": {"anyOf": [{"type": "object"}, {"type": "array"}]},
        "params": {"type": "object"},
        "client_request_id": {"type": "string"},
    },
}
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
}
_INVOCATION: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": _INPUT_SCHEMA}, "text/csv": {"schema": {"type": "string"}}},
    },
    "responses": {
        "200": {
            "description": "One prediction per row.",
            "content": {_JSON: {"schema": {"type": "object", "properties": {"predictions": {}}}}},
        },
        **{
            str(status): {"description": text, "content": {_JSON: {"schema": _ERROR_SCHEMA}}}
            for status, text in [
                (400, "Bad input: the message names the field or column."),
                (401, "No valid bearer token."),
                (404, "No such endpoint or served entity."),
                (413, "The body is larger than max_body_bytes."),
                (415, "Not application/json or text/csv."),
                (503, "The model is not loaded yet."),
                (504, "Not answered within request_timeout_seconds."),
            ]
        },
    },
}


class CaptureSink:
    """What the server needs of an inference-table writer (``serving.capture.Capture``)."""

    def record(self, records: list[dict[str, Any]]) -> None:
        """Spool rows before the response is sent."""

    def close(self) -> None:
        """Flush and stop."""


@dataclass
class ServingState:
    """Everything the routes use.

    Attributes:
        endpoints: Endpoints by name.
        switcher: Loads models and follows aliases.
        settings: Limits, timeouts, batching.
        tokens: Accepted bearer tokens; empty means no auth.
        captures: Inference-table writers by endpoint name.
        version: What ``GET /version`` answers.
        on_shutdown: Called once the server has stopped answering.
    """

    endpoints: dict[str, Endpoint]
    switcher: ModelSwitcher
    settings: ServingSpec
    tokens: tuple[bytes, ...] = ()
    captures: dict[str, CaptureSink] = field(default_factory=dict)
    version: str = "unknown"
    metrics: Metrics = field(default_factory=Metrics)
    on_shutdown: Callable[[], None] | None = None

    def check_token(self, request: Request) -> None:
        """401 unless the request carries one of the tokens (when tokens are configured)."""
        if not self.tokens:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode()
        if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(given, t) for t in self.tokens
        ):
            raise HttpError(
                401, "a valid bearer token is required: send Authorization: Bearer <token>"
            )

    async def read_body(self, request: Request) -> bytes:
        """The body, or 413 past ``max_body_bytes`` (checked before reading when announced)."""
        limit = self.settings.max_body_bytes
        announced = request.headers.get("content-length")
        if announced is not None:
            try:
                size = int(announced)
            except ValueError:
                raise HttpError(400, f"Content-Length {announced!r} is not a number") from None
            if size > limit:
                raise HttpError(413, _too_large(size, limit))
            return await request.body()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, _too_large(size, limit))
            chunks.append(chunk)
        return b"".join(chunks)

    def endpoint(self, name: str) -> Endpoint:
        """An endpoint by name, or 404 naming the served ones."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise HttpError(
                404, f"no endpoint '{name}' here (endpoints: {', '.join(self.endpoints)})"
            )
        return endpoint

    async def invoke(self, request: Request, endpoint: Endpoint, entity: ServedEntity) -> Response:
        """Score one request with one entity: parse, batch, predict, capture, answer."""
        started = time.perf_counter()
        status, rows = 200, 0
        batcher = entity.batcher
        batcher.arriving += 1
        arriving = True
        try:
            self.check_token(request)
            body = await self.read_body(request)
            model = entity.model
            if model is None:
                raise HttpError(
                    503,
                    f"served entity '{entity.name}' is not loaded yet: {entity.error or 'loading'}",
                )
            scoring = parse_body(body, request.headers.get("content-type"), model.schema)
            rows = len(scoring)
            batcher.arriving -= 1
            arriving = False
            timeout = self.settings.request_timeout_seconds
            try:
                if model.batchable:
                    predictions, used = await asyncio.wait_for(batcher.submit(scoring), timeout)
                else:
                    used = model
                    predictions = await asyncio.wait_for(
                        asyncio.to_thread(
                            model.predict, scoring.rows, scoring.params, scoring.columns
                        ),
                        timeout,
                    )
            except asyncio.TimeoutError:
                raise HttpError(
                    504,
                    f"the request was not answered within {timeout:g} s "
                    "(serving.request_timeout_seconds)",
                ) from None
            except (ValueError, TypeError, KeyError) as exc:
                raise HttpError(400, f"the model failed to predict on the input: {exc}") from None
            values = to_jsonable(predictions)
            request_id = uuid.uuid4().hex
            capture = self.captures.get(endpoint.name)
            if capture is not None:
                millis = (time.perf_counter() - started) * 1000
                capture.record(
                    _records(scoring, values, request_id, endpoint, entity, used, millis)
                )
            return Response(
                orjson.dumps({"predictions": values}),
                media_type=_JSON,
                headers={
                    ENTITY_HEADER: entity.name,
                    VERSION_HEADER: used.model_id,
                    REQUEST_ID_HEADER: request_id,
                },
            )
        except HttpError as exc:
            status = exc.status
            return _error(exc, entity)
        except Exception as exc:  # a bug or a model that broke: 500 with one line
            status = 500
            _log.exception("%s failed", entity.describe())
            return _error(HttpError(500, f"{type(exc).__name__}: {exc}"), entity)
        finally:
            if arriving:
                batcher.arriving -= 1
            self.metrics.observe(
                endpoint.name, entity.name, status, time.perf_counter() - started, rows
            )


def _too_large(size: int, limit: int) -> str:
    return (
        f"the body has {size} bytes, more than serving.max_body_bytes ({limit}); send fewer "
        "rows per request"
    )


def _error(exc: HttpError, entity: ServedEntity | None = None) -> Response:
    headers = {ENTITY_HEADER: entity.name} if entity is not None else None
    return Response(exc.body(), status_code=exc.status, media_type=_JSON, headers=headers)


def _records(
    scoring: Any,
    predictions: Any,
    request_id: str,
    endpoint: Endpoint,
    entity: ServedEntity,
    model: Any,
    millis: float,
) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    per_row = predictions if isinstance(predictions, list) else [predictions] * len(scoring)
    return [
        {
            "request_id": request_id,
            "client_request_id": scoring.client_request_id,
            "endpoint_name": endpoint.name,
            "served_entity": entity.name,
            "model_id": model.model_id,
            "timestamp": now,
            "status_code": 200,
            "execution_time_ms": round(millis),
            "inputs": inputs,
            "prediction": prediction,
        }
        for inputs, prediction in zip(scoring.records(), per_row, strict=False)
    ]


def create_app(state: ServingState) -> FastAPI:
    """The application serving ``state``'s endpoints (single endpoint: MLflow's routes too)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(state.switcher.run())
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            for capture in state.captures.values():
                capture.close()
            if state.on_shutdown is not None:
                state.on_shutdown()

    app = FastAPI(
        title="lakestack serving",
        version=state.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serving = state

    async def invocations(request: Request, name: str) -> Response:
        try:
            endpoint = state.endpoint(name)
        except HttpError as exc:
            return _error(exc)
        return await state.invoke(request, endpoint, endpoint.choose())

    async def entity_invocations(request: Request, name: str, entity: str) -> Response:
        try:
            endpoint = state.endpoint(name)
            served = endpoint.entities.get(entity)
            if served is None:
                raise HttpError(
                    404,
                    f"endpoint '{name}' has no served entity '{entity}' (served: "
                    f"{', '.join(endpoint.entities)})",
                )
        except HttpError as exc:
            return _error(exc)
        return await state.invoke(request, endpoint, served)

    app.add_api_route(
        "/serving-endpoints/{name}/invocations",
        invocations,
        methods=["POST"],
        openapi_extra=_INVOCATION,
        summary="Score rows with the endpoint (weighted routes choose the served entity)",
    )
    for kind in ("served-entities", "served-models"):
        app.add_api_route(
            f"/serving-endpoints/{{name}}/{kind}/{{entity}}/invocations",
            entity_invocations,
            methods=["POST"],
            openapi_extra=_INVOCATION,
            summary="Score rows with one served entity",
            include_in_schema=kind == "served-entities",
        )
    if len(state.endpoints) == 1:
        only = next(iter(state.endpoints.values()))

        async def single_invocations(request: Request) -> Response:
            return await state.invoke(request, only, only.choose())

        app.add_api_route(
            "/invocations",
            single_invocations,
            methods=["POST"],
            openapi_extra=_INVOCATION,
            summary=f"Score rows with endpoint {only.name} (MLflow's scoring route)",
        )

    async def ping() -> Response:
        return await health()

    async def health() -> Response:
        if state.switcher.ready:
            return Response("\n", media_type=_JSON)
        waiting = {
            e.describe(): e.error or "loading" for e in state.switcher.entities if not e.ready
        }
        body = orjson.dumps(
            {
                "error_code": "TEMPORARILY_UNAVAILABLE",
                "message": "models not loaded",
                "waiting": waiting,
            }
        )
        return Response(body, status_code=503, media_type=_JSON)

    async def version() -> Response:
        return Response(state.version, media_type="text/plain")

    async def metrics() -> Response:
        state.metrics.batches = sum(e.batcher.batches for e in state.switcher.entities)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    async def reload(request: Request) -> Response:
        try:
            state.check_token(request)
        except HttpError as exc:
            return _error(exc)
        changed = await state.switcher.refresh()
        served = {
            e.describe(): e.model.model_id if e.model else None for e in state.switcher.entities
        }
        return Response(orjson.dumps({"changed": changed, "serving": served}), media_type=_JSON)

    app.add_api_route("/ping", ping, methods=["GET"], summary="200 once every model is loaded")
    app.add_api_route("/health", health, methods=["GET"], summary="200 once every model is loaded")
    app.add_api_route("/version", version, methods=["GET"], summary="The lakestack version")
    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    app.add_api_route("/-/reload", reload, methods=["POST"], summary="Check aliases now")
    return app
