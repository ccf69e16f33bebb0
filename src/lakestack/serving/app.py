"""The HTTP application: MLflow's scoring routes and Databricks' endpoint routes on FastAPI.

FastAPI for everything but scoring, and for the OpenAPI document (schemathesis tests the server
through it). Scoring is the hot path, so the application answers ``POST`` to a known invocation
path itself, as a raw ASGI call, before FastAPI sees it: no middleware stack, no routing regex,
no ``Request`` object, no dependency solving, and response headers built from bytes made once
per entity and model. That is about 150 µs less per request than the same handler behind
FastAPI's routing. Bodies are parsed with orjson into the model's rows
(:mod:`lakestack.serving.protocol`) and answered with orjson; a lone request is predicted inline
on the event loop (:meth:`Batcher.now`), concurrent ones share a batch.

With an inference table, a micro-batch is spooled by the batcher's ``on_batch`` hook, one line
for all its requests, before any of them is answered; a request predicted inline is a batch of
one (a request's id is therefore made before it is predicted, so that the ``x-request-id``
header and the table agree). A model the batcher does not take (its predict runs in a thread)
has each request spooled by its handler.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from lakestack.serving.endpoints import Endpoint, ModelSwitcher, ServedEntity
from lakestack.serving.metrics import Metrics
from lakestack.serving.models import to_jsonable
from lakestack.serving.protocol import HttpError, parse_body

if TYPE_CHECKING:
    from lakestack.bundle.specs.settings import ServingSpec
    from lakestack.serving.batching import Answer, Batcher, BatchHook
    from lakestack.serving.models import ServedModel
    from lakestack.serving.protocol import Scoring

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
_JSON_HEADER = (b"content-type", _JSON.encode())
_ENTITY_KEY = ENTITY_HEADER.encode()
_VERSION_KEY = VERSION_HEADER.encode()
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()
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


class CaptureSink(Protocol):
    """What the server needs of an inference-table writer (``serving.capture.Spooler`` or
    ``Capture``)."""

    def record_request(
        self,
        request_id: str,
        client_request_id: str | None,
        endpoint_name: str,
        served_entity: str,
        model_id: str,
        columns: list[str],
        rows: Any,
        predictions: Any,
        *,
        execution_time_ms: float,
        status_code: int = 200,
    ) -> None:
        """Spool an answered request's records before the response is sent."""

    def batch_hook(
        self, endpoint_name: str, served_entity: str, jsonable: Callable[[Any], Any]
    ) -> BatchHook:
        """The batcher's hook that spools each batch before any of its requests is answered."""

    def close(self) -> None:
        """Flush and stop."""


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class _DisconnectedError(Exception):
    """The client went away before its body arrived: nothing to answer."""


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
    _ids: Callable[[], str] = field(default_factory=lambda: _request_ids(), repr=False)

    def check_token(self, request: Request) -> None:
        """401 unless the request carries one of the tokens (when tokens are configured)."""
        self.check_authorization(request.headers.get("authorization", "").encode("latin-1"))

    def check_authorization(self, header: bytes) -> None:
        """401 unless the ``Authorization`` header value is ``Bearer <one of the tokens>``."""
        if not self.tokens:
            return
        scheme, _, token = header.partition(b" ")
        given = token.strip()
        if scheme.lower() != b"bearer" or not any(
            hmac.compare_digest(given, t) for t in self.tokens
        ):
            raise HttpError(
                401, "a valid bearer token is required: send Authorization: Bearer <token>"
            )

    async def read_body(self, receive: Receive, announced: bytes | None) -> bytes:
        """The body, or 413 past ``max_body_bytes`` (checked before reading when announced).

        Raises:
            HttpError: 400 for a Content-Length that is not a number, 413 for a body too large.
            _DisconnectedError: The client disconnected first.
        """
        limit = self.settings.max_body_bytes
        if announced is not None:
            try:
                size = int(announced)
            except ValueError:
                raise HttpError(
                    400, f"Content-Length {announced.decode('latin-1')!r} is not a number"
                ) from None
            if size > limit:
                raise HttpError(413, _too_large(size, limit))
        message = await receive()
        if message["type"] != "http.request":
            raise _DisconnectedError
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise HttpError(413, _too_large(len(body), limit))
            return body
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _DisconnectedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, _too_large(size, limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def endpoint(self, name: str) -> Endpoint:
        """An endpoint by name, or 404 naming the served ones."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise HttpError(
                404, f"no endpoint '{name}' here (endpoints: {', '.join(self.endpoints)})"
            )
        return endpoint

    async def invoke(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: Endpoint,
        entity: ServedEntity | None = None,
    ) -> None:
        """Score one request (a raw ASGI call): parse, predict or batch, capture, answer.

        ``entity`` None means the endpoint's weighted routes choose one.
        """
        started = time.perf_counter()
        if entity is None:
            entity = endpoint.choose()
        status, rows = 200, 0
        batcher = entity.batcher
        batcher.arriving += 1
        arriving = True
        try:
            content_type = length = None
            authorization = b""
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value
                elif name == b"content-length":
                    length = value
                elif name == b"authorization":
                    authorization = value
            self.check_authorization(authorization)
            body = await self.read_body(receive, length)
            model = entity.model
            if model is None:
                raise HttpError(
                    503,
                    f"served entity '{entity.name}' is not loaded yet: {entity.error or 'loading'}",
                )
            scoring = parse_body(
                body, content_type.decode("latin-1") if content_type else None, model.schema
            )
            rows = len(scoring)
            if not rows:
                raise HttpError(400, "the request has no records; send at least one row")
            batcher.arriving -= 1
            arriving = False
            request_id = self._ids()
            # a batchable model's requests are spooled by the batcher's hook, alone or batched
            hooked = model.batchable and batcher.on_batch is not None
            capture = None if hooked else self.captures.get(endpoint.name)
            try:
                answer = batcher.now(scoring, request_id, started) if model.batchable else None
                if answer is None:
                    answer = await self._later(model, scoring, batcher, request_id, started)
            except (ValueError, TypeError, KeyError) as exc:
                raise HttpError(400, f"the model failed to predict on the input: {exc}") from None
            predictions, used = answer
            values = to_jsonable(predictions)
            if capture is not None:
                capture.record_request(
                    request_id,
                    scoring.client_request_id,
                    endpoint.name,
                    entity.name,
                    used.model_id,
                    scoring.columns,
                    scoring.rows,
                    values,
                    execution_time_ms=(time.perf_counter() - started) * 1000,
                )
            content = orjson.dumps({"predictions": values})
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        _JSON_HEADER,
                        (b"content-length", str(len(content)).encode()),
                        (_ENTITY_KEY, entity.header),
                        (_VERSION_KEY, used.header),
                        (_REQUEST_ID_KEY, request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
        except _DisconnectedError:
            status = 499
        except HttpError as exc:
            status = exc.status
            await _send_error(send, exc, entity)
        except Exception as exc:  # a bug or a model that broke: 500 with one line
            status = 500
            _log.exception("%s failed", entity.describe())
            await _send_error(send, HttpError(500, f"{type(exc).__name__}: {exc}"), entity)
        finally:
            if arriving:
                batcher.arriving -= 1
            self.metrics.observe(
                endpoint.name, entity.name, status, time.perf_counter() - started, rows
            )

    async def _later(
        self,
        model: ServedModel,
        scoring: Scoring,
        batcher: Batcher,
        request_id: str,
        started: float,
    ) -> Answer:
        """Predictions from a shared batch, or from a thread for models that are not batched."""
        timeout = self.settings.request_timeout_seconds
        try:
            if model.batchable:
                return await asyncio.wait_for(batcher.submit(scoring, request_id, started), timeout)
            predictions = await asyncio.wait_for(
                asyncio.to_thread(model.predict, scoring.rows, scoring.params, scoring.columns),
                timeout,
            )
            return predictions, model
        except asyncio.TimeoutError:
            raise HttpError(
                504,
                f"the request was not answered within {timeout:g} s "
                "(serving.request_timeout_seconds)",
            ) from None


def _request_ids() -> Callable[[], str]:
    """Request ids as unique as ``uuid4().hex`` (32 hex digits) for a fraction of the cost.

    A random 64-bit prefix per process and a counter: no system call per request.
    """
    prefix = os.urandom(8).hex()
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):016x}"


def _too_large(size: int, limit: int) -> str:
    return (
        f"the body has {size} bytes, more than serving.max_body_bytes ({limit}); send fewer "
        "rows per request"
    )


def _error(exc: HttpError, entity: ServedEntity | None = None) -> Response:
    headers = {ENTITY_HEADER: entity.name} if entity is not None else None
    return Response(exc.body(), status_code=exc.status, media_type=_JSON, headers=headers)


async def _send_error(send: Send, exc: HttpError, entity: ServedEntity) -> None:
    content = exc.body()
    headers = [
        _JSON_HEADER,
        (b"content-length", str(len(content)).encode()),
        (_ENTITY_KEY, entity.header),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


Route = tuple[Endpoint, ServedEntity | None]


class _ServingApp(FastAPI):
    """FastAPI, except that ``POST`` to a known invocation path is answered as raw ASGI.

    Args:
        fast: The invocation paths (as ASGI gives them, percent-decoded) and what they score.
    """

    def __init__(self, fast: dict[str, Route], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._fast.get(scope["path"])
            if route is not None:
                state: ServingState = self.state.serving
                await state.invoke(scope, receive, send, route[0], route[1])
                return
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]


class _Invoke(Response):
    """A FastAPI handler's answer that scores the request as the fast path does."""

    def __init__(self, state: ServingState, endpoint: Endpoint, entity: ServedEntity | None):
        super().__init__()  # FastAPI sets attributes (background tasks) on what handlers return
        self._route = state, endpoint, entity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        state, endpoint, entity = self._route
        await state.invoke(scope, receive, send, endpoint, entity)


def _fast_routes(state: ServingState) -> dict[str, Route]:
    """Every invocation path of the served endpoints and entities (``/invocations`` for one)."""
    routes: dict[str, Route] = {}
    for endpoint in state.endpoints.values():
        base = f"/serving-endpoints/{endpoint.name}"
        routes[f"{base}/invocations"] = (endpoint, None)
        for entity in endpoint.entities.values():
            for kind in ("served-entities", "served-models"):
                routes[f"{base}/{kind}/{entity.name}/invocations"] = (endpoint, entity)
    if len(state.endpoints) == 1:
        routes["/invocations"] = (next(iter(state.endpoints.values())), None)
    return routes


def create_app(state: ServingState) -> FastAPI:
    """The application serving ``state``'s endpoints (single endpoint: MLflow's routes too)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # load before accepting: uvicorn starts taking connections after this startup, so
        # with --workers a worker still loading never answers 503 beside a ready one
        await state.switcher.refresh()
        task = asyncio.create_task(state.switcher.run(loaded=True))
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

    app = _ServingApp(
        _fast_routes(state),
        title="lakestack serving",
        version=state.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serving = state
    for name, capture in state.captures.items():
        for entity in state.endpoints[name].entities.values():
            entity.batcher.on_batch = capture.batch_hook(name, entity.name, to_jsonable)

    # FastAPI's routes document the invocation paths and answer what the fast routes do not
    # know: a name that is no endpoint or served entity (404), or a path FastAPI redirects.
    async def invocations(name: str) -> Response:
        try:
            endpoint = state.endpoint(name)
        except HttpError as exc:
            return _error(exc)
        return _Invoke(state, endpoint, None)

    async def entity_invocations(name: str, entity: str) -> Response:
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
        return _Invoke(state, endpoint, served)

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

        async def single_invocations() -> Response:
            return _Invoke(state, only, None)

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
