"""A bundle with serving endpoints over a real MLflow registry, and servers on loopback.

The project (bundle + MLflow store with two LogisticRegression versions of ``main.ml.iris``,
``champion`` on 1) is built once per session; each test gets its own copy of the bundle file's
folder only when it edits the bundle, otherwise it shares the store.
"""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

with warnings.catch_warnings():  # MLflow warns about its own type hints when first imported
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.types.responses
    from mlflow.models import infer_signature
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lakestack.bundle import Bundle, load_bundle
from lakestack.registry import ModelRegistry, Tracking, log_model, tracking_uri_for

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL = "main.ml.iris"

BUNDLE = """
bundle: {name: serve}
targets:
  dev: {default: true}
lakestack:
  serving: {alias_poll_seconds: 0.2, request_timeout_seconds: 5}
resources:
  model_serving_endpoints:
    iris:
      name: iris
      config:
        served_entities:
          - {name: champion, entity_name: main.ml.iris, entity_version_alias: champion}
          - {name: v2, entity_name: main.ml.iris, entity_version: "2"}
        traffic_config:
          routes:
            - {served_entity_name: champion, traffic_percentage: 80}
            - {served_entity_name: v2, traffic_percentage: 20}
"""


def flowers(n: int, seed: int = 0) -> pd.DataFrame:
    """Four float features and a 0/1/2 ``species`` that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    species = (frame["sepal_length"] > 0).astype(int) + (frame["petal_length"] > 0.5).astype(int)
    return frame.assign(species=species.to_numpy())


@dataclass
class Project:
    root: Path
    tracking: Tracking
    models: list[Any]

    def bundle(self, text: str = BUNDLE) -> Bundle:
        (self.root / "lakestack.yml").write_text(textwrap.dedent(text), encoding="utf-8")
        return load_bundle(self.root)

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.tracking)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """``main.ml.iris`` versions 1, 2, 3 (three LogisticRegressions), champion on 1."""
    root = tmp_path_factory.mktemp("serve")
    tracking = Tracking(tracking_uri_for(root / ".lakestack"))
    tracking.activate()
    train = flowers(600, seed=1)
    models = []
    for c in (0.01, 1.0, 100.0):
        model = LogisticRegression(C=c, max_iter=500).fit(train[FEATURES], train["species"])
        log_model(
            model,
            flavor=mlflow.sklearn,
            name="model",
            registered_model_name=MODEL,
            signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
            pip_requirements=["scikit-learn"],
        )
        models.append(model)
    ModelRegistry(tracking).set_alias(MODEL, "champion", 1)
    return Project(root, tracking, models)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """A lakestack app on uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/health").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(httpx.get(f"{self.url}/health").text)
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve_bundle() -> Iterator[Any]:
    """``serve_bundle(bundle, endpoint=None)`` starts a server; all are stopped after the test."""
    from lakestack.serving.app import create_app
    from lakestack.serving.server import build_state

    servers: list[ThreadServer] = []

    def start(bundle: Bundle, endpoint: str | None = None, wait: bool = True) -> ThreadServer:
        server = ThreadServer(create_app(build_state(bundle, endpoint=endpoint))).start()
        servers.append(server)
        if wait:
            server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
