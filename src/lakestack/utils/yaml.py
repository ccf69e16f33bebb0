"""YAML loading that remembers where every key came from.

Mappings load as ``YamlMap`` and sequences as ``YamlList``: plain ``dict`` and ``list`` subclasses
that also carry the file and the line of each key or item, so that an error found long after
loading (an unknown key, a dangling reference) can still name the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lakestack.errors import Location, YamlSyntaxError

__all__ = ["YamlList", "YamlMap", "load_yaml", "location_of", "parse_yaml"]


class YamlMap(dict[str, Any]):
    """A mapping with the file and line of itself and of each key."""

    file: str = "<string>"
    line: int | None = None
    key_lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}

    def location(self, key: str | None = None) -> Location:
        """Where ``key`` (or the mapping itself) was written."""
        line = self.key_lines.get(key, self.line) if key is not None else self.line
        return Location(self.file, line, key)

    def copy_position(self, other: object) -> YamlMap:
        """Take the file and line of ``other`` when it is a ``YamlMap``; return self."""
        if isinstance(other, YamlMap):
            self.file, self.line = other.file, other.line
            for key, line in other.key_lines.items():
                self.key_lines.setdefault(key, line)
        return self


class YamlList(list[Any]):
    """A sequence with the file and line of itself and of each item."""

    file: str = "<string>"
    line: int | None = None
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []

    def location(self, index: int | None = None) -> Location:
        """Where item ``index`` (or the sequence itself) was written."""
        line = self.line
        if index is not None and 0 <= index < len(self.item_lines):
            line = self.item_lines[index]
        return Location(self.file, line)


class _Loader(yaml.SafeLoader):
    """SafeLoader building YamlMap/YamlList with positions (1-based lines)."""

    file_name = "<string>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    result = YamlMap()
    result.file, result.line = loader.file_name, node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise YamlSyntaxError(
                f"duplicate key '{key}' (first at line {result.key_lines[key]}); keep one",
                location=Location(loader.file_name, key_node.start_mark.line + 1, key),
            )
        result[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> YamlList:
    result = YamlList(
        loader.construct_object(child, deep=True)  # type: ignore[no-untyped-call]
        for child in node.value
    )
    result.file, result.line = loader.file_name, node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)  # type: ignore[arg-type]


def parse_yaml(text: str, file_name: str = "<string>") -> Any:
    """Parse YAML text into YamlMap/YamlList/scalars; raise YamlSyntaxError with the line."""

    class Loader(_Loader):
        pass

    Loader.file_name = file_name
    try:
        loader = Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(
            f"malformed YAML: {problem}; fix the syntax at this line",
            location=Location(file_name, line),
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"malformed YAML: {exc}", location=Location(file_name)) from exc


def load_yaml(path: Path, display_name: str | None = None) -> Any:
    """Load one YAML file; positions name it as ``display_name`` (default: the path)."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSyntaxError(
            f"cannot read the file: {exc.strerror}", location=Location(name)
        ) from exc
    return parse_yaml(text, name)


def location_of(root: Any, path: tuple[str | int, ...]) -> Location | None:
    """The position of the deepest node on ``path`` under ``root`` that has one.

    Path elements that do not exist in the data (pydantic adds union tags) are skipped.
    """
    best: Location | None = root.location() if isinstance(root, (YamlMap, YamlList)) else None
    node = root
    for part in path:
        if isinstance(node, YamlMap) and isinstance(part, str) and part in node:
            best = node.location(part)
            node = node[part]
        elif isinstance(node, YamlList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.location(part)
            node = node[part]
        # otherwise a key that is not there (a missing field, a union tag): stay here
    return best
