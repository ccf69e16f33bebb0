"""How configuration pieces combine: target overrides and included files.

The rules for lists live in ``LIST_MERGE_KEYS``, one table: a list named there merges its items
by the given key (an item of the override with the key of a base item deep-merges into it, a new
key is appended); every other list is replaced. Mappings always deep-merge. Merged mappings keep
the file and line of every key, wherever it was written.
"""

from __future__ import annotations

from typing import Any

from lakestack.errors import ConfigError, Location
from lakestack.utils.yaml import YamlList, YamlMap

__all__ = ["LIST_MERGE_KEYS", "MergedMap", "copy_map", "merge", "merge_resources"]

LIST_MERGE_KEYS: dict[str, str] = {
    "tasks": "task_key",
    "parameters": "name",
    "job_clusters": "job_cluster_key",
    "served_entities": "name",
    "served_models": "name",
}
"""List name -> the key its items merge by. Job ``parameters`` only: task ``parameters`` are
lists of strings, which are replaced."""


class MergedMap(YamlMap):
    """A YamlMap whose keys may come from several files."""

    key_files: dict[str, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_files = {}

    def location(self, key: str | None = None) -> Location:
        """Where ``key`` (or the mapping itself) was written."""
        if key is not None and key in self.key_files:
            return Location(self.key_files[key], self.key_lines.get(key), key)
        return super().location(key)


def copy_map(src: YamlMap, items: dict[str, Any] | None = None) -> MergedMap:
    """A MergedMap with the positions of ``src`` and ``items`` (default: src's items)."""
    out = MergedMap(src if items is None else items)
    out.file, out.line = src.file, src.line
    out.key_lines = dict(src.key_lines)
    if isinstance(src, MergedMap):
        out.key_files = dict(src.key_files)
    return out


def copy_list(src: YamlList, items: list[Any]) -> YamlList:
    """A YamlList holding ``items`` with the positions of ``src``."""
    out = YamlList(items)
    out.file, out.line, out.item_lines = src.file, src.line, list(src.item_lines)
    return out


def _is_map(value: Any) -> bool:
    return isinstance(value, dict)


def merge(base: Any, override: Any, key: str | None = None) -> Any:
    """``override`` applied to ``base`` by the rules of this module; neither is modified."""
    if _is_map(base) and _is_map(override):
        out = copy_map(base) if isinstance(base, YamlMap) else MergedMap(base)
        for name, value in override.items():
            out[name] = merge(base[name], value, name) if name in base else value
            if isinstance(override, YamlMap):
                out.key_files[name] = override.location(name).file
                line = override.location(name).line
                if line is not None:
                    out.key_lines[name] = line
        return out
    if (
        isinstance(base, list)
        and isinstance(override, list)
        and key in LIST_MERGE_KEYS
        and all(_is_map(item) for item in [*base, *override])
    ):
        return _merge_list(base, override, LIST_MERGE_KEYS[key])
    return override


def _merge_list(base: list[Any], override: list[Any], by: str) -> list[Any]:
    items = list(base)
    lines: list[int | None] = []
    lines.extend(base.item_lines if isinstance(base, YamlList) else [None] * len(base))
    index = {item.get(by): i for i, item in enumerate(items) if _is_map(item) and by in item}
    for j, item in enumerate(override):
        line = override.item_lines[j] if isinstance(override, YamlList) else None
        if _is_map(item) and item.get(by) in index:
            i = index[item[by]]
            items[i] = merge(items[i], item)
        else:
            items.append(item)
            lines.append(line)
    out = YamlList(items)
    if isinstance(base, YamlList):
        out.file, out.line = base.file, base.line
    out.item_lines = [line or 0 for line in lines]
    return out


def merge_resources(into: YamlMap, resources: Any, origin: YamlMap) -> None:
    """Add the top-level ``resources`` of one file to ``into``; a key defined twice is an error.

    Args:
        into: The resources gathered so far (resource type -> key -> definition).
        resources: The ``resources`` mapping of one file.
        origin: The mapping that holds ``resources`` in that file (for its position).
    """
    if resources is None:
        return
    if not isinstance(resources, dict):
        raise ConfigError("resources must be a mapping", location=origin.location("resources"))
    for rtype, defs in resources.items():
        if defs is None:
            continue
        if not isinstance(defs, dict):
            where = resources.location(rtype) if isinstance(resources, YamlMap) else None
            raise ConfigError(
                f"resources.{rtype} must be a mapping of resource keys", location=where
            )
        if rtype not in into:
            into[rtype] = copy_map(defs) if isinstance(defs, YamlMap) else MergedMap(defs)
            if isinstance(resources, YamlMap):
                into.key_lines[rtype] = resources.location(rtype).line or 0
            continue
        have = into[rtype]
        for key, value in defs.items():
            if key in have:
                first = have.location(key)
                second = defs.location(key) if isinstance(defs, YamlMap) else None
                raise ConfigError(
                    f"resources.{rtype}.{key} is defined twice: at {first.file}:{first.line} "
                    f"and at {second.file}:{second.line}; keep one (targets may override it)"
                    if second
                    else f"resources.{rtype}.{key} is defined twice; keep one",
                    location=second,
                )
            have[key] = value
            if isinstance(defs, YamlMap):
                have.key_files[key] = defs.file
                have.key_lines[key] = defs.key_lines.get(key, 0)
