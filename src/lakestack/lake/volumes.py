"""Where a Unity Catalog volume path lives on disk.

Databricks code names files in volumes as ``/Volumes/<catalog>/<schema>/<volume>/...`` (or with a
``dbfs:`` prefix). Locally a volume is a folder in the warehouse, next to the tables of its
schema, so the same paths work unchanged: ``/Volumes/main/iris/raw/a.csv`` is
``<workspace_root>/warehouse/main/iris/raw/a.csv``. ``file:`` paths are plain local paths.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lakestack.errors import LakestackError, TerminalError

__all__ = ["VolumePathError", "is_volume_path", "resolve_path", "volume_uri"]

_VOLUMES = "/Volumes"


class VolumePathError(LakestackError, TerminalError):
    """A path that names no volume, or a file system lakestack does not map."""


def is_volume_path(path: str) -> bool:
    """True for ``/Volumes/...`` and ``dbfs:/Volumes/...`` paths."""
    bare = path[len("dbfs:") :] if path.startswith("dbfs:") else path
    return bare == _VOLUMES or bare.startswith(_VOLUMES + "/")


def resolve_path(path: str, workspace_root: Path | str) -> Path:
    """The local path for a volume, ``file:``, ``dbfs:/Volumes`` or plain path.

    Args:
        path: A path as Databricks code writes it.
        workspace_root: The workspace root (the ``.lakestack`` folder by default).

    Returns:
        The local path; a plain relative path stays relative (to the working directory).

    Raises:
        VolumePathError: a ``/Volumes`` path without catalog, schema and volume, a path that
            climbs out of its volume with ``..``, or a DBFS path outside ``/Volumes``.
    """
    if path.startswith("file:"):
        return Path(_strip_file_scheme(path))
    if path.startswith("dbfs:"):
        if not is_volume_path(path):
            raise VolumePathError(
                f"'{path}' is a DBFS root path, which lakestack does not provide; "
                "store the file in a volume (/Volumes/<catalog>/<schema>/<volume>/...) instead"
            )
        path = path[len("dbfs:") :]
    if not is_volume_path(path):
        return Path(path)
    parts = [part for part in PurePosixPath(path).parts[2:] if part not in ("", ".")]
    if len(parts) < 3:
        raise VolumePathError(
            f"'{path}' is not a volume path: expected /Volumes/<catalog>/<schema>/<volume>/..."
        )
    if ".." in parts:
        raise VolumePathError(f"'{path}' leaves its volume with '..'; use a path inside it")
    return Path(workspace_root).joinpath("warehouse", *parts)


def volume_uri(path: str) -> str:
    """The ``dbfs:/Volumes/...`` form of a volume path, as ``dbutils.fs.ls`` reports it."""
    return path if path.startswith("dbfs:") else f"dbfs:{path}"


def _strip_file_scheme(path: str) -> str:
    rest = path[len("file:") :]
    if rest.startswith("//"):  # file:///tmp/x or file://localhost/tmp/x
        rest = rest[2:]
        rest = rest[rest.index("/") :] if "/" in rest else "/"
    return rest
