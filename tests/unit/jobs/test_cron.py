"""Quartz cron as Databricks writes it: fire times, day-of-week numbering, L and #, DST, errors."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from lakestack.errors import ConfigError
from lakestack.jobs.cron import CronSchedule, check_cron, fires_between, next_fire, to_croniter

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expr: str, tz: str, after: datetime, count: int) -> list[str]:
    """The next ``count`` fire times as UTC ISO strings."""
    schedule = CronSchedule(expr, tz)
    found: list[str] = []
    moment: datetime | None = after
    for _ in range(count):
        moment = schedule.next_after(moment) if moment is not None else None
        assert moment is not None
        found.append(moment.astimezone(UTC).strftime("%Y-%m-%d %a %H:%M:%S"))
    return found


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        # MLOps Stacks: training at 07:00, batch inference at 11:00, every day
        ("0 0 7 * * ?", "UTC", utc(2024, 3, 1, 8), ["2024-03-02 Sat 07:00:00", "2024-03-03 Sun 07:00:00"]),
        ("0 0 11 * * ?", "UTC", utc(2024, 3, 1, 8), ["2024-03-01 Fri 11:00:00", "2024-03-02 Sat 11:00:00"]),
        # every four hours, on the hour
        ("0 0 */4 * * ?", "UTC", utc(2024, 3, 1, 1, 30), ["2024-03-01 Fri 04:00:00", "2024-03-01 Fri 08:00:00", "2024-03-01 Fri 12:00:00"]),
        ("0 0/15 * * * ?", "UTC", utc(2024, 3, 1, 1, 1), ["2024-03-01 Fri 01:15:00", "2024-03-01 Fri 01:30:00"]),
        ("15 10 9 * * ?", "UTC", utc(2024, 3, 1), ["2024-03-01 Fri 09:10:15"]),
        # weekdays by name and by Quartz number (1 = Sunday, so 2-6 is Monday to Friday)
        ("0 0 9 ? * MON-FRI", "UTC", utc(2024, 3, 1, 10), ["2024-03-04 Mon 09:00:00", "2024-03-05 Tue 09:00:00"]),
        ("0 0 9 ? * 2-6", "UTC", utc(2024, 3, 1, 10), ["2024-03-04 Mon 09:00:00", "2024-03-05 Tue 09:00:00"]),
        ("0 0 9 ? * 2", "UTC", utc(2024, 3, 1), ["2024-03-04 Mon 09:00:00", "2024-03-11 Mon 09:00:00"]),
        ("0 0 9 ? * 1", "UTC", utc(2024, 3, 1), ["2024-03-03 Sun 09:00:00"]),
        ("0 0 9 ? * 7", "UTC", utc(2024, 3, 1), ["2024-03-02 Sat 09:00:00"]),
        ("0 0 9 ? * sun,wed", "UTC", utc(2024, 3, 1), ["2024-03-03 Sun 09:00:00", "2024-03-06 Wed 09:00:00"]),
        ("0 0 9 ? * 2/2", "UTC", utc(2024, 3, 1, 10), ["2024-03-04 Mon 09:00:00", "2024-03-06 Wed 09:00:00", "2024-03-08 Fri 09:00:00", "2024-03-11 Mon 09:00:00"]),
        ("0 0 9 ? * FRI-MON", "UTC", utc(2024, 3, 4, 10), ["2024-03-08 Fri 09:00:00", "2024-03-09 Sat 09:00:00", "2024-03-10 Sun 09:00:00", "2024-03-11 Mon 09:00:00"]),
        # L and #: the last Friday (6L), the third Friday (6#3), the last day of the month
        ("0 0 12 ? * 6L", "UTC", utc(2024, 1, 1), ["2024-01-26 Fri 12:00:00", "2024-02-23 Fri 12:00:00", "2024-03-29 Fri 12:00:00"]),
        ("0 0 12 ? * 6#3", "UTC", utc(2024, 1, 1), ["2024-01-19 Fri 12:00:00", "2024-02-16 Fri 12:00:00"]),
        ("0 0 12 ? * FRI#3", "UTC", utc(2024, 1, 1), ["2024-01-19 Fri 12:00:00"]),
        ("0 0 12 ? * 2#1", "UTC", utc(2024, 1, 2), ["2024-02-05 Mon 12:00:00"]),
        ("0 0 12 L * ?", "UTC", utc(2024, 1, 1), ["2024-01-31 Wed 12:00:00", "2024-02-29 Thu 12:00:00", "2024-03-31 Sun 12:00:00"]),
        ("0 0 12 ? * L", "UTC", utc(2024, 3, 1), ["2024-03-02 Sat 12:00:00"]),
        # nearest weekday to the 15th (15 June 2024 is a Saturday)
        ("0 0 12 15W * ?", "UTC", utc(2024, 6, 1), ["2024-06-14 Fri 12:00:00", "2024-07-15 Mon 12:00:00"]),
        ("0 0 6 1 JAN-MAR ?", "UTC", utc(2024, 2, 2), ["2024-03-01 Fri 06:00:00", "2025-01-01 Wed 06:00:00"]),
        ("0 0 12 * * ? 2030", "UTC", utc(2024, 6, 1), ["2030-01-01 Tue 12:00:00"]),
        # a time zone: 09:00 in New York is 14:00 UTC in winter, 13:00 after DST starts
        ("0 0 9 * * ?", "America/New_York", utc(2024, 3, 9), ["2024-03-09 Sat 14:00:00", "2024-03-10 Sun 13:00:00"]),
        ("0 0 7 * * ?", "Europe/Berlin", utc(2024, 3, 30, 8), ["2024-03-31 Sun 05:00:00", "2024-04-01 Mon 05:00:00"]),
    ],
)  # fmt: skip
def test_fire_times(expr: str, tz: str, after: datetime, expected: list[str]) -> None:
    assert fires(expr, tz, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # 02:30 does not exist on 31 March 2024 in Berlin: fire once, at the end of the gap
        ("0 30 2 * * ?", utc(2024, 3, 30, 12), ["2024-03-31 Sun 01:00:00", "2024-04-01 Mon 00:30:00"]),
        # 02:30 happens twice on 27 October 2024: fire once, at the first one
        ("0 30 2 * * ?", utc(2024, 10, 26, 12), ["2024-10-27 Sun 00:30:00", "2024-10-28 Mon 01:30:00"]),
        # hourly across the repeated hour: each wall-clock hour once
        ("0 0 * * * ?", utc(2024, 10, 26, 22, 30), ["2024-10-26 Sat 23:00:00", "2024-10-27 Sun 00:00:00", "2024-10-27 Sun 02:00:00"]),
        ("0 0,30 2,3 * * ?", utc(2024, 3, 30, 23, 30), ["2024-03-31 Sun 01:00:00", "2024-03-31 Sun 01:30:00", "2024-04-01 Mon 00:00:00"]),
    ],
)  # fmt: skip
def test_daylight_saving_changes(expr: str, after: datetime, expected: list[str]) -> None:
    assert fires(expr, "Europe/Berlin", after, len(expected)) == expected


def test_next_after_from_inside_the_repeated_hour_skips_the_repeat() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    second_pass = datetime(2024, 10, 27, 2, 10, fold=1, tzinfo=berlin)  # 01:10 UTC
    found = next_fire("0 30 2 * * ?", "Europe/Berlin", second_pass)
    assert found == datetime(2024, 10, 28, 2, 30, tzinfo=berlin)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 0 7 * * ?", "0 0 7 * * *"),
        ("0 0 9 ? * 2-6", "0 0 9 * * 1,2,3,4,5"),
        ("0 0 9 ? * MON-FRI", "0 0 9 * * 1,2,3,4,5"),
        ("0 0 9 ? * 6L", "0 0 9 * * l5"),
        ("0 0 9 ? * 6#3", "0 0 9 * * 5#3"),
        ("0 0 9 ? * SAT-SUN", "0 0 9 * * 6,0"),
        ("0 0 9 L * ?", "0 0 9 l * *"),
        ("0 0 9 * * ? 2030", "0 0 9 * * * 2030"),
    ],
)
def test_to_croniter_shifts_day_of_week(expr: str, expected: str) -> None:
    assert to_croniter(expr) == expected


def test_fires_between_excludes_start_and_includes_end() -> None:
    found = fires_between("0 0 7 * * ?", "UTC", utc(2024, 3, 1, 7), utc(2024, 3, 3, 7))
    assert found == [utc(2024, 3, 2, 7), utc(2024, 3, 3, 7)]


def test_fires_between_stops_at_the_limit() -> None:
    found = fires_between("0 * * * * ?", "UTC", utc(2024, 3, 1), utc(2024, 3, 2), limit=5)
    assert len(found) == 5
    assert found[-1] == utc(2024, 3, 1, 0, 5)


def test_last_between_is_the_latest_tick_and_cheap_over_a_long_span() -> None:
    schedule = CronSchedule("* * * * * ?", "UTC")
    started = time.perf_counter()
    last = schedule.last_between(utc(2024, 1, 1), utc(2024, 3, 1, 12, 0, 5))
    assert time.perf_counter() - started < 1.0  # a per-second schedule over two months
    assert last == utc(2024, 3, 1, 12, 0, 5)
    assert schedule.last_between(utc(2024, 3, 1, 12, 0, 5), utc(2024, 3, 1, 12, 0, 5)) is None
    daily = CronSchedule("0 0 7 * * ?", "UTC")
    assert daily.last_between(utc(2024, 3, 1, 8), utc(2024, 3, 2, 6)) is None
    assert daily.last_between(utc(2024, 3, 1, 8), utc(2024, 3, 4, 6)) == utc(2024, 3, 3, 7)


def test_last_between_skips_the_repeated_wall_time() -> None:
    schedule = CronSchedule("0 30 2 * * ?", "Europe/Berlin")
    # the second 02:30 (01:30 UTC) is not a fire time; the first (00:30 UTC) is
    assert schedule.last_between(utc(2024, 10, 27, 0, 45), utc(2024, 10, 27, 2)) is None
    found = schedule.last_between(utc(2024, 10, 26, 12), utc(2024, 10, 27, 2))
    assert found is not None
    assert found.astimezone(UTC) == utc(2024, 10, 27, 0, 30)


def test_a_schedule_that_never_fires_again_gives_none() -> None:
    assert next_fire("0 0 12 * * ? 2020", "UTC", utc(2024, 1, 1)) is None
    assert next_fire("0 0 0 30 2 ?", "UTC", utc(2024, 1, 1)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 0 7 * * ?", "UTC", datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 7 * *", r"has 5 fields; Quartz needs 6 or 7 \(second minute hour day-of-month month day-of-week \[year\]\), e.g. '0 0 7 \* \* \?'"),
        ("@daily", "has 1 fields; Quartz needs 6 or 7"),
        ("0 0 7 * * *", r"restricts both day-of-month and day-of-week; Quartz needs '\?' in one of them"),
        ("0 0 7 ? * ?", r"has '\?' in both day-of-month and day-of-week; keep it in one of them"),
        ("? 0 7 * * ?", r"has '\?' in the second field; '\?' only fits the day fields"),
        ("0 61 7 * * ?", "has 61 in the minute field; valid values are 0-59"),
        ("0 0 24 * * ?", "has 24 in the hour field; valid values are 0-23"),
        ("0 0 7 ? * 0", r"has 0 in the day-of-week field; valid values are 1-7 or SUN-SAT \(1 is Sunday\)"),
        ("0 0 7 ? * MONDAY", "has 'MONDAY' in the day-of-week field; valid values are 1-7 or SUN-SAT"),
        ("0 0 7 ? JANUARY *", "has 'JANUARY' in the month field; valid values are 1-12 or JAN-DEC"),
        ("0 0 7 ? * 6#6", "has '6#6' in the day-of-week field; after # give 1 to 5"),
        ("0 0/75 * * * ?", "has step /75 in the minute field; use a step from 1 to 60"),
        ("0 0 7 LW * ?", "has 'LW' in the day-of-month field, which lakestack's scheduler does not support; use L"),
        ("0 0 7 L-3 * ?", "has 'L-3' in the day-of-month field, which lakestack's scheduler does not support"),
        ("0 0 7 1,15W * ?", "has W in a day-of-month list; W takes a single day, as in 15W"),
        ("0 0 7 1,,2 * ?", "has an empty item in the day-of-month field '1,,2'"),
        ("0 H 7 * * ?", "has 'H' in the minute field; valid values are 0-59"),
        ("0 0 7 * * ? 1900", "has 1900 in the year field; valid values are 1970-2099"),
    ],
)  # fmt: skip
def test_bad_expressions_name_the_job_the_expression_and_the_fix(expr: str, message: str) -> None:
    with pytest.raises(
        ConfigError, match=f"^job 'train': quartz_cron_expression '{re.escape(expr)}' {message}"
    ):
        CronSchedule(expr, "UTC", job="train")


def test_bad_time_zone_suggests_the_nearest() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^job 'train': schedule timezone_id 'Europe/Paaris' is not a time zone; did you mean 'Europe/Paris'\?$",
    ):
        CronSchedule("0 0 7 * * ?", "Europe/Paaris", job="train")


def test_check_cron_for_bundle_validate() -> None:
    assert check_cron("0 0 7 * * ?", "Europe/Berlin") is None
    assert check_cron("0 0 9 ? * MON-FRI") is None
    assert check_cron("0 0 7 * *", "UTC") == (
        "quartz_cron_expression '0 0 7 * *' has 5 fields; Quartz needs 6 or 7 (second minute "
        "hour day-of-month month day-of-week [year]), e.g. '0 0 7 * * ?' for 07:00 every day, "
        "'0 0 9 ? * MON-FRI' for 09:00 on weekdays"
    )
    assert check_cron("0 0 7 * * ?", "Mars/Olympus") == (
        "schedule timezone_id 'Mars/Olympus' is not a time zone; e.g. UTC, Europe/Berlin"
    )
    never = check_cron("0 0 12 * * ? 2020", "UTC")
    assert never is not None
    assert never.startswith("quartz_cron_expression '0 0 12 * * ? 2020' never fires after now")


def test_fire_times_are_in_the_schedule_zone() -> None:
    found = next_fire("0 0 7 * * ?", "Europe/Berlin", utc(2024, 1, 1))
    assert found is not None
    assert found.tzinfo == ZoneInfo("Europe/Berlin")
    assert found.utcoffset() == timedelta(hours=1)
    assert (found.hour, found.day) == (7, 1)
