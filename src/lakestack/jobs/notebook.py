"""Run a notebook task: ``.ipynb`` or Databricks ``.py`` notebook source, in a real kernel.

The notebook runs in an IPython kernel (nbclient) that inherits this process's environment,
so task code finds its ``TaskContext`` and ``dbutils`` works as in the task process. Parameters
reach code the two ways users expect: ``dbutils.widgets.get`` (bound by a hidden first cell
tagged ``lakestack-setup``) and, with papermill's semantics, a cell tagged
``injected-parameters`` placed after the cell tagged ``parameters``. The executed notebook, with
its outputs, is always written, also when a cell fails: it is the task's log.

Databricks notebook source (``# Databricks notebook source``, cells split by
``# COMMAND ----------``) is converted into a notebook first. ``%md`` becomes markdown, ``%sql``
runs through DuckDB, ``%run`` inlines the other notebook, ``%sh`` runs a shell, ``%pip`` is
skipped (packages come from the environment). ``convert_source`` is a pure function.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

from lakestack.errors import TaskError

__all__ = [
    "DATABRICKS_HEADER",
    "NotebookError",
    "SourceCell",
    "convert_source",
    "find_notebook",
    "load_notebook",
    "prepare_notebook",
    "run_notebook",
]

DATABRICKS_HEADER = "# Databricks notebook source"
_COMMAND = re.compile(r"^# COMMAND -{5,}\s*$")
_MAGIC = re.compile(r"^# MAGIC ?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SETUP_TAG = "lakestack-setup"
_PARAMETERS_TAG = "parameters"
_INJECTED_TAG = "injected-parameters"
_EXIT_ENAME = "NotebookExit"
_EXIT_HINT = "To exit: use 'exit'"  # IPython's note on a SystemExit, noise for NotebookExit
_PIP_NOTE = "skipped %pip: install packages into the environment instead"
_UNSUPPORTED = ("%scala", "%r", "%md-sandbox-scala")


class NotebookError(TaskError):
    """A notebook cell raised an error; the message is one line naming the cell and error."""

    def __init__(
        self, message: str, *, cell: int | None = None, ename: str = "", evalue: str = ""
    ) -> None:
        super().__init__(message)
        self.cell = cell
        self.ename = ename
        self.evalue = evalue


@dataclass
class SourceCell:
    """A cell of a converted notebook: ``code`` or ``markdown``, with its tags."""

    cell_type: str
    source: str
    tags: list[str] = field(default_factory=list)


def find_notebook(path: str | Path, base: Path) -> Path:
    """The notebook file for a path as Databricks writes it (the extension may be left off).

    Args:
        path: Absolute, or relative to ``base``.
        base: The folder relative paths start from.

    Raises:
        TaskError: no file matches.
    """
    given = Path(path)
    start = given if given.is_absolute() else base / given
    for candidate in (
        start,
        start.with_name(start.name + ".ipynb"),
        start.with_name(start.name + ".py"),
    ):
        if candidate.is_file():
            return candidate
    raise TaskError(
        f"notebook '{path}' not found (looked for {start}, {start.name}.ipynb and "
        f"{start.name}.py in {start.parent})"
    )


def convert_source(text: str, *, base_dir: Path, _seen: tuple[Path, ...] = ()) -> list[SourceCell]:
    """Split Databricks notebook source into cells and translate its magics.

    Args:
        text: The ``.py`` file's text, starting with ``# Databricks notebook source``.
        base_dir: The notebook's folder; ``%run`` paths are relative to it.

    Returns:
        The cells, one per ``# COMMAND ----------`` block (blank blocks dropped).

    Raises:
        TaskError: a ``%run`` target that is missing or runs itself, or a language lakestack
            cannot run (``%scala``, ``%r``).
    """
    lines = text.splitlines()
    if lines and lines[0].strip() == DATABRICKS_HEADER:
        lines = lines[1:]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if _COMMAND.match(line):
            blocks.append([])
        elif not line.startswith("# DBTITLE"):
            blocks[-1].append(line)
    cells: list[SourceCell] = []
    for block in blocks:
        body = _strip_blank(block)
        if not body:
            continue
        if _MAGIC.match(body[0]):
            magic = [_MAGIC.sub("", line, count=1) if _MAGIC.match(line) else line for line in body]
            cells.append(_translate(magic, base_dir, _seen))
        else:
            cells.append(SourceCell("code", "\n".join(body)))
    return cells


def load_notebook(path: Path) -> Any:
    """Read a notebook (``.ipynb``, or Databricks or plain ``.py`` source) as nbformat v4.

    Cell magics that Databricks defines (``%sql``, ``%run``, ``%pip``, ...) are translated in
    ``.ipynb`` code cells too.

    Raises:
        TaskError: the file cannot be read or parsed.
    """
    nbformat = _nbformat()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskError(f"cannot read notebook {path}: {exc.strerror}") from exc
    if path.suffix == ".ipynb":
        try:
            nb = nbformat.reads(text, as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types
            raise TaskError(f"notebook {path} is not a valid .ipynb file: {exc}") from exc
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.source.lstrip().startswith("%"):
                body = _strip_blank(cell.source.splitlines())
                if _is_databricks_magic(body[0]):
                    new = _translate(body, path.parent, (path.resolve(),))
                    nb.cells[index] = _to_nbcell(new)
        return nb
    if text.startswith(DATABRICKS_HEADER):
        cells = convert_source(text, base_dir=path.parent, _seen=(path.resolve(),))
    else:
        cells = [SourceCell("code", text)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [_to_nbcell(cell) for cell in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def prepare_notebook(
    nb: Any, *, parameters: Mapping[str, str], notebook_path: Path, exit_file: Path, cwd: Path
) -> list[int | None]:
    """Add the setup cell and the injected parameters to ``nb`` (in place).

    Returns:
        For each cell of the prepared notebook, its 1-based number in the user's notebook,
        or None for a cell lakestack added.
    """
    nbformat = _nbformat()
    added = {_INJECTED_TAG, _SETUP_TAG}  # left in the notebook by an earlier run
    cells = [cell for cell in nb.cells if not added & set(cell.metadata.get("tags", []))]
    numbers: list[int | None] = list(range(1, len(cells) + 1))
    injected = nbformat.v4.new_code_cell(_parameters_code(parameters))
    injected.metadata["tags"] = [_INJECTED_TAG]
    where = next(
        (i + 1 for i, c in enumerate(cells) if _PARAMETERS_TAG in c.metadata.get("tags", [])), 0
    )
    cells.insert(where, injected)
    numbers.insert(where, None)
    setup = nbformat.v4.new_code_cell(_setup_code(parameters, notebook_path, exit_file, cwd))
    setup.metadata["tags"] = [_SETUP_TAG]
    setup.metadata["jupyter"] = {"source_hidden": True}
    cells.insert(0, setup)
    nb.cells = cells
    return [None, *numbers]


def run_notebook(
    path: Path,
    *,
    parameters: Mapping[str, str],
    output_path: Path,
    cwd: Path,
    timeout_seconds: int | None = None,
    kernel_name: str = "python3",
) -> str | None:
    """Execute a notebook in a new kernel and keep the executed copy.

    Args:
        path: The ``.ipynb`` or ``.py`` notebook.
        parameters: Widget values; also injected as string variables after the ``parameters``
            cell.
        output_path: Where the executed notebook (with outputs) is written, also on failure.
        cwd: The kernel's working directory (the bundle root).
        timeout_seconds: Limit for the whole notebook; None or 0 for no limit.
        kernel_name: The Jupyter kernel to run.

    Returns:
        The value passed to ``dbutils.notebook.exit``, or None if the notebook did not call it.

    Raises:
        NotebookError: a cell raised; the message is ``cell N raised Type: message``.
        TaskError: the notebook is missing or unreadable, the kernel died or did not start, or
            the notebook ran longer than ``timeout_seconds``.
    """
    from jupyter_core.utils import run_sync

    started = monotonic()
    path = find_notebook(path, cwd)
    nb = load_notebook(path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    exit_file = output_path.with_name(f".{output_path.name}.exit.json")
    exit_file.unlink(missing_ok=True)
    numbers = prepare_notebook(
        nb, parameters=parameters, notebook_path=path.resolve(), exit_file=exit_file, cwd=cwd
    )
    deadline = started + timeout_seconds if timeout_seconds else None
    try:
        failure = run_sync(_execute)(nb, kernel_name=kernel_name, cwd=cwd, deadline=deadline)
    except _TimeoutError:
        raise TaskError(f"notebook exceeded timeout_seconds={timeout_seconds}") from None
    except _KernelStartError as exc:
        raise TaskError(str(exc)) from exc.__cause__
    finally:
        _write_notebook(nb, output_path)
    exit_value = _read_exit_value(exit_file)
    if failure is None:
        return exit_value
    index, ename, evalue = failure
    if ename == _EXIT_ENAME:
        _show_exit(nb.cells[index], exit_value if exit_value is not None else evalue)
        _write_notebook(nb, output_path)
        return exit_value if exit_value is not None else evalue
    number = numbers[index]
    where = f"cell {number}" if number is not None else "the lakestack setup cell"
    message = f"{where} raised {ename}: {evalue}" if evalue else f"{where} raised {ename}"
    raise NotebookError(message.splitlines()[0], cell=number, ename=ename, evalue=evalue)


class _TimeoutError(Exception):
    """The notebook's deadline passed."""


