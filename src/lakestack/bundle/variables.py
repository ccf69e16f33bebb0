"""Choosing each variable's value: ``--var`` beats ``BUNDLE_VAR_<name>``, which beats the
target's override, which beats the default. Values are resolved later by the interpolator."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lakestack.bundle.interpolate import VariableValue
from lakestack.bundle.specs.root import LOOKUP_KINDS, VariableSpec
from lakestack.bundle.validation import Validator
from lakestack.errors import ConfigError, Location, ReferenceError_, did_you_mean
from lakestack.utils.yaml import YamlMap

__all__ = ["choose_variables"]


def _where(node: Any, key: str) -> Location | None:
    return node.location(key) if isinstance(node, YamlMap) else None


_DECLARATION_KEYS = frozenset(VariableSpec.model_fields)


def _declaration(
    validator: Validator, name: str, raw: Any, path: str, *, value_if_complex: bool = False
) -> VariableSpec:
    if isinstance(raw, dict) and not (value_if_complex and not set(raw) <= _DECLARATION_KEYS):
        return validator.validate(VariableSpec, raw, path)
    return VariableSpec(default=raw)


def _lookup_value(
    spec: VariableSpec, name: str, where: Location | None, warnings: list[str]
) -> Any:
    lookup = spec.lookup or {}
    if len(lookup) != 1 or next(iter(lookup)) not in LOOKUP_KINDS:
        raise ConfigError(
            f"variables.{name}.lookup needs exactly one of: {', '.join(LOOKUP_KINDS)}",
            location=where,
        )
    kind, value = next(iter(lookup.items()))
    warnings.append(
        f"{where or 'variables'}: variable '{name}' looks up a {kind}; lakestack has no "
        f"workspace to search, so it resolves to the name '{value}'"
    )
    return value


def choose_variables(
    declared: Mapping[str, Any],
    overrides: Mapping[str, Any],
    *,
    cli: Mapping[str, str],
    environ: Mapping[str, str],
    validator: Validator,
    warnings: list[str],
) -> dict[str, VariableValue | None]:
    """The chosen raw value of every declared variable (None when it has no value anywhere).

    Args:
        declared: The top-level ``variables`` mapping.
        overrides: The target's ``variables`` (``name: value`` or ``name: {default: value}``).
        cli: ``--var name=value`` values.
        environ: The environment (``BUNDLE_VAR_<name>``).
        validator: Validates declarations.
        warnings: Where lookup warnings go.

    Raises:
        ReferenceError_: A target or ``--var`` sets a variable that is not declared.
    """
    for source, names in (("the target", overrides), ("--var", cli)):
        for name in names:
            if name not in declared:
                hint = did_you_mean(name, declared)
                raise ReferenceError_(
                    f"{source} sets variable '{name}', which is not declared"
                    + (f"; did you mean '{hint}'?" if hint else "; declare it under variables"),
                    location=_where(overrides, name) if source == "the target" else None,
                )
    chosen: dict[str, VariableValue | None] = {}
    for name, raw in declared.items():
        spec = _declaration(validator, name, raw, f"variables.{name}")
        is_complex = spec.type == "complex"
        where = _where(declared, name)
        value: VariableValue | None = None
        if spec.lookup is not None:
            value = VariableValue(_lookup_value(spec, name, where, warnings), where)
        elif spec.default is not None:
            value = VariableValue(spec.default, where, complex_=is_complex)
        if name in overrides:
            where = _where(overrides, name)
            over = _declaration(
                validator,
                name,
                overrides[name],
                f"targets.variables.{name}",
                value_if_complex=is_complex,
            )
            if over.lookup is not None:
                value = VariableValue(_lookup_value(over, name, where, warnings), where)
            elif over.default is not None:
                value = VariableValue(over.default, where, complex_=is_complex)
        for text, origin in (
            (environ.get(f"BUNDLE_VAR_{name}"), f"BUNDLE_VAR_{name}"),
            (cli.get(name), f"--var {name}"),
        ):
            if text is not None:
                value = VariableValue(_parse(text, is_complex, origin), Location(origin))
                value.complex = is_complex
        chosen[name] = value
    return chosen


def _parse(text: str, is_complex: bool, origin: str) -> Any:
    if not is_complex:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{origin}: a complex variable needs a JSON value ({exc})") from exc
