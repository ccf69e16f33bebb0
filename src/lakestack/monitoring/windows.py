"""Time windows of a monitor: the ``granularities`` a Databricks monitor accepts, as SQL.

A granularity such as ``"1 day"`` cuts the timestamp axis into windows ``[start, end)``; every
row falls in one window per granularity. Windows are aligned as DuckDB's ``time_bucket`` aligns
them in UTC: minutes, hours and days on the clock and calendar, weeks on Mondays, months on the
first of the month, years on the first of January.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lakestack.errors import MonitorError

__all__ = [
    "GRANULARITIES",
    "Granularity",
    "check_granularities",
    "parse_granularity",
    "utc",
]

GRANULARITIES = (
    "5 minutes",
    "30 minutes",
    "1 hour",
    "1 day",
    "1 week",
    "2 weeks",
    "3 weeks",
    "4 weeks",
    "1 month",
    "1 year",
)
"""The granularities Databricks Lakehouse Monitoring accepts."""

_UNITS = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}
_CALENDAR = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Granularity:
    """One window length: ``text`` as written in the bundle (``"1 day"``), and its SQL."""

    text: str
    count: int
    unit: str

    @property
    def interval(self) -> str:
        """The DuckDB interval literal, e.g. ``INTERVAL '1 day'``."""
        return f"INTERVAL '{self.count} {self.unit}'"

    def start_sql(self, timestamp: str) -> str:
        """SQL for the start of the window of ``timestamp`` (a naive UTC timestamp)."""
        return f"time_bucket({self.interval}, {timestamp})"

    def end(self, start: datetime) -> datetime:
        """The end of the window that starts at ``start`` (exclusive)."""
        return self._shift(start, 1)

    def previous(self, start: datetime) -> datetime:
        """The start of the window before the one that starts at ``start``."""
        return self._shift(start, -1)

    def _shift(self, start: datetime, windows: int) -> datetime:
        if self.unit in _CALENDAR:
            total = start.year * 12 + start.month - 1 + windows * self.count * _CALENDAR[self.unit]
            return start.replace(year=total // 12, month=total % 12 + 1)
        return start + windows * timedelta(**{_UNITS[self.unit]: self.count})


_PATTERN = re.compile(r"^\s*(\d+)\s+([a-z]+?)s?\s*$")


def parse_granularity(text: str) -> Granularity:
    """Parse ``"5 minutes"``, ``"1 hour"``, ``"1 day"``, ``"1 week"``, ``"1 month"``, ...

    Raises:
        MonitorError: Not one of ``GRANULARITIES`` (the message lists them).
    """
    match = _PATTERN.match(str(text).lower())
    known = ", ".join(f"'{g}'" for g in GRANULARITIES)
    if match is None or match.group(2) not in (*_UNITS, *_CALENDAR):
        raise MonitorError(f"granularity '{text}' does not parse; use one of {known}")
    count, unit = int(match.group(1)), match.group(2)
    canonical = f"{count} {unit}" + ("s" if count != 1 else "")
    if canonical not in GRANULARITIES:
        raise MonitorError(f"granularity '{text}' is not supported; use one of {known}")
    return Granularity(canonical, count, unit)


def check_granularities(monitor: str, granularities: list[str]) -> list[str]:
    """Problems with a monitor's granularities, one sentence each; for ``bundle validate``."""
    problems = []
    if not granularities:
        problems.append(f"quality monitor '{monitor}': granularities is empty; give one or more")
    for text in granularities:
        try:
            parse_granularity(text)
        except MonitorError as exc:
            problems.append(f"quality monitor '{monitor}': {exc}")
    return problems


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
