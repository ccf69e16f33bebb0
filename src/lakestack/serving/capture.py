"""The inference table of a serving endpoint (``auto_capture_config``): every scored row in Delta.

A server spools each micro-batch of requests one ``predict`` answered, before it answers any of
them, through the batcher's hook (``batch_hook``; ``record_request`` for a request predicted
alone, ``record_batch`` for a batch given by hand, checked): one JSON line for the batch's
requests and records (``capture_spool`` has the format), appended to a spool file of its own
process as a copy into a memory-mapped stretch of the file (``_Spool``): a few microseconds per
batch, no system call, no Delta on the request path. The copied bytes are in the kernel's page
cache, which outlives the process: a server killed with SIGKILL loses none of the rows it
answered. (A machine crash can lose the last seconds of page cache; ``fsync=True`` closes that
too, at the cost of a disk flush per line.)

Two ways to turn the spool into Delta rows, in the row shape of DESIGN §7 that batch inference
writes too (the input columns flattened, ``prediction``, ``model_id``, ``timestamp``,
``request_id``, ``client_request_id``, ``endpoint_name``, ``served_entity``, ``status_code``,
``execution_time_ms``):

* ``Spooler`` only spools; a separate capture writer *process*
  (``lakestack.serving.capture_writer``) tails every spool of the folder and writes them. This
  is what ``lakestack serve`` uses: Arrow and Delta work in the server process would hold the
  GIL and stall its event loop (capture-on served a third of the requests of capture-off).
* ``Capture`` spools and writes on a background thread of the same process: one object, no
  second process, for tests, notebooks and Python users.

Exactly once: each batch is committed together with the Delta app transaction
``("capture:<spool id>", <byte offset in the spool after the batch>)``. The table itself records
how far every spool was written, so whoever writes a spool (its owner's thread, the writer
process, or a process that recovers it after a crash) starts at that offset and never writes a
row twice, even when the crash fell between the Delta commit and anything else.

Crash recovery: the owner of a spool holds an exclusive ``flock`` on it for its whole life; the
kernel drops the lock when the process dies, however it dies. A spool nobody holds is finished:
its rows are written from the table's offset and the spool is deleted (``recover_spools``, the
writer process, ``Capture.open``). Open a ``Spooler`` or ``Capture`` in each worker process
after it forked: a forked child shares its parent's spool and lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import mmap
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakestack.errors import InferenceError, LakeError, LakestackError, SchemaMismatchError
from lakestack.lake import Catalog, Table
from lakestack.lake.names import parse_table_name
from lakestack.serving.capture_spool import (
    FIELDS,
    FORMAT,
    FORMATS,
    HEADER_KEY,
    RESERVED_COLUMNS,
    Contexts,
    batch_hook,
    batch_line,
    decode,
    record_lines,
)

if TYPE_CHECKING:
    from lakestack.serving.batching import BatchHook

__all__ = [
    "FIELDS",
    "RESERVED_COLUMNS",
    "CHECKPOINT_INTERVAL",
    "TABLE_PROPERTIES",
    "COMPACT_TARGET_BYTES",
    "SPOOL_SUFFIX",
    "Capture",
    "Spooler",
    "merge_labels",
    "recover_spools",
]

log = logging.getLogger(__name__)

SPOOL_SUFFIX = ".spool"
_SPOOL_PREFIX = "capture-"
_RECOVER_LOCK = ".recover.lock"
_TAILED_KEY = "tailed"  # header: the spool's rows are written by a writer process
_READ_BYTES = 32 * 2**20  # at most this much spool per Delta commit (bounded memory)
_MAP_BYTES = 4 * 2**20  # an owner allocates and maps its spool this far ahead of the data
_SCAN_BYTES = 64 * 2**10  # a reader looks for the end of the data this much at a time
_ROTATE_BYTES = 64 * 2**20  # a fully flushed spool this big is replaced by a fresh one
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # waits between failed flushes of a live spool
_CLOSE_ATTEMPTS = 3
# An inference table takes a commit a second. Each write replays the Delta log from the last
# checkpoint (delta-rs reloads it per write), and Delta checkpoints every 100 commits by
# default: a 4,000-row write took 16 ms of CPU just after a checkpoint, 90 ms before the next.
# A checkpoint every 10 commits keeps every write near the low end.
# Every write also lists the whole _delta_log folder, about 10 µs per file in it: with Delta's
# default log retention of 30 days a commit a second leaves 86,400 log files a day, and a write
# took 250 ms at 20,000 files, 1.2 s at 100,000. Thirty minutes of log (about 2,000 files at
# a commit a second; Delta deletes the older ones at each checkpoint) keeps it to 10-25 ms,
# and limits time travel on the inference table to the last 30 minutes of versions.
_CHECKPOINT_PROPERTY = "delta.checkpointInterval"
CHECKPOINT_INTERVAL = 10
LOG_RETENTION = "interval 30 minutes"
TABLE_PROPERTIES = {
    _CHECKPOINT_PROPERTY: str(CHECKPOINT_INTERVAL),
    "delta.logRetentionDuration": LOG_RETENTION,
}
# Compaction rewrites every file under its target size: a small target bounds how long one
# takes (32 MiB of Parquet: about a second) and how often a growing file is rewritten.
COMPACT_TARGET_BYTES = 32 * 2**20


class _Spool:
    """One append-only spool file, locked by the process that writes or recovers it.

    Its owner appends by copying lines into a memory-mapped stretch of the file allocated ahead
    of the data (``_MAP_BYTES``): no system call per line, only one per stretch (an ``os.write``
    per line cost about 5 µs of a server's CPU in place, a third of spooling a batch). A copy
    into a shared mapping is in the kernel's page cache as it happens, so it outlives the
    process like a ``write`` does. The stretch is allocated with ``posix_fallocate`` before it is
    mapped, so a full disk fails that call (an ``OSError``, the line not spooled) instead of
    killing the process with SIGBUS in a page fault later.

    The allocated stretch reads as zero bytes, and a spool line never holds one: the data ends at
    the first zero byte. Each byte of a line being copied is either still zero or final, so a
    reader that stops at the first zero and takes only lines ending in a newline before it never
    sees a torn line, even from an owner killed in the middle of a copy. A closed spool is cut
    to its data.
    """

    def __init__(self, path: Path, fd: int, *, end: int = 0, owner: bool = False) -> None:
        self.path = path
        self.fd = fd
        self.id = path.name.removesuffix(SPOOL_SUFFIX)
        self.app_id = f"capture:{self.id}"
        self._header: dict[str, Any] | None = None
        self._owner = owner
        self._end = end  # where the data ends (the owner's), or where it was last found to end
        self._map: mmap.mmap | None = None
        self._map_at = self._map_end = 0  # the file stretch mapped

    @classmethod
    def create(cls, spool_dir: Path, table_name: str, *, tailed: bool = False) -> _Spool:
        """A new locked spool with its header line, under a name no other process can take.

        It is written under a hidden temporary name and locked before it is renamed to its
        ``.spool`` name, so a recovering process never sees it unlocked. ``tailed`` marks it
        for the writer process, which writes live spools only when they say so (a ``Capture``
        writes its own).
        """
        name = f"{_SPOOL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        temp = spool_dir / f".{name}.tmp"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = {HEADER_KEY: FORMAT, "table": table_name, "pid": os.getpid()}
            if tailed:
                header[_TAILED_KEY] = True
            line = (json.dumps(header) + "\n").encode()
            _write_all(fd, line)
            path = spool_dir / f"{name}{SPOOL_SUFFIX}"
            os.rename(temp, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return cls(path, fd, end=len(line), owner=True)

    @classmethod
    def claim(cls, path: Path) -> _Spool | None:
        """The spool at ``path`` locked for recovery; None when its owner is alive or it is gone."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # recovered and deleted by another process while we opened it
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, line: bytes) -> int:
        """Append ``line`` (the owner only): a copy into the mapped stretch, and a system call
        only when the stretch is full. Returns where the data ends now.

        Raises:
            InferenceError: No room on the disk for the next stretch (or another I/O error);
                nothing of the line is spooled.
        """
        start = self._end
        end = start + len(line)
        mapped = self._map
        if mapped is None or end > self._map_end:
            try:
                mapped = self._extend(start, len(line))
            except OSError as exc:
                raise InferenceError(
                    f"inference table {self.table_name()}: cannot spool to {self.path} "
                    f"({exc.strerror or exc}); free space on its disk or give another "
                    "spool_dir; nothing of the request was recorded"
                ) from None
        at = self._map_at
        mapped[start - at : end - at] = line
        self._end = end
        return end

    def _extend(self, start: int, length: int) -> mmap.mmap:
        """Allocate and map the stretch from ``start`` that holds ``length`` bytes or more."""
        at = start - start % mmap.ALLOCATIONGRANULARITY
        size = max(_MAP_BYTES, start - at + length)
        size += -size % mmap.PAGESIZE
        os.posix_fallocate(self.fd, at, size)  # a full disk fails here, not in a page fault
        mapped = mmap.mmap(self.fd, size, offset=at)
        if self._map is not None:
            self._map.close()
        self._map, self._map_at, self._map_end = mapped, at, at + size
        return mapped

    def size(self) -> int:
        """Where the data ends: what the owner appended; for another process, the file's size
        short of a zeroed stretch allocated ahead (an owner alive, or killed)."""
        if self._owner:
            return self._end
        size = os.fstat(self.fd).st_size
        if size <= self._end or os.pread(self.fd, 1, size - 1) != b"\0":
            self._end = max(self._end, size)  # no stretch ahead: all of it is data
            return self._end
        while True:  # the first zero byte after what was found last time
            chunk = os.pread(self.fd, _SCAN_BYTES, self._end)
            zero = chunk.find(b"\0")
            if zero >= 0 or not chunk:
                self._end += max(zero, 0)
                return self._end
            self._end += len(chunk)

    def header(self) -> dict[str, Any]:
        """The header line ({} when it is missing or unreadable)."""
        if self._header is None:
            first = os.pread(self.fd, 4096, 0).split(b"\n", 1)[0]
            try:
                header = json.loads(first)
            except ValueError:
                return {}  # not cached: a header being written may be complete next time
            self._header = header if isinstance(header, dict) and HEADER_KEY in header else {}
        return self._header

    def table_name(self) -> str | None:
        """The table named in the header line (None for a spool without a readable header)."""
        table = self.header().get("table")
        return table if isinstance(table, str) else None

    def tailed(self) -> bool:
        """Whether a writer process writes this spool while its owner lives."""
        return self.header().get(_TAILED_KEY) is True

    def unreadable(self) -> str | None:
        """Why this version cannot write the spool's rows (None when it can)."""
        version = self.header().get(HEADER_KEY)
        if self.table_name() is None:
            return "it has no header"
        if version not in FORMATS:
            return (
                f"it has format {version!r}, which this version of lakestack does not read (it "
                f"reads {', '.join(map(str, FORMATS))}); finish it with the version that wrote it"
            )
        return None

    def format(self) -> int:
        """The format of the spool's lines (``capture_spool``), from its header.

        Raises:
            InferenceError: A spool this version cannot read (``unreadable``).
        """
        reason = self.unreadable()
        if reason is not None:
            raise InferenceError(f"inference table spool {self.path}: {reason}")
        return int(self.header()[HEADER_KEY])

    def read_lines(self, start: int, limit: int = _READ_BYTES) -> tuple[bytes, int]:
        """The complete lines from byte ``start`` (at most about ``limit`` bytes), and their end.

        A line without its newline yet (being written, or torn by a crash during a ``record``
        that never returned) is left for later. A line longer than ``limit`` is read whole.
        """
        end = self.size()
        data = os.pread(self.fd, min(end, start + limit) - start, start) if end > start else b""
        cut = data.rfind(b"\n")
        if cut < 0 and start + len(data) < end:  # one line longer than the limit
            data = os.pread(self.fd, end - start, start)
            cut = data.rfind(b"\n")
        if cut < 0:
            return b"", start
        return data[: cut + 1], start + cut + 1

    def finish(self, offset: int) -> None:
        """Delete a spool claimed from a dead or closed owner once it is written to ``offset``,
        the end of its last complete line. Bytes after it are a line torn by its owner's death
        in the middle of spooling it: that line's requests were never answered."""
        torn = self.size() - offset
        if torn > 0:
            log.warning(
                "inference table spool %s: %d bytes of a line torn when its process died are "
                "dropped (its requests were never answered)",
                self.path,
                torn,
            )
        self.close(delete=True)

    def close(self, *, delete: bool) -> None:
        """Release the spool; ``delete`` removes it first (while still holding the lock). The
        owner's spool kept is cut to its data first (the stretch allocated ahead goes)."""
        if self._map is not None:
            self._map.close()
            self._map = None
            if not delete:
                os.ftruncate(self.fd, self._end)
        if delete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)


