"""What built-in task entry points share from ``lakestack.jobs.context``."""

from __future__ import annotations

import argparse

import pytest

from lakestack.jobs.context import parameter_flag


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), (" TRUE ", True), ("1", True), ("yes", True), ("false", False),
     ("0", False), ("no", False), ("", False)],
)  # fmt: skip
def test_a_flag_parameter_reads_true_and_false(text: str, value: bool) -> None:
    assert parameter_flag(text) is value


def test_anything_else_says_what_to_write() -> None:
    with pytest.raises(
        argparse.ArgumentTypeError, match="'maybe' is not a boolean; use true or false"
    ):
        parameter_flag("maybe")
