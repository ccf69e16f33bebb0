"""One ingestion run: list, plan, read, commit, record; batch after batch, until no new file.

The order of the steps is what makes a killed run harmless (see ``ingest_checkpoint``): a batch's
files are recorded before its commit, its commit carries the app transaction ``(stream, batch)``,
and its record is written after. ``CRASH_ENV`` names a step at which the process kills itself,
so that tests can kill a real run at exactly that step.
"""

from __future__ import annotations

import hashlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakestack.errors import (
    AlreadyExistsError,
    CommitConflictError,
    ConstraintError,
    LakeError,
    SchemaMismatchError,
    UsageError,
)
from lakestack.lake.ingest_batch import build_batch, target_schema
from lakestack.lake.ingest_checkpoint import Checkpoint, CheckpointState, PlannedFile
from lakestack.lake.ingest_read import FORMATS, CsvOptions, RawFile, read_file
from lakestack.lake.ingest_source import FileEntry, Location, list_files, open_location

if TYPE_CHECKING:
    from lakestack.lake.catalog import Catalog
    from lakestack.lake.table import Table

__all__ = ["CHECKPOINT_FOLDER", "CRASH_ENV", "IngestResult", "IngestRun", "crash_point"]

# test hook: "<point>" or "<point>:<batch>" makes the process SIGKILL itself there
CRASH_ENV = "LAKESTACK_INGEST_CRASH_AT"
CHECKPOINT_FOLDER = "_lakestack_ingest"
_COMMIT_ATTEMPTS = 3