class _Writer:
    """Writes spooled lines into the inference table, each batch with its app transaction."""

    def __init__(self, catalog: Catalog, table_name: str) -> None:
        self.catalog = catalog
        self.table_name = table_name
        self.commits = 0  # commits of rows since the last compaction
        self._table: Table | None = None

    def table(self) -> Table | None:
        """The table, or None before its first write."""
        if self._table is None and self.catalog.table_exists(self.table_name):
            self._table = _tuned(self.catalog.table(self.table_name))
        return self._table

    def committed_offset(self, spool: _Spool) -> int:
        """How far ``spool`` is in the table (0 when it never committed)."""
        table = self.table()
        version = None if table is None else table.app_transaction_version(spool.app_id)
        return version or 0

    def flush(self, spool: _Spool, start: int) -> tuple[int, int]:
        """Write the spool's complete lines from ``start`` in one commit: (new offset, rows)."""
        lines, end = spool.read_lines(start)
        if end == start:
            return start, 0
        if start == 0:
            lines = lines[lines.index(b"\n") + 1 :]  # the header
        data = decode(lines, spool.format(), spool.path)
        if data is None:  # only the header, or lines that cannot be read: nothing to commit
            return end, 0
        table = self.table() or self._create(data.schema)
        table.append(
            data,
            schema_mode="merge",
            commit_metadata={"lakestack.operation": "capture", "lakestack.spool": spool.id},
            app_transaction=(spool.app_id, end),
        )
        self.commits += 1
        return end, data.num_rows

    def compact(self, target_size: int | None = COMPACT_TARGET_BYTES) -> dict[str, Any]:
        """Compact the table's small files (one per commit) in a commit of its own.

        Rows and app transactions are unchanged, so exactly-once holds across it.

        Returns:
            The compaction's metrics (``Table.optimize``); {} before the table exists.
        """
        table = self.table()
        if table is None:
            return {}
        metrics = table.optimize(
            target_size, commit_metadata={"lakestack.operation": "capture compaction"}
        )
        self.commits = 0
        return metrics

    def drain(self, spool: _Spool, start: int | None = None) -> int:
        """Flush ``spool`` to its end from ``start`` (default: its committed offset)."""
        offset = self.committed_offset(spool) if start is None else start
        while True:
            new, _ = self.flush(spool, offset)
            if new == offset:
                return offset
            offset = new

    def _create(self, schema: pa.Schema) -> Table:
        """Create the table (and its schema) for the first batch; another process may race us."""
        name = parse_table_name(self.table_name)
        self.catalog.create_schema(str(name.schema_name), exist_ok=True)
        try:
            self._table = _tuned(
                self.catalog.create_table(
                    self.table_name,
                    schema=schema,
                    comment="Inference table: one row per record scored by a serving endpoint",
                    properties=TABLE_PROPERTIES,
                    exist_ok=True,
                )
            )
        except LakestackError:
            if not self.catalog.table_exists(self.table_name):
                raise
            self._table = _tuned(self.catalog.table(self.table_name))
        return self._table


