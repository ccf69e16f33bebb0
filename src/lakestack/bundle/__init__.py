"""The bundle layer: YAML files to typed, closed specs for one target.

``load_bundle`` reads a ``lakestack.yml`` (or a Databricks ``databricks.yml``), its includes and
the selected target, substitutes ``${...}``, validates everything and returns a ``Bundle``.
"""

from __future__ import annotations

from lakestack.bundle.loader import load_bundle
from lakestack.bundle.merge import LIST_MERGE_KEYS
from lakestack.bundle.model import Bundle, GitInfo
from lakestack.bundle.specs.jobs import JobSpec, TaskSpec
from lakestack.bundle.specs.resources import ResourcesSpec
from lakestack.bundle.specs.settings import LakestackSettings

__all__ = [
    "LIST_MERGE_KEYS",
    "Bundle",
    "GitInfo",
    "JobSpec",
    "LakestackSettings",
    "ResourcesSpec",
    "TaskSpec",
    "load_bundle",
]