@dataclass
class IngestResult:
    """What one run ingested. ``to_dict()`` is JSON-ready (for task values or a log line).

    Attributes:
        source: The source folder as given (``/Volumes/...`` paths stay so).
        table: The target table.
        checkpoint: Where the checkpoint is.
        files: Files ingested by this run.
        rows: Rows appended by this run.
        rescued_rows: Rows among them with a non-null rescued data column.
        bytes: Size of the files ingested.
        batches: Commits made (one per batch).
        skipped_files: Files listed that earlier runs had ingested.
        table_created: Whether this run created the table.
        table_version: The table's version after the run (None: no table, no files).
        new_columns: Columns this run added to an existing table.
        recovered_batches: Batches a killed run left behind, found committed or redone.
        missing_files: Files that vanished between listing (or planning) and reading.
        corrupt_files: Unreadable Parquet files skipped (``ignore_corrupt_files``).
    """

    source: str
    table: str
    checkpoint: str
    files: int = 0
    rows: int = 0
    rescued_rows: int = 0
    bytes: int = 0
    batches: int = 0
    skipped_files: int = 0
    table_created: bool = False
    table_version: int | None = None
    new_columns: list[str] = field(default_factory=list)
    recovered_batches: list[int] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    corrupt_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types."""
        return asdict(self)


@dataclass
class IngestRun:
    """The settings of one run of ``ingest_files``; ``execute`` does the run."""

    catalog: Catalog
    source: Location
    table: str
    format: str
    reader: CsvOptions
    hints: dict[str, pa.DataType]
    checkpoint: str | None
    glob: str | None
    rescued_column: str | None
    max_files: int
    max_bytes: int | None
    primary_keys: tuple[str, ...]
    partition_by: tuple[str, ...]
    include_existing: bool
    allow_overwrites: bool
    include_metadata: bool
    ignore_corrupt: bool
    _parsed: dict[str, RawFile] = field(default_factory=dict)
    _missing: set[str] = field(default_factory=set)
    _corrupt: set[str] = field(default_factory=set)

    def execute(self) -> IngestResult:
        """List the source, ingest every new file batch by batch; report what was done."""
        listed = list_files(self.source, self.glob)
        result = IngestResult(self.source.display, self.table, checkpoint="")
        target = self.catalog.table(self.table) if self.catalog.table_exists(self.table) else None
        if target is None and self.checkpoint is None:
            # the default checkpoint lives in the table's folder: create the table first
            if not self.include_existing:
                raise UsageError(
                    f"include_existing_files=False needs table {self.table} to exist or an "
                    "explicit checkpoint, so that the existing files can be recorded"
                )
            first = self._first_readable_batch(listed, result)
            if not first:
                result.checkpoint = self._default_checkpoint(self.catalog.table_uri(self.table))
                return result
            target = self._create(first, result)
            crash_point("after_create", 0)
        ckpt = Checkpoint(self._checkpoint_location(target))
        result.checkpoint = ckpt.display
        with ckpt.locked():
            target = self._run_batches(ckpt, target, listed, result)
        result.table_version = target.version if target is not None else None
        return result

    def _run_batches(
        self, ckpt: Checkpoint, target: Table | None, listed: list[FileEntry], result: IngestResult
    ) -> Table | None:
        fresh = ckpt.is_new()
        app_id = "lakestack.ingest." + ckpt.stream_id(
            {"source": self.source.display, "table": self.table, "format": self.format}
        )
        committed = target.app_transaction_version(app_id) if target else None
        state = ckpt.load(committed, self.allow_overwrites, self.table)
        result.recovered_batches = list(state.recovered)
        if fresh and not self.include_existing:
            ckpt.write_baseline([PlannedFile.of(e) for e in listed])
            state = ckpt.load(committed, self.allow_overwrites, self.table)
        result.skipped_files = sum(1 for e in listed if self._key(e) in state.ingested)
        cursor = 0
        while True:
            if state.pending is not None:
                # a killed run planned this batch and did not commit it: redo it, same files
                planned, entries = state.pending, self._restat(state.pending, listed, result)
                result.recovered_batches.append(state.last_batch + 1)
                raws = self._parse(entries, result)
            else:
                entries, cursor = self._take(listed, state.ingested, cursor)
                if not entries:
                    break
                raws = self._parse(entries, result)
                # a corrupt file that is skipped is planned, so never read again (Spark's
                # ignoreCorruptFiles); a file that vanished since the listing is not
                planned = [PlannedFile.of(e) for e in entries if e.rel not in self._missing]
                if not planned:
                    continue
                if not ckpt.write_plan(state.last_batch + 1, planned):
                    # another run planned this batch meanwhile: take its plan instead
                    committed = target.app_transaction_version(app_id) if target else None
                    state = ckpt.load(committed, self.allow_overwrites, self.table)
                    cursor = 0
                    continue
            if target is None:
                target = self._create(raws, result)
            target = self._commit_batch(ckpt, state, app_id, target, raws, planned, result)
        return target

    def _first_readable_batch(self, listed: list[FileEntry], result: IngestResult) -> list[RawFile]:
        cursor = 0
        while True:
            entries, cursor = self._take(listed, set(), cursor)
            raws = self._parse(entries, result)
            if raws or not entries:
                return raws

    def _key(self, entry: FileEntry) -> str:
        return PlannedFile.of(entry).key(self.allow_overwrites)

    def _default_checkpoint(self, table_uri: str) -> str:
        digest = hashlib.sha256(self.source.display.encode()).hexdigest()[:16]
        return f"{table_uri}/{CHECKPOINT_FOLDER}/{digest}"

    def _checkpoint_location(self, target: Table | None) -> Location:
        if self.checkpoint is not None:
            where = self.checkpoint
            if where.startswith(("/Volumes/", "dbfs:/Volumes/")):
                parts = where.split("/Volumes/", 1)[1].split("/")
                where = "/".join([self.catalog.volume_path(".".join(parts[:3])), *parts[3:]])
            return open_location(where, self.catalog.storage_options, display=self.checkpoint)
        assert target is not None
        return open_location(self._default_checkpoint(target.uri), target.storage_options)

    def _take(
        self, listed: list[FileEntry], ingested: set[str], cursor: int
    ) -> tuple[list[FileEntry], int]:
        """The next batch from ``listed[cursor:]``: files not ingested yet, oldest first,
        within the batch limits; and the cursor after it."""
        batch: list[FileEntry] = []
        size = 0
        while cursor < len(listed):
            entry = listed[cursor]
            if self._key(entry) in ingested or entry.rel in self._missing:
                cursor += 1
                continue
            if batch and self.max_bytes is not None and size + entry.size > self.max_bytes:
                break
            batch.append(entry)
            size += entry.size
            cursor += 1
            if len(batch) >= self.max_files:
                break
        return batch, cursor

    def _restat(
        self, planned: list[PlannedFile], listed: list[FileEntry], result: IngestResult
    ) -> list[FileEntry]:
        """The files of a batch a killed run planned, as they are now."""
        by_rel = {e.rel: e for e in listed}
        entries = []
        for f in planned:
            entry = by_rel.get(f.rel)
            if entry is None:
                path = self.source.join(f.rel)
                info = self.source.fs.get_file_info(path.path)
                if not info.is_file:
                    result.missing_files.append(path.display)
                    continue
                entry = FileEntry(
                    f.rel, int(info.size or 0), int(info.mtime_ns or 0), path.path, path.display
                )
            entries.append(entry)
        return entries

    def _parse(self, entries: list[FileEntry], result: IngestResult) -> list[RawFile]:
        """Read ``entries`` (in parallel); files read before in this run are not read again."""
        skip = self._parsed.keys() | self._missing | self._corrupt
        todo = [e for e in entries if e.rel not in skip]
        kind = FORMATS[self.format]
        workers = max(1, min(len(todo), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda e: self._read_one(e, kind), todo))
        for entry, raw in zip(todo, outcomes, strict=True):
            if isinstance(raw, FileNotFoundError):
                result.missing_files.append(entry.display)
                self._missing.add(entry.rel)
            elif isinstance(raw, Exception):
                if not self.ignore_corrupt:
                    raise LakeError(
                        f"cannot read {entry.display} as {self.format} ({raw}); fix or remove "
                        "the file, or pass ignore_corrupt_files=True to skip it"
                    ) from raw
                result.corrupt_files.append(entry.display)
                self._corrupt.add(entry.rel)
            else:
                self._parsed[entry.rel] = raw
        return [self._parsed[e.rel] for e in entries if e.rel in self._parsed]

    def _read_one(self, entry: FileEntry, kind: Any) -> RawFile | Exception:
        try:
            return read_file(self.source, entry, kind, self.reader)
        except (OSError, pa.ArrowException) as exc:
            return exc

    def _create(self, raws: list[RawFile], result: IngestResult) -> Table:
        schema = target_schema(
            raws,
            None,
            table=self.table,
            hints=self.hints,
            rescued_column=self.rescued_column,
            include_metadata=self.include_metadata,
        )
        try:
            created = self.catalog.create_table(
                self.table,
                schema=schema,
                primary_keys=self.primary_keys,
                partition_by=self.partition_by,
            )
        except AlreadyExistsError:  # a concurrent first run created it a moment ago
            return self.catalog.table(self.table)
        result.table_created = True
        return created

    def _commit_batch(
        self,
        ckpt: Checkpoint,
        state: CheckpointState,
        app_id: str,
        target: Table,
        raws: list[RawFile],
        planned: list[PlannedFile],
        result: IngestResult,
    ) -> Table:
        """Append batch ``last_batch + 1``, planned already, with its app transaction."""
        number = state.last_batch + 1
        crash_point("after_plan", number)
        batch = build_batch(
            raws,
            target.schema,
            table=self.table,
            hints=self.hints,
            rescued_column=self.rescued_column,
            include_metadata=self.include_metadata,
        )
        metadata = {
            "lakestack.ingest.stream": app_id,
            "lakestack.ingest.batch": str(number),
            "lakestack.ingest.source": self.source.display,
            "lakestack.ingest.files": str(len(raws)),
        }
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                version = target.append(
                    batch.data,
                    schema_mode="merge" if batch.new_columns else None,
                    commit_metadata=metadata,
                    app_transaction=(app_id, number),
                )
                break
            except CommitConflictError:
                target = self.catalog.table(self.table)
                if (target.app_transaction_version(app_id) or 0) >= number:
                    raise LakeError(
                        f"another run committed batch {number} of {self.source.display} into "
                        f"{self.table} at the same time; run one ingestion per source and table "
                        "at a time (max_concurrent_runs: 1)"
                    ) from None
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
            except (ConstraintError, SchemaMismatchError) as exc:
                names = ", ".join(r.entry.display for r in raws[:3])
                more = f" and {len(raws) - 3} more" if len(raws) > 3 else ""
                raise type(exc)(
                    f"{exc} (batch {number}: {names}{more}; the next run retries these files: "
                    "fix them in place or delete them)"
                ) from exc
        crash_point("after_commit", number)
        ckpt.write_commit(
            number,
            {
                "table_version": version,
                "rows": batch.data.num_rows,
                "files": len(raws),
                "rescued_rows": batch.rescued_rows,
            },
        )
        state.last_batch = number
        state.pending = None
        state.files.extend(planned)
        state.ingested.update(f.key(self.allow_overwrites) for f in planned)
        ckpt.maybe_compact(number, state.files)
        result.batches += 1
        result.files += len(raws)
        result.bytes += sum(r.entry.size for r in raws)
        result.rows += batch.data.num_rows
        result.rescued_rows += batch.rescued_rows
        result.new_columns += [c for c in batch.new_columns if c not in result.new_columns]
        for raw in raws:
            self._parsed.pop(raw.entry.rel, None)
        crash_point("after_record", number)
        return self.catalog.table(self.table) if batch.new_columns else target


def crash_point(point: str, batch: int) -> None:
    """Die here (SIGKILL, no cleanup) when the crash test hook names this point."""
    spec = os.environ.get(CRASH_ENV)
    if spec and spec in (point, f"{point}:{batch}"):
        os.kill(os.getpid(), signal.SIGKILL)
