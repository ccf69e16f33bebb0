"""Quartz cron schedules as Databricks writes them, evaluated with croniter.

A Databricks job schedule is a Quartz expression, ``sec min hour day-of-month month day-of-week
[year]``, with a ``timezone_id``. Quartz differs from Unix cron in ways that bite when the same
text goes through a Unix-cron library: day-of-week counts 1-7 from Sunday (``2`` is Monday, not
Tuesday), exactly one of the two day fields must be ``?``, and ``6L`` / ``6#3`` mean the last
and the third Friday. This module checks an expression against Quartz's rules, with messages
that name the field, and rewrites it for croniter (day-of-week numbers shifted by one, ranges,
steps and names expanded) so that croniter does the calendar arithmetic.

Fire times are wall-clock times in ``timezone_id``. When a daylight-saving change skips a wall
time, the schedule fires once at the end of the gap; when it repeats one, the schedule fires at
its first occurrence only, so a daily job runs once on both days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from lakestack.errors import ConfigError

__all__ = ["CronSchedule", "check_cron", "fires_between", "next_fire", "to_croniter"]

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, 1)}
DAYS = {name: i for i, name in enumerate(_DAY_NAMES, 1)}
"""Quartz numbers day-of-week 1-7 from Sunday; croniter 0-6."""

EXAMPLE = "e.g. '0 0 7 * * ?' for 07:00 every day, '0 0 9 ? * MON-FRI' for 09:00 on weekdays"
_SEARCH_STEPS = 10_000
"""Croniter steps to skip wall times repeated by a DST change (an hour of seconds fits)."""

_TOKEN = re.compile(r"(?:(?P<star>\*)|(?P<a>[A-Z0-9]+)(?:-(?P<b>[A-Z0-9]+))?)(?:/(?P<step>\d+))?")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def span(self) -> str:
        names = list(self.names)
        extra = f" or {names[0]}-{names[-1]}" if names else ""
        return f"{self.low}-{self.high}{extra}{self.note}"


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 1, 7, DAYS, " (1 is Sunday)"),
    _Field("year", 1970, 2099),
)
_DOM, _DOW = 3, 5


class _InvalidError(Exception):
    """What is wrong with an expression, as the end of a sentence."""


def to_croniter(expression: str) -> str:
    """The croniter expression (``second_at_beginning=True``) for a Quartz expression.

    Raises:
        ValueError: the expression breaks Quartz's rules or uses what croniter cannot do;
            the message says which field and what to write instead.
    """
    try:
        return _convert(expression)
    except _InvalidError as exc:
        raise ValueError(str(exc)) from None


def _convert(expression: str) -> str:
    fields = expression.upper().split()
    if len(fields) not in (6, 7):
        raise _InvalidError(
            f"has {len(fields)} fields; Quartz needs 6 or 7 (second minute hour day-of-month "
            f"month day-of-week [year]), {EXAMPLE}"
        )
    dom, dow = fields[_DOM], fields[_DOW]
    if dom == "?" and dow == "?":
        raise _InvalidError("has '?' in both day-of-month and day-of-week; keep it in one of them")
    if dom != "?" and dow != "?":
        raise _InvalidError(
            "restricts both day-of-month and day-of-week; Quartz needs '?' in one of them "
            f"({EXAMPLE})"
        )
    out: list[str] = []
    for index, text in enumerate(fields):
        spec = _FIELDS[index]
        if text == "?":
            if index not in (_DOM, _DOW):
                raise _InvalidError(
                    f"has '?' in the {spec.name} field; '?' only fits the day fields"
                )
            out.append("*")
        elif index == _DOW:
            out.append(",".join(_dow_token(t) for t in _split(text, spec)))
        elif index == _DOM:
            out.append(",".join(_dom_token(t, text) for t in _split(text, spec)))
        else:
            for token in _split(text, spec):
                _expand(token, spec)
            out.append(text.lower())
    return " ".join(out)


def _split(text: str, spec: _Field) -> list[str]:
    tokens = text.split(",")
    if any(not t for t in tokens):
        raise _InvalidError(f"has an empty item in the {spec.name} field '{text}'")
    return tokens


def _value(text: str, spec: _Field) -> int:
    if text.isdigit():
        number = int(text)
    elif text in spec.names:
        number = spec.names[text]
    else:
        raise _InvalidError(f"has '{text}' in the {spec.name} field; valid values are {spec.span}")
    if not spec.low <= number <= spec.high:
        raise _InvalidError(f"has {number} in the {spec.name} field; valid values are {spec.span}")
    return number


def _expand(token: str, spec: _Field) -> list[int]:
    """The values of ``*``, ``a``, ``a-b``, ``a/s``, ``a-b/s``, ``*/s``; ranges may wrap."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise _InvalidError(f"has '{token}' in the {spec.name} field, which Quartz does not read")
    size = spec.high - spec.low + 1
    step = int(match["step"]) if match["step"] else 1
    if not 1 <= step <= size:
        raise _InvalidError(
            f"has step /{step} in the {spec.name} field; use a step from 1 to {size}"
        )
    if match["star"]:
        start, end = spec.low, spec.high
    else:
        start = _value(match["a"], spec)
        end = _value(match["b"], spec) if match["b"] else (spec.high if match["step"] else start)
    length = (end - start) % size + 1
    return [spec.low + (start - spec.low + i) % size for i in range(0, length, step)]


