"""Monitoring: profile the windows of a table and measure how its columns drift.

``profile_table`` computes the statistics of one window as the ``_profile_metrics`` table holds
them; ``column_drift`` and ``table_drift`` compare two samples as the ``_drift_metrics`` table
holds them (DESIGN §7). Formula choices are stated in ``docs/monitoring.md``.
"""

from __future__ import annotations

from lakestack.monitoring.drift import (
    ColumnDrift,
    DriftRule,
    StatisticalTest,
    column_drift,
    column_kind,
    table_drift,
)
from lakestack.monitoring.profile import TABLE_COLUMN, ColumnProfile, profile_table

__all__ = [
    "TABLE_COLUMN",
    "ColumnDrift",
    "ColumnProfile",
    "DriftRule",
    "StatisticalTest",
    "column_drift",
    "column_kind",
    "profile_table",
    "table_drift",
]
