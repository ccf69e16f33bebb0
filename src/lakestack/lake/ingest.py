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
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lakestack.errors import LakestackError, UsageError
from lakestack.lake.ingest_read import FORMATS, csv_options
from lakestack.lake.ingest_run import CRASH_ENV, IngestResult, IngestRun
from lakestack.lake.ingest_schema import parse_schema_hints
from lakestack.lake.ingest_source import resolve_source

if TYPE_CHECKING:
    from lakestack.lake.catalog import Catalog

__all__ = ["CRASH_ENV", "IngestResult", "ingest_files", "main"]


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
    run = IngestRun(
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
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # delta-rs may abort the interpreter at shutdown on Linux ("terminate called without an
    # active exception", delta-io/delta-rs#2184), turning a finished run into exit code 134;
    # everything is written and closed by now, so skip the shutdown
    os._exit(code)
