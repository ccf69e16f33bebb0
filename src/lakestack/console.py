"""All user-facing output goes through a Console.

Three implementations: ``TerminalConsole`` (rich, with a live task table for runs),
``JsonConsole`` (one JSON document on stdout for ``--output json``; messages go to stderr) and
``NoopConsole`` (tests and library use). Library code receives a console; it never prints.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["Console", "JsonConsole", "NoopConsole", "TerminalConsole", "make_console"]

_STATE_STYLE = {
    "SUCCESS": "green",
    "RUNNING": "cyan",
    "PENDING": "dim",
    "QUEUED": "dim",
    "BLOCKED": "dim",
    "FAILED": "red",
    "TIMEDOUT": "red",
    "CANCELED": "yellow",
    "UPSTREAM_FAILED": "red",
    "UPSTREAM_CANCELED": "yellow",
    "SKIPPED": "dim",
    "EXCLUDED": "dim",
    "WAITING_FOR_RETRY": "yellow",
    "WAITING_FOR_APPROVAL": "magenta",
}


class Console:
    """What commands and the orchestrator may say to a person."""

    def info(self, message: str) -> None:
        """A line of progress or a result."""

    def warning(self, message: str) -> None:
        """Something the user should know and may want to fix."""

    def error(self, message: str) -> None:
        """A failure (the CLI prints ``Error: ...``)."""

    def result(self, data: Any, *, title: str | None = None) -> None:
        """The command's result: a table, a mapping or a message."""

    def table(
        self, rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str], title: str = ""
    ) -> None:
        """Rows to show as a table (JSON: a list of objects)."""
        self.result(list(rows), title=title)

    def run_started(self, run_id: int, job_key: str, task_keys: Sequence[str]) -> None:
        """A job run started; ``task_keys`` in topological order."""

    def task_state(self, run_id: int, task_key: str, state: str, message: str = "") -> None:
        """A task of a run changed state."""

    def run_finished(self, run_id: int, state: str, message: str = "") -> None:
        """A run ended."""

    def close(self) -> None:
        """Flush pending output."""


