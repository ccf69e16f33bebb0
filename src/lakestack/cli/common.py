"""What every command shares: the bundle options, error handling, opening the workspace."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from lakestack.console import Console
    from lakestack.workspace import Workspace

__all__ = ["bundle_options", "command", "open_workspace", "parse_pairs"]

F = TypeVar("F", bound=Callable[..., Any])


def parse_pairs(values: tuple[str, ...], option: str, *, commas: bool = False) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        for item in value.split(",") if commas else [value]:
            if not item:
                continue
            if "=" not in item:
                raise click.BadParameter(f"'{item}' is not name=value", param_hint=option)
            name, _, val = item.partition("=")
            pairs[name.strip()] = val
    return pairs


def bundle_options(func: F) -> F:
    """-t/--target, --var and -o/--output, shared by every command that reads the bundle."""
    func = click.option(
        "-o", "--output", type=click.Choice(["text", "json"]), default="text", help="Output format."
    )(func)
    func = click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a bundle variable (repeatable).",
    )(func)
    func = click.option(
        "-t",
        "--target",
        default=None,
        help="Bundle target (default: the target with default: true).",
    )(func)
    return func


def command(func: Callable[..., int | None]) -> Callable[..., None]:
    """Open the console, turn lakestack errors into one line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from lakestack.console import make_console
        from lakestack.errors import LakestackError, UsageError

        console = make_console(kwargs.get("output", "text"))
        debug = click.get_current_context().find_root().params.get("debug") or os.environ.get(
            "LAKESTACK_DEBUG"
        )
        code: int | None = 0
        try:
            code = func(console, *args, **kwargs)
        except LakestackError as exc:
            if debug:
                raise
            console.close()
            console.error(str(exc))
            code = 2 if isinstance(exc, UsageError) else 1
        except Exception as exc:  # a bug: one line, the traceback with --debug
            if debug:
                raise
            console.close()
            console.error(
                f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the traceback "
                "and report it"
            )
            code = 1
        finally:
            console.close()
        from lakestack.utils.process import exit_process

        exit_process(code or 0)

    return wrapper


def open_workspace(
    console: Console, target: str | None, variables: tuple[str, ...], *, strict: bool = False
) -> Workspace:
    """Load the bundle of the current folder for ``target`` and report the loader's notes."""
    from lakestack.workspace import Workspace

    workspace = Workspace.open(
        target=target, variables=parse_pairs(variables, "--var"), strict=strict, console=console
    )
    workspace.report_load_notes()
    return workspace
