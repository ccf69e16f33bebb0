"""The bundle's ``experiments`` and ``registered_models``: created by ``bundle deploy``, deleted by
``bundle destroy``.

Deploy creates what is missing and updates descriptions and tags of what exists; aliases listed
in the bundle are not forced (they belong to the deployment flow, not to the configuration).
What deploy created carries the ``lakestack.managed_by = <bundle>/<target>`` tag, and destroy
deletes only what carries it: a model registered by a training run before the first deploy, or
shared with another target, is kept with its versions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakestack.bundle import Bundle
from lakestack.errors import RegistryError
from lakestack.registry.client import MANAGED_BY_TAG, ModelRegistry

__all__ = [
    "APPROVERS_TAG",
    "DESCRIPTION_TAG",
    "RegistryChanges",
    "deploy_registry",
    "destroy_registry",
    "has_registry_resources",
    "owner_of",
    "promoted_name",
]

DESCRIPTION_TAG = "mlflow.note.content"  # where MLflow keeps an experiment's description


@dataclass
class RegistryChanges:
    """What deploy or destroy did to the bundle's experiments and registered models.

    Attributes:
        done: Created (deploy) or deleted (destroy), ``<kind> <name>`` each.
        updated: Names that existed and were updated (deploy).
        kept: Names destroy left because this bundle target did not create them.
    """

    done: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


APPROVERS_TAG = "lakestack.approvers"
"""The users who may approve the model's versions (JSON list; empty: anyone), set by deploy."""


def owner_of(bundle: Bundle) -> str:
    """The ``lakestack.managed_by`` value of what this bundle target creates."""
    return f"{bundle.name}/{bundle.target}"


def has_registry_resources(bundle: Bundle) -> bool:
    """Whether the bundle defines experiments or registered models (else MLflow is untouched)."""
    return bool(bundle.resources.experiments or bundle.resources.registered_models)


def deploy_registry(registry: ModelRegistry, bundle: Bundle) -> RegistryChanges:
    """Create or update the bundle's experiments and registered models."""
    changes = RegistryChanges()
    owner = {MANAGED_BY_TAG: owner_of(bundle)}
    for exp in bundle.resources.experiments.values():
        tags = _tags(exp.tags)
        if exp.description:
            tags[DESCRIPTION_TAG] = exp.description
        existed = registry.get_experiment_tags(exp.name) is not None
        registry.create_experiment(
            exp.name,
            artifact_location=exp.artifact_location,
            tags=tags if existed else {**tags, **owner},
        )
        (changes.updated if existed else changes.done).append(f"experiment {exp.name}")
    for spec in bundle.resources.registered_models.values():
        name = spec.full_name
        existed = registry.has_model(name)
        # who may approve is what was deployed, not what a local copy of the bundle says
        tags = {**_tags(spec.tags), APPROVERS_TAG: json.dumps(sorted(spec.approvers))}
        registry.create_model(
            name,
            description=spec.description or spec.comment,
            tags=tags if existed else {**tags, **owner},
        )
        (changes.updated if existed else changes.done).append(f"registered model {name}")
    return changes


def destroy_registry(registry: ModelRegistry, bundle: Bundle) -> RegistryChanges:
    """Delete the bundle's experiments and registered models that this target created."""
    changes = RegistryChanges()
    owner = owner_of(bundle)
    for exp in bundle.resources.experiments.values():
        tags = registry.get_experiment_tags(exp.name)
        if tags is None:
            continue
        if tags.get(MANAGED_BY_TAG) == owner:
            registry.delete_experiment(exp.name)
            changes.done.append(f"experiment {exp.name}")
        else:
            changes.kept.append(f"experiment {exp.name}")
    for spec in bundle.resources.registered_models.values():
        name = spec.full_name
        if not registry.has_model(name):
            continue
        if registry.get_model(name).tags.get(MANAGED_BY_TAG) == owner:
            registry.delete_model(name)
            changes.done.append(f"registered model {name}")
        else:
            changes.kept.append(f"registered model {name}")
    return changes


def promoted_name(source: Bundle, target: Bundle, name: str) -> str:
    """What model ``name`` of the ``source`` target is called in the ``target`` target.

    The registered-model resource named ``name`` in ``source``, as ``target`` resolves it; else,
    for a three-level name in ``source``'s catalog (variable ``catalog`` or ``catalog_name``),
    the same schema and model in ``target``'s catalog.

    Raises:
        RegistryError: Neither tells; pass the name (``--to-name``).
    """
    for key, spec in source.resources.registered_models.items():
        if spec.full_name == name and key in target.resources.registered_models:
            return target.resources.registered_models[key].full_name
    parts = name.split(".")
    if len(parts) == 3:
        for var in ("catalog", "catalog_name"):
            here, there = source.variables.get(var), target.variables.get(var)
            if here and there and parts[0] == str(here):
                return ".".join([str(there), *parts[1:]])
    raise RegistryError(
        f"cannot tell what model {name} is called in target {target.target}: no "
        f"registered_models resource is named {name} in target {source.target} and its catalog "
        "is not the catalog variable; give the name with --to-name"
    )


def _tags(tags: Mapping[str, Any] | list[dict[str, Any]]) -> dict[str, str]:
    """Tags as a mapping, from the bundle's ``{key: value}`` or Databricks' ``[{key, value}]``."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["key"]): str(t.get("value", "")) for t in tags if "key" in t}
