"""``FeatureLookup``: which features of which table to join onto a DataFrame, and how.

A lookup is checked against its feature table (``bind``) before any data is read: its keys must
match the table's primary key in number and order, the features must exist, renames and defaults
must name looked-up features. The result, a ``BoundLookup``, is what the point-in-time join and
the packaged feature spec work from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lakestack.errors import FeatureError
from lakestack.features.table import FeatureTable

__all__ = ["BoundLookup", "FeatureLookup", "as_list"]


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A column name or a list of them as a list (None is empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


@dataclass(frozen=True)
class FeatureLookup:
    """Features of one feature table to join onto the rows of a DataFrame.

    Attributes:
        table_name: The feature table, ``catalog.schema.table``.
        lookup_key: The DataFrame's columns that match the table's primary key (without its
            timestamp key), in the same order.
        feature_names: The features to look up; None means every column that is not a key.
        rename_outputs: ``{feature name: output column name}``.
        timestamp_lookup_key: The DataFrame's column to look features up as of
            (point-in-time): the latest feature row at or before it is used, never a later one.
        lookback_window: Ignore feature rows older than the lookup timestamp minus this.
        default_values: ``{feature or output name: value}`` used when no row matches or the
            matched value is null.
    """

    table_name: str
    lookup_key: str | Sequence[str]
    feature_names: str | Sequence[str] | None = None
    rename_outputs: Mapping[str, str] | None = None
    timestamp_lookup_key: str | Sequence[str] | None = None
    lookback_window: timedelta | None = None
    default_values: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not as_list(self.lookup_key):
            raise FeatureError(f"FeatureLookup of {self.table_name}: lookup_key is empty")
        if len(as_list(self.timestamp_lookup_key)) > 1:
            raise FeatureError(
                f"FeatureLookup of {self.table_name}: give one timestamp_lookup_key, "
                f"not {as_list(self.timestamp_lookup_key)}"
            )
        window = self.lookback_window
        if window is not None and (not isinstance(window, timedelta) or window < timedelta(0)):
            raise FeatureError(
                f"FeatureLookup of {self.table_name}: lookback_window must be a non-negative "
                f"datetime.timedelta, not {window!r}"
            )

    def bind(self, table: FeatureTable, version: int) -> BoundLookup:
        """Check this lookup against its feature table at ``version``.

        Raises:
            FeatureError: Keys that do not match the primary key, unknown features, renames or
                defaults of features that are not looked up.
        """
        keys = as_list(self.lookup_key)
        ts_key = as_list(self.timestamp_lookup_key)
        plain_keys = [k for k in table.primary_keys if k not in table.timestamp_keys]
        if ts_key:
            if not table.timestamp_keys:
                raise FeatureError(
                    f"FeatureLookup of {table.name} has timestamp_lookup_key '{ts_key[0]}' but "
                    "the table has no timestamp key; drop timestamp_lookup_key or create the "
                    "table with timestamp_keys"
                )
            table_keys = plain_keys
        elif table.timestamp_keys and len(keys) != len(table.primary_keys):
            raise FeatureError(
                f"FeatureLookup of {table.name} needs timestamp_lookup_key: the table is a "
                f"time series with timestamp key '{table.timestamp_keys[0]}'"
            )
        else:
            table_keys = list(table.primary_keys)
        if len(keys) != len(table_keys):
            raise FeatureError(
                f"FeatureLookup of {table.name}: lookup_key {keys} does not match the table's "
                f"primary key {table_keys} (give one column per key column, in that order)"
            )
        excluded = set(table.primary_keys)
        columns = [c for c in table.features if c not in excluded]
        names = as_list(self.feature_names) if self.feature_names is not None else columns
        for feature in names:
            if feature not in table.features:
                raise FeatureError(
                    f"feature table {table.name} has no feature '{feature}' (features: "
                    f"{', '.join(columns)})"
                )
        renames = dict(self.rename_outputs or {})
        for feature in renames:
            if feature not in names:
                raise FeatureError(
                    f"FeatureLookup of {table.name}: rename_outputs names '{feature}', which is "
                    f"not looked up (looked up: {', '.join(names)})"
                )
        outputs = [renames.get(f, f) for f in names]
        defaults: dict[str, Any] = {}
        for key, value in (self.default_values or {}).items():
            if key in outputs:
                defaults[key] = value
            elif key in names:
                defaults[renames.get(key, key)] = value
            else:
                raise FeatureError(
                    f"FeatureLookup of {table.name}: default_values names '{key}', which is not "
                    f"looked up (looked up: {', '.join(outputs)})"
                )
        return BoundLookup(
            table_name=table.name,
            version=version,
            lookup_key=keys,
            table_keys=table_keys,
            timestamp_lookup_key=ts_key[0] if ts_key else None,
            table_timestamp_key=table.timestamp_keys[0] if ts_key else None,
            feature_names=names,
            output_names=outputs,
            lookback_window=self.lookback_window,
            default_values=defaults,
        )


@dataclass(frozen=True)
class BoundLookup:
    """A lookup checked against its table: the columns on both sides and the table version.

    Attributes:
        table_name: The feature table.
        version: The Delta version the features are read at.
        lookup_key: The input's key columns.
        table_keys: The table's matching key columns (same order).
        timestamp_lookup_key: The input's timestamp column (point-in-time), or None.
        table_timestamp_key: The table's timestamp key, or None.
        feature_names: The table's feature columns to read.
        output_names: Their names in the result (after ``rename_outputs``).
        lookback_window: How far back a feature row may be, or None for no limit.
        default_values: ``{output name: value}`` for missing or null features.
    """

    table_name: str
    version: int
    lookup_key: list[str]
    table_keys: list[str]
    timestamp_lookup_key: str | None
    table_timestamp_key: str | None
    feature_names: list[str]
    output_names: list[str]
    lookback_window: timedelta | None = None
    default_values: dict[str, Any] = field(default_factory=dict)

    @property
    def input_columns(self) -> list[str]:
        """The input's columns this lookup needs."""
        ts = [self.timestamp_lookup_key] if self.timestamp_lookup_key else []
        return [*self.lookup_key, *ts]
