"""Real MLflow SQLite registries in tmp folders, and versions registered without training."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lakestack.registry import ModelRegistry, Tracking, tracking_uri_for

_names = itertools.count()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """One registry per session: creating a SQLite store costs seconds."""
    return ModelRegistry(Tracking(tracking_uri_for(tmp_path_factory.mktemp("registry"))))


@pytest.fixture
def model(registry: ModelRegistry, tmp_path: Path) -> str:
    """A fresh registered model with versions 1, 2 and 3 (artifacts: an empty folder)."""
    name = f"main.reg.m{next(_names)}"
    registry.create_model(name)
    for _ in range(3):
        add_version(registry, name, tmp_path)
    return name


def add_version(registry: ModelRegistry, name: str, folder: Path) -> int:
    """Register a version of ``name`` whose artifacts are ``folder``."""
    mv = registry.client.create_model_version(name, source=folder.as_uri())
    return int(mv.version)
