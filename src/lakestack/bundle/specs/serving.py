"""Specs for ``model_serving_endpoints``: served entities by version or alias, routes, capture."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from lakestack.bundle.specs.base import Spec, Str, ignored
from lakestack.bundle.specs.common import PermissionSpec

__all__ = [
    "AutoCaptureConfigSpec",
    "EndpointConfigSpec",
    "ModelServingEndpointSpec",
    "RouteSpec",
    "ServedEntitySpec",
    "ServedModelSpec",
    "TrafficConfigSpec",
]


class ServedEntitySpec(Spec):
    """A model served by an endpoint: a version, or an alias (a lakestack extension)."""

    name: str | None = None
    entity_name: str
    entity_version: Str | None = None
    entity_version_alias: str | None = Field(
        default=None, validation_alias=AliasChoices("entity_version_alias", "alias")
    )
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    environment_vars: dict[str, Str] = Field(default_factory=dict)
    min_provisioned_throughput: Any = ignored("provisioned throughput")
    max_provisioned_throughput: Any = ignored("provisioned throughput")
    instance_profile_arn: Any = ignored("cloud instance profiles")

    @model_validator(mode="after")
    def _version_or_alias(self) -> ServedEntitySpec:
        if (self.entity_version is None) == (self.entity_version_alias is None):
            raise ValueError(
                f"served entity '{self.entity_name}' needs exactly one of entity_version or "
                "entity_version_alias"
            )
        return self

    @property
    def served_name(self) -> str:
        """The name routes refer to: ``name``, else ``<model>-<version or alias>``."""
        if self.name:
            return self.name
        short = self.entity_name.rsplit(".", 1)[-1]
        return f"{short}-{self.entity_version or self.entity_version_alias}"


class ServedModelSpec(Spec):
    """A served model of the legacy ``served_models`` list."""

    name: str | None = None
    model_name: str
    model_version: Str
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    environment_vars: dict[str, Str] = Field(default_factory=dict)
    instance_profile_arn: Any = ignored("cloud instance profiles")

    @property
    def served_name(self) -> str:
        """The name routes refer to: ``name``, else ``<model>-<version>``."""
        return self.name or f"{self.model_name.rsplit('.', 1)[-1]}-{self.model_version}"


class RouteSpec(Spec):
    """A share of the traffic for one served entity."""

    served_model_name: str | None = None
    served_entity_name: str | None = None
    traffic_percentage: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _one_name(self) -> RouteSpec:
        if (self.served_model_name is None) == (self.served_entity_name is None):
            raise ValueError("a route needs exactly one of served_model_name, served_entity_name")
        return self

    @property
    def target(self) -> str:
        """The served entity this route sends traffic to."""
        return self.served_entity_name or self.served_model_name or ""


class TrafficConfigSpec(Spec):
    """Weighted routes; the percentages sum to 100."""

    routes: list[RouteSpec] = Field(default_factory=list)


class AutoCaptureConfigSpec(Spec):
    """The inference table: ``<catalog>.<schema>.<prefix>_payload``."""

    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None
    enabled: bool = True


class EndpointConfigSpec(Spec):
    """What an endpoint serves and how traffic is split."""

    served_entities: list[ServedEntitySpec] = Field(default_factory=list)
    served_models: list[ServedModelSpec] = Field(default_factory=list)
    traffic_config: TrafficConfigSpec | None = None
    auto_capture_config: AutoCaptureConfigSpec | None = None

    @property
    def served_names(self) -> list[str]:
        """The names of every served entity and served model."""
        return [e.served_name for e in self.served_entities] + [
            m.served_name for m in self.served_models
        ]

    @model_validator(mode="after")
    def _routes(self) -> EndpointConfigSpec:
        if not self.served_entities and not self.served_models:
            raise ValueError("an endpoint needs served_entities (or the legacy served_models)")
        names = self.served_names
        if len(set(names)) != len(names):
            raise ValueError(f"served entity names must be unique, got {', '.join(names)}")
        if self.traffic_config and self.traffic_config.routes:
            for route in self.traffic_config.routes:
                if route.target not in names:
                    raise ValueError(
                        f"route to '{route.target}' names no served entity "
                        f"(served: {', '.join(names)})"
                    )
            total = sum(r.traffic_percentage for r in self.traffic_config.routes)
            if total != 100:
                raise ValueError(f"traffic_config percentages sum to {total}, not 100")
        elif len(names) > 1:
            raise ValueError("an endpoint with several served entities needs traffic_config.routes")
        return self


class ModelServingEndpointSpec(Spec):
    """A serving endpoint (``lakestack serve``)."""

    name: str
    config: EndpointConfigSpec
    ai_gateway: Any = None
    rate_limits: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[dict[str, Any]] | dict[str, Str] = Field(default_factory=dict)
    permissions: list[PermissionSpec] = Field(default_factory=list)
    route_optimized: bool = False
    budget_policy_id: Any = ignored("budget policies")
