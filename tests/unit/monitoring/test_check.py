"""MLOps Stacks' violation rule, table-driven; the cooldown's durations; the task values."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from lakestack.errors import MonitorError
from lakestack.monitoring.check import CheckResult, Verdict, parse_duration, violation

DAY = [datetime(2026, 3, d) for d in range(1, 11)]


def by_window(*values: float | None) -> dict[datetime, float | None]:
    """Values of consecutive daily windows, oldest first."""
    return dict(zip(DAY, values, strict=False))


@pytest.mark.parametrize(
    ("values", "greater_is_better", "m", "n", "expected"),
    [
        # Stacks' defaults (M 5, N 2), an error metric: past means above the threshold
        (by_window(1, 1, 1, 150, 150), False, 5, 2, (True, 2, 5)),
        (by_window(150, 150, 1, 1, 1), False, 5, 2, (False, 2, 5)),  # stale: latest is fine
        (by_window(1, 1, 1, 1, 150), False, 5, 2, (False, 1, 5)),  # one window is not enough
        (by_window(1, 1, 1, 100, 100), False, 5, 2, (False, 0, 5)),  # equal is not past
        (by_window(150, 150, 1, 1, 1, 1, 1, 150), False, 5, 2, (False, 1, 5)),  # only latest M
        (by_window(150, 150, 150), False, 5, 2, (True, 3, 3)),  # fewer windows than M
        (by_window(150), False, 5, 2, (False, 1, 1)),
        (by_window(150), False, 5, 1, (True, 1, 1)),
        (by_window(150, 150, None), False, 5, 2, (False, 2, 3)),  # latest not labelled yet
        (by_window(150, math.nan, 150), False, 5, 2, (True, 2, 3)),  # NaN is not past
        (by_window(), False, 5, 2, (False, 0, 0)),
        # a score (f1_score.macro): past means below the threshold
        (by_window(99, 99, 99, 90, 90), True, 5, 2, (True, 2, 5)),
        (by_window(150, 150, 150, 150, 150), True, 5, 2, (False, 0, 5)),
        (by_window(90, 90, 90, 90, 150), True, 3, 3, (False, 2, 3)),
    ],
)
def test_the_stacks_rule(
    values: dict[datetime, float | None],
    greater_is_better: bool,
    m: int,
    n: int,
    expected: tuple[bool, int, int],
) -> None:
    threshold = 95 if greater_is_better else 100
    verdict = violation(values, threshold, greater_is_better, m, n)
    assert (verdict.violated, verdict.violated_windows, verdict.evaluated_windows) == expected
    assert verdict.reason.startswith("violated" if verdict.violated else "not violated")


def test_windows_are_ordered_by_their_keys_not_by_insertion() -> None:
    values = {DAY[4]: 150.0, DAY[0]: 1.0, DAY[3]: 150.0, DAY[1]: 1.0}
    verdict = violation(values, 100, False, 2, 2)
    assert verdict.violated and verdict.latest_violated


def test_the_reason_says_what_was_counted() -> None:
    assert violation(by_window(1, 150, 150), 100, False, 5, 2).reason == (
        "violated: 2 of the latest 3 windows above 100 (need 2); the latest is 150"
    )
    assert violation(by_window(150, 150, 1), 100, False, 5, 2).reason == (
        "not violated: 2 of the latest 3 windows above 100 (need 2); the latest is 1, "
        "not above the threshold"
    )
    assert violation(by_window(0.9, None), 0.8, True, 5, 1).reason == (
        "not violated: 0 of the latest 2 windows below 0.8 (need 1); the latest is no value"
    )
    assert violation({}, 1, False, 5, 2).reason == "not violated: no windows to evaluate"


@pytest.mark.parametrize(
    ("threshold", "m", "n", "message"),
    [
        (1.0, 0, 1, "num_evaluation_windows 0 is not allowed: give a count of at least 1"),
        (1.0, 5, 0, "num_violation_windows 0 is not allowed: give a count of at least 1"),
        (
            1.0,
            3,
            4,
            "num_violation_windows 4 is more than num_evaluation_windows 3: the rule could "
            "never be met; lower it or look at more windows",
        ),
        (math.inf, 5, 2, "metric_violation_threshold inf is not a finite number"),
    ],
)
def test_bad_rule_parameters(threshold: float, m: int, n: int, message: str) -> None:
    with pytest.raises(MonitorError) as err:
        violation(by_window(1.0), threshold, False, m, n)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", timedelta(days=1)),
        ("6 hours", timedelta(hours=6)),
        ("30 minutes", timedelta(minutes=30)),
        ("2 Weeks", timedelta(weeks=2)),
        ("1.5 hour", timedelta(minutes=90)),
        ("90seconds", timedelta(seconds=90)),
    ],
)
def test_cooldown_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "day", "1 fortnight", "-1 day", "1 day 2 hours"])
def test_bad_cooldowns(text: str) -> None:
    with pytest.raises(MonitorError, match=f"^cooldown '{text}' does not parse; give a number"):
        parse_duration(text)


def test_a_blocked_violation_publishes_false() -> None:
    verdict = Verdict(True, 2, 5, True, "violated: ...")
    met = CheckResult("rmse", "p", "1 day", [], verdict, reason="violated: ...")
    assert met.task_values() == {
        "is_metric_violated": "true",
        "violated_windows": 2,
        "retrain_blocked": "",
        "reason": "violated: ...",
    }
    blocked = CheckResult("rmse", "p", "1 day", [], verdict, retrain_blocked="cooldown")
    assert not blocked.is_metric_violated
    assert blocked.task_values()["is_metric_violated"] == "false"
    assert blocked.task_values()["retrain_blocked"] == "cooldown"
