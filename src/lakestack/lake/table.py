"""One Delta table of the catalog: reads with pushdown and time travel, and writes that keep
the table's constraints.

Constraints live in the Delta table itself, so that every reader and writer sees them: NOT NULL
columns are non-nullable fields of the Delta schema (delta-rs refuses nulls in them), the
primary key is the ``lakestack.primary_keys`` table property. A write that would break either is
refused before anything is committed, with the table and column in the message. Tags are table
properties named ``lakestack.tag.<name>``; the comment is the Delta table description.
"""

from __future__ import annotations

import atexit
import functools
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.dataset as pds
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

from lakestack.errors import (
    CommitConflictError,
    ConstraintError,
    LakeError,
    NotFoundError,
    SchemaMismatchError,
)
from lakestack.lake.arrow import as_arrow, check_not_null, distinct_count, fit_to_schema
from lakestack.lake.names import TableName
from lakestack.lake.reads import record_read
from lakestack.lake.views import read_parts, uniform_parts

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from deltalake import DeltaTable

__all__ = ["PRIMARY_KEYS", "TAG_PREFIX", "Table", "TableInfo"]

PRIMARY_KEYS = "lakestack.primary_keys"
TAG_PREFIX = "lakestack.tag."
INTERNAL_PREFIX = "lakestack."
COMMIT_RETRIES = 15
# A stream's Parquet row groups: the writer buffers one per file, so memory stays flat (1M-row
# groups took 700 MiB writing 10M rows, 128k ones 330 MiB). Dictionary pages of at most 16 KiB:
# a column with more distinct values falls back to plain encoding early instead of building a
# 1 MiB dictionary in every row group first (4x the write time for 128k-row groups of floats);
# low-cardinality columns (a model id, a label, a category) keep their dictionary.
STREAM_ROW_GROUP_ROWS = 131_072
STREAM_DICTIONARY_BYTES = 16_384
# delta-rs keeps each file it writes in memory until the file reaches its target size (one file
# per core at a time): 100 MiB by default, so a write's memory grew until its files filled up
# (2M rows: 530 MiB, 10M: 720 MiB); at 32 MiB it is flat from the first few hundred MiB written.
STREAM_FILE_BYTES = 32 * 2**20
STREAM_AHEAD = 4  # batches a stream's producer may read ahead of the writer

Filter = Any  # a pyarrow.compute.Expression or DNF tuples [("col", "=", value), ...]
SchemaMode = Literal["merge", "overwrite"] | None


