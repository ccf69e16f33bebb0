"""What a model version was made from: its training run, its code version, its input tables.

``log_model`` writes these as tags on the run and on the new model version, so that any MLflow
client sees them and a promoted copy carries them along:

- ``lakestack.lineage.run_id``: the run the model was logged in;
- ``lakestack.lineage.code_version``: ``git rev-parse HEAD`` of the working directory's
  repository, when there is one;
- ``lakestack.lineage.code_dirty``: ``true`` when that working tree had uncommitted changes, so
  the commit alone does not reproduce the model;
- ``lakestack.lineage.input_tables``: JSON ``{catalog.schema.table: Delta version}`` of every
  table this process read (``lakestack.lake.reads``).

Feature-store models also carry ``lakestack.feature_tables`` (written by the features layer),
and a promoted copy ``lakestack.promoted_from`` (``<model>/<version>``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CODE_DIRTY_TAG",
    "CODE_VERSION_TAG",
    "FEATURE_TABLES_TAG",
    "INPUT_TABLES_TAG",
    "LINEAGE_PREFIX",
    "PROMOTED_FROM_TAG",
    "RUN_ID_TAG",
    "code_version",
    "lineage_tags",
    "parse_lineage",
]

LINEAGE_PREFIX = "lakestack.lineage."
RUN_ID_TAG = f"{LINEAGE_PREFIX}run_id"
CODE_VERSION_TAG = f"{LINEAGE_PREFIX}code_version"
CODE_DIRTY_TAG = f"{LINEAGE_PREFIX}code_dirty"
INPUT_TABLES_TAG = f"{LINEAGE_PREFIX}input_tables"
FEATURE_TABLES_TAG = "lakestack.feature_tables"  # lakestack.features.LINEAGE_TAG
PROMOTED_FROM_TAG = "lakestack.promoted_from"

_GIT_TIMEOUT = 10.0


def code_version(path: Path | str | None = None) -> tuple[str | None, bool | None]:
    """The git commit of the repository holding ``path`` (default: the working directory) and
    whether its working tree has uncommitted changes; ``(None, None)`` outside a repository or
    without git."""
    where = str(path or Path.cwd())
    commit = _git(where, "rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git(where, "status", "--porcelain")
    return commit, None if status is None else bool(status)


def _git(where: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", where, *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def lineage_tags(run_id: str | None, *, path: Path | str | None = None) -> dict[str, str]:
    """The lineage tags of a model logged now in ``run_id``: the run, the code version of
    ``path`` (default: the working directory) and the tables this process has read."""
    from lakestack.lake.reads import tables_read

    tags: dict[str, str] = {}
    if run_id:
        tags[RUN_ID_TAG] = run_id
    commit, dirty = code_version(path)
    if commit:
        tags[CODE_VERSION_TAG] = commit
        if dirty is not None:
            tags[CODE_DIRTY_TAG] = "true" if dirty else "false"
    tags[INPUT_TABLES_TAG] = json.dumps(tables_read(), sort_keys=True)
    return tags


def parse_lineage(tags: Mapping[str, str], run_id: str | None = None) -> dict[str, Any]:
    """The lineage recorded in a model version's tags, as data.

    Keys present only when recorded: ``run_id`` (the version's own run when no tag says),
    ``code_version``, ``code_dirty`` (bool), ``input_tables`` and ``feature_tables``
    (``{table: version}``), ``promoted_from``.
    """
    out: dict[str, Any] = {}
    run = tags.get(RUN_ID_TAG) or run_id
    if run:
        out["run_id"] = run
    if CODE_VERSION_TAG in tags:
        out["code_version"] = tags[CODE_VERSION_TAG]
    if CODE_DIRTY_TAG in tags:
        out["code_dirty"] = tags[CODE_DIRTY_TAG].strip().lower() == "true"
    for key, tag in (("input_tables", INPUT_TABLES_TAG), ("feature_tables", FEATURE_TABLES_TAG)):
        if tag in tags:
            out[key] = _tables(tags[tag])
    if PROMOTED_FROM_TAG in tags:
        out["promoted_from"] = tags[PROMOTED_FROM_TAG]
    return out


def _tables(text: str) -> dict[str, int]:
    """``{table: version}`` from JSON written as that mapping or as ``[{table, version}]`` (the
    features layer's shape)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if isinstance(data, list):
        data = {item.get("table"): item.get("version") for item in data if isinstance(item, dict)}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if k and _is_int(v)}


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
