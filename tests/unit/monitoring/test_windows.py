"""Granularities: what parses, how windows align and step, and the validate messages."""

from __future__ import annotations

from datetime import datetime

import pytest

from lakestack.errors import MonitorError
from lakestack.lake import duck
from lakestack.monitoring.windows import GRANULARITIES, check_granularities, parse_granularity


@pytest.mark.parametrize("text", GRANULARITIES)
def test_every_databricks_granularity_parses(text: str) -> None:
    assert parse_granularity(text).text == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1 days", "1 day"), (" 30 Minutes ", "30 minutes"), ("1 hours", "1 hour")],
)
def test_spelling_is_forgiven(text: str, canonical: str) -> None:
    assert parse_granularity(text).text == canonical


@pytest.mark.parametrize("text", ["daily", "2 days", "1 fortnight", "", "7 minutes", "1.5 hours"])
def test_other_granularities_are_refused(text: str) -> None:
    with pytest.raises(MonitorError, match=rf"granularity '{text}' .*use one of '5 minutes'"):
        parse_granularity(text)


@pytest.mark.parametrize(
    ("text", "moment", "start", "end"),
    [
        ("5 minutes", datetime(2024, 3, 5, 10, 7), datetime(2024, 3, 5, 10, 5), datetime(2024, 3, 5, 10, 10)),
        ("1 hour", datetime(2024, 3, 5, 10, 7), datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 11)),
        ("1 day", datetime(2024, 3, 5, 23, 59), datetime(2024, 3, 5), datetime(2024, 3, 6)),
        ("1 week", datetime(2024, 3, 7), datetime(2024, 3, 4), datetime(2024, 3, 11)),
        ("1 month", datetime(2024, 1, 31, 12), datetime(2024, 1, 1), datetime(2024, 2, 1)),
        ("1 month", datetime(2024, 12, 31), datetime(2024, 12, 1), datetime(2025, 1, 1)),
        ("1 year", datetime(2024, 7, 1), datetime(2024, 1, 1), datetime(2025, 1, 1)),
    ],
)  # fmt: skip
def test_windows_align_in_sql_and_step_in_python(
    text: str, moment: datetime, start: datetime, end: datetime
) -> None:
    granularity = parse_granularity(text)
    sql = f"SELECT {granularity.start_sql('TIMESTAMP ' + repr(moment.isoformat(sep=' ')))} AS s"
    assert duck.query(sql).to_pylist()[0]["s"] == start
    assert granularity.end(start) == end
    assert granularity.previous(end) == start


def test_check_granularities_names_the_monitor() -> None:
    assert check_granularities("churn", ["1 day", "1 week"]) == []
    assert check_granularities("churn", []) == [
        "quality monitor 'churn': granularities is empty; give one or more"
    ]
    [problem] = check_granularities("churn", ["1 day", "2 days"])
    assert problem.startswith("quality monitor 'churn': granularity '2 days' is not supported")
