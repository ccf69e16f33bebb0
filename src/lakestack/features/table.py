"""Feature tables: lake tables with a primary key, and optionally timestamp keys.

A feature table is an ordinary Delta table of the catalog. Its primary key (timestamp keys
included, as on Databricks) is the lake's enforced primary key; the timestamp keys are kept in
the ``lakestack.timestamp_keys`` table property (a JSON list), so any reader of the table can tell
a time series feature table from a plain one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakestack.errors import FeatureError

if TYPE_CHECKING:
    from lakestack.lake import Table

__all__ = ["TIMESTAMP_KEYS", "FeatureTable", "feature_table_of"]

TIMESTAMP_KEYS = "lakestack.timestamp_keys"


@dataclass(frozen=True)
class FeatureTable:
    """A feature table's metadata, as ``get_table`` returns it.

    Attributes:
        name: ``catalog.schema.table``.
        primary_keys: The primary key columns, timestamp keys included.
        timestamp_keys: The timestamp key columns (empty for a table without time series).
        description: The table comment.
        tags: The table's tags.
        features: Every column of the table, in order.
        path: Where the Delta table lives (a local path or URL).
        version: The Delta version this metadata was read at.
    """

    name: str
    primary_keys: list[str]
    timestamp_keys: list[str]
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    path: str = ""
    version: int = 0

    @property
    def table_id(self) -> str:
        """Same as ``name`` (Databricks returns an id; the name identifies a table here)."""
        return self.name


def feature_table_of(table: Table) -> FeatureTable:
    """The feature-table view of a lake table.

    Raises:
        FeatureError: The table has no primary key, so it cannot be looked up.
    """
    info = table.info
    if not info.primary_keys:
        raise FeatureError(
            f"table {info.name} has no primary key, so it is not a feature table; create it "
            "with FeatureEngineeringClient.create_table(primary_keys=...)"
        )
    raw = _internal_property(table, TIMESTAMP_KEYS)
    timestamp_keys = [str(k) for k in json.loads(raw)] if raw else []
    return FeatureTable(
        name=info.name,
        primary_keys=list(info.primary_keys),
        timestamp_keys=timestamp_keys,
        description=info.comment,
        tags=dict(info.tags),
        features=[name for name, _type, _nullable in info.columns],
        path=info.uri,
        version=info.version,
    )


def _internal_property(table: Table, key: str) -> str | None:
    # TableInfo.properties hides lakestack.* keys; read the Delta configuration itself
    value = table.delta().metadata().configuration.get(key)
    return str(value) if value is not None else None
