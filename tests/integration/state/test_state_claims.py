"""claim_run under real concurrency: processes with their own stores race for one job's slots."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import sys
import threading
import time

import pytest

from lakestack.errors import StateConflictError
from lakestack.state import SqlStateStore

pytestmark = pytest.mark.integration

WORKERS = 8
RUNS = 24
LIMIT = 2
HOLD_S = 0.03


def _claim_until_done(
    url: str,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue[tuple[int, int]],
) -> None:
    """Claim queued runs of job ``race`` until none is left; report (claimed, most seen RUNNING)."""
    claimed, most_running = 0, 0
    try:
        with SqlStateStore(url) as store:
            barrier.wait(timeout=120)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                queued = store.list_runs(job_key="race", states=["QUEUED"], limit=RUNS)
                if not queued:
                    break
                won = None
                for run in reversed(queued):
                    try:
                        if store.claim_run(
                            run.run_id, max_concurrent_runs=LIMIT, pid=os.getpid(), host="race"
                        ):
                            won = run.run_id
                            break
                    except StateConflictError:
                        continue
                if won is None:
                    time.sleep(0.002)
                    continue
                claimed += 1
                running = store.list_runs(job_key="race", states=["RUNNING"], limit=RUNS)
                most_running = max(most_running, len(running))
                time.sleep(HOLD_S)
                assert store.finish_run_if_active(
                    won, state="TERMINATED", message="done", end_time=int(time.time() * 1000)
                )
    except BaseException:
        results.put((-1, -1))  # fail the test now instead of waiting for a missing report
        raise
    results.put((claimed, most_running))


def process_context() -> multiprocessing.context.BaseContext:
    """Fork on Linux (no re-import of SQLAlchemy per worker), spawn elsewhere."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def test_claim_run_never_exceeds_max_concurrent_runs(state_url: str) -> None:
    with SqlStateStore(state_url) as store:  # closed before forking: workers open their own
        run_ids = [
            store.create_run(
                target="dev", job_key="race", job_name="Race", definition={}, parameters={},
                trigger_type="ONE_TIME", created_by="test",
            ).run_id
            for _ in range(RUNS)
        ]  # fmt: skip
    context = process_context()
    barrier = context.Barrier(WORKERS + 1)
    results: multiprocessing.Queue[tuple[int, int]] = context.Queue()
    workers = [
        context.Process(target=_claim_until_done, args=(state_url, barrier, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()

    with SqlStateStore(state_url) as store:
        observed: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                observed.append(len(store.list_runs(job_key="race", states=["RUNNING"])))
                time.sleep(0.002)

        barrier.wait(timeout=120)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            reports: list[tuple[int, int]] = [results.get(timeout=180) for _ in range(WORKERS)]
        finally:
            done.set()
            watcher.join()
            for worker in workers:
                worker.join(timeout=30)

        assert [worker.exitcode for worker in workers] == [0] * WORKERS
        assert sum(claimed for claimed, _ in reports) == RUNS
        most_seen = max([most for _, most in reports] + observed)
        assert most_seen == LIMIT  # the workers did overlap, and never beyond the limit
        finals = [store.get_run(run_id) for run_id in run_ids]
        assert {run.state for run in finals if run is not None} == {"TERMINATED"}
        assert all(run is not None and run.owner_host == "race" for run in finals)
