"""Monitoring: Lakehouse Monitoring's metric tables, drift, the violation check, the report.

``refresh_monitor`` profiles a monitored table per window, model id and slice into
``<table>_profile_metrics`` and ``<table>_drift_metrics`` with the Databricks columns (DESIGN §7);
``profile_table``, ``column_drift`` and ``table_drift`` are its arithmetic for one window and one
comparison. ``check_metric`` is the MLOps Stacks violation rule behind the ``monitor_check`` task,
and ``write_report`` the HTML page of a monitor. Formula choices are stated in
``docs/monitoring.md``.
"""

from __future__ import annotations

from lakestack.monitoring.check import CheckResult, Verdict, check_metric, violation
from lakestack.monitoring.drift import (
    ColumnDrift,
    DriftRule,
    StatisticalTest,
    column_drift,
    column_kind,
    table_drift,
)
from lakestack.monitoring.monitor import MonitorConfig, find_monitor
from lakestack.monitoring.profile import TABLE_COLUMN, ColumnProfile, profile_table
from lakestack.monitoring.refresh import RefreshResult, refresh_monitor
from lakestack.monitoring.report import write_report

__all__ = [
    "TABLE_COLUMN",
    "CheckResult",
    "ColumnDrift",
    "ColumnProfile",
    "DriftRule",
    "MonitorConfig",
    "RefreshResult",
    "StatisticalTest",
    "Verdict",
    "check_metric",
    "column_drift",
    "column_kind",
    "find_monitor",
    "profile_table",
    "refresh_monitor",
    "table_drift",
    "violation",
    "write_report",
]
