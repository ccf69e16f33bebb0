"""``dbutils.fs``: files on volumes and local paths, with the Databricks method names.

``/Volumes/<catalog>/<schema>/<volume>/...`` (and ``dbfs:/Volumes/...``) resolve to the volume's
folder in the warehouse; ``file:`` and plain paths are local. Results use the Databricks shapes:
``ls`` returns ``FileInfo`` tuples, folders end with ``/``, times are in milliseconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from lakestack.errors import LakestackError, TerminalError
from lakestack.lake.volumes import is_volume_path, resolve_path, volume_uri
from lakestack.runtime import workspace_root

__all__ = ["FileInfo", "FsError", "FsUtils"]


class FsError(LakestackError, TerminalError):
    """A file operation that cannot be done (missing file, folder without recurse)."""


class FileInfo(NamedTuple):
    """One entry of ``dbutils.fs.ls``."""

    path: str
    name: str
    size: int
    modificationTime: int  # noqa: N815 - the Databricks name


class FsUtils:
    """The ``dbutils.fs`` API."""

    def ls(self, path: str) -> list[FileInfo]:
        """The entries of a folder (or the file itself), sorted by name.

        Raises:
            FsError: the path does not exist.
        """
        local = self._local(path)
        if not local.exists():
            raise FsError(f"ls: '{path}' does not exist")
        if local.is_file():
            return [_info(_display(path), local)]
        prefix = _display(path).rstrip("/")
        return [_info(f"{prefix}/{child.name}", child) for child in sorted(local.iterdir())]

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Copy a file, or a folder with ``recurse=True``.

        Raises:
            FsError: the source is missing, or is a folder and ``recurse`` is False.
        """
        source, target = self._local(from_), self._local(to)
        if source.is_dir():
            if not recurse:
                raise FsError(f"cp: '{from_}' is a folder; pass recurse=True to copy it")
            shutil.copytree(source, target, dirs_exist_ok=True)
            return True
        if not source.exists():
            raise FsError(f"cp: '{from_}' does not exist")
        if target.is_dir():
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Move a file, or a folder with ``recurse=True``.

        Raises:
            FsError: the source is missing, or is a folder and ``recurse`` is False.
        """
        source, target = self._local(from_), self._local(to)
        if not source.exists():
            raise FsError(f"mv: '{from_}' does not exist")
        if source.is_dir() and not recurse:
            raise FsError(f"mv: '{from_}' is a folder; pass recurse=True to move it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
        return True

    def rm(self, path: str, recurse: bool = False) -> bool:
        """Delete a file, or a folder with ``recurse=True``; False if nothing was there.

        Raises:
            FsError: a non-empty folder without ``recurse``.
        """
        local = self._local(path)
        if not local.exists():
            return False
        if local.is_dir():
            if recurse:
                shutil.rmtree(local)
            elif any(local.iterdir()):
                raise FsError(f"rm: '{path}' is a non-empty folder; pass recurse=True")
            else:
                local.rmdir()
            return True
        local.unlink()
        return True

    def mkdirs(self, path: str) -> bool:
        """Create a folder and its parents."""
        self._local(path).mkdir(parents=True, exist_ok=True)
        return True

    def put(self, path: str, contents: str, overwrite: bool = False) -> bool:
        """Write a string to a file (UTF-8).

        Raises:
            FsError: the file exists and ``overwrite`` is False.
        """
        local = self._local(path)
        if local.exists() and not overwrite:
            raise FsError(f"put: '{path}' already exists; pass overwrite=True to replace it")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(contents, encoding="utf-8")
        return True

    def head(self, path: str, maxBytes: int = 65536) -> str:  # noqa: N803
        """The first ``maxBytes`` bytes of a file, decoded as UTF-8.

        Raises:
            FsError: the path is missing or is a folder.
        """
        local = self._local(path)
        if not local.is_file():
            raise FsError(f"head: '{path}' is not a file")
        with local.open("rb") as handle:
            return handle.read(maxBytes).decode("utf-8", errors="replace")

    def _local(self, path: str) -> Path:
        return resolve_path(path, workspace_root())


def _display(path: str) -> str:
    if is_volume_path(path):
        return volume_uri(path)
    if path.startswith("file:"):
        return path
    return f"file:{Path(path).resolve()}"


def _info(path: str, local: Path) -> FileInfo:
    stat = local.stat()
    if local.is_dir():
        return FileInfo(f"{path}/", f"{local.name}/", 0, int(stat.st_mtime * 1000))
    return FileInfo(path, local.name, stat.st_size, int(stat.st_mtime * 1000))
