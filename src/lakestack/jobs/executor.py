"""Executors start task processes.

``LocalExecutor`` keeps a warm worker (multiprocessing's forkserver) that has already imported
what the tasks import (pandas, scikit-learn, ...). Each task attempt is a fork of that worker: a
fresh process with its own memory, started in milliseconds instead of paying the imports again.
The worker only imports; it holds no database connection, no threads of ours and no open files,
which is what makes forking it safe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from lakestack.jobs.child import TaskPayload, task_main

__all__ = ["Executor", "LocalExecutor", "TaskProcess", "kill_process_tree"]

_ALWAYS_PRELOAD = ("__main__", "lakestack.jobs.child", "lakestack.jobs.context")


class TaskProcess:
    """A running task process."""

    def __init__(self, process: BaseProcess) -> None:
        self._process = process
        self.pid: int = process.pid or 0
        self.start_time = _create_time(self.pid)

    @property
    def sentinel(self) -> int:
        """A file descriptor that becomes ready when the process ends."""
        return self._process.sentinel

    def exitcode(self) -> int | None:
        """The exit code once the process ended (negative: killed by that signal)."""
        return self._process.exitcode

    def kill(self) -> None:
        """Kill the process together with every process it started."""
        kill_process_tree(self.pid, self.start_time)
        self._process.join(timeout=5)

    def close(self) -> None:
        """Release the process object (after it ended)."""
        with contextlib.suppress(ValueError):
            self._process.close()


class Executor(ABC):
    """Starts task processes."""

    @abstractmethod
    def start(self, payload: TaskPayload) -> TaskProcess:
        """Start a task process for ``payload``."""

    def close(self) -> None:
        """Stop helper processes."""


class LocalExecutor(Executor):
    """Task processes forked from a warm worker on this machine."""

    def __init__(self, preload: Sequence[str] = ()) -> None:
        # the freeze module goes last: it freezes what the others allocated
        self.preload = [*sorted({*_ALWAYS_PRELOAD, *preload}), "lakestack.jobs._freeze"]
        server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
        if getattr(server, "_preload_modules", None) != self.preload:
            # a worker with other imports is running (another bundle in this process): replace it
            with contextlib.suppress(Exception):
                server._stop()  # type: ignore[attr-defined]
        multiprocessing.set_forkserver_preload(self.preload)
        self._ctx = multiprocessing.get_context("forkserver")

    def warm_up(self) -> None:
        """Start the worker now so that its imports overlap with other work."""
        multiprocessing.forkserver.ensure_running()

    def start(self, payload: TaskPayload) -> TaskProcess:
        process = self._ctx.Process(target=task_main, args=(payload,), daemon=False)
        process.start()
        return TaskProcess(process)


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def kill_process_tree(pid: int, start_time: float | None = None) -> bool:
    """Kill ``pid``, its process group and its descendants; return whether it was alive.

    ``start_time`` (psutil's create_time) guards against a reused pid.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        if start_time is not None and abs(proc.create_time() - start_time) > 1.0:
            return False
        children = proc.children(recursive=True)
    except psutil.Error:
        return False
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    for p in [proc, *children]:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return True


def wait_any(sentinels: Sequence[int], timeout: float) -> None:
    """Sleep until one of the sentinels is ready or ``timeout`` seconds passed."""
    if sentinels:
        multiprocessing.connection.wait(list(sentinels), timeout=timeout)
    else:
        import time

        time.sleep(timeout)
