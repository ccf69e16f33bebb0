"""The lake: a catalog of Delta tables and volumes with three-level names, and SQL over it.

The only importer of ``deltalake`` and ``duckdb``.
"""

from __future__ import annotations

from lakestack.lake.catalog import Catalog, default_catalog
from lakestack.lake.ingest import IngestResult, ingest_files
from lakestack.lake.table import Table, TableInfo

__all__ = ["Catalog", "IngestResult", "Table", "TableInfo", "default_catalog", "ingest_files"]