class _KernelStartError(Exception):
    """The kernel could not be started."""


async def _execute(
    nb: Any, *, kernel_name: str, cwd: Path, deadline: float | None
) -> tuple[int, str, str] | None:
    """Run the cells; the first failing cell as (index, ename, evalue), or None."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=None,
        startup_timeout=60,
        shutdown_kernel="graceful",  # let atexit hooks (MLflow ending its runs) run
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not the plain-TCP warning
        resources={"metadata": {"path": str(cwd)}},
    )
    client.reset_execution_trackers()
    try:
        client.km = client.create_kernel_manager()
        await client.async_start_new_kernel(env=dict(os.environ), cwd=str(cwd))
        await client.async_start_new_kernel_client()
    except NoSuchKernel as exc:
        raise _KernelStartError(
            f"no Jupyter kernel named '{kernel_name}'; install ipykernel in this environment "
            "or set the kernel the notebook names"
        ) from exc
    except (RuntimeError, TimeoutError) as exc:
        raise _KernelStartError(f"the notebook kernel did not start: {exc}") from exc
    async with client.async_setup_kernel():
        for index, cell in enumerate(nb.cells):
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    client.shutdown_kernel = "immediate"
                    raise _TimeoutError
                client.timeout = max(1, math.ceil(remaining))
            try:
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1
                )
            except CellTimeoutError:
                _echo(cell)
                client.shutdown_kernel = "immediate"
                raise _TimeoutError from None
            except CellExecutionError as exc:
                _echo(cell, errors=exc.ename != _EXIT_ENAME)
                return index, str(exc.ename), str(exc.evalue)
            except DeadKernelError as exc:
                _echo(cell)
                return index, "DeadKernelError", f"the kernel died ({exc})"
            _echo(cell)
    return None


def _echo(cell: Any, *, errors: bool = True) -> None:
    """Copy a cell's text outputs to this process's output: the task log."""
    for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
        kind = out.get("output_type")
        if kind == "stream" and not (not errors and _EXIT_HINT in out.get("text", "")):
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain")
            if text:
                sys.stdout.write(f"{text}\n")
        elif kind == "error" and errors:
            sys.stderr.write(_ANSI.sub("", "\n".join(out.get("traceback", []))) + "\n")
    sys.stdout.flush()


def _strip_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _is_databricks_magic(first: str) -> bool:
    word = first.split(maxsplit=1)[0] if first.strip() else ""
    return word in {"%sql", "%md", "%md-sandbox", "%pip", "%sh", "%run", "%python", *_UNSUPPORTED}


def _translate(lines: list[str], base_dir: Path, seen: tuple[Path, ...]) -> SourceCell:
    """One magic cell (``# MAGIC`` prefixes removed) as a markdown or code cell."""
    first = lines[0].strip()
    word, _, rest = first.partition(" ")
    body = "\n".join([rest, *lines[1:]]).strip("\n") if rest else "\n".join(lines[1:])
    if word in ("%md", "%md-sandbox"):
        return SourceCell("markdown", body)
    if word == "%python":
        return SourceCell("code", body)
    if word == "%sql":
        return SourceCell("code", _sql_code(body))
    if word == "%sh":
        return SourceCell("code", _sh_code(body))
    if word == "%pip":
        return SourceCell("code", f"# %pip {rest}\nprint({_PIP_NOTE!r})")
    if word == "%run":
        return SourceCell("code", _inline_run(rest, base_dir, seen))
    if word in _UNSUPPORTED:
        raise TaskError(f"a {word} cell cannot run in lakestack (Python only); port it to Python")
    return SourceCell("code", "\n".join(lines))  # an IPython magic such as %load_ext


def _sql_code(query: str) -> str:
    return (
        "# %sql\n"
        "from lakestack.lake.sql import sql_cell as _lakestack_sql_cell\n"
        f"_sqldf = _lakestack_sql_cell({query!r})\n"
        "if _sqldf is not None:\n"
        "    display(_sqldf)"
    )


def _sh_code(script: str) -> str:
    return (
        "# %sh\n"
        "import subprocess as _lakestack_subprocess\n"
        "import sys as _lakestack_sys\n"
        f"_lakestack_sh = _lakestack_subprocess.run({script!r}, shell=True, "
        "capture_output=True, text=True)\n"
        "_lakestack_sys.stdout.write(_lakestack_sh.stdout)\n"
        "_lakestack_sys.stderr.write(_lakestack_sh.stderr)\n"
        "_lakestack_sh.check_returncode()"
    )


def _inline_run(argument: str, base_dir: Path, seen: tuple[Path, ...]) -> str:
    target = argument.split()[0] if argument.strip() else ""
    if not target:
        raise TaskError("a %run cell names no notebook; write %run ./other_notebook")
    other = find_notebook(target.strip("\"'"), base_dir)
    if other.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, other.resolve()))
        raise TaskError(f"%run {target} runs in a cycle ({chain}); remove one of the %run cells")
    text = other.read_text(encoding="utf-8")
    inner_seen = (*seen, other.resolve())
    if other.suffix == ".ipynb":
        nbformat = _nbformat()
        nb = nbformat.reads(text, as_version=4)
        cells = [SourceCell(c.cell_type, c.source) for c in nb.cells]
        for index, cell in enumerate(cells):
            body = _strip_blank(cell.source.splitlines())
            if cell.cell_type == "code" and body and _is_databricks_magic(body[0]):
                cells[index] = _translate(body, other.parent, inner_seen)
    elif text.startswith(DATABRICKS_HEADER):
        cells = convert_source(text, base_dir=other.parent, _seen=inner_seen)
    else:
        cells = [SourceCell("code", text)]
    code = [cell.source for cell in cells if cell.cell_type == "code" and cell.source.strip()]
    return "\n\n".join([f"# %run {argument.strip()}", *code])


