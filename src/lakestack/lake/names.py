"""Three-level names: ``catalog.schema.table`` (and ``catalog.schema`` for schemas).

Unity Catalog names are case-insensitive and stored lower-case; so are lakestack's. A name part
may be quoted with backticks (```my-catalog`.sales.orders``); unquoted parts are identifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakestack.errors import LakeError, TerminalError

__all__ = ["InvalidNameError", "SchemaName", "TableName", "parse_schema_name", "parse_table_name"]

_PART = re.compile(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)")
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


class InvalidNameError(LakeError, TerminalError):
    """A name that is not ``catalog.schema.table`` (or ``catalog.schema``)."""


@dataclass(frozen=True)
class SchemaName:
    """``catalog.schema``."""

    catalog: str
    schema: str

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}"


@dataclass(frozen=True)
class TableName:
    """``catalog.schema.name``: a table or a volume."""

    catalog: str
    schema: str
    name: str

    @property
    def schema_name(self) -> SchemaName:
        """The schema holding this object."""
        return SchemaName(self.catalog, self.schema)

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.name}"


def _split(text: str, count: int, what: str, example: str) -> list[str]:
    parts: list[str] = []
    position = 0
    text = text.strip()
    while position <= len(text):
        match = _PART.match(text, position)
        if match is None:
            break
        part = (match.group(1) or match.group(2)).lower()
        if not _SAFE.match(part):
            raise InvalidNameError(
                f"'{text}': '{part}' may hold only letters, digits, '_' and '-'; rename it"
            )
        parts.append(part)
        position = match.end()
        if position == len(text):
            break
        if text[position] != ".":
            parts = []
            break
        position += 1
    if len(parts) != count or position != len(text):
        raise InvalidNameError(f"'{text}' is not a {what} name; write it as {example}")
    return parts


def parse_table_name(text: str) -> TableName:
    """Parse ``catalog.schema.table``.

    Raises:
        InvalidNameError: Not three parts, or a part with characters a folder cannot hold.
    """
    catalog, schema, name = _split(
        text, 3, "table", "catalog.schema.table (e.g. main.sales.orders)"
    )
    return TableName(catalog, schema, name)


def parse_schema_name(text: str) -> SchemaName:
    """Parse ``catalog.schema``.

    Raises:
        InvalidNameError: Not two parts.
    """
    catalog, schema = _split(text, 2, "schema", "catalog.schema (e.g. main.sales)")
    return SchemaName(catalog, schema)
