"""Finding the bundle file, and what the environment says: the user and the git checkout."""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lakestack.bundle.model import GitInfo
from lakestack.errors import ConfigError

__all__ = ["BUNDLE_FILE_NAMES", "current_user", "find_bundle_file", "read_git"]

BUNDLE_FILE_NAMES = ("lakestack.yml", "lakestack.yaml", "databricks.yml", "databricks.yaml")


def find_bundle_file(path: str | os.PathLike[str] | None = None) -> Path:
    """The bundle file at ``path``: the file itself, or the one in the folder or its parents.

    Args:
        path: A bundle file or a folder; None means the current directory.

    Raises:
        ConfigError: No bundle file is found, or a folder holds two.
    """
    start = (Path(path) if path else Path.cwd()).expanduser().resolve()
    if start.is_file():
        return start
    if not start.exists():
        raise ConfigError(f"{start} does not exist; give a bundle file or a folder")
    for folder in (start, *start.parents):
        found = [folder / name for name in BUNDLE_FILE_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            names = " and ".join(p.name for p in found)
            raise ConfigError(f"{folder} holds {names}; keep one bundle file per folder")
        if found:
            return found[0]
    raise ConfigError(
        f"no bundle file ({', '.join(BUNDLE_FILE_NAMES)}) in {start} or its parents; "
        "cd into a bundle folder or pass its path (see docs/bundle.md)"
    )


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """``LAKESTACK_USER`` from ``environ``, else the OS user."""
    env = os.environ if environ is None else environ
    if env.get("LAKESTACK_USER"):
        return env["LAKESTACK_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def read_git(root: Path) -> GitInfo:
    """The origin URL, branch and commit of the checkout at ``root``; never fails."""
    if _git(root, "rev-parse", "--is-inside-work-tree") != "true":
        return GitInfo()
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    return GitInfo(
        origin_url=_git(root, "config", "--get", "remote.origin.url"),
        branch=None if branch == "HEAD" else branch,
        commit=_git(root, "rev-parse", "HEAD"),
    )
