"""The base of every bundle spec: closed (unknown keys rejected) and typed.

Keys that Databricks needs for compute and that have no meaning on this machine are declared
with ``ignored()``: accepted, never an error, and reported once as ignored by the loader.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["IGNORED", "Spec", "Str", "ignored", "ignored_fields"]

IGNORED = "lakestack_ignored"


def _to_str(value: Any) -> Any:
    # Databricks passes every parameter as a string; YAML may have typed them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Str = Annotated[str, BeforeValidator(_to_str)]
"""A string that also accepts YAML numbers and booleans, as Databricks does."""


class Spec(BaseModel):
    """Base of all bundle specs: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False)


def ignored(description: str = "") -> Any:
    """A field accepted for compatibility with Databricks and otherwise ignored."""
    return Field(default=None, description=description, json_schema_extra={IGNORED: True})


def ignored_fields(model: type[BaseModel]) -> set[str]:
    """The names of the fields of ``model`` declared with ``ignored()``."""
    names = set()
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get(IGNORED):
            names.add(name)
    return names
