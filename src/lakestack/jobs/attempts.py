"""One attempt of a task, whatever its kind.

An attempt is polled by the run's event loop until it yields an ``AttemptResult``; it can be
killed (timeout, cancel). Process kinds run in a task process; ``condition_task`` is decided at
once; ``run_job_task`` drives a child run; ``for_each_task`` drives its iterations.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakestack.jobs.child import read_error
from lakestack.jobs.context import RESULT_FILE, VALUES_FILE, WAITING_KEY
from lakestack.jobs.executor import TaskProcess
from lakestack.jobs.states import TaskState

__all__ = ["Attempt", "AttemptResult", "DoneAttempt", "ProcessAttempt"]


@dataclass
class AttemptResult:
    """How an attempt ended."""

    state: TaskState
    error: str | None = None
    exit_code: int | None = None
    outcome: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Attempt(ABC):
    """A started attempt."""

    uses_slot = False
    pid: int | None = None
    pid_start_time: float | None = None
    child_run_id: int | None = None

    @abstractmethod
    def poll(self) -> AttemptResult | None:
        """The result once the attempt ended, else None."""

    @abstractmethod
    def kill(self, state: TaskState, reason: str) -> None:
        """Stop the attempt; it then ends with ``state``."""

    def sentinels(self) -> list[int]:
        """File descriptors that become ready when something happens."""
        return []


class DoneAttempt(Attempt):
    """An attempt decided without a process (a condition, a reference that failed)."""

    def __init__(self, result: AttemptResult) -> None:
        self._result = result

    def poll(self) -> AttemptResult | None:
        return self._result

    def kill(self, state: TaskState, reason: str) -> None:
        pass


class ProcessAttempt(Attempt):
    """A task process: its exit code, error file, task values and result file."""

    uses_slot = True

    def __init__(self, process: TaskProcess, output_dir: Path) -> None:
        self._process = process
        self._output_dir = output_dir
        self._killed: tuple[TaskState, str] | None = None
        self._result: AttemptResult | None = None
        self.pid = process.pid
        self.pid_start_time = process.start_time

    def sentinels(self) -> list[int]:
        return [] if self._result else [self._process.sentinel]

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        code = self._process.exitcode()
        if code is None:
            return None
        self._process.close()
        self._result = self._collect(code)
        return self._result

    def kill(self, state: TaskState, reason: str) -> None:
        if self._result is None and self._killed is None:
            self._killed = (state, reason)
            self._process.kill()

    def _collect(self, code: int) -> AttemptResult:
        details: dict[str, Any] = {}
        result_file = _read_json(self._output_dir / RESULT_FILE)
        if isinstance(result_file, dict) and "exit_value" in result_file:
            details["notebook_exit_value"] = result_file["exit_value"]
        if self._killed is not None:
            state, reason = self._killed
            return AttemptResult(state, error=reason, exit_code=code, details=details)
        if code == 0:
            values = _read_json(self._output_dir / VALUES_FILE)
            waiting = result_file.get(WAITING_KEY) if isinstance(result_file, dict) else None
            if isinstance(waiting, dict):  # the task asked for a person's approval
                return AttemptResult(
                    TaskState.WAITING_FOR_APPROVAL,
                    exit_code=0,
                    details={**details, WAITING_KEY: waiting},
                )
            return AttemptResult(
                TaskState.SUCCESS,
                exit_code=0,
                values=values if isinstance(values, dict) else {},
                details=details,
            )
        written = read_error(self._output_dir)
        if written is None:
            killed = code < 0
            error = f"killed by signal {-code}" if killed else f"exited with code {code}"
            details["error_code"] = "Killed" if killed else "ExitCode"
        else:
            error, details["error_code"] = written
        return AttemptResult(TaskState.FAILED, error=error, exit_code=code, details=details)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