class NoopConsole(Console):
    """Says nothing; keeps what it was told for tests."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.results: list[Any] = []

    def info(self, message: str) -> None:
        self.messages.append(("info", message))

    def warning(self, message: str) -> None:
        self.messages.append(("warning", message))

    def error(self, message: str) -> None:
        self.messages.append(("error", message))

    def result(self, data: Any, *, title: str | None = None) -> None:
        self.results.append(data)

    def task_state(self, run_id: int, task_key: str, state: str, message: str = "") -> None:
        self.messages.append(("task", f"{task_key} {state}"))


class TerminalConsole(Console):
    """Rich output for people: colours on a terminal, a live table while a run executes."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        from rich.console import Console as RichConsole

        self._out = RichConsole(file=out or sys.stdout, highlight=False, soft_wrap=True)
        self._err = RichConsole(file=err or sys.stderr, highlight=False, soft_wrap=True)
        self._live: Any = None
        # the run the command started, then the child runs it starts (run_job_task), in order
        self._runs: dict[int, _RunView] = {}
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        self._out.print(message, markup=False)

    def warning(self, message: str) -> None:
        self._err.print(f"[yellow]Warning:[/yellow] {_escape(message)}")

    def error(self, message: str) -> None:
        self._err.print(f"[red]Error:[/red] {_escape(message)}")

    def result(self, data: Any, *, title: str | None = None) -> None:
        if isinstance(data, str):
            self._out.print(data, markup=False)
        elif isinstance(data, Mapping):
            if title:
                self._out.print(f"[bold]{_escape(title)}[/bold]")
            width = max((len(str(k)) for k in data), default=0)
            for key, value in data.items():
                shown = value if isinstance(value, str) else json.dumps(value, default=str)
                self._out.print(f"  {key!s:<{width}}  {shown}", markup=False)
        else:
            self._out.print(json.dumps(data, indent=2, default=str), markup=False)

    def table(
        self, rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str], title: str = ""
    ) -> None:
        from rich.table import Table

        table = Table(title=title or None, title_justify="left", box=None, header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(row.get(column)) for column in columns))
        if not rows:
            self._out.print(f"no {title.lower() or 'rows'}")
        else:
            self._out.print(table)

    def run_started(self, run_id: int, job_key: str, task_keys: Sequence[str]) -> None:
        with self._lock:
            nested = bool(self._runs)
            self._runs[run_id] = _RunView(
                job_key, dict.fromkeys(task_keys, ("PENDING", "")), nested
            )
            if nested:
                if self._live is not None:
                    self._live.update(self._render())
                else:
                    self._out.print(f"  child run {run_id} of job {job_key} started", markup=False)
                return
        self._out.print(f"Run {run_id} of job [bold]{_escape(job_key)}[/bold] started")
        if self._out.is_terminal:
            from rich.live import Live

            self._live = Live(
                self._render(), console=self._out, refresh_per_second=8, transient=False
            )
            self._live.start()

    def task_state(self, run_id: int, task_key: str, state: str, message: str = "") -> None:
        with self._lock:
            view = self._runs.get(run_id)
            if view is None:
                return
            view.tasks[task_key] = (state, message)
            if self._live is not None:
                self._live.update(self._render())
            else:
                indent = "    " if view.nested else "  "
                label = f"{view.job_key}.{task_key}" if view.nested else task_key
                suffix = f"  {message}" if message else ""
                self._out.print(f"{indent}{label:<24} {state}{suffix}", markup=False)

    def run_finished(self, run_id: int, state: str, message: str = "") -> None:
        view = self._runs.get(run_id)
        if view is not None and view.nested:
            with self._lock:
                view.state = state
                if self._live is not None:
                    self._live.update(self._render())
                else:
                    self._out.print(f"  child run {run_id} {state}", markup=False)
            return
        self._stop_live()
        self._runs.clear()
        style = _STATE_STYLE.get(state, "white")
        suffix = f": {_escape(message)}" if message else ""
        self._out.print(f"Run {run_id} [{style}]{state}[/{style}]{suffix}")

    def close(self) -> None:
        self._stop_live()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False, padding=(0, 2))
        for run_id, view in self._runs.items():
            indent = "  " if view.nested else ""
            if view.nested:
                style = _STATE_STYLE.get(view.state, "white")
                table.add_row(
                    f"[bold]{_escape(view.job_key)}[/bold]",
                    f"[{style}]run {run_id} {view.state}[/{style}]",
                    "",
                )
            for key, (state, message) in view.tasks.items():
                style = _STATE_STYLE.get(state, "white")
                table.add_row(
                    f"{indent}{_escape(key)}", f"[{style}]{state}[/{style}]", _escape(message)
                )
        return table


class _RunView:
    """What the live table shows of one run."""

    def __init__(self, job_key: str, tasks: dict[str, tuple[str, str]], nested: bool) -> None:
        self.job_key = job_key
        self.tasks = tasks
        self.nested = nested
        self.state = "RUNNING"


class JsonConsole(Console):
    """``--output json``: the command's result as one JSON document on stdout."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._results: list[Any] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self._err.write(json.dumps({"warning": message}) + "\n")

    def error(self, message: str) -> None:
        self._err.write(json.dumps({"error": message}) + "\n")

    def result(self, data: Any, *, title: str | None = None) -> None:
        self._results.append(data)

    def close(self) -> None:
        if self._results:
            data = self._results[0] if len(self._results) == 1 else self._results
            self._out.write(json.dumps(data, indent=2, default=str) + "\n")
            self._out.flush()
            self._results = []


def make_console(output: str) -> Console:
    """The console for ``--output text|json``."""
    return JsonConsole() if output == "json" else TerminalConsole()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return _escape(str(value))
