"""Evaluate ``condition_task``: == and != compare strings, the others compare numbers."""

from __future__ import annotations

import math

from lakestack.bundle.specs.jobs import ConditionOp
from lakestack.errors import TaskError

__all__ = ["evaluate_condition"]


def _number(value: str, side: str, op: ConditionOp) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise TaskError(
            f"{op.value} compares numbers, but {side} is {value!r}; "
            "use EQUAL_TO or NOT_EQUAL to compare strings"
        ) from None
    if math.isnan(number):
        raise TaskError(f"{op.value} cannot compare NaN ({side} is {value!r})")
    return number


def evaluate_condition(op: ConditionOp, left: str, right: str) -> bool:
    """The outcome of ``left op right`` with Databricks' rules."""
    if op is ConditionOp.EQUAL_TO:
        return left == right
    if op is ConditionOp.NOT_EQUAL:
        return left != right
    a, b = _number(left, "left", op), _number(right, "right", op)
    if op is ConditionOp.GREATER_THAN:
        return a > b
    if op is ConditionOp.GREATER_THAN_OR_EQUAL:
        return a >= b
    if op is ConditionOp.LESS_THAN:
        return a < b
    return a <= b
