"""The ingestion checkpoint: which files each batch holds, and which batches are in the table.

Layout (Spark Structured Streaming's, so it reads familiar)::

    <checkpoint>/
      metadata.json        the stream id; the Delta app transaction id is derived from it
      offsets/<n>.json     batch n's files, written BEFORE batch n is committed to the table
      commits/<n>.json     batch n's result, written after the commit (a record, not the truth)
      compact/<n>.json     every file of batches 0..n, so a load reads few files
      lock                 held while a run ingests (local file systems)

The truth about which batches are in the table is the table itself: batch n is committed with the
Delta app transaction ``(stream id, n)``, atomically with its rows. On load, batches up to the
table's transaction version are done (their commit records are written if a run died before
writing them); a planned batch above it is not in the table and is redone with the same files.
Batch 0 is the baseline of files that were there before the stream started, when existing files
are not to be ingested; it never reaches the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from lakestack.errors import LakeError
from lakestack.lake.ingest_source import FileEntry, Location

__all__ = ["COMPACT_EVERY", "Checkpoint", "CheckpointState", "PlannedFile"]

COMPACT_EVERY = 50


@dataclass(frozen=True)
class PlannedFile:
    """A file as a batch plan records it."""

    rel: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, entry: FileEntry) -> PlannedFile:
        """The plan record of a listed file."""
        return cls(entry.rel, entry.size, entry.mtime_ns)

    def key(self, allow_overwrites: bool) -> str:
        """The identity under which the file counts as ingested (see ``FileEntry.key``)."""
        return f"{self.rel}\0{self.size}\0{self.mtime_ns}" if allow_overwrites else self.rel


@dataclass
class CheckpointState:
    """What a load found: files already ingested, the last batch, a batch to redo."""

    files: list[PlannedFile] = field(default_factory=list)
    ingested: set[str] = field(default_factory=set)
    last_batch: int = 0
    pending: list[PlannedFile] | None = None
    recovered: list[int] = field(default_factory=list)


class Checkpoint:
    """A checkpoint folder for one (source, table) stream."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._lock_handle: Any = None

    @property
    def display(self) -> str:
        """Where the checkpoint is, as users name it."""
        return self.location.display

    def _file(self, *parts: str) -> str:
        return self.location.join(*parts).path

    def _read(self, *parts: str) -> Any | None:
        try:
            with self.location.fs.open_input_stream(self._file(*parts)) as handle:
                return json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None

    def _write(self, data: Any, *parts: str, exclusive: bool = False) -> bool:
        """Write one JSON file so that no reader, and no killed writer, sees half of it.

        With ``exclusive``, a file that exists already is kept and False is returned.
        """
        fs, path = self.location.fs, self._file(*parts)
        payload = json.dumps(data, separators=(",", ":")).encode("utf-8")
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        if not self.location.is_local:
            # object stores have no exclusive create here: check, then one PUT (atomic)
            if exclusive and fs.get_file_info(path).type != pafs.FileType.NotFound:
                return False
            with fs.open_output_stream(path) as out:
                out.write(payload)
            return True
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic and fails when the file exists
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _numbers(self, folder: str) -> list[int]:
        selector = pafs.FileSelector(self._file(folder), allow_not_found=True)
        found = []
        for info in self.location.fs.get_file_info(selector):
            stem = info.base_name.removesuffix(".json")
            if info.base_name.endswith(".json") and stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def is_new(self) -> bool:
        """True before the first run has written anything here."""
        return self._read("metadata.json") is None

    def stream_id(self, describe: dict[str, str]) -> str:
        """The stream's id, created with ``metadata.json`` on first use."""
        meta = self._read("metadata.json")
        if meta is None:
            meta = {"id": uuid.uuid4().hex, **describe, "created_at": _now()}
            self._write(meta, "metadata.json")
        return str(meta["id"])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the checkpoint's lock (local file systems; elsewhere one run at a time is up to
        the job, whose ``max_concurrent_runs`` is 1 by default)."""
        if not self.location.is_local:
            yield
            return
        import fcntl

        os.makedirs(self.location.path, exist_ok=True)
        with open(os.path.join(self.location.path, "lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def load(self, committed: int | None, allow_overwrites: bool, table: str) -> CheckpointState:
        """Reconcile the checkpoint with the table's transaction version ``committed``.

        Raises:
            LakeError: the checkpoint and the table disagree in a way only a person can settle
                (the table was recreated or restored, or the checkpoint lost its plans).
        """
        done = committed or 0
        plans = self._numbers("offsets")
        commits = self._numbers("commits")
        if commits and commits[-1] > done:
            raise LakeError(
                f"checkpoint {self.display} records batch {commits[-1]} in table {table}, but the "
                f"table holds batches up to {done} only: the table was recreated or restored. "
                "Delete the checkpoint folder to ingest every file again, or pass a new checkpoint"
            )
        if done and done not in plans:
            raise LakeError(
                f"table {table} holds batch {done} of this stream but checkpoint {self.display} "
                "has no plan for it; the checkpoint is incomplete. Restore it, or delete it and "
                "ingest into a new table"
            )
        state = CheckpointState(last_batch=done)
        compacts = [n for n in self._numbers("compact") if n <= done]
        start = 0
        if compacts:
            start = compacts[-1]
            state.files = [PlannedFile(*f) for f in self._read("compact", f"{start}.json") or []]
            start += 1
        for number in (n for n in plans if start <= n <= done):
            state.files.extend(self._plan(number))
            if number not in commits:
                self._write({"batch": number, "recovered_at": _now()}, "commits", f"{number}.json")
                if number > 0:
                    state.recovered.append(number)
        state.ingested = {f.key(allow_overwrites) for f in state.files}
        if done + 1 in plans:
            state.pending = self._plan(done + 1)
        return state

    def _plan(self, number: int) -> list[PlannedFile]:
        data = self._read("offsets", f"{number}.json") or {}
        return [PlannedFile(f["rel"], f["size"], f["mtime_ns"]) for f in data.get("files", [])]

    def write_plan(self, number: int, files: list[PlannedFile]) -> bool:
        """Record batch ``number``'s files; must happen before the batch is committed.

        Returns:
            False when batch ``number`` has a plan already (another run's): a plan is never
            replaced, so that the plan of a committed batch is the one that was committed.
        """
        entries = [{"rel": f.rel, "size": f.size, "mtime_ns": f.mtime_ns} for f in files]
        plan = {"batch": number, "files": entries, "planned_at": _now()}
        return self._write(plan, "offsets", f"{number}.json", exclusive=True)

    def write_commit(self, number: int, info: dict[str, Any]) -> None:
        """Record that batch ``number`` is in the table (after the commit)."""
        record = {"batch": number, **info, "committed_at": _now()}
        self._write(record, "commits", f"{number}.json")

    def maybe_compact(self, number: int, files: list[PlannedFile]) -> None:
        """Every ``COMPACT_EVERY`` batches, write every ingested file into one file."""
        if number % COMPACT_EVERY == 0:
            rows = [[f.rel, f.size, f.mtime_ns] for f in files]
            self._write(rows, "compact", f"{number}.json")

    def write_baseline(self, files: list[PlannedFile]) -> None:
        """Record files that were there before the stream started as batch 0 (not ingested)."""
        self.write_plan(0, files)
        self.write_commit(0, {"baseline": True, "files": len(files)})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