def _tuned(table: Table) -> Table:
    """``table``, given each of ``TABLE_PROPERTIES`` its owner has not set (tables created
    before a setting existed get it here)."""
    configuration = table.delta().metadata().configuration
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if k not in configuration}
    if missing:
        table.set_properties(missing)
    return table


def _spool_folder(table_name: str, spool_dir: Path) -> Path:
    """``spool_dir``, created, after checking ``table_name``."""
    try:
        parse_table_name(table_name)
    except LakestackError as exc:
        raise InferenceError(f"inference table: {exc}") from None
    folder = Path(spool_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InferenceError(
            f"inference table {table_name}: cannot create the spool folder {folder} "
            f"({exc.strerror}); give a writable spool_dir"
        ) from None
    return folder


class _Recorder:
    """What ``Spooler`` and ``Capture`` share: spool lines made from scored requests."""

    table_name: str
    _contexts: Contexts

    def record_request(
        self,
        request_id: str,
        client_request_id: str | None,
        endpoint_name: str,
        served_entity: str,
        model_id: str,
        columns: Sequence[str],
        rows: Any,
        predictions: Any,
        *,
        execution_time_ms: float,
        status_code: int = 200,
    ) -> None:
        """Spool one answered request: one line for all its records, a few microseconds.

        What the server calls before it sends a response to a request it predicted alone;
        when it returns, the request's rows survive the death of the process. The timestamp
        is now.

        Args:
            request_id: The server's id of the request.
            client_request_id: The request's ``client_request_id``, if it had one.
            endpoint_name: The endpoint.
            served_entity: The served entity that answered.
            model_id: ``<model name>/<version>`` of the model that answered.
            columns: The input columns, in the order of each row's values.
            rows: The records: a list of row lists, or a 2-D numpy array.
            predictions: One prediction per record (a list), or one for all of them.
            execution_time_ms: The time the server spent on the request.
            status_code: The response's HTTP status.

        Raises:
            InferenceError: An input column has the name of a column the table adds, or a
                value JSON cannot represent. Nothing is spooled.
        """
        if not len(rows):
            return
        context = self._contexts.get(endpoint_name, served_entity, model_id, columns)
        line = batch_line(
            self.table_name,
            context,
            columns,
            [request_id],
            [client_request_id],
            [len(rows)],
            [execution_time_ms],
            [status_code],
            rows,
            predictions,
            timestamp_ms=int(time.time() * 1000),
        )
        self._append(line, len(rows))

    def record_batch(
        self,
        endpoint_name: str,
        served_entity: str,
        model_id: str,
        columns: Sequence[str],
        request_ids: Sequence[str],
        client_request_ids: Sequence[str | None],
        counts: Sequence[int],
        rows: Any,
        predictions: Any,
        *,
        execution_times_ms: Sequence[float],
        status_codes: Sequence[int] | None = None,
    ) -> None:
        """Spool a batch of answered requests that one model predicted together: one line, one
        ``write``, a few microseconds for the whole batch.

        What the server calls for a micro-batch before it answers any of its requests; when
        it returns, their rows survive the death of the process. The timestamp is now.

        Args:
            endpoint_name: The endpoint.
            served_entity: The served entity that answered.
            model_id: ``<model name>/<version>`` of the model that answered.
            columns: The input columns, in the order of each row's values.
            request_ids: The server's id of each request.
            client_request_ids: Each request's ``client_request_id``, or None.
            counts: How many of the records each request has, in order.
            rows: The records of all the requests, one after the other: a list of row lists,
                or a 2-D numpy array.
            predictions: One prediction per record (a list or an array), or one for all.
            execution_times_ms: The time the server spent on each request.
            status_codes: Each response's HTTP status (default: 200 for all).

        Raises:
            InferenceError: The per-request sequences differ in length or their counts from
                the records, an input column has the name of a column the table adds, or a
                value JSON cannot represent. Nothing is spooled.
        """
        records = len(rows)
        if not records:
            return
        requests = len(request_ids)
        statuses = requests if status_codes is None else len(status_codes)
        if sum(counts) != records or not (
            len(client_request_ids) == len(counts) == len(execution_times_ms) == requests
            and statuses == requests
        ):
            raise InferenceError(
                f"inference table {self.table_name}: a batch of {requests} request ids, "
                f"{len(client_request_ids)} client request ids, {len(counts)} counts, "
                f"{len(execution_times_ms)} execution times and {statuses} status "
                f"codes with counts adding up to {sum(counts)} for {records} records; give one "
                "of each per request, counts that add up to the records; nothing was recorded"
            )
        line = batch_line(
            self.table_name,
            self._contexts.get(endpoint_name, served_entity, model_id, columns),
            columns,
            request_ids,
            client_request_ids,
            counts,
            execution_times_ms,
            [200] * requests if status_codes is None else status_codes,
            rows,
            predictions,
            timestamp_ms=int(time.time() * 1000),
        )
        self._append(line, records)

    def batch_hook(
        self, endpoint_name: str, served_entity: str, jsonable: Callable[[Any], Any]
    ) -> BatchHook:
        """The ``on_batch`` hook of a served entity of ``endpoint_name`` (``Batcher``): each
        predicted batch spooled as one line before any of its requests is answered, without
        ``record_batch``'s checks (the batcher's batches are consistent by construction).

        ``jsonable`` makes predictions other than a numpy array JSON (the server's answer).
        """
        return batch_hook(
            self.table_name, self._contexts, self._append, endpoint_name, served_entity, jsonable
        )

    def record(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Spool scored rows; when this returns they survive the death of the process.

        Each record has the keys of ``FIELDS``: ``timestamp`` in epoch milliseconds and
        ``inputs`` a mapping of input column to value. ``record_request`` takes a request's
        records without a dict per record (what the server uses).

        Raises:
            InferenceError: A record misses a key, has an input named like a table column, or
                holds a value JSON cannot represent. Nothing of the call is spooled.
        """
        if records:
            self._append(record_lines(self.table_name, self._contexts, records), len(records))

    def _append(self, lines: bytes, rows: int) -> None:
        raise NotImplementedError


class Spooler(_Recorder):
    """Spools the scored rows of one server process; a writer process writes them to Delta.

    Get one from ``Spooler.open`` in each server process (after any fork). It never touches
    Delta: ``lakestack.serving.capture_writer`` tails its spool while it lives, and finishes
    it once it is closed or its process dies. A spool over 64 MiB is closed and replaced by a
    fresh one, so the writer can delete what it has written. Thread-safe.
    """

    def __init__(self, table_name: str, spool_dir: Path, *, fsync: bool) -> None:
        self.table_name = table_name
        self.spool_dir = spool_dir
        self.fsync = fsync
        self._lock = threading.Lock()
        self._spool = _Spool.create(spool_dir, table_name, tailed=True)
        self._empty = self._spool.size()
        self._closed = False
        self._contexts = Contexts(table_name)

    @classmethod
    def open(cls, table_name: str, spool_dir: Path, *, fsync: bool = False) -> Spooler:
        """Start spooling rows for ``table_name`` into a new spool in ``spool_dir``.

        Raises:
            InferenceError: A bad ``table_name``, or a ``spool_dir`` that cannot be created.
        """
        return cls(table_name, _spool_folder(table_name, spool_dir), fsync=fsync)

    @property
    def spool_path(self) -> Path:
        """The spool file this process appends to now."""
        return self._spool.path

    def _append(self, line: bytes, rows: int) -> None:
        with self._lock:
            if self._closed:
                raise InferenceError(
                    f"inference table {self.table_name}: record after close; open a new Spooler"
                )
            spool = self._spool
            end = spool.append(line)
            if self.fsync:
                os.fsync(spool.fd)  # the mapped pages are the file's page cache: fsync takes them
            if end >= _ROTATE_BYTES:
                self._spool = _Spool.create(self.spool_dir, self.table_name, tailed=True)
                self._empty = self._spool.size()
                spool.close(delete=False)  # unlocked: the writer finishes and deletes it

    def close(self) -> None:
        """Stop spooling; the writer process writes what is left. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._spool.close(delete=self._spool.size() == self._empty)  # nothing recorded


class Capture(_Recorder):
    """The inference table writer of one server process. Get one from ``Capture.open``.

    Thread-safe: ``record`` may be called from the event loop and from worker threads at once.
    """

    def __init__(
        self,
        writer: _Writer,
        spool_dir: Path,
        *,
        flush_rows: int,
        flush_seconds: float,
        fsync: bool,
    ) -> None:
        self.table_name = writer.table_name
        self.spool_dir = spool_dir
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self._writer = writer
        self._spool = _Spool.create(spool_dir, writer.table_name)
        self._flushed = 0  # a new spool has no commits
        self._pending = 0  # rows recorded since the last flush (approximate, for flush_rows)
        self._lock = threading.Lock()  # the spool's writes and rotation
        self._flush_lock = threading.Lock()  # one flush at a time, without blocking record
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._contexts = Contexts(writer.table_name)
        self.rows_written = 0
        self._thread = threading.Thread(
            target=self._run, name=f"lakestack-capture-{self._spool.id}", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(
        cls,
        catalog: Catalog,
        table_name: str,
        spool_dir: Path,
        *,
        flush_rows: int = 10_000,
        flush_seconds: float = 1.0,
        fsync: bool = False,
    ) -> Capture:
        """Start capturing into ``table_name``; recover spools of dead processes first.

        Args:
            catalog: The catalog that holds (or will hold) the table.
            table_name: ``catalog.schema.table``; created with its schema on the first write.
            spool_dir: The folder of the spool files; the same for every worker of a server.
            flush_rows: Write to Delta once this many rows are waiting...
            flush_seconds: ...or this long after the previous write.
            fsync: ``fsync`` each record: survive a machine crash, not only a process crash.

        Raises:
            InferenceError: A bad ``table_name``, flush setting or ``spool_dir``.
        """
        if flush_rows < 1 or not flush_seconds > 0 or math.isinf(flush_seconds):
            raise InferenceError(
                f"inference table {table_name}: flush_rows={flush_rows} and "
                f"flush_seconds={flush_seconds} must be positive; use e.g. 10000 and 1.0"
            )
        folder = _spool_folder(table_name, spool_dir)
        writer = _Writer(catalog, table_name)
        return cls(writer, folder, flush_rows=flush_rows, flush_seconds=flush_seconds, fsync=fsync)

    @property
    def spool_path(self) -> Path:
        """The spool file this process appends to now."""
        return self._spool.path

    def _append(self, line: bytes, rows: int) -> None:
        if self._closed:
            raise InferenceError(
                f"inference table {self.table_name}: record after close; open a new Capture"
            )
        with self._lock:
            self._spool.append(line)
            if self.fsync:
                os.fsync(self._spool.fd)
            self._pending += rows
        if self._pending >= self.flush_rows:
            self._wake.set()

    def flush(self) -> None:
        """Write everything spooled so far to the table now (the caller waits).

        Raises:
            LakestackError: The write failed; the rows stay in the spool for the next attempt.
        """
        with self._flush_lock:
            self._flush_once(drain=True)

    def close(self) -> None:
        """Flush everything and stop (a graceful shutdown). Idempotent.

        Raises:
            LakestackError: The last write failed; the spool is kept, and the next
                ``Capture.open`` on the same ``spool_dir`` writes its rows.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        error: BaseException | None = None
        for attempt in range(_CLOSE_ATTEMPTS):
            try:
                with self._flush_lock:
                    self._flush_once(drain=True)
                error = None
                break
            except LakestackError as exc:
                error = exc
                time.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
        done = error is None and self._flushed == self._spool.size()
        self._spool.close(delete=done)
        if error is not None:
            raise error

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # the background thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            recover_spools(self._writer.catalog, self.spool_dir)
        except Exception:  # never stop capturing because an old spool cannot be written now
            log.exception("inference table: recovering spools in %s failed", self.spool_dir)
        failures = 0
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                with self._flush_lock:
                    self._flush_once(drain=False)
                failures = 0
            except Exception as exc:
                wait = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "inference table %s: a write failed (%s); retrying in %.1fs, the rows stay "
                    "in %s",
                    self.table_name,
                    exc,
                    wait,
                    self._spool.path,
                )
                self._stopping.wait(wait)

    def _flush_once(self, *, drain: bool) -> None:
        """One pass: write the spool's tail (all of it with ``drain``), rotate a big spool."""
        if self._error is not None:  # a write may have committed before it failed
            self._flushed = max(self._flushed, self._writer.committed_offset(self._spool))
            self._error = None
        pending = self._pending
        while True:
            try:
                offset, rows = self._writer.flush(self._spool, self._flushed)
            except BaseException as exc:
                self._error = exc
                raise
            self.rows_written += rows
            moved = offset != self._flushed
            self._flushed = offset
            if not (drain and moved):
                break
        with self._lock:
            self._pending = max(0, self._pending - pending)
        if not self._stopping.is_set() and self._flushed >= _ROTATE_BYTES:
            self._rotate()

    def _rotate(self) -> None:
        """Replace a fully written spool by a fresh one, so spools do not grow forever."""
        with self._lock:
            if self._spool.size() != self._flushed:
                return
            old, self._spool = self._spool, _Spool.create(self.spool_dir, self.table_name)
            self._flushed = 0
        old.close(delete=True)


def recover_spools(catalog: Catalog, spool_dir: Path) -> int:
    """Write the rows of dead processes' spools in ``spool_dir`` and delete the spools.

    Only one process recovers at a time (``.recover.lock``); a spool whose owner is alive is
    locked and left alone. Each spool goes to the table named in its header, from the offset the
    table recorded for it, so rows already written are not written again.

    Returns:
        The number of spools recovered (0 when another process is recovering now).
    """
    folder = Path(spool_dir)
    lock = os.open(folder / _RECOVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        recovered = 0
        for path in sorted(folder.glob(f"{_SPOOL_PREFIX}*{SPOOL_SUFFIX}")):
            spool = _Spool.claim(path)
            if spool is None:
                continue
            try:
                table_name = spool.table_name()
                reason = spool.unreadable()
                if table_name is None or reason is not None:
                    log.warning("inference table spool %s is left in place: %s", path, reason)
                    spool.close(delete=False)
                    continue
                writer = _Writer(catalog, table_name)
                offset = writer.drain(spool)
            except BaseException:
                spool.close(delete=False)
                raise
            spool.finish(offset)
            recovered += 1
        return recovered
    finally:
        os.close(lock)


def merge_labels(
    catalog: Catalog,
    table_name: str,
    labels: Any,
    *,
    key: str = "client_request_id",
    label_column: str = "label",
) -> int:
    """Set the label of captured rows that arrives after the request, by ``key``.

    Every row of a request gets its label: a request that scored several records has one label
    for all of them (send one record per request to label records one by one). Labels of keys
    the table does not have are ignored; a label given again replaces the previous one. The
    label column is added to the table on the first merge, typed like the labels.

    Args:
        catalog: The catalog of the inference table.
        table_name: The inference table.
        labels: Arrow, pandas or Polars data, or a list of dicts, with ``key`` and
            ``label_column``.
        key: The column that identifies a request: ``client_request_id`` (set by the client)
            or ``request_id`` (the server's, returned in the response).
        label_column: The label's column, in ``labels`` and in the table.

    Returns:
        The table's new version.

    Raises:
        NotFoundError: No such table.
        SchemaMismatchError: ``labels`` lacks a column, or a key is not a table column.
        ConstraintError: A key is given twice or is null. Nothing is written in any case.
    """
    from lakestack.lake.arrow import as_arrow, check_not_null, distinct_count

    table = catalog.table(table_name)
    data = as_arrow(labels if not isinstance(labels, list) else pa.Table.from_pylist(labels))
    for column in (key, label_column):
        if column not in data.column_names:
            raise SchemaMismatchError(
                f"labels for {table_name} have no column '{column}' (columns: "
                f"{', '.join(data.column_names)}); give {key} and {label_column}"
            )
    if key not in table.schema.names or key == label_column:
        raise SchemaMismatchError(
            f"table {table_name} has no key column '{key}'; use client_request_id or request_id"
        )
    data = data.select([key, label_column])
    data = data.cast(pa.schema([table.schema.field(key), data.schema.field(label_column)]))
    check_not_null(data, [key], table_name=table_name)
    if distinct_count(data, [key]) != data.num_rows:
        from lakestack.errors import ConstraintError

        raise ConstraintError(
            f"labels for {table_name}: a {key} appears more than once; give one label per "
            "request, nothing was written"
        )
    if label_column not in table.schema.names:
        table.append(data.select([label_column]).slice(0, 0), schema_mode="merge")
    data = data.cast(pa.schema([data.schema.field(key), table.schema.field(label_column)]))
    if data.num_rows == 0:
        return table.version
    target, source = f"t.{_quoted(key)}", f"s.{_quoted(key)}"
    try:
        merger = table.delta().merge(
            data, f"{target} = {source}", source_alias="s", target_alias="t"
        )
        merger.when_matched_update({_quoted(label_column): f"s.{_quoted(label_column)}"}).execute()
    except Exception as exc:  # deltalake's errors, which only the lake layer may import
        raise LakeError(
            f"merging labels into {table_name} failed: {str(exc).splitlines()[0]}; "
            "nothing was written"
        ) from None
    return table.version


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a regular file writes all at once)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
