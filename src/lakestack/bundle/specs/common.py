"""Small specs shared by several resource types: grants (Unity Catalog) and permissions (ACLs)."""

from __future__ import annotations

from pydantic import model_validator

from lakestack.bundle.specs.base import Spec

__all__ = ["GrantSpec", "PermissionSpec"]


class GrantSpec(Spec):
    """A Unity Catalog grant: ``privileges`` given to ``principal``."""

    principal: str
    privileges: list[str]


class PermissionSpec(Spec):
    """A workspace ACL entry: a level for exactly one user, group or service principal."""

    level: str
    user_name: str | None = None
    group_name: str | None = None
    service_principal_name: str | None = None

    @model_validator(mode="after")
    def _one_principal(self) -> PermissionSpec:
        given = [
            n
            for n in ("user_name", "group_name", "service_principal_name")
            if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a permission needs exactly one of user_name, group_name, service_principal_name"
            )
        return self