@dataclass(frozen=True)
class TableInfo:
    """What ``tables show`` prints: the table's shape and metadata at one version."""

    name: str
    uri: str
    version: int
    columns: list[tuple[str, str, bool]]
    primary_keys: list[str]
    not_null: list[str]
    partition_by: list[str]
    comment: str | None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    num_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``--output json``)."""
        return {
            "name": self.name,
            "uri": self.uri,
            "version": self.version,
            "columns": [{"name": n, "type": t, "nullable": nl} for n, t, nl in self.columns],
            "primary_keys": self.primary_keys,
            "not_null": self.not_null,
            "partition_by": self.partition_by,
            "comment": self.comment,
            "tags": self.tags,
            "properties": self.properties,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "num_files": self.num_files,
        }


def _filter_expression(filter: Filter) -> Any:
    if filter is None or isinstance(filter, pds.Expression):
        return filter
    import pyarrow.parquet as pq

    return pq.filters_to_expression(filter)


@functools.cache
def _let_scans_finish_at_exit() -> None:
    """Give Arrow's threads 10 ms at exit to drop the files a scan of object storage read.

    deltalake opens remote files as Python objects; Arrow's threads drop them a little after a
    scan ends, and need the GIL to. In a process that exits right after a scan they can find
    the interpreter finalizing, which aborts it ("terminate called without an active
    exception", delta-io/delta-rs#2184).
    """
    atexit.register(time.sleep, 0.01)


def _local_path(uri: str) -> str | None:
    """The folder of a table on the local filesystem; None for object storage."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return None if "://" in uri else uri


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Table:
    """A Delta table named ``catalog.schema.table``. Get one from ``Catalog.table``."""

    def __init__(self, name: TableName, uri: str, storage_options: Mapping[str, str]) -> None:
        self.name = str(name)
        self.uri = uri
        self.storage_options = dict(storage_options)
        self._delta: DeltaTable | None = None

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    # reading ------------------------------------------------------------------------------

    def delta(self, version: int | None = None, timestamp: datetime | str | None = None) -> Any:
        """The ``deltalake.DeltaTable`` at the latest, or the given, version or timestamp."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            if version is None and timestamp is None:
                if self._delta is None:
                    self._delta = DeltaTable(self.uri, storage_options=self.storage_options)
                else:
                    self._delta.update_incremental()
                return self._delta
            table = DeltaTable(self.uri, storage_options=self.storage_options)
            table.load_as_version(version if version is not None else _as_time(timestamp))
            return table
        except TableNotFoundError:
            raise NotFoundError(f"table {self.name} does not exist; create it first") from None
        except (DeltaError, ValueError) as exc:
            at = f"version {version}" if version is not None else f"timestamp {timestamp}"
            raise NotFoundError(
                f"table {self.name} has no {at} ({str(exc).splitlines()[0]}); "
                f"see its versions with: lakestack tables history {self.name}"
            ) from None

    @property
    def version(self) -> int:
        """The latest version."""
        return int(self.delta().version())

    @property
    def schema(self) -> pa.Schema:
        """The table's Arrow schema (NOT NULL columns are non-nullable fields)."""
        return _schema(self.delta())

    @property
    def primary_keys(self) -> list[str]:
        """The primary-key columns, in order."""
        return _primary_keys(self.delta())

    @property
    def info(self) -> TableInfo:
        """The table's metadata at its latest version."""
        delta = self.delta()
        meta = delta.metadata()
        config = dict(meta.configuration)
        schema = pa.schema(delta.schema().to_arrow())
        return TableInfo(
            name=self.name,
            uri=self.uri,
            version=int(delta.version()),
            columns=[(f.name, str(f.type), f.nullable) for f in schema],
            primary_keys=list(json.loads(config.get(PRIMARY_KEYS, "[]"))),
            not_null=[f.name for f in schema if not f.nullable],
            partition_by=list(meta.partition_columns),
            comment=meta.description or None,
            tags={k[len(TAG_PREFIX) :]: v for k, v in config.items() if k.startswith(TAG_PREFIX)},
            properties={k: v for k, v in config.items() if not k.startswith(INTERNAL_PREFIX)},
            created_at=datetime.fromtimestamp(meta.created_time / 1000, tz=timezone.utc)
            if meta.created_time
            else None,
            num_files=len(delta.file_uris()),
        )

    def dataset(
        self, version: int | None = None, timestamp: datetime | str | None = None
    ) -> pds.Dataset:
        """A lazy Arrow dataset of the table (for DuckDB or Polars scans).

        A local table is read through Arrow's own filesystem rather than deltalake's Python
        file handler: faster (about 0.18 s instead of 0.29 s for 10M rows), and the process can
        exit right after a read without deltalake's file objects being dropped during
        interpreter shutdown, which aborts it (delta-io/delta-rs#2184).

        The table and the version read are recorded for lineage (``lakestack.lake.reads``).
        """
        delta = self.delta(version, timestamp)
        record_read(self.name, int(delta.version()))
        return self._arrow_dataset(delta)

    def _arrow_dataset(self, delta: DeltaTable) -> pds.Dataset:
        """The Arrow dataset of a loaded Delta table, without recording a read."""
        local = _local_path(self.uri)
        if local is None:
            _let_scans_finish_at_exit()
            return delta.to_pyarrow_dataset()
        return delta.to_pyarrow_dataset(filesystem=SubTreeFileSystem(local, LocalFileSystem()))

    def read(
        self,
        columns: Sequence[str] | None = None,
        filter: Filter = None,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> pa.Table:
        """Read the table (or a time-travelled version of it) as Arrow.

        Args:
            columns: Only these columns (projection pushed down to the Parquet files).
            filter: A ``pyarrow.compute`` expression or DNF tuples, pushed down.
            version: Time travel to this version.
            timestamp: Time travel to the version current at this time.
        """
        dataset = self.dataset(version, timestamp)
        self._check_columns(columns, dataset.schema)
        expression = _filter_expression(filter)
        parts = uniform_parts(dataset, self.uri) if expression is not None else None
        return read_parts(dataset, list(columns) if columns else None, expression, parts)

    def to_pandas(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """``read`` as a pandas DataFrame."""
        return self.read(*args, **kwargs).to_pandas()

    def to_polars(self, *args: Any, **kwargs: Any) -> pl.DataFrame:
        """``read`` as a Polars DataFrame."""
        import polars as pl

        frame = pl.from_arrow(self.read(*args, **kwargs))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def batches(
        self,
        columns: Sequence[str] | None = None,
        filter: Filter = None,
        batch_size: int = 65_536,
        version: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table in Arrow batches; memory stays bounded whatever the table's size."""
        dataset = self.dataset(version)
        self._check_columns(columns, dataset.schema)
        selected, expression = list(columns) if columns else None, _filter_expression(filter)
        parts = uniform_parts(dataset, self.uri) if expression is not None else []
        if len(parts) > 1:  # a merged table: per kind of file
            yield from read_parts(dataset, selected, expression, parts).to_batches(batch_size)
            return
        yield from dataset.to_batches(columns=selected, filter=expression, batch_size=batch_size)

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The commits, newest first: version, timestamp, operation, parameters, metrics."""
        out = []
        for entry in self.delta().history(limit):
            out.append(
                {
                    "version": entry.get("version"),
                    "timestamp": datetime.fromtimestamp(
                        entry.get("timestamp", 0) / 1000, tz=timezone.utc
                    ).isoformat(),
                    "operation": entry.get("operation"),
                    "parameters": entry.get("operationParameters") or {},
                    "metrics": entry.get("operationMetrics") or {},
                    "metadata": {
                        k: v
                        for k, v in entry.items()
                        if k
                        not in {
                            "version",
                            "timestamp",
                            "operation",
                            "operationParameters",
                            "operationMetrics",
                            "readVersion",
                            "engineInfo",
                            "clientVersion",
                            "isBlindAppend",
                        }
                    },
                }
            )
        return out

    def changes(self, starting_version: int = 0, ending_version: int | None = None) -> pa.Table:
        """The change data feed between two versions (``_change_type``, ``_commit_version``,
        ``_commit_timestamp`` beside the columns)."""
        from deltalake.exceptions import DeltaError

        try:
            reader = self.delta().load_cdf(starting_version, ending_version)
        except DeltaError as exc:
            raise LakeError(
                f"table {self.name}: no change data feed from version {starting_version} "
                f"({str(exc).splitlines()[0]})"
            ) from None
        return pa.RecordBatchReader.from_stream(reader).read_all()

    def app_transaction_version(self, app_id: str) -> int | None:
        """The last version committed by ``app_id`` through ``app_transaction``, if any."""
        version = self.delta().transaction_version(app_id)
        return None if version is None else int(version)

    # writing ------------------------------------------------------------------------------

    def append(
        self,
        data: Any,
        *,
        schema_mode: SchemaMode = None,
        commit_metadata: Mapping[str, str] | None = None,
        app_transaction: tuple[str, int] | None = None,
    ) -> int:
        """Append rows; return the new version.

        Args:
            data: pandas, Polars or Arrow data, or an Arrow ``RecordBatchReader``: a stream is
                written as it is read, in bounded memory, in one commit (into a table with a
                primary key it is read whole first, to check the key).
            schema_mode: ``"merge"`` adds the data's new columns to the table.
            commit_metadata: Recorded in the commit (``history``).
            app_transaction: ``(app_id, version)`` committed atomically with the rows.

        Raises:
            SchemaMismatchError: A column the table does not have, or a value of the wrong type.
            ConstraintError: A null in a NOT NULL column, or a primary key that is duplicated in
                the data or exists in the table already. Nothing is committed.
            CommitConflictError: A concurrent writer kept conflicting; retry.
            Exception: Whatever a stream raised while it was read; nothing is committed.
        """
        delta = self.delta()  # one snapshot for the checks and the commit
        keys = _primary_keys(delta)
        if isinstance(data, pa.RecordBatchReader) and not keys:
            stream = self._fitted_stream(data, _schema(delta), allow_new=schema_mode == "merge")
            return self._write(
                stream, "append", schema_mode, commit_metadata, app_transaction, delta
            )
        table = self._prepare(data, delta, allow_new=schema_mode == "merge")
        if keys:
            self._check_unique(table, keys, "the data")
            self._check_new_keys(table, keys, delta)
        return self._write(table, "append", schema_mode, commit_metadata, app_transaction, delta)

    def overwrite(
        self,
        data: Any,
        *,
        schema_mode: SchemaMode = None,
        commit_metadata: Mapping[str, str] | None = None,
        app_transaction: tuple[str, int] | None = None,
    ) -> int:
        """Replace every row (``schema_mode="overwrite"`` replaces the schema too).

        A ``RecordBatchReader`` is written as it is read, as in ``append``; the old rows stay
        until the one commit at the end, so a stream that fails leaves the table as it was.
        """
        delta = self.delta()  # one snapshot for the checks and the commit
        primary_keys = _primary_keys(delta)
        if isinstance(data, pa.RecordBatchReader) and not primary_keys:
            if schema_mode == "overwrite":
                stream = _normalized_stream(data)
            else:
                stream = self._fitted_stream(data, _schema(delta), allow_new=schema_mode == "merge")
            return self._write(
                stream, "overwrite", schema_mode, commit_metadata, app_transaction, delta
            )
        if schema_mode == "overwrite":
            from lakestack.lake.arrow import normalize_schema

            table = as_arrow(data)
            table = table.cast(normalize_schema(table.schema))
            check_not_null(table, primary_keys, table_name=self.name)
        else:
            table = self._prepare(data, delta, allow_new=schema_mode == "merge")
        keys = [k for k in primary_keys if k in table.column_names]
        if keys:
            self._check_unique(table, keys, "the data")
        return self._write(table, "overwrite", schema_mode, commit_metadata, app_transaction, delta)

    def merge(
        self,
        data: Any,
        keys: Sequence[str] | None = None,
        *,
        schema_mode: SchemaMode = None,
        commit_metadata: Mapping[str, str] | None = None,
        app_transaction: tuple[str, int] | None = None,
    ) -> int:
        """Upsert: update the rows whose keys match, insert the others; return the new version.

        A source with only some of the table's columns updates only those columns of the
        matched rows (the others keep their values: labels merged by key leave the features
        alone); its inserted rows get NULL in the columns it lacks.

        Args:
            data: The source rows.
            keys: The columns to match on; None means the primary key.

        Raises:
            ConstraintError: A key duplicated in the source, or a null key. Nothing is committed.
        """
        delta = self.delta()
        match = list(keys or _primary_keys(delta))
        if not match:
            raise ConstraintError(
                f"table {self.name} has no primary key; pass keys=[...] to merge on"
            )
        source = as_arrow(data)
        table = self._prepare(source, delta, allow_new=schema_mode == "merge")
        given = set(source.column_names)
        partial = not given.issuperset(table.column_names)
        missing = [k for k in match if k not in table.column_names]
        if missing:
            raise SchemaMismatchError(
                f"merge into {self.name}: the source has no key column '{missing[0]}'"
            )
        check_not_null(table, match, table_name=self.name)
        self._check_unique(table, match, "the merge source")
        from deltalake.exceptions import CommitFailedError, DeltaError

        predicate = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in match)
        try:
            merger = delta.merge(
                table,
                predicate,
                source_alias="s",
                target_alias="t",
                merge_schema=schema_mode == "merge",
                commit_properties=_commit(commit_metadata, app_transaction),
            )
            if partial:
                columns = {_quote(c): f"s.{_quote(c)}" for c in table.column_names if c in given}
                merger = merger.when_matched_update(columns).when_not_matched_insert(columns)
            else:
                merger = merger.when_matched_update_all().when_not_matched_insert_all()
            merger.execute()
        except CommitFailedError as exc:
            raise self._conflict(exc) from None
        except DeltaError as exc:
            raise self._write_error(exc) from None
        return self.version

    def delete(
        self,
        predicate: str | None = None,
        *,
        commit_metadata: Mapping[str, str] | None = None,
        app_transaction: tuple[str, int] | None = None,
    ) -> int:
        """Delete the rows matching ``predicate`` (SQL, e.g. ``"id < 10"``); None: every row."""
        from deltalake.exceptions import CommitFailedError, DeltaError

        try:
            self.delta().delete(
                predicate, commit_properties=_commit(commit_metadata, app_transaction)
            )
        except CommitFailedError as exc:
            raise self._conflict(exc) from None
        except DeltaError as exc:
            raise LakeError(
                f"delete from {self.name} where {predicate}: {str(exc).splitlines()[0]}"
            ) from None
        return self.version

    def optimize(
        self,
        target_size: int | None = None,
        *,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Compact small files into files of about ``target_size`` bytes (Delta ``OPTIMIZE``).

        A table written in many small commits (a stream, an inference table) has a file per
        commit; readers open every file. Compaction rewrites them in one commit of its own
        that changes no row: appends committed meanwhile keep their rows and their app
        transactions, and time travel to earlier versions still reads the old files until
        ``vacuum`` removes them.

        Args:
            target_size: The size of the files to write, in bytes (default: the table's
                ``delta.targetFileSize``, else delta-rs's 100 MiB). Files of that size or
                larger are left alone.
            commit_metadata: Recorded in the commit (``history``).

        Returns:
            delta-rs's metrics: ``numFilesAdded``, ``numFilesRemoved``, ``filesAdded`` and
            ``filesRemoved`` (size statistics), ``partitionsOptimized``, ``totalConsideredFiles``,
            ``totalFilesSkipped``...

        Raises:
            LakeError: The compaction failed; nothing was committed.
            CommitConflictError: A concurrent write kept conflicting; retry.
        """
        from deltalake.exceptions import CommitFailedError, DeltaError

        if target_size is not None and target_size < 1:
            raise LakeError(
                f"optimize {self.name}: target_size must be a positive number of bytes, "
                f"not {target_size}; give e.g. {32 * 2**20} (32 MiB), or None for the default"
            )
        try:
            metrics: dict[str, Any] = self.delta().optimize.compact(
                target_size=target_size,
                commit_properties=_commit(commit_metadata, None),
            )
        except CommitFailedError as exc:
            raise self._conflict(exc) from None
        except DeltaError as exc:
            raise LakeError(f"optimize {self.name} failed: {str(exc).splitlines()[0]}") from None
        return metrics

    def vacuum(
        self,
        retention_hours: int | None = None,
        *,
        dry_run: bool = False,
        enforce_retention_duration: bool = True,
    ) -> list[str]:
        """Delete the files no version within the retention period reads (Delta ``VACUUM``).

        Files replaced by ``optimize``, ``overwrite``, ``merge`` or ``delete`` stay on storage
        for time travel; vacuum deletes those removed longer than ``retention_hours`` ago
        (default: the table's ``delta.deletedFileRetentionDuration``, else 7 days). Versions
        older than that can no longer be read afterwards.

        Args:
            retention_hours: Keep files removed within this many hours.
            dry_run: Only list the files that would be deleted.
            enforce_retention_duration: Refuse a ``retention_hours`` shorter than the table's
                retention duration (False allows it, e.g. 0 to delete every unread file).

        Returns:
            The files deleted (or, with ``dry_run``, that would be), relative to the table.

        Raises:
            LakeError: The vacuum failed, or ``retention_hours`` is below the table's retention
                duration while ``enforce_retention_duration`` is on.
        """
        from deltalake.exceptions import DeltaError

        try:
            files: list[str] = self.delta().vacuum(
                retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=enforce_retention_duration,
            )
        except (DeltaError, ValueError) as exc:
            raise LakeError(
                f"vacuum {self.name} failed: {str(exc).splitlines()[0]}; give a retention_hours "
                "of at least the table's retention, or enforce_retention_duration=False"
            ) from None
        return files

    def set_properties(self, properties: Mapping[str, str]) -> None:
        """Set table properties (``delta.*`` ones configure Delta itself)."""
        self.delta().alter.set_table_properties(
            {str(k): str(v) for k, v in properties.items()}, raise_if_not_exists=False
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (kept as ``lakestack.tag.<name>`` table properties)."""
        self.set_properties({f"{TAG_PREFIX}{k}": v for k, v in tags.items()})

    def set_comment(self, comment: str) -> None:
        """Set the table's comment (the Delta table description)."""
        self.delta().alter.set_table_description(comment)

    # internals ----------------------------------------------------------------------------

    def _check_columns(self, columns: Sequence[str] | None, schema: pa.Schema) -> None:
        for name in columns or ():
            if name not in schema.names:
                raise SchemaMismatchError(
                    f"table {self.name} has no column '{name}' (columns: {', '.join(schema.names)})"
                )

    def _prepare(self, data: Any, delta: Any, *, allow_new: bool) -> pa.Table:
        """``data`` fitted to the table's schema at snapshot ``delta``, its NOT NULL columns and
        primary key checked."""
        schema = _schema(delta)
        table = fit_to_schema(as_arrow(data), schema, table_name=self.name, allow_new=allow_new)
        not_null = [f.name for f in schema if not f.nullable]
        check_not_null(table, [*not_null, *_primary_keys(delta)], table_name=self.name)
        return table

    def _check_unique(self, table: pa.Table, keys: Sequence[str], what: str) -> None:
        if table.num_rows == 0 or distinct_count(table, keys) == table.num_rows:
            return
        from lakestack.lake.duck import query

        cols = ", ".join(_quote(k) for k in keys)
        dup = query(
            f"SELECT {cols}, count(*) AS n FROM data GROUP BY ALL HAVING n > 1 LIMIT 1",
            {"data": table.select(list(keys))},
        ).to_pylist()[0]
        shown = ", ".join(f"{k}={dup[k]!r}" for k in keys)
        raise ConstraintError(
            f"table {self.name}: {what} has {dup['n']} rows with the primary key ({shown}); "
            "keys must be unique, nothing was written"
        )

    def _check_new_keys(self, table: pa.Table, keys: Sequence[str], delta: Any) -> None:
        if table.num_rows == 0:
            return
        existing = self._arrow_dataset(delta)  # a write's check, not a read
        from lakestack.lake.duck import query

        cols = ", ".join(_quote(k) for k in keys)
        clash = query(
            f"SELECT {cols} FROM data SEMI JOIN existing USING ({cols}) LIMIT 1",
            {"data": table.select(list(keys)), "existing": existing},
        ).to_pylist()
        if clash:
            shown = ", ".join(f"{k}={clash[0][k]!r}" for k in keys)
            raise ConstraintError(
                f"table {self.name}: the primary key ({shown}) exists already; "
                "use merge to update existing rows, nothing was written"
            )

    def _fitted_stream(
        self, reader: pa.RecordBatchReader, schema: pa.Schema, *, allow_new: bool
    ) -> _Stream:
        """``reader``'s batches cast to the table's ``schema`` and checked as they are read."""
        not_null = [f.name for f in schema if not f.nullable]
        fitted = fit_to_schema(  # a column that does not fit fails here, before any write
            reader.schema.empty_table(), schema, table_name=self.name, allow_new=allow_new
        ).schema

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                rows = fit_to_schema(
                    pa.Table.from_batches([batch]),
                    schema,
                    table_name=self.name,
                    allow_new=allow_new,
                )
                check_not_null(rows, not_null, table_name=self.name)
                yield from rows.to_batches()

        return _Stream(fitted, batches())

    def _write(
        self,
        table: pa.Table | _Stream,
        mode: Literal["append", "overwrite"],
        schema_mode: SchemaMode,
        commit_metadata: Mapping[str, str] | None,
        app_transaction: tuple[str, int] | None,
        delta: Any = None,
    ) -> int:
        """Commit ``table``; return the version committed.

        ``delta`` is the snapshot the write was checked against (``self.delta()``): delta-rs
        commits from it, and brings it to the new version, instead of loading the table's log
        again (a write by URI does: 30 ms instead of 5 for a table 50 commits past its last
        checkpoint, more as the log grows). A concurrent commit since the snapshot is checked
        for conflicts as it would be from a fresh load.
        """
        from deltalake import WriterProperties, write_deltalake
        from deltalake.exceptions import CommitFailedError, DeltaError
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        stream = table if isinstance(table, _Stream) else None
        source: Any = table
        options: dict[str, Any] = {}
        if stream is not None:
            source = stream.reader()
            options["writer_properties"] = WriterProperties(
                max_row_group_size=STREAM_ROW_GROUP_ROWS,
                dictionary_page_size_limit=STREAM_DICTIONARY_BYTES,
                compression="SNAPPY",  # WriterProperties leaves it off unless named
                column_properties=_plain_floats(stream.schema),
            )
            options["target_file_size"] = STREAM_FILE_BYTES
        try:
            try:
                write_deltalake(
                    self.uri if delta is None else delta,
                    source,
                    mode=mode,
                    schema_mode=schema_mode,
                    storage_options=self.storage_options,
                    commit_properties=_commit(commit_metadata, app_transaction),
                    **options,
                )
            except Exception:
                if stream is not None and stream.error is not None:
                    raise stream.error from None  # the source's own error, not delta-rs's wrap
                raise
            finally:
                if stream is not None:
                    stream.close()
        except CommitFailedError as exc:
            raise self._conflict(exc) from None
        except DeltaSchemaMismatch as exc:
            raise SchemaMismatchError(
                f"table {self.name}: {str(exc).splitlines()[0]}; nothing was written"
            ) from None
        except DeltaError as exc:
            raise self._write_error(exc) from None
        return self.version if delta is None else int(delta.version())

    def _conflict(self, exc: Exception) -> CommitConflictError:
        return CommitConflictError(
            f"table {self.name}: a concurrent write committed first and the retries ran out "
            f"({str(exc).splitlines()[0]}); retry the write"
        )

    def _write_error(self, exc: Exception) -> LakeError:
        text = str(exc)
        if "failed validation" in text or "non-nullable" in text.lower():
            return ConstraintError(
                f"table {self.name}: a NOT NULL column got a null value; nothing was written"
            )
        return LakeError(f"write to {self.name} failed: {text.splitlines()[0]}")


class _Stream:
    """Batches to write, produced on a thread of their own; the first error reading them kept.

    delta-rs pulls the batches from inside its async runtime, where any deltalake call (a
    feature lookup, a read from object storage) panics ("Cannot start a runtime from within a
    runtime"); so a producer thread reads them, at most ``STREAM_AHEAD`` batches ahead of the
    writer. delta-rs reports an error raised by the batches as a generic write error; the
    writer re-raises the original (a lakestack error with its message) from ``error``.
    """

    def __init__(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        self.schema = schema
        self._batches = batches
        self.error: BaseException | None = None
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=STREAM_AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reader(self) -> pa.RecordBatchReader:
        """Start producing; the batches as a reader, for the writer."""
        self._thread = threading.Thread(
            target=self._produce, name="lakestack-write-source", daemon=True
        )
        self._thread.start()
        return pa.RecordBatchReader.from_batches(self.schema, self._consume())

    def close(self) -> None:
        """Stop the producer (the writer is done, or gave up) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _produce(self) -> None:
        try:
            for batch in self._batches:
                if not self._put(batch):
                    return
        except BaseException as exc:
            self.error = exc
        finally:
            close = getattr(self._batches, "close", None)
            if close is not None:
                close()  # runs the source's cleanup (thread pools, open scans) here
            self._put(None)

    def _put(self, item: pa.RecordBatch | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _consume(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is None:
                if self.error is not None:
                    raise self.error
                return
            yield item


def _normalized_stream(reader: pa.RecordBatchReader) -> _Stream:
    """``reader``'s batches with the types Delta stores (a new schema replacing the table's)."""
    from lakestack.lake.arrow import normalize_schema

    schema = normalize_schema(reader.schema)
    return _Stream(schema, (batch.cast(schema) for batch in reader))


def _plain_floats(schema: pa.Schema) -> dict[str, Any] | None:
    """No dictionary for float columns: their values rarely repeat, so one is only overhead.

    Each row group first fills a dictionary page before it falls back to plain encoding; for a
    float column that is wasted work (about 7% of writing 2M rows of eleven float columns).
    """
    from deltalake import ColumnProperties

    plain = {
        field.name: ColumnProperties(dictionary_enabled=False)
        for field in schema
        if pa.types.is_floating(field.type)
    }
    return plain or None


def _schema(delta: Any) -> pa.Schema:
    """The Arrow schema of snapshot ``delta`` (NOT NULL columns are non-nullable fields)."""
    return pa.schema(delta.schema().to_arrow())


def _primary_keys(delta: Any) -> list[str]:
    """The primary-key columns of snapshot ``delta``, in order."""
    return list(json.loads(delta.metadata().configuration.get(PRIMARY_KEYS, "[]")))


def _commit(metadata: Mapping[str, str] | None, transaction: tuple[str, int] | None) -> Any:
    from deltalake import CommitProperties, Transaction

    return CommitProperties(
        custom_metadata=dict(metadata) if metadata else None,
        max_commit_retries=COMMIT_RETRIES,
        app_transactions=[Transaction(transaction[0], transaction[1])] if transaction else None,
    )


def _as_time(value: datetime | str | None) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    assert value is not None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
