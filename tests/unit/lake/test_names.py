"""Three-level names and the lexical SQL statement splitter."""

from __future__ import annotations

import pytest

from lakestack.lake.names import InvalidNameError, parse_schema_name, parse_table_name
from lakestack.lake.sqlengine import split_statements


def test_names_are_case_insensitive_and_may_be_quoted() -> None:
    assert str(parse_table_name("Main.Sales.Orders")) == "main.sales.orders"
    assert str(parse_table_name("`my-catalog`.s.t")) == "my-catalog.s.t"
    assert str(parse_schema_name(" main.fs ")) == "main.fs"


@pytest.mark.parametrize("text", ["a.b", "a.b.c.d", "a..b", "a.b.c d", "", "a.b.`c/d`"])
def test_bad_table_names_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidNameError, match=r"catalog\.schema\.table|may hold only letters"):
        parse_table_name(text)


def test_statements_split_outside_strings_and_comments() -> None:
    script = (
        "SELECT 1; SELECT ';' AS semi -- a; comment\n; /* x; y */ CREATE SCHEMA a.b COMMENT 'c;d';"
    )
    assert split_statements(script) == [
        "SELECT 1",
        "SELECT ';' AS semi -- a; comment",
        "/* x; y */ CREATE SCHEMA a.b COMMENT 'c;d'",
    ]
    assert split_statements("-- only a comment\n;;") == []
