"""lakestack: the Databricks MLOps workflow on open-source parts, locally and in CI.

Importing ``lakestack`` is cheap: what users import from here is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakestack.runtime.dbutils import DBUtils

    dbutils: DBUtils

__all__ = ["__version__", "dbutils"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "dbutils":
        from lakestack.runtime.dbutils import dbutils

        globals()["dbutils"] = dbutils  # later lookups skip this function
        return dbutils
    raise AttributeError(f"module 'lakestack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "dbutils"])