def _dom_token(token: str, text: str) -> str:
    spec = _FIELDS[_DOM]
    if token == "L":
        return "l"
    if token == "LW" or token.startswith("L-"):
        raise _InvalidError(
            f"has '{token}' in the day-of-month field, which lakestack's scheduler does not "
            "support; use L for the last day of the month"
        )
    if token.endswith("W"):
        if token != text:
            raise _InvalidError("has W in a day-of-month list; W takes a single day, as in 15W")
        return f"{_value(token[:-1], spec)}w"
    _expand(token, spec)
    return token.lower()


def _dow_token(token: str) -> str:
    spec = _FIELDS[_DOW]
    if token == "L":  # by itself, the last day of the week
        return str(DAYS["SAT"] - 1)
    if token.endswith("L"):
        return f"l{_value(token[:-1], spec) - 1}"
    if "#" in token:
        day, _, nth = token.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise _InvalidError(f"has '{token}' in the day-of-week field; after # give 1 to 5")
        return f"{_value(day, spec) - 1}#{nth}"
    return ",".join(str(day - 1) for day in _expand(token, spec))


def _zone(timezone_id: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone_id)
    except (ZoneInfoNotFoundError, ValueError):
        from zoneinfo import available_timezones

        from lakestack.errors import did_you_mean

        hint = did_you_mean(timezone_id, available_timezones())
        suggestion = f"did you mean '{hint}'?" if hint else "e.g. UTC, Europe/Berlin"
        raise _InvalidError(
            f"timezone_id '{timezone_id}' is not a time zone; {suggestion}"
        ) from None


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")


class CronSchedule:
    """A Quartz expression in a time zone, checked once and asked for fire times."""

    def __init__(self, expression: str, timezone_id: str = "UTC", *, job: str | None = None):
        """Check the expression and the time zone.

        Raises:
            ConfigError: the expression or the time zone is invalid (the message names the
                job, the expression and what to write instead).
        """
        self.expression = expression
        self.timezone_id = timezone_id
        who = f"job '{job}': " if job else ""
        try:
            self.zone = _zone(timezone_id)
        except _InvalidError as exc:
            raise ConfigError(f"{who}schedule {exc}") from None
        try:
            self.croniter_expression = _convert(expression)
            # croniter checks what the Quartz rules above leave (calendar limits of W, #)
            croniter(self.croniter_expression, datetime.now(timezone.utc), second_at_beginning=True)
        except _InvalidError as exc:
            raise ConfigError(f"{who}quartz_cron_expression '{expression}' {exc}") from None
        except CroniterError as exc:
            raise ConfigError(
                f"{who}quartz_cron_expression '{expression}' cannot be evaluated ({exc}); {EXAMPLE}"
            ) from None

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.timezone_id!r})"

    def _iter(self, start: datetime) -> croniter:
        return croniter(
            self.croniter_expression, start.astimezone(self.zone), second_at_beginning=True
        )

    def _local(self, found: datetime) -> datetime:
        # croniter's fold flag is unreliable; going through UTC sets it from the instant
        return found.astimezone(timezone.utc).astimezone(self.zone)

    def _repeated(self, local: datetime) -> bool:
        """A wall time the second time a DST change shows it (it fired the first time)."""
        return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (in the schedule's zone), or None."""
        _aware(after, "after")
        times = self._iter(after)
        for _ in range(_SEARCH_STEPS):
            try:
                local = self._local(times.get_next(datetime))
            except CroniterBadDateError:
                return None
            if local > after and not self._repeated(local):
                return local
        return None

    def last_between(self, start: datetime, end: datetime) -> datetime | None:
        """The latest fire time in ``(start, end]``, or None; cheap however long the span."""
        _aware(start, "start")
        _aware(end, "end")
        times = self._iter(end + timedelta(microseconds=1))
        for _ in range(_SEARCH_STEPS):
            try:
                local = self._local(times.get_prev(datetime))
            except CroniterBadDateError:
                return None
            if local <= start:
                return None
            if local <= end and not self._repeated(local):
                return local
        return None

    def between(self, start: datetime, end: datetime, *, limit: int = 1000) -> list[datetime]:
        """Fire times in ``(start, end]``, oldest first, at most ``limit`` of them."""
        found: list[datetime] = []
        moment: datetime | None = start
        while len(found) < limit:
            moment = self.next_after(moment) if moment is not None else None
            if moment is None or moment > end:
                break
            found.append(moment)
        return found


def next_fire(
    expression: str, timezone_id: str, after: datetime, *, job: str | None = None
) -> datetime | None:
    """The first fire time after ``after``, in ``timezone_id``; None if it never fires again.

    Raises:
        ConfigError: an invalid expression or time zone (naming ``job`` when given).
    """
    return CronSchedule(expression, timezone_id, job=job).next_after(after)


def fires_between(
    expression: str,
    timezone_id: str,
    start: datetime,
    end: datetime,
    *,
    job: str | None = None,
    limit: int = 1000,
) -> list[datetime]:
    """Fire times in ``(start, end]``, oldest first, at most ``limit``.

    Raises:
        ConfigError: an invalid expression or time zone (naming ``job`` when given).
    """
    return CronSchedule(expression, timezone_id, job=job).between(start, end, limit=limit)


def check_cron(expression: str, timezone_id: str = "UTC") -> str | None:
    """What is wrong with a schedule, as one sentence, or None; for ``bundle validate``.

    A valid expression that can never fire again (a past year, 30 February) is a problem too.
    """
    try:
        schedule = CronSchedule(expression, timezone_id)
    except ConfigError as exc:
        return str(exc)
    if schedule.next_after(datetime.now(timezone.utc)) is None:
        return f"quartz_cron_expression '{expression}' never fires after now; {EXAMPLE}"
    return None
