"""Run the serving application on uvicorn, and find and poke running servers.

``serve`` runs one process (uvloop, httptools) or, with ``workers > 1``, uvicorn's supervisor
with N worker processes sharing the port; each worker builds its own state from the bundle named
in ``LAKESTACK_SERVE_SPEC``. SIGTERM and SIGINT stop accepting, finish in-flight requests, then
close the inference-table writers.

A running server announces itself in ``<workspace root>/serving/<endpoint>.json`` (host, port,
pid, the models it serves, the token variable); :func:`reload_servers` reads those files so that
the deploy task can make servers re-read their aliases at once rather than at their next poll.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.errors import UsageError
from lakestack.serving.app import CaptureSink, ServingState, create_app
from lakestack.serving.discovery import ServerInfo, reload_servers, running_servers, tokens_from
from lakestack.serving.endpoints import Endpoint, ModelSwitcher, build_endpoints

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lakestack.bundle import Bundle

__all__ = [
    "SPEC_ENV",
    "ServerInfo",
    "app_from_environment",
    "build_state",
    "reload_servers",
    "running_servers",
    "serve",
]

SPEC_ENV = "LAKESTACK_SERVE_SPEC"
_WORKER_HEALTHCHECK_SECONDS = 60
_log = logging.getLogger(__name__)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lakestack")
    except PackageNotFoundError:
        return "unknown"


def build_state(
    bundle: Bundle, *, endpoint: str | None = None, spool_only: bool = False
) -> ServingState:
    """The serving state of a target: its endpoints, registry, tokens and captures.

    ``spool_only`` (what ``serve`` uses): the captures only spool, and a capture writer process
    writes the inference tables; otherwise each capture writes on a thread of this process.

    Raises:
        UsageError: No such endpoint, or the target has no endpoints.
    """
    from lakestack.registry import ModelRegistry, Tracking

    settings = bundle.settings.serving
    endpoints = build_endpoints(bundle.resources.model_serving_endpoints, settings, only=endpoint)
    registry_uri = bundle.registry_uri if bundle.registry_uri != bundle.tracking_uri else None
    tracking = Tracking(bundle.tracking_uri, registry_uri)
    tracking.activate()  # model downloads go through MLflow's current URIs
    switcher = ModelSwitcher(ModelRegistry(tracking), endpoints, settings.alias_poll_seconds)
    return ServingState(
        endpoints={e.name: e for e in endpoints},
        switcher=switcher,
        settings=settings,
        tokens=tokens_from(settings.tokens_env),
        captures=_captures(bundle, endpoints, spool_only=spool_only),
        version=_version(),
    )


def _captures(
    bundle: Bundle, endpoints: list[Endpoint], *, spool_only: bool
) -> dict[str, CaptureSink]:
    wanted = [e for e in endpoints if e.capture_table]
    if not wanted:
        return {}
    try:
        module = importlib.import_module("lakestack.serving.capture")
    except ImportError:  # the inference-table writer is not there yet: nothing is captured
        _log.warning("lakestack.serving.capture is missing: inference tables are not written")
        return {}
    from lakestack.lake import Catalog

    catalog = Catalog(bundle.warehouse, bundle.settings.storage_options)
    captures: dict[str, CaptureSink] = {}
    for endpoint in wanted:
        assert endpoint.capture_table is not None
        folder = _spool_dir(bundle, endpoint.name)
        if spool_only:
            captures[endpoint.name] = module.Spooler.open(endpoint.capture_table, folder)
        else:
            captures[endpoint.name] = module.Capture.open(catalog, endpoint.capture_table, folder)
    return captures


def _spool_dir(bundle: Bundle, endpoint: str) -> Path:
    return bundle.workspace_root / "serving" / "spool" / endpoint


@contextlib.contextmanager
def _capture_writers(bundle: Bundle, state: ServingState) -> Iterator[None]:
    """One capture writer process per endpoint with an inference table, for the server's
    life; stopped after the server (its spools closed) so that it writes everything."""
    if not state.captures:
        yield
        return
    from lakestack.serving.capture_writer import start_writer

    writers = [
        start_writer(
            bundle.warehouse,
            _spool_dir(bundle, name),
            storage_options=bundle.settings.storage_options,
        )
        for name in state.captures
    ]
    try:
        yield
    finally:
        for writer in writers:
            writer.stop()


def app_from_environment() -> FastAPI:
    """The app of a worker process (``uvicorn --factory``), from ``LAKESTACK_SERVE_SPEC``."""
    from lakestack.bundle import load_bundle

    _stop_when_orphaned()
    spec = json.loads(os.environ[SPEC_ENV])
    bundle = load_bundle(spec["file"], target=spec["target"], variables=spec["variables"])
    return create_app(build_state(bundle, endpoint=spec["endpoint"], spool_only=True))


def serve(
    bundle: Bundle,
    *,
    endpoint: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    variables: Mapping[str, str] | None = None,
) -> None:
    """Serve the target's endpoints until SIGTERM or SIGINT.

    Raises:
        UsageError: No such endpoint, no endpoints, or workers below 1.
    """
    import uvicorn

    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    # fails here, before binding, on a bad name
    state = build_state(bundle, endpoint=endpoint, spool_only=True)
    settings = bundle.settings.serving
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": False,  # a middleware per request; nothing here reads client addresses
        "server_header": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": int(settings.request_timeout_seconds) + 5,
        # the supervisor kills a worker that does not answer its ping in time; a worker
        # loading its models on a busy machine may take longer than uvicorn's 5 s
        "timeout_worker_healthcheck": _WORKER_HEALTHCHECK_SECONDS,
    }
    with (
        _capture_writers(bundle, state),
        _announced(bundle, state, host, port),
        _stopped_by_signals(),
    ):
        if workers == 1:
            uvicorn.run(create_app(state), **options)
            return
        os.environ[SPEC_ENV] = json.dumps(
            {
                "file": str(bundle.file),
                "target": bundle.target,
                "variables": dict(variables or {}),
                "endpoint": endpoint,
            }
        )
        for capture in state.captures.values():
            capture.close()  # each worker opens its own
        uvicorn.run(
            "lakestack.serving.server:app_from_environment",
            factory=True,
            workers=workers,
            **options,
        )


def _stop_when_orphaned(poll_seconds: float = 0.5) -> None:
    """Stop this worker gracefully (SIGTERM to itself) once its supervisor is gone.

    uvicorn's workers outlive a supervisor that was killed (SIGKILL, OOM): they would go on
    holding the port and the inherited output pipes, serving with nobody to restart or stop
    them. A daemon thread watches the parent pid instead.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        _log.warning("the server's supervisor (pid %d) is gone; stopping this worker", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="lakestack-orphan-watch", daemon=True).start()


class _StoppedError(Exception):
    """SIGTERM or SIGINT, re-raised by uvicorn once it has shut down gracefully."""


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Return normally after a graceful stop: uvicorn re-sends the signal it caught to the
    process once it is done, which would otherwise end it before the server file is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: Any) -> None:
        raise _StoppedError

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _StoppedError:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _announced(bundle: Bundle, state: ServingState, host: str, port: int) -> Iterator[None]:
    folder = bundle.workspace_root / "serving"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for endpoint in state.endpoints.values():
        path = folder / f"{endpoint.name}.json"
        info = {
            "endpoint": endpoint.name,
            "host": host,
            "port": port,
            "pid": os.getpid(),
            "models": sorted({e.model_name for e in endpoint.entities.values()}),
            "tokens_env": bundle.settings.serving.tokens_env,
        }
        path.write_text(json.dumps(info, indent=2), encoding="utf-8")
        files.append(path)
    try:
        yield
    finally:
        for path in files:
            with contextlib.suppress(OSError):
                if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                    path.unlink()