def _to_nbcell(cell: SourceCell) -> Any:
    nbformat = _nbformat()
    if cell.cell_type == "markdown":
        new = nbformat.v4.new_markdown_cell(cell.source)
    else:
        new = nbformat.v4.new_code_cell(cell.source)
    if cell.tags:
        new.metadata["tags"] = list(cell.tags)
    return new


def _parameters_code(parameters: Mapping[str, str]) -> str:
    lines = ["# Parameters"]
    for name, value in parameters.items():
        if name.isidentifier() and not keyword.iskeyword(name):
            lines.append(f"{name} = {str(value)!r}")
    return "\n".join(lines)


def _setup_code(
    parameters: Mapping[str, str], notebook_path: Path, exit_file: Path, cwd: Path
) -> str:
    paths = [str(notebook_path.parent), str(cwd.resolve())]
    return "\n".join(
        [
            "import sys as _lakestack_sys",
            f"for _lakestack_p in {paths!r}:",
            "    if _lakestack_p not in _lakestack_sys.path:",
            "        _lakestack_sys.path.insert(0, _lakestack_p)",
            "from lakestack import dbutils",
            f"dbutils.widgets._bind({dict(parameters)!r})",
            f"dbutils.notebook._bind(notebook_path={str(notebook_path)!r}, "
            f"exit_file={str(exit_file)!r})",
            "del _lakestack_sys, _lakestack_p",
        ]
    )


