"""The lake: a catalog of Delta tables and volumes with three-level names, and SQL over it.

The only importer of ``deltalake`` and ``duckdb``. ``ingest_files`` and ``IngestResult`` are
imported on first use, so that ``python -m lakestack.lake.ingest`` runs a module the package has
not imported already (runpy warns about that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakestack.lake.catalog import Catalog, default_catalog
from lakestack.lake.table import Table, TableInfo

if TYPE_CHECKING:
    from lakestack.lake.ingest import IngestResult, ingest_files

__all__ = ["Catalog", "IngestResult", "Table", "TableInfo", "default_catalog", "ingest_files"]


def __getattr__(name: str) -> Any:
    if name in ("IngestResult", "ingest_files"):
        from lakestack.lake import ingest

        return getattr(ingest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
