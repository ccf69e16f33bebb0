"""The code that runs inside a task process.

A task process is forked from a warm worker (see ``executor``): it becomes the leader of its own
process group (so a timeout or a cancel kills it with everything it started), dies with its
parent, sends its output to the attempt's log file, and runs one task kind. A failure is written
as one line to ``error.json`` for the orchestrator; the traceback goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakestack.jobs.context import RESULT_FILE, write_json_atomic

__all__ = ["ERROR_FILE", "TaskPayload", "run_payload", "task_main"]

ERROR_FILE = "error.json"


@dataclass
class TaskPayload:
    """Everything a task process needs; picklable."""

    kind: str  # python_file | python_wheel | notebook | sql
    output_dir: str
    log_path: str
    cwd: str
    env: dict[str, str]
    workspace_root: str
    argv: list[str] = field(default_factory=list)
    python_file: str | None = None
    package_name: str | None = None
    entry_point: str | None = None
    notebook_path: str | None = None
    notebook_output: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    sql_text: str | None = None


def task_main(payload: TaskPayload) -> None:
    """Entry point of a task process (the target of the worker's Process)."""
    with contextlib.suppress(OSError):
        os.setsid()
    _die_with_parent()
    _redirect_output(Path(payload.log_path))
    os.chdir(payload.cwd)
    os.environ.clear()
    os.environ.update(payload.env)
    code = 0
    try:
        run_payload(payload)
    except SystemExit as exc:
        code = _exit_code(exc)
        if code:
            _write_error(payload, f"exited with code {code}", "SystemExit")
    except BaseException as exc:  # the task's own error, whatever it is
        traceback.print_exc()
        _write_error(payload, _one_line(exc), type(exc).__name__)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    raise SystemExit(code)


def run_payload(payload: TaskPayload) -> None:
    """Run the task in this process (also usable without a worker, for debugging)."""
    if payload.kind == "python_file":
        _run_python_file(payload)
    elif payload.kind == "python_wheel":
        _run_wheel(payload)
    elif payload.kind == "notebook":
        _run_notebook(payload)
    elif payload.kind == "sql":
        _run_sql(payload)
    else:
        raise ValueError(f"unknown task kind {payload.kind!r}")


def _run_python_file(payload: TaskPayload) -> None:
    import runpy

    assert payload.python_file is not None
    script = Path(payload.python_file)
    sys.argv = [str(script), *payload.argv]
    for entry in (payload.cwd, str(script.parent)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    runpy.run_path(str(script), run_name="__main__")


def _run_wheel(payload: TaskPayload) -> None:
    from importlib import metadata

    from lakestack.errors import TaskError

    assert payload.package_name is not None and payload.entry_point is not None
    if payload.cwd not in sys.path:
        sys.path.insert(0, payload.cwd)
    try:
        dist = metadata.distribution(payload.package_name)
    except metadata.PackageNotFoundError:
        raise TaskError(
            f"package '{payload.package_name}' is not installed in this environment; "
            "install it (pip install -e . for the bundle's own package)"
        ) from None
    points = [ep for ep in dist.entry_points if ep.name == payload.entry_point]
    if not points:
        names = ", ".join(sorted({ep.name for ep in dist.entry_points})) or "none"
        raise TaskError(
            f"package '{payload.package_name}' has no entry point '{payload.entry_point}' "
            f"(it has: {names})"
        )
    sys.argv = [payload.entry_point, *payload.argv]
    result = points[0].load()()
    if isinstance(result, int) and result:
        raise SystemExit(result)


def _run_notebook(payload: TaskPayload) -> None:
    from lakestack.jobs.notebook import run_notebook

    assert payload.notebook_path is not None and payload.notebook_output is not None
    exit_value = run_notebook(
        Path(payload.notebook_path),
        parameters=payload.parameters,
        output_path=Path(payload.notebook_output),
        cwd=Path(payload.cwd),
        timeout_seconds=payload.timeout_seconds,
    )
    if exit_value is not None:
        write_json_atomic(Path(payload.output_dir) / RESULT_FILE, {"exit_value": exit_value})


def _run_sql(payload: TaskPayload) -> None:
    from lakestack.lake.sql import run_sql_script

    assert payload.sql_text is not None
    run_sql_script(
        payload.sql_text,
        parameters=payload.parameters,
        workspace_root=Path(payload.workspace_root),
        out=sys.stdout,
    )


def _redirect_output(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent (the worker) exits."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    text = message[0] if message else ""
    name = type(exc).__name__
    if type(exc).__module__.startswith("lakestack"):
        return text or name
    return f"{name}: {text}" if text else name


def _write_error(payload: TaskPayload, message: str, code: str) -> None:
    path = Path(payload.output_dir) / ERROR_FILE
    with contextlib.suppress(OSError):
        write_json_atomic(path, {"error": message, "error_code": code})


def read_error(output_dir: Path) -> tuple[str, str] | None:
    """The one-line error a task process wrote and its code (the exception's class), if any."""
    try:
        data: Any = json.loads((output_dir / ERROR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not error:
        return None
    return str(error), str(data.get("error_code") or "TaskError")
