"""Incremental file ingestion, the Auto Loader equivalent: new files of a folder into a table.

``ingest_files`` lists the source folder, takes the files no earlier run ingested, and appends
them to the table in batches, each batch one Delta commit. A checkpoint (``ingest_checkpoint``)
records each batch's files before its commit; the commit carries a Delta app transaction for the
batch number, so the rows and the "batch n is done" mark land together. A run killed at any
point leaves either a batch in the table and known to be there, or a batch not in the table that
the next run redoes with the same files: every file is ingested exactly once.

Schema: inferred from the first batch (``schema_hints`` override named columns), then the
table's schema is the contract; new columns are added, values that do not fit go to the rescued
data column (``ingest_batch``). Run it from Python, or as a job task::

    python -m lakestack.lake.ingest --source /Volumes/main/raw/landing --table main.bronze.events
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakestack.errors import (
    AlreadyExistsError,
    CommitConflictError,
    LakeError,
    LakestackError,
    UsageError,
)
from lakestack.lake.ingest_batch import build_batch
from lakestack.lake.ingest_checkpoint import Checkpoint, CheckpointState, PlannedFile
from lakestack.lake.ingest_files import (
    FileEntry,
    Location,
    list_files,
    open_location,
    resolve_source,
)
from lakestack.lake.ingest_read import FORMATS, RawFile, csv_options, read_file
from lakestack.lake.ingest_types import parse_schema_hints

if TYPE_CHECKING:
    from lakestack.lake.catalog import Catalog
    from lakestack.lake.table import Table

__all__ = ["CRASH_ENV", "IngestResult", "ingest_files", "main"]

# test hook: "<point>" or "<point>:<batch>" makes the process SIGKILL itself there
CRASH_ENV = "LAKESTACK_INGEST_CRASH_AT"
CHECKPOINT_FOLDER = "_lakestack_ingest"
_COMMIT_ATTEMPTS = 3


@dataclass
class IngestResult:
    """What one run ingested. ``to_dict()`` is JSON-ready (for task values or a log line)."""

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


def ingest_files(
    catalog: Catalog,
    source: str,
    table: str,
    *,
    format: str = "csv",
    checkpoint: str | None = None,
    glob: str | None = None,
    schema_hints: str | dict[str, str] | None = None,
    rescued_data_column: str | None = "_rescued_data",
    max_files_per_batch: int = 1000,
    max_bytes_per_batch: int | None = None,
    primary_keys: Sequence[str] = (),
    partition_by: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    include_existing_files: bool = True,
    allow_overwrites: bool = False,
    include_metadata: bool = False,
    ignore_corrupt_files: bool = False,
) -> IngestResult:
    """Ingest the files of ``source`` that no earlier run ingested into ``table``.

    Args:
        catalog: The catalog holding ``table`` (``default_catalog()`` in a job task).
        source: A folder, a ``/Volumes/<catalog>/<schema>/<volume>/...`` path or a URL.
        table: ``catalog.schema.table``; created from the first batch when missing.
        format: ``csv`` (with a header), ``json`` (JSON lines) or ``parquet``.
        checkpoint: Where the checkpoint lives; default ``<table folder>/_lakestack_ingest/
            <hash of source>``.
        glob: Only files whose name (or, with a ``/``, relative path) matches.
        schema_hints: Types for named columns at inference (``"id bigint, amount double"``).
        rescued_data_column: The column for values that do not fit; None fails on them.
        max_files_per_batch: Files per commit (Auto Loader's ``maxFilesPerTrigger``).
        max_bytes_per_batch: Soft limit of bytes per commit (``maxBytesPerTrigger``).
        primary_keys: Primary key of the table when this run creates it.
        partition_by: Partition columns of the table when this run creates it.
        options: Reader options: CSV ``header``, ``sep``, ``quote``, ``escape``, ``encoding``,
            ``nullValue``; JSON ``encoding``.
        include_existing_files: False: files there before the first run are never ingested.
        allow_overwrites: True: a file changed since it was ingested (size or modification
            time) is ingested again; False: a path is ingested once.
        include_metadata: Add a ``_metadata`` column (file path, name, size, times).
        ignore_corrupt_files: Skip Parquet files that cannot be read instead of failing.

    Returns:
        What the run ingested.

    Raises:
        UsageError: Bad options.
        NotFoundError: The source folder or the table's schema does not exist.
        SchemaMismatchError: A value that does not fit and no rescued data column.
        ConstraintError: A batch breaks the table's primary key or NOT NULL columns.
        LakeError: The checkpoint and the table disagree, or a file cannot be read.
    """
    if format not in FORMATS:
        raise UsageError(f"format '{format}' is not supported; use one of {', '.join(FORMATS)}")
    if max_files_per_batch < 1:
        raise UsageError(f"max_files_per_batch must be at least 1, got {max_files_per_batch}")
    run = _Run(
        catalog=catalog,
        source=resolve_source(catalog, source, catalog.storage_options),
        table=table,
        format=format,
        reader=csv_options(format, options),
        hints=parse_schema_hints(schema_hints),
        checkpoint=checkpoint,
        glob=glob,
        rescued_column=rescued_data_column,
        max_files=max_files_per_batch,
        max_bytes=max_bytes_per_batch,
        primary_keys=tuple(primary_keys),
        partition_by=tuple(partition_by),
        include_existing=include_existing_files,
        allow_overwrites=allow_overwrites,
        include_metadata=include_metadata,
        ignore_corrupt=ignore_corrupt_files,
    )
    return run.execute()


@dataclass
class _Run:
    catalog: Catalog
    source: Location
    table: str
    format: str
    reader: Any
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

    def execute(self) -> IngestResult:
        listed = list_files(self.source, self.glob)
        result = IngestResult(self.source.display, self.table, checkpoint="")
        target = self.catalog.table(self.table) if self.catalog.table_exists(self.table) else None
        if target is None and self.checkpoint is None:
            if not self.include_existing:
                raise UsageError(
                    f"include_existing_files=False needs table {self.table} to exist or an "
                    "explicit checkpoint, so that the existing files can be recorded"
                )
            # the default checkpoint lives in the table's folder: create the table first
            first = self._parse(self._take(listed, set()), result)
            if not first:
                result.checkpoint = self._default_checkpoint(self.catalog.table_uri(self.table))
                return result
            target = self._create(first, result)
            _crash_point("after_create", 0)
        ckpt = Checkpoint(self._checkpoint_location(target))
        result.checkpoint = ckpt.display
        with ckpt.locked():
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
            while True:
                if state.pending is not None:
                    entries = self._restat(state.pending, listed, result)
                    planned, redo = state.pending, True
                    if state.last_batch + 1 not in result.recovered_batches:
                        result.recovered_batches.append(state.last_batch + 1)
                else:
                    entries = self._take(listed, state.ingested)
                    planned, redo = [], False
                    if not entries:
                        break
                raws = self._parse(entries, result)
                if not redo:
                    planned = [PlannedFile.of(e) for e in entries]
                if target is None:
                    target = self._create(raws, result)
                target = self._commit_batch(
                    ckpt, state, app_id, target, raws, planned, redo, result
                )
        result.table_version = target.version if target is not None else None
        return result

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

    def _take(self, listed: list[FileEntry], ingested: set[str]) -> list[FileEntry]:
        """The next batch: files not ingested yet, oldest first, within the batch limits."""
        batch: list[FileEntry] = []
        size = 0
        for entry in listed:
            if self._key(entry) in ingested:
                continue
            if batch and self.max_bytes is not None and size + entry.size > self.max_bytes:
                break
            batch.append(entry)
            size += entry.size
            if len(batch) >= self.max_files:
                break
        return batch

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
        todo = [e for e in entries if e.rel not in self._parsed]
        kind = FORMATS[self.format]
        workers = max(1, min(len(todo), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda e: self._read_one(e, kind), todo))
        for entry, raw in zip(todo, outcomes, strict=True):
            if isinstance(raw, FileNotFoundError):
                result.missing_files.append(entry.display)
            elif isinstance(raw, Exception):
                if not self.ignore_corrupt:
                    raise LakeError(
                        f"cannot read {entry.display} as {self.format} ({raw}); fix or remove "
                        "the file, or pass ignore_corrupt_files=True to skip it"
                    ) from raw
                result.corrupt_files.append(entry.display)
            else:
                self._parsed[entry.rel] = raw
        return [self._parsed[e.rel] for e in entries if e.rel in self._parsed]

    def _read_one(self, entry: FileEntry, kind: Any) -> RawFile | Exception:
        try:
            return read_file(self.source, entry, kind, self.reader)
        except (OSError, pa.ArrowException) as exc:
            return exc

    def _create(self, raws: list[RawFile], result: IngestResult) -> Table:
        batch = build_batch(
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
                schema=batch.data.schema,
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
        redo: bool,
        result: IngestResult,
    ) -> Table:
        number = state.last_batch + 1
        if not redo:
            ckpt.write_plan(number, planned)
        _crash_point("after_plan", number)
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
        _crash_point("after_commit", number)
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
        _crash_point("after_record", number)
        return self.catalog.table(self.table) if batch.new_columns else target


def _crash_point(point: str, batch: int) -> None:
    """Die here (SIGKILL, no cleanup) when the crash test hook names this point."""
    spec = os.environ.get(CRASH_ENV)
    if spec and spec in (point, f"{point}:{batch}"):
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lakestack.lake.ingest``: ingest once, print the result as one JSON line."""
    parser = argparse.ArgumentParser(
        prog="python -m lakestack.lake.ingest",
        description="Ingest new files of a folder or volume into a Delta table (Auto Loader).",
    )
    parser.add_argument("--source", required=True, help="folder, /Volumes/... path or URL")
    parser.add_argument("--table", required=True, help="catalog.schema.table")
    parser.add_argument("--format", default="csv", choices=sorted(FORMATS))
    parser.add_argument("--checkpoint", help="checkpoint folder (default: in the table folder)")
    parser.add_argument("--glob", help="only files matching this pattern, e.g. '*.csv'")
    parser.add_argument("--schema-hints", help="e.g. 'id bigint, amount double'")
    parser.add_argument("--rescued-data-column", default="_rescued_data")
    parser.add_argument("--max-files-per-batch", type=int, default=1000)
    parser.add_argument("--max-bytes-per-batch", type=int)
    parser.add_argument("--primary-key", action="append", default=[], dest="primary_keys")
    parser.add_argument("--partition-by", action="append", default=[])
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-existing-files", action="store_true")
    parser.add_argument("--allow-overwrites", action="store_true")
    parser.add_argument("--include-metadata", action="store_true")
    parser.add_argument("--ignore-corrupt-files", action="store_true")
    parser.add_argument("--warehouse", help="warehouse root (default: the current workspace)")
    args = parser.parse_args(argv)
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option takes KEY=VALUE, got '{item}'")
        options[key] = value
    from lakestack.lake.catalog import Catalog, default_catalog

    try:
        catalog = Catalog(args.warehouse) if args.warehouse else default_catalog()
        result = ingest_files(
            catalog,
            args.source,
            args.table,
            format=args.format,
            checkpoint=args.checkpoint,
            glob=args.glob,
            schema_hints=args.schema_hints,
            rescued_data_column=args.rescued_data_column or None,
            max_files_per_batch=args.max_files_per_batch,
            max_bytes_per_batch=args.max_bytes_per_batch,
            primary_keys=args.primary_keys,
            partition_by=args.partition_by,
            options=options,
            include_existing_files=not args.no_existing_files,
            allow_overwrites=args.allow_overwrites,
            include_metadata=args.include_metadata,
            ignore_corrupt_files=args.ignore_corrupt_files,
        )
    except UsageError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 2
    except LakestackError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
