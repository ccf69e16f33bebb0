"""Specs for Unity Catalog ``schemas`` and ``volumes``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lakestack.bundle.specs.base import Spec, Str
from lakestack.bundle.specs.common import GrantSpec

__all__ = ["SchemaSpec", "VolumeSpec"]


class SchemaSpec(Spec):
    """A schema ``catalog.name`` in the warehouse."""

    name: str
    catalog_name: str
    comment: str | None = None
    properties: dict[str, Str] = Field(default_factory=dict)
    grants: list[GrantSpec] = Field(default_factory=list)
    storage_root: str | None = None

    @property
    def full_name(self) -> str:
        """``catalog.schema``."""
        return f"{self.catalog_name}.{self.name}"


class VolumeSpec(Spec):
    """A volume ``/Volumes/<catalog>/<schema>/<name>``: a folder of files in the warehouse."""

    name: str
    catalog_name: str
    schema_name: str
    comment: str | None = None
    volume_type: Literal["MANAGED", "EXTERNAL"] = "MANAGED"
    storage_location: str | None = None
    grants: list[GrantSpec] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        """``catalog.schema.name``."""
        return f"{self.catalog_name}.{self.schema_name}.{self.name}"
