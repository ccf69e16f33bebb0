"""A fresh warehouse per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakestack.lake import Catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    warehouse = Catalog(tmp_path / "warehouse")
    warehouse.create_schema("main.sales")
    return warehouse