def _read_exit_value(exit_file: Path) -> str | None:
    try:
        data = json.loads(exit_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        exit_file.unlink(missing_ok=True)
    value = data.get("exit_value") if isinstance(data, dict) else None
    return None if value is None else str(value)


def _show_exit(cell: Any, value: str) -> None:
    """Replace the NotebookExit traceback with the note Databricks shows."""
    nbformat = _nbformat()
    kept = [
        out
        for out in cell.get("outputs", [])
        if out.get("output_type") != "error"
        and not (out.get("name") == "stderr" and _EXIT_HINT in out.get("text", ""))
    ]
    kept.append(nbformat.v4.new_output("stream", name="stdout", text=f"Notebook exited: {value}\n"))
    cell["outputs"] = kept


def _write_notebook(nb: Any, output_path: Path) -> None:
    nbformat = _nbformat()
    tmp = output_path.with_name(f".{output_path.name}.{os.getpid()}.tmp")
    try:
        nbformat.write(nb, str(tmp))
        os.replace(tmp, output_path)
    except OSError as exc:
        sys.stderr.write(f"lakestack: could not write the executed notebook {output_path}: {exc}\n")


def _nbformat() -> Any:
    """nbformat, typed as Any: the package has no type hints."""
    import nbformat

    return nbformat
