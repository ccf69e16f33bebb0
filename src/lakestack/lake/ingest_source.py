"""Where ingestion reads from: a source folder on any file system, and the files in it.

A source is a local folder, a ``file:`` URL, a ``/Volumes/<catalog>/<schema>/<volume>/...`` path
(resolved through the catalog, so a volume on object storage works as well as a local one) or an
object-store URL (``s3://``, ``gs://``, ``abfs://``...). All of them are read through
``pyarrow.fs`` so the rest of ingestion does not care which.

Listing follows Spark's rules: the folder is listed recursively, and files and folders whose
name starts with ``_`` or ``.`` (``_SUCCESS``, ``.crc``, a writer's temporary file) are skipped.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from lakestack.errors import NotFoundError, UsageError
from lakestack.lake.volumes import is_volume_path

if TYPE_CHECKING:
    from lakestack.lake.catalog import Catalog

__all__ = ["FileEntry", "Location", "list_files", "open_location", "resolve_source"]


@dataclass(frozen=True)
class Location:
    """A folder on a file system: the pyarrow file system, its path there, how users name it."""

    fs: pafs.FileSystem
    path: str
    display: str

    @property
    def is_local(self) -> bool:
        """True on the local file system (where renames are atomic and locks work)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> Location:
        """The location of ``parts`` below this one."""
        rel = "/".join(parts)
        return Location(
            self.fs, f"{self.path.rstrip('/')}/{rel}", f"{self.display.rstrip('/')}/{rel}"
        )


@dataclass(frozen=True)
class FileEntry:
    """One source file: its path relative to the source, size and modification time."""

    rel: str
    size: int
    mtime_ns: int
    path: str
    display: str


def resolve_source(
    catalog: Catalog, source: str, storage_options: dict[str, str] | None
) -> Location:
    """The location of ``source`` (a folder, ``/Volumes/...`` path or URL).

    Raises:
        NotFoundError: the folder does not exist (or the volume is unknown to the catalog).
        UsageError: ``source`` is a file, not a folder.
    """
    display = source
    if is_volume_path(source):
        bare = source[len("dbfs:") :] if source.startswith("dbfs:") else source
        parts = [p for p in PurePosixPath(bare).parts[2:] if p not in ("", ".")]
        if len(parts) < 3 or ".." in parts:
            raise UsageError(
                f"source '{source}' is not a volume folder: "
                "expected /Volumes/<catalog>/<schema>/<volume>/..."
            )
        root = catalog.volume_path(".".join(parts[:3]))
        source = "/".join([root.rstrip("/"), *parts[3:]])
        display = bare.rstrip("/")
    location = open_location(source, storage_options, display=display)
    info = location.fs.get_file_info(location.path)
    if info.type == pafs.FileType.NotFound:
        raise NotFoundError(
            f"source folder '{display}' does not exist; create it or check the path"
        )
    if info.type != pafs.FileType.Directory:
        raise UsageError(f"source '{display}' is a file; give the folder that holds the files")
    return location


def open_location(
    uri: str, storage_options: dict[str, str] | None, *, display: str | None = None
) -> Location:
    """A ``Location`` for a local path, ``file:`` URL or object-store URL."""
    if "://" not in uri or uri.startswith("file:"):
        local = uri[len("file://") :] if uri.startswith("file://") else uri
        local = local[len("file:") :] if local.startswith("file:") else local
        path = str(Path(local).absolute())
        return Location(pafs.LocalFileSystem(), path, display or path)
    scheme = uri.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a") and storage_options:
        fs: pafs.FileSystem = _s3(storage_options)
        path = uri.split("://", 1)[1]
    else:
        fs, path = pafs.FileSystem.from_uri(uri)
    return Location(fs, path.rstrip("/"), display or uri.rstrip("/"))


def _s3(storage_options: dict[str, str]) -> pafs.S3FileSystem:
    """Translate delta-rs storage options into pyarrow's S3 file system arguments."""
    opts = {k.lower(): v for k, v in storage_options.items()}
    endpoint = opts.get("aws_endpoint_url") or opts.get("aws_endpoint") or opts.get("endpoint")
    allow_http = str(opts.get("aws_allow_http", opts.get("allow_http", ""))).lower() == "true"
    return pafs.S3FileSystem(
        access_key=opts.get("aws_access_key_id"),
        secret_key=opts.get("aws_secret_access_key"),
        session_token=opts.get("aws_session_token"),
        region=opts.get("aws_region") or opts.get("region"),
        endpoint_override=endpoint,
        scheme="http" if allow_http else "https",
    )


def list_files(location: Location, glob: str | None) -> list[FileEntry]:
    """Every data file below ``location``, oldest first (then by path).

    ``glob`` filters by file name when it has no ``/`` (``*.csv``, Spark's ``pathGlobFilter``),
    else by the path relative to the source (``2024-*/*.json``).
    """
    selector = pafs.FileSelector(location.path, recursive=True)
    root = location.path.rstrip("/") + "/"
    entries = []
    for info in location.fs.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.startswith(root):
            continue
        rel = info.path[len(root) :]
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if glob and not fnmatch.fnmatchcase(rel if "/" in glob else info.base_name, glob):
            continue
        entries.append(
            FileEntry(
                rel=rel,
                size=int(info.size or 0),
                mtime_ns=int(info.mtime_ns or 0),
                path=info.path,
                display=f"{location.display.rstrip('/')}/{rel}",
            )
        )
    entries.sort(key=lambda e: (e.mtime_ns, e.rel))
    return entries
