"""Find the workspace of the bundle the code runs in when no job told us.

Inside a job the task context names the workspace root. Run from a plain ``python`` or an
interactive notebook, the default target's embedded workspace is ``.lakestack`` beside the
nearest bundle file above the working directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLE_FILES", "find_bundle_root", "find_workspace_root"]

BUNDLE_FILES = ("lakestack.yml", "lakestack.yaml", "databricks.yml", "databricks.yaml")


def find_bundle_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) holding a bundle file."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in BUNDLE_FILES):
            return folder
    return None


def find_workspace_root(start: Path | None = None) -> Path:
    """``<bundle root>/.lakestack``, or ``<cwd>/.lakestack`` outside any bundle."""
    root = find_bundle_root(start)
    return (root or (start or Path.cwd()).resolve()) / ".lakestack"
