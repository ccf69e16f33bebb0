"""The catalog: ``catalog.schema.table`` names over Delta tables and volumes in a warehouse.

The warehouse is a local folder or any delta-rs storage URL (``s3://``, ``gs://``, ``az://``)::

    <warehouse>/<catalog>/_catalog.json                 a catalog (its comment)
    <warehouse>/<catalog>/<schema>/_schema.json         a schema
    <warehouse>/<catalog>/<schema>/<table>/_delta_log/  a Delta table
    <warehouse>/<catalog>/<schema>/<volume>/            a volume's files
    <warehouse>/<catalog>/<schema>/_volumes/<volume>.json   marks that folder as a volume

Everything the catalog knows lives in the warehouse itself, so two processes (or two machines on
one object store) see the same catalog without a server. As in Unity Catalog, a table's schema
must exist before the table, except ``default``, which every catalog has; a catalog is created
when its first schema is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from lakestack.errors import AlreadyExistsError, LakeError, NotFoundError, SchemaMismatchError
from lakestack.lake.arrow import as_arrow, normalize_schema
from lakestack.lake.names import SchemaName, TableName, parse_schema_name, parse_table_name
from lakestack.lake.table import PRIMARY_KEYS, TAG_PREFIX, Table, TableInfo

__all__ = ["Catalog", "default_catalog"]

DEFAULT_SCHEMA = "default"
CATALOG_MARKER = "_catalog.json"
SCHEMA_MARKER = "_schema.json"
VOLUMES = "_volumes"


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


class Catalog:
    """Catalogs, schemas, tables and volumes under one warehouse root."""

    def __init__(
        self, warehouse: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None
    ) -> None:
        location = os.fspath(warehouse)
        if location.startswith("file://"):
            location = location[len("file://") :]
        self.is_local = not _is_url(location)
        self.root = str(Path(location).resolve()) if self.is_local else location.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs, self._base = self._filesystem()

    def __repr__(self) -> str:
        return f"Catalog({self.root!r})"

    # catalogs and schemas -----------------------------------------------------------------

    def create_catalog(self, name: str, comment: str | None = None, exist_ok: bool = True) -> None:
        """Create a catalog (a top-level folder of the warehouse)."""
        name = name.strip().lower()
        if self._exists(f"{name}/{CATALOG_MARKER}"):
            if not exist_ok:
                raise AlreadyExistsError(f"catalog {name} exists already")
            return
        self._write_json(f"{name}/{CATALOG_MARKER}", {"comment": comment, "created": time.time()})

    def list_catalogs(self) -> list[str]:
        """The catalogs, sorted."""
        return sorted(d for d in self._dirs("") if self._exists(f"{d}/{CATALOG_MARKER}"))

    def create_schema(self, name: str, comment: str | None = None, exist_ok: bool = True) -> None:
        """Create ``catalog.schema`` (and the catalog when it does not exist yet)."""
        schema = parse_schema_name(name)
        self.create_catalog(schema.catalog)
        marker = f"{schema.catalog}/{schema.schema}/{SCHEMA_MARKER}"
        if self._exists(marker):
            if not exist_ok:
                raise AlreadyExistsError(f"schema {schema} exists already")
            return
        self._write_json(marker, {"comment": comment, "created": time.time()})

    def schema_exists(self, name: str | SchemaName) -> bool:
        """True when the schema exists (``default`` exists in every catalog)."""
        schema = name if isinstance(name, SchemaName) else parse_schema_name(name)
        if schema.schema == DEFAULT_SCHEMA:
            return True
        return self._exists(f"{schema.catalog}/{schema.schema}/{SCHEMA_MARKER}")

    def list_schemas(self, catalog: str) -> list[str]:
        """The schemas of ``catalog`` as ``catalog.schema``, sorted."""
        catalog = catalog.strip().lower()
        names = {d for d in self._dirs(catalog) if self._exists(f"{catalog}/{d}/{SCHEMA_MARKER}")}
        return sorted(f"{catalog}.{d}" for d in names)

    def drop_schema(self, name: str, cascade: bool = False) -> None:
        """Drop a schema; with ``cascade``, its tables and volumes too.

        Raises:
            LakeError: The schema still holds tables or volumes and ``cascade`` is False.
        """
        schema = parse_schema_name(name)
        if not self.schema_exists(schema):
            raise NotFoundError(f"schema {schema} does not exist")
        held = [t.name for t in self.list_tables(str(schema))] + self.list_volumes(str(schema))
        if held and not cascade:
            raise LakeError(
                f"schema {schema} still holds {', '.join(held)}; drop them first or use cascade"
            )
        self._delete_dir(f"{schema.catalog}/{schema.schema}")

    # tables ----------------------------------------------------------------------------------

    def table_uri(self, name: str | TableName) -> str:
        """Where the table ``name`` lives (it may not exist)."""
        table = name if isinstance(name, TableName) else parse_table_name(name)
        return f"{self.root}/{table.catalog}/{table.schema}/{table.name}"

    def table_exists(self, name: str) -> bool:
        """True when ``name`` is a Delta table of the catalog."""
        table = parse_table_name(name)
        return self._exists(f"{table.catalog}/{table.schema}/{table.name}/_delta_log")

    def table(self, name: str) -> Table:
        """The table ``name``.

        Raises:
            NotFoundError: No such table (the message lists the schema's tables).
        """
        table = parse_table_name(name)
        if not self.table_exists(str(table)):
            there = [t.rsplit(".", 1)[1] for t in self._table_names(table.schema_name)]
            from lakestack.errors import did_you_mean

            hint = did_you_mean(table.name, there)
            raise NotFoundError(
                f"table {table} does not exist"
                + (f"; did you mean {table.schema_name}.{hint}?" if hint else "")
                + (f" (tables in {table.schema_name}: {', '.join(there)})" if there else "")
            )
        return Table(table, self.table_uri(table), self.storage_options)

    def create_table(
        self,
        name: str,
        data: Any = None,
        *,
        schema: pa.Schema | None = None,
        primary_keys: Sequence[str] = (),
        not_null: Sequence[str] = (),
        partition_by: Sequence[str] = (),
        comment: str | None = None,
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> Table:
        """Create a Delta table from data or from a schema.

        Primary-key columns are NOT NULL and unique; ``not_null`` columns are NOT NULL. Both are
        enforced on every later write. The change data feed is on.

        Raises:
            NotFoundError: The schema does not exist (create it, or declare it in the bundle).
            AlreadyExistsError: The table exists and ``exist_ok`` is False.
            SchemaMismatchError: A key or NOT NULL column that is not in the schema.
            ConstraintError: The data breaks a constraint; nothing is created.
        """
        table_name = parse_table_name(name)
        if not self.schema_exists(table_name.schema_name):
            raise NotFoundError(
                f"schema {table_name.schema_name} does not exist; create it with "
                f"Catalog.create_schema('{table_name.schema_name}'), `CREATE SCHEMA "
                f"{table_name.schema_name}` or a schemas resource in the bundle"
            )
        if table_name.schema == DEFAULT_SCHEMA:
            self.create_catalog(table_name.catalog)
        if self.table_exists(str(table_name)):
            if exist_ok:
                return self.table(str(table_name))
            raise AlreadyExistsError(f"table {table_name} exists already")
        rows = None if data is None else as_arrow(data)
        if rows is None and schema is None:
            raise SchemaMismatchError(f"table {table_name}: give data or a schema to create it")
        base = normalize_schema(schema if schema is not None else rows.schema)  # type: ignore[union-attr]
        untyped = [f.name for f in base if pa.types.is_null(f.type)]
        if untyped:
            raise SchemaMismatchError(
                f"table {table_name}: column '{untyped[0]}' has no type (all its values are "
                "null, or the data is empty); give data with values or a schema"
            )
        required = [*primary_keys, *not_null]
        for column in [*required, *partition_by]:
            if column not in base.names:
                raise SchemaMismatchError(
                    f"table {table_name} has no column '{column}' (columns: "
                    f"{', '.join(base.names)})"
                )
        fields = [
            pa.field(f.name, f.type, nullable=f.nullable and f.name not in required) for f in base
        ]
        configuration = {"delta.enableChangeDataFeed": "true", **dict(properties or {})}
        if primary_keys:
            configuration[PRIMARY_KEYS] = json.dumps(list(primary_keys))
        configuration.update({f"{TAG_PREFIX}{k}": v for k, v in (tags or {}).items()})
        uri = self.table_uri(table_name)
        created = Table(table_name, uri, self.storage_options)
        if rows is not None:
            # validate against the final schema before creating anything
            from lakestack.lake.arrow import check_not_null, fit_to_schema

            rows = fit_to_schema(rows, pa.schema(fields), table_name=str(table_name))
            check_not_null(rows, required, table_name=str(table_name))
            if primary_keys:
                created._check_unique(rows, list(primary_keys), "the data")
        from deltalake import DeltaTable

        DeltaTable.create(
            uri,
            pa.schema(fields),
            mode="error",
            partition_by=list(partition_by) or None,
            name=str(table_name),
            description=comment,
            configuration=configuration,
            storage_options=self.storage_options,
            raise_if_key_not_exists=False,
        )
        if rows is not None and rows.num_rows:
            created._write(rows, "append", None, {"lakestack.operation": "create"}, None)
        return created

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Delete a table and its files."""
        table = parse_table_name(name)
        if not self.table_exists(str(table)):
            if missing_ok:
                return
            raise NotFoundError(f"table {table} does not exist")
        self._delete_dir(f"{table.catalog}/{table.schema}/{table.name}")

    def list_tables(self, schema: str | None = None) -> list[TableInfo]:
        """The tables of one schema, or of the whole warehouse, sorted by name."""
        if schema is not None:
            names = self._table_names(parse_schema_name(schema))
        else:
            names = [
                name
                for catalog in self._dirs("")
                for sub in self._dirs(catalog)
                for name in self._table_names(SchemaName(catalog, sub))
            ]
        return [self.table(name).info for name in sorted(names)]

    # volumes ---------------------------------------------------------------------------------

    def create_volume(self, name: str, comment: str | None = None, exist_ok: bool = True) -> str:
        """Create the volume ``catalog.schema.volume``; return its folder."""
        volume = parse_table_name(name)
        if not self.schema_exists(volume.schema_name):
            raise NotFoundError(f"schema {volume.schema_name} does not exist; create it first")
        marker = f"{volume.catalog}/{volume.schema}/{VOLUMES}/{volume.name}.json"
        if self._exists(marker) and not exist_ok:
            raise AlreadyExistsError(f"volume {volume} exists already")
        self._fs.create_dir(self._path(f"{volume.catalog}/{volume.schema}/{volume.name}"))
        self._write_json(marker, {"comment": comment, "created": time.time()})
        return self.volume_path(name)

    def volume_path(self, name: str) -> str:
        """The folder (local path or URL) of the volume ``catalog.schema.volume``."""
        volume = parse_table_name(name)
        return f"{self.root}/{volume.catalog}/{volume.schema}/{volume.name}"

    def list_volumes(self, schema: str) -> list[str]:
        """The volumes of ``catalog.schema``."""
        parsed = parse_schema_name(schema)
        folder = f"{parsed.catalog}/{parsed.schema}/{VOLUMES}"
        return sorted(
            f"{parsed}.{Path(f).stem}" for f in self._files(folder) if f.endswith(".json")
        )

    def drop_volume(self, name: str) -> None:
        """Delete a volume and its files."""
        volume = parse_table_name(name)
        self._delete_dir(f"{volume.catalog}/{volume.schema}/{volume.name}")
        marker = self._path(f"{volume.catalog}/{volume.schema}/{VOLUMES}/{volume.name}.json")
        if self._fs.get_file_info(marker).type != pafs.FileType.NotFound:
            self._fs.delete_file(marker)

    # SQL -------------------------------------------------------------------------------------

    def sql(self, query: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL with three-level names and time travel; return the last result."""
        from lakestack.lake.sqlengine import SqlSession

        return SqlSession(self).run(query, params)

    # storage ---------------------------------------------------------------------------------

    def _filesystem(self) -> tuple[pafs.FileSystem, str]:
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            return pafs.LocalFileSystem(), self.root
        options = {k.lower(): v for k, v in self.storage_options.items()}
        if self.root.startswith(("s3://", "s3a://")):
            endpoint = options.get("aws_endpoint_url") or options.get("endpoint_url")
            fs = pafs.S3FileSystem(
                access_key=options.get("aws_access_key_id"),
                secret_key=options.get("aws_secret_access_key"),
                session_token=options.get("aws_session_token"),
                region=options.get("aws_region") or options.get("region"),
                endpoint_override=endpoint,
                scheme="http" if options.get("aws_allow_http") == "true" else "https",
            )
            return fs, self.root.split("://", 1)[1]
        fs, path = pafs.FileSystem.from_uri(self.root)
        return fs, path

    def _path(self, relative: str) -> str:
        return f"{self._base}/{relative}".rstrip("/")

    def _exists(self, relative: str) -> bool:
        return bool(self._fs.get_file_info(self._path(relative)).type != pafs.FileType.NotFound)

    def _write_json(self, relative: str, data: dict[str, Any]) -> None:
        path = self._path(relative)
        self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self._fs.open_output_stream(path) as out:
            out.write(json.dumps(data).encode())

    def _entries(self, relative: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self._path(relative), allow_not_found=True)
        return list(self._fs.get_file_info(selector))

    def _dirs(self, relative: str) -> list[str]:
        return [
            e.base_name
            for e in self._entries(relative)
            if e.type == pafs.FileType.Directory and not e.base_name.startswith(("_", "."))
        ]

    def _files(self, relative: str) -> list[str]:
        return [e.base_name for e in self._entries(relative) if e.type == pafs.FileType.File]

    def _table_names(self, schema: SchemaName) -> list[str]:
        folder = f"{schema.catalog}/{schema.schema}"
        return sorted(
            f"{schema}.{d}" for d in self._dirs(folder) if self._exists(f"{folder}/{d}/_delta_log")
        )

    def _delete_dir(self, relative: str) -> None:
        path = self._path(relative)
        if self._fs.get_file_info(path).type != pafs.FileType.NotFound:
            self._fs.delete_dir(path)


def default_catalog() -> Catalog:
    """The current workspace's catalog.

    Inside a job task: the warehouse in ``LAKESTACK_WAREHOUSE`` (set by the orchestrator).
    Elsewhere: the warehouse of the bundle found from the current directory, default target.
    """
    warehouse = os.environ.get("LAKESTACK_WAREHOUSE")
    if warehouse:
        options = json.loads(os.environ.get("LAKESTACK_STORAGE_OPTIONS") or "{}")
        return Catalog(warehouse, options)
    from lakestack.bundle import load_bundle

    bundle = load_bundle()
    return Catalog(bundle.warehouse, bundle.settings.storage_options)
