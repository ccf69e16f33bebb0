"""Reading the bundle file and its includes into one document."""

from __future__ import annotations

import os
from pathlib import Path

from lakestack.bundle.merge import MergedMap, copy_map, merge, merge_resources
from lakestack.bundle.paths import PathRewriter
from lakestack.bundle.specs.root import RootSpec
from lakestack.bundle.validation import Validator
from lakestack.errors import ConfigError, Location
from lakestack.utils.yaml import YamlMap, load_yaml

__all__ = ["read_bundle_files"]

_MERGED_KEYS = ("variables", "targets", "environments", "workspace", "lakestack", "presets")


def _display(path: Path, root: Path) -> str:
    return os.path.relpath(path, root) if path.is_relative_to(root) else str(path)


def _read(path: Path, root: Path, validator: Validator, rewriter: PathRewriter) -> YamlMap:
    name = _display(path, root)
    doc = load_yaml(path, name)
    if doc is None:
        doc = YamlMap()
        doc.file = name
    if not isinstance(doc, YamlMap):
        raise ConfigError("a bundle file must hold a mapping", location=Location(name, 1))
    validator.validate(RootSpec, doc)  # drops unknown keys (with a warning) when lenient
    rewriter.anchor(doc.get("resources"), path.parent)
    for targets in (doc.get("targets"), doc.get("environments")):
        for target in (targets or {}).values():
            if isinstance(target, dict):
                rewriter.anchor(target.get("resources"), path.parent)
    return doc


def _includes(main: Path, doc: YamlMap, root: Path) -> list[Path]:
    patterns = doc.get("include") or []
    found: list[Path] = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError("include entries must be strings", location=doc.location("include"))
        matches = sorted(p.resolve() for p in root.glob(pattern) if p.is_file())
        found.extend(p for p in matches if p != main and p not in found)
    return found


def read_bundle_files(
    main: Path, validator: Validator, rewriter: PathRewriter
) -> tuple[MergedMap, list[str]]:
    """The bundle file with its includes merged in, and the included file names.

    Top-level ``resources`` of all files are gathered (a key defined twice is an error naming
    both places); ``variables``, ``targets`` and the other mappings deep-merge in file order.
    """
    root = main.parent
    doc = copy_map(_read(main, root, validator, rewriter))
    resources = MergedMap()
    resources.file, resources.line = doc.file, doc.line
    merge_resources(resources, doc.get("resources"), doc)
    names: list[str] = []
    for path in _includes(main, doc, root):
        part = _read(path, root, validator, rewriter)
        names.append(part.file)
        if "include" in part:
            raise ConfigError(
                "include is only allowed in the bundle file; list the files there",
                location=part.location("include"),
            )
        if "bundle" in part and "bundle" in doc:
            raise ConfigError(
                f"bundle is already defined in {doc.location('bundle').file}; keep one",
                location=part.location("bundle"),
            )
        merge_resources(resources, part.get("resources"), part)
        for key, value in part.items():
            if key == "resources":
                continue
            mergeable = key in doc and key in _MERGED_KEYS
            doc[key] = merge(doc[key], value, key) if mergeable else value
            doc.key_files[key] = part.file
            doc.key_lines[key] = part.key_lines.get(key, 0)
    doc["resources"] = resources
    return doc, names
