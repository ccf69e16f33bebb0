"""The capture writer process's CPU placement and priority, on real processes and Delta tables."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakestack.errors import UsageError
from lakestack.lake import Catalog
from lakestack.serving import capture_writer
from lakestack.serving.capture import Spooler
from lakestack.serving.capture_writer import (
    PRIORITY_ENV,
    STORAGE_ENV,
    CaptureWriter,
    WriterProcess,
    start_writer,
    writer_priority,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's"),
]

TABLE = "main.serving.iris_payload"
SCHED_OTHER, SCHED_IDLE = 0, 5

# The writer's main() in a process where leaving SCHED_IDLE is refused, as the kernel refuses
# it to a process without CAP_SYS_NICE (these tests may run as root).
UNPRIVILEGED = textwrap.dedent(
    """
    import os, sys
    from lakestack.serving import capture_writer

    setscheduler = os.sched_setscheduler

    def refusing(tid, policy, param):
        if policy != os.SCHED_IDLE and os.sched_getscheduler(tid) == os.SCHED_IDLE:
            raise PermissionError(1, "Operation not permitted")
        setscheduler(tid, policy, param)

    os.sched_setscheduler = refusing
    sys.exit(capture_writer.main(sys.argv[1:]))
    """
)


def row(i: int) -> dict[str, Any]:
    return {
        "request_id": f"req-{i}",
        "client_request_id": None,
        "endpoint_name": "iris",
        "served_entity": "iris-1",
        "model_id": "main.ml.iris/1",
        "timestamp": 1_700_000_000_000 + i,
        "status_code": 200,
        "execution_time_ms": 0.5,
        "inputs": {"sepal_length": 5.0 + i},
        "prediction": i % 3,
    }


def policies(pid: int) -> list[int]:
    """The scheduling policy of every thread of ``pid`` (field 41 of its ``stat``)."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue  # the thread ended
        found.append(int(stat.rsplit(")", 1)[1].split()[38]))
    return found


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def written(catalog: Catalog) -> set[str]:
    if not catalog.table_exists(TABLE):
        return set()
    return {str(v) for v in catalog.table(TABLE).read(["request_id"])["request_id"].to_pylist()}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "warehouse")


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def command(catalog: Catalog, spool: Path, *args: str, script: str | None = None) -> list[str]:
    runner = ["-c", script] if script else ["-m", "lakestack.serving.capture_writer"]
    where = ["--warehouse", str(catalog.root), "--spool-dir", str(spool)]
    return [sys.executable, *runner, *where, "--parent-pid", str(os.getpid()), *args]


def test_every_thread_of_the_writer_runs_at_idle_priority(catalog: Catalog, spool: Path) -> None:
    spooler = Spooler.open(TABLE, spool)
    writer = start_writer(catalog.root, spool, flush_seconds=0.2)
    try:
        spooler.record([row(0)])
        eventually(lambda: written(catalog) == {"req-0"}, "the row in the table")
        threads = policies(writer.process.pid)
        assert len(threads) > 1  # Delta's and Arrow's threads, started after the switch
        assert set(threads) == {SCHED_IDLE}
    finally:
        spooler.close()
        assert writer.stop() == 0
    assert written(catalog) == {"req-0"}


def test_the_first_pass_starts_at_once_on_a_machine_booted_seconds_ago(
    catalog: Catalog, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooler = Spooler.open(TABLE, spool)
    spooler.record([row(0)])  # left by a server that stopped before its writer wrote it
    spooler.close()
    booted_at = time.perf_counter() - 5.0  # the monotonic clock counts from boot
    monkeypatch.setattr(capture_writer.time, "monotonic", lambda: time.perf_counter() - booted_at)
    stopping = threading.Event()
    runner = threading.Thread(
        target=CaptureWriter(catalog, spool).run, args=(stopping,), kwargs={"flush_seconds": 3600}
    )
    runner.start()
    try:
        eventually(lambda: written(catalog) == {"req-0"}, "the first pass", timeout=20)
    finally:
        stopping.set()
        runner.join(60)
    assert not runner.is_alive()


def test_a_writer_behind_returns_to_normal_priority(catalog: Catalog, spool: Path) -> None:
    spooler = Spooler.open(TABLE, spool)
    spooler.record([row(0)])
    process = subprocess.Popen(
        command(catalog, spool, "--flush-seconds", "3600", "--max-lag", "0.5"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: written(catalog) == {"req-0"}, "the first pass")
        eventually(lambda: set(policies(process.pid)) == {SCHED_IDLE}, "idle priority")
        time.sleep(1.5)  # nothing waiting: no lag, however long since the last pass
        assert set(policies(process.pid)) == {SCHED_IDLE}

        spooler.record([row(1)])  # waits for the next pass, an hour away
        eventually(lambda: set(policies(process.pid)) == {SCHED_OTHER}, "normal priority")
    finally:
        spooler.close()
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "capture writer: behind by " in err
    assert "at normal priority until caught up" in err
    assert written(catalog) == {"req-0", "req-1"}


def test_a_writer_not_permitted_to_rise_is_restarted_at_normal_priority(
    catalog: Catalog, spool: Path
) -> None:
    spooler = Spooler.open(TABLE, spool)
    spooler.record([row(0)])
    args = ("--flush-seconds", "3600", "--max-lag", "0.5")
    env = {**os.environ, STORAGE_ENV: "{}"}
    writer = WriterProcess(command(catalog, spool, *args, script=UNPRIVILEGED), env, spool)
    first = writer.process
    try:
        eventually(lambda: written(catalog) == {"req-0"}, "the first pass")
        spooler.record([row(1)])
        assert first.wait(30) == 3  # EXIT_BEHIND, with req-1 left in its spool
        eventually(lambda: writer.process is not first, "the next writer")
        assert "--behind" in Path(f"/proc/{writer.process.pid}/cmdline").read_text().split("\0")
        eventually(lambda: written(catalog) == {"req-0", "req-1"}, "the row the first left")
        # caught up: back to idle, where this writer may stay
        eventually(lambda: set(policies(writer.process.pid)) == {SCHED_IDLE}, "idle priority")
    finally:
        spooler.close()
        assert writer.stop() == 0
    assert written(catalog) == {"req-0", "req-1"}


def test_the_priority_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRIORITY_ENV, raising=False)
    assert writer_priority() == "idle"
    monkeypatch.setenv(PRIORITY_ENV, "normal")
    assert writer_priority() == "normal"
    monkeypatch.setenv(PRIORITY_ENV, "low")
    with pytest.raises(UsageError) as raised:
        writer_priority()
    assert str(raised.value) == (
        "LAKESTACK_CAPTURE_WRITER_PRIORITY must be idle or normal, not 'low'; fix or unset it"
    )


def test_a_normal_priority_writer_never_goes_idle(
    catalog: Catalog, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRIORITY_ENV, "normal")
    spooler = Spooler.open(TABLE, spool)
    writer = start_writer(catalog.root, spool, flush_seconds=0.2)
    try:
        spooler.record([row(0)])
        eventually(lambda: written(catalog) == {"req-0"}, "the row in the table")
        assert set(policies(writer.process.pid)) == {SCHED_OTHER}
        assert os.getpriority(os.PRIO_PROCESS, writer.process.pid) == 5
    finally:
        spooler.close()
        assert writer.stop() == 0
