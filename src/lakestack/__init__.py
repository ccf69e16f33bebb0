"""lakestack: the Databricks MLOps workflow on open-source parts, locally and in CI.

Importing ``lakestack`` is cheap: what users import from here is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakestack.bundle import Bundle, load_bundle
    from lakestack.errors import LakestackError
    from lakestack.runtime.dbutils import DBUtils
    from lakestack.workspace import Workspace

    dbutils: DBUtils

__all__ = ["Bundle", "LakestackError", "Workspace", "__version__", "dbutils", "load_bundle"]

_LAZY = {
    "Bundle": "lakestack.bundle",
    "load_bundle": "lakestack.bundle",
    "LakestackError": "lakestack.errors",
    "Workspace": "lakestack.workspace",
    "dbutils": "lakestack.runtime.dbutils",
}

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'lakestack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
