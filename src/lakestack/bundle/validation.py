"""pydantic validation with errors that name the file, the line and the key.

Unknown keys are collected first: in a ``lakestack.yml`` bundle (or with ``strict``) they are
errors; in a ``databricks.yml`` bundle they are warnings and the keys are dropped, as the
Databricks CLI does. Every other validation error is a ``ConfigError`` of one line.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lakestack.bundle.specs.base import ignored_fields
from lakestack.errors import ConfigError, Location, UnknownKeyError
from lakestack.utils.yaml import YamlList, YamlMap, location_of

__all__ = ["Validator", "collect_ignored", "key_path"]

M = TypeVar("M", bound=BaseModel)

_READABLE = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def key_path(prefix: str, loc: tuple[str | int, ...]) -> str:
    """``prefix`` and a pydantic location as ``a.b[0].c``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part.startswith("function-"):
            continue  # a union tag
        else:
            out = f"{out}.{part}" if out else part
    return out


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if isinstance(part, str) and part in tp.model_fields:
                tp = tp.model_fields[part].annotation
            continue
        origin = get_origin(tp)
        if origin is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _readable(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "missing required key"
    msg = str(err["msg"])
    if msg.startswith(("Value error, ", "Assertion failed, ")):
        return msg.split(", ", 1)[1]
    given = err.get("input")
    if isinstance(given, (YamlMap, dict)):
        shown = "a mapping"
    elif isinstance(given, (YamlList, list)):
        shown = "a list"
    else:
        shown = repr(given)
    base = _READABLE.get(kind)
    if base is None:
        base = msg[0].lower() + msg[1:]
    return f"{base}, got {shown}"


def _drop(data: Any, loc: tuple[str | int, ...]) -> None:
    node = data
    for part in loc[:-1]:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]  # type: ignore[index]
    if isinstance(node, dict):
        node.pop(loc[-1], None)  # type: ignore[call-overload]


class Validator:
    """Validates YAML data against a spec and reports problems with their location.

    Args:
        lenient_unknown: Unknown keys are warnings (``databricks.yml`` without ``strict``).
        warnings: Where warnings go.
    """

    def __init__(self, *, lenient_unknown: bool, warnings: list[str]) -> None:
        self.lenient_unknown = lenient_unknown
        self.warnings = warnings

    def validate(self, model: type[M], data: Any, prefix: str = "") -> M:
        """``data`` as ``model``; unknown keys dropped (with a warning) when lenient."""
        for _ in range(100):
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                errors = exc.errors()
            unknown = [e for e in errors if e["type"] == "extra_forbidden"]
            if not unknown:
                err = errors[0]
                where = location_of(data, tuple(err["loc"])) or Location("<bundle>")
                path = key_path(prefix, tuple(err["loc"]))
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise ConfigError(
                    f"{path}: {_readable(err)}{more}", location=Location(where.file, where.line)
                ) from None
            for err in unknown:
                error = self._unknown(model, data, prefix, tuple(err["loc"]))
                if not self.lenient_unknown:
                    if len(unknown) > 1:
                        error.message += f" (and {len(unknown) - 1} more unknown keys)"
                        error.args = (error.message,)
                    raise error
                self.warnings.append(f"{error.message} (ignored)")
                _drop(data, tuple(err["loc"]))
        raise AssertionError("validation did not converge")

    @staticmethod
    def _unknown(
        model: type[BaseModel], data: Any, prefix: str, loc: tuple[str | int, ...]
    ) -> UnknownKeyError:
        owner = _model_at(model, loc[:-1])
        valid = list(owner.model_fields) if owner else []
        where = location_of(data, loc) or Location("<bundle>")
        parent = key_path(prefix, loc[:-1])
        return UnknownKeyError(
            str(loc[-1]), location=Location(where.file, where.line), valid=valid, where=parent
        )


def collect_ignored(value: Any, path: str, out: list[str]) -> None:
    """Append to ``out`` the path of every ``ignored()`` field set in ``value`` (once each)."""
    if isinstance(value, BaseModel):
        skip = ignored_fields(type(value))
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            sub = f"{path}.{name}" if path else name
            if name in skip:
                if field_value is not None and sub not in out:
                    out.append(sub)
            else:
                collect_ignored(field_value, sub, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            collect_ignored(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            label = getattr(item, "task_key", None) or getattr(item, "name", None) or str(i)
            collect_ignored(item, f"{path}[{label}]", out)
