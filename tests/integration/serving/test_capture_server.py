"""The inference table of a real ``lakestack serve``: its capture writer process under load,
a graceful stop, a SIGKILL in the middle of the load, and ``--workers 2``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lakestack.lake import Catalog
from tests.integration.serving.conftest import FEATURES, Project, free_port

pytestmark = pytest.mark.integration

ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.5, -1.0, 0.7, 0.1]]}}

BUNDLE = """
bundle: {{name: serve}}
targets:
  dev: {{default: true}}
lakestack:
  serving: {{alias_poll_seconds: 5, request_timeout_seconds: 10}}
resources:
  model_serving_endpoints:
    {name}:
      name: {name}
      config:
        served_entities:
          - {{name: champion, entity_name: main.ml.iris, entity_version: "1"}}
        auto_capture_config: {{catalog_name: main, schema_name: ml, table_name_prefix: {name}}}
"""


class Server:
    """``lakestack serve`` in a subprocess on a free loopback port."""

    def __init__(self, root: Path, *args: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
        env.pop("MLFLOW_TRACKING_URI", None)
        lakestack = Path(sys.executable).parent / "lakestack"
        self.process = subprocess.Popen(
            [str(lakestack), "serve", "--port", str(self.port), *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: teardown kills workers too
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {self.kill()}")
            time.sleep(0.1)

    def stop(self) -> str:
        """Stop gracefully; its stderr."""
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not stop in 120 s: {self.kill()}") from None
        assert self.process.returncode == 0, err
        return err

    def kill(self) -> str:
        """SIGKILL the server's whole process group (its workers too); its stderr."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        try:
            _, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a grandchild in another group holds the pipes
            return "(its output pipes were still held open after the kill)"
        return err or ""


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def load(
    url: str,
    total: int,
    *,
    concurrency: int = 16,
    on_answer: Any = None,
    keepalive: bool = True,
) -> tuple[list[str], int]:
    """POST ``total`` one-row requests at ``concurrency``: the request ids answered with 200,
    and how many requests failed (a transport error once the server is gone). Without
    ``keepalive`` each request opens a connection, which any worker may accept."""
    ids: list[str] = []
    failed = 0

    async def run() -> None:
        nonlocal failed
        sent = 0
        limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

            async def user() -> None:
                nonlocal sent, failed
                while sent < total:
                    sent += 1
                    try:
                        response = await client.post("/invocations", json=ROW)
                    except httpx.TransportError:  # the server is gone: this user stops
                        failed += 1
                        return
                    assert response.status_code == 200, response.text
                    ids.append(response.headers["x-request-id"])
                    if on_answer is not None:
                        on_answer(len(ids))

            await asyncio.gather(*(user() for _ in range(concurrency)))

    asyncio.run(run())
    return ids, failed


def table_ids(project: Project, name: str) -> list[str]:
    catalog = Catalog(project.root / ".lakestack" / "warehouse")
    table = catalog.table(f"main.ml.{name}_payload")
    return [str(v) for v in table.read(["request_id"])["request_id"].to_pylist()]


def spools(project: Project, name: str) -> list[Path]:
    return sorted((project.root / ".lakestack" / "serving" / "spool" / name).glob("*.spool"))


def test_a_graceful_stop_leaves_one_row_per_answered_request(
    project: Project, servers: list[Server]
) -> None:
    project.bundle(BUNDLE.format(name="graceful"))
    server = Server(project.root)
    servers.append(server)
    ids, failed = load(server.url, 2000)
    server.stop()

    assert failed == 0 and len(ids) == 2000
    rows = table_ids(project, "graceful")
    assert sorted(rows) == sorted(ids)
    assert spools(project, "graceful") == []


def test_sigkill_mid_load_loses_no_answered_request_and_writes_none_twice(
    project: Project, servers: list[Server]
) -> None:
    project.bundle(BUNDLE.format(name="killed"))
    server = Server(project.root)
    servers.append(server)
    killed = threading.Event()

    def kill_at(answered: int) -> None:
        if answered == 1500 and not killed.is_set():
            killed.set()
            server.process.kill()

    ids, failed = load(server.url, 100_000, on_answer=kill_at)
    server.kill()
    assert killed.is_set() and len(ids) >= 1500 and failed > 0

    again = Server(project.root)  # its writer finishes the dead server's spool
    servers.append(again)
    more, _ = load(again.url, 100)
    again.stop()

    rows = table_ids(project, "killed")
    assert len(rows) == len(set(rows)), "a row was written twice"
    assert set(ids) | set(more) <= set(rows)
    assert spools(project, "killed") == []


def test_two_workers_both_capture_and_stop_cleanly(project: Project, servers: list[Server]) -> None:
    project.bundle(BUNDLE.format(name="workers"))
    server = Server(project.root, "--workers", "2")
    servers.append(server)
    # the kernel hands connections to whichever worker accepts first: on a busy machine one
    # worker may take a whole round, so load until answers came from both (ids carry a prefix
    # per process)
    ids: list[str] = []
    failed = 0
    for _ in range(10):
        more, lost = load(server.url, 500, keepalive=False)
        ids += more
        failed += lost
        if len({request_id[:16] for request_id in ids}) >= 2:
            break
    server.stop()

    assert failed == 0
    assert sorted(table_ids(project, "workers")) == sorted(ids)
    catalog = Catalog(project.root / ".lakestack" / "warehouse")
    history = catalog.table("main.ml.workers_payload").history()
    spooled = {e["metadata"].get("lakestack.spool") for e in history} - {None}
    pids = {spool.split("-")[1] for spool in spooled}
    assert len(pids) == 2, f"rows came from the spools {sorted(spooled)}"
    assert spools(project, "workers") == []


def test_workers_stop_when_their_supervisor_is_killed(
    project: Project, servers: list[Server]
) -> None:
    project.bundle(BUNDLE.format(name="orphans"))
    server = Server(project.root, "--workers", "2")
    servers.append(server)
    ids, failed = load(server.url, 200, keepalive=False)
    children = psutil.Process(server.process.pid).children(recursive=True)
    assert len(children) >= 3, children  # two workers and the capture writer
    server.process.kill()  # the supervisor only, as the OOM killer would

    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == [], f"still running after their supervisor died: {alive}"

    again = Server(project.root)  # finishes whatever the orphans' writer left
    servers.append(again)
    again.stop()
    assert failed == 0
    assert set(ids) <= set(table_ids(project, "orphans"))
    assert spools(project, "orphans") == []
