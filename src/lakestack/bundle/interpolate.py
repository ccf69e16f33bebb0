"""Bundle-time substitution of ``${...}`` references in every string of the configuration.

References are resolved lazily against the configuration itself, so a variable default may use
``${bundle.target}`` or another variable, and a job name may use ``${resources.jobs.x.name}``;
a reference that leads back to itself is a cycle. Run-time references ``{{...}}`` are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lakestack.bundle.merge import copy_list, copy_map
from lakestack.errors import Location, ReferenceError_, did_you_mean
from lakestack.utils.yaml import YamlList, YamlMap

__all__ = ["REF_PATTERN", "Interpolator", "VariableValue"]

REF_PATTERN = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*)\}")
_ROOTS = ("bundle", "var", "variables", "workspace", "resources")


class VariableValue:
    """The chosen (unresolved) value of one variable and where it was set."""

    def __init__(self, raw: Any, location: Location | None, *, complex_: bool = False) -> None:
        self.raw = raw
        self.location = location
        self.complex = complex_


def _parts(ref: str) -> list[str | int]:
    out: list[str | int] = []
    for piece in ref.split("."):
        name, *indexes = piece.split("[")
        out.append(name)
        out.extend(int(i.rstrip("]")) for i in indexes)
    return out


class Interpolator:
    """Resolves ``${...}`` in a configuration tree.

    Args:
        tree: ``bundle``, ``workspace`` and ``resources`` as mappings (unresolved).
        variables: Every declared variable with its chosen value (None: no value anywhere).
    """

    def __init__(self, tree: Mapping[str, Any], variables: Mapping[str, VariableValue | None]):
        self._tree = tree
        self._vars = variables
        self._memo: dict[str, Any] = {}
        self._stack: list[str] = []

    def resolve(self, node: Any, location: Location | None = None) -> Any:
        """A copy of ``node`` with every ``${...}`` substituted; positions are kept."""
        if isinstance(node, str):
            return self._substitute(node, location)
        if isinstance(node, dict):
            out = copy_map(node, {}) if isinstance(node, YamlMap) else {}
            for key, value in node.items():
                where = node.location(key) if isinstance(node, YamlMap) else location
                out[key] = self.resolve(value, where)
            return out
        if isinstance(node, list):
            items = [
                self.resolve(v, node.location(i) if isinstance(node, YamlList) else location)
                for i, v in enumerate(node)
            ]
            return copy_list(node, items) if isinstance(node, YamlList) else items
        return node

    def variable(self, name: str, location: Location | None = None) -> Any:
        """The resolved value of variable ``name``."""
        return self._cached(f"var.{name}", lambda: self._variable(name, location), location)

    def _substitute(self, text: str, location: Location | None) -> Any:
        matches = list(REF_PATTERN.finditer(text))
        if not matches:
            return text
        if len(matches) == 1 and matches[0].group(0) == text:
            return self.lookup(matches[0].group(1), location)

        def one(match: re.Match[str]) -> str:
            value = self.lookup(match.group(1), location)
            if isinstance(value, (dict, list)):
                raise ReferenceError_(
                    f"${{{match.group(1)}}} is a complex value and cannot be part of a string; "
                    "use it as the whole value",
                    location=location,
                )
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)

        return REF_PATTERN.sub(one, text)

    def lookup(self, ref: str, location: Location | None = None) -> Any:
        """The resolved value of the reference ``ref`` (without ``${}``)."""
        if ref.startswith(("var.", "variables.")):
            return self._lookup(ref, location)  # cached per variable by ``variable``
        return self._cached(ref, lambda: self._lookup(ref, location), location)

    def _cached(self, key: str, compute: Any, location: Location | None) -> Any:
        if key in self._memo:
            return self._memo[key]
        if key in self._stack:
            cycle = [*self._stack[self._stack.index(key) :], key]
            raise ReferenceError_(
                f"references form a cycle: {' -> '.join(cycle)}; break it", location=location
            )
        self._stack.append(key)
        try:
            value = compute()
        finally:
            self._stack.pop()
        self._memo[key] = value
        return value

    def _variable(self, name: str, location: Location | None) -> Any:
        if name not in self._vars:
            hint = did_you_mean(name, self._vars)
            defined = ", ".join(sorted(self._vars)) or "none"
            raise ReferenceError_(
                f"${{var.{name}}}: variable '{name}' is not defined (defined: {defined})"
                + (f"; did you mean '{hint}'?" if hint else "; declare it under variables"),
                location=location,
            )
        chosen = self._vars[name]
        if chosen is None:
            raise ReferenceError_(
                f"variable '{name}' has no value; set a default, a target override, "
                f"--var {name}=... or BUNDLE_VAR_{name}",
                location=location,
            )
        value = self.resolve(chosen.raw, chosen.location)
        if isinstance(value, (dict, list)) and not chosen.complex:
            raise ReferenceError_(
                f"variable '{name}' has a {type(value).__name__} value; "
                "declare it with type: complex",
                location=chosen.location,
            )
        return value

    def _lookup(self, ref: str, location: Location | None) -> Any:
        parts = _parts(ref)
        root = parts[0]
        if root == "var" and len(parts) >= 2:
            node, rest, walked = (
                self.variable(str(parts[1]), location),
                parts[2:],
                f"var.{parts[1]}",
            )
        elif root == "variables" and len(parts) >= 3 and parts[2] == "value":
            node, rest, walked = (
                self.variable(str(parts[1]), location),
                parts[3:],
                f"var.{parts[1]}",
            )
        elif root == "resources" and len(parts) == 4 and parts[3] == "id":
            return self._resource_id(str(parts[1]), str(parts[2]), ref, location)
        elif root in _ROOTS:
            node, rest, walked = self._tree, parts, ""
        else:
            hint = did_you_mean(str(root), _ROOTS)
            raise ReferenceError_(
                f"${{{ref}}} cannot be resolved: references start with "
                + ", ".join(f"{r}." for r in _ROOTS if r != "variables")
                + (f"; did you mean '{hint}'?" if hint else ""),
                location=location,
            )
        for part in rest:
            if isinstance(node, str):
                node = self._substitute(node, location)
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            ):
                node = node[part]  # type: ignore[index]
            else:
                there = sorted(str(k) for k in node) if isinstance(node, dict) else []
                hint = did_you_mean(str(part), there)
                place = walked or "the bundle"
                raise ReferenceError_(
                    f"${{{ref}}} cannot be resolved: '{part}' does not exist in {place}"
                    + (f" (there: {', '.join(there)})" if there else "")
                    + (f"; did you mean '{hint}'?" if hint else ""),
                    location=location,
                )
            walked = f"{walked}.{part}" if walked else str(part)
        return self.resolve(node, location)

    def _resource_id(self, rtype: str, key: str, ref: str, location: Location | None) -> Any:
        resources = self._tree.get("resources") or {}
        node = resources.get(rtype, {}).get(key) if isinstance(resources, dict) else None
        if node is None:
            there = sorted(resources.get(rtype) or {}) if isinstance(resources, dict) else []
            hint = did_you_mean(key, there)
            raise ReferenceError_(
                f"${{{ref}}} cannot be resolved: '{key}' does not exist in resources.{rtype}"
                + (f" (there: {', '.join(there)})" if there else "")
                + (f"; did you mean '{hint}'?" if hint else ""),
                location=location,
            )
        if rtype == "registered_models":
            names = [f"resources.{rtype}.{key}.{f}" for f in ("catalog_name", "schema_name")]
            if all(isinstance(node, dict) and f.rsplit(".", 1)[1] in node for f in names):
                parts = [self.lookup(f, location) for f in names]
                return ".".join(str(p) for p in [*parts, self.lookup(f"{ref[:-3]}.name")])
            return self.lookup(f"resources.{rtype}.{key}.name", location)
        if rtype == "experiments":
            return self.lookup(f"resources.{rtype}.{key}.name", location)
        return key
