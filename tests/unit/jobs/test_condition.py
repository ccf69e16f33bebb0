"""condition_task operators: == and != compare strings, the others numbers."""

from __future__ import annotations

import pytest

from lakestack.bundle.specs.jobs import ConditionOp
from lakestack.errors import TaskError
from lakestack.jobs.condition import evaluate_condition


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        (ConditionOp.EQUAL_TO, "true", "true", True),
        (ConditionOp.EQUAL_TO, "12.0", "12", False),
        (ConditionOp.EQUAL_TO, "True", "true", False),
        (ConditionOp.NOT_EQUAL, "a", "b", True),
        (ConditionOp.NOT_EQUAL, "a", "a", False),
        (ConditionOp.GREATER_THAN, "10", "9.5", True),
        (ConditionOp.GREATER_THAN, "9", "9", False),
        (ConditionOp.GREATER_THAN_OR_EQUAL, "12.0", "12", True),
        (ConditionOp.GREATER_THAN_OR_EQUAL, "10.0", "12", False),
        (ConditionOp.LESS_THAN, "-1", "0", True),
        (ConditionOp.LESS_THAN, "1e3", "999", False),
        (ConditionOp.LESS_THAN_OR_EQUAL, "0.5", " 0.50 ", True),
        (ConditionOp.LESS_THAN_OR_EQUAL, "2", "1", False),
    ],
)
def test_operators(op: ConditionOp, left: str, right: str, expected: bool) -> None:
    assert evaluate_condition(op, left, right) is expected


def test_numeric_operator_on_text_says_what_to_use() -> None:
    with pytest.raises(
        TaskError, match=r"GREATER_THAN compares numbers, but left is 'abc'; use EQUAL_TO"
    ):
        evaluate_condition(ConditionOp.GREATER_THAN, "abc", "1")
