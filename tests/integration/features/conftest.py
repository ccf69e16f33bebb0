"""A fresh warehouse per test; one MLflow store per session (creating one costs seconds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lakestack.features import FeatureEngineeringClient
from lakestack.lake import Catalog
from lakestack.registry import tracking_uri_for


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tracking_uri_for(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    warehouse = Catalog(tmp_path / "warehouse")
    warehouse.create_schema("main.fs")
    return warehouse


@pytest.fixture
def fe(catalog: Catalog, tracking_uri: str) -> FeatureEngineeringClient:
    return FeatureEngineeringClient(catalog, tracking_uri=tracking_uri)


def utc(*stamps: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), utc=True))


@pytest.fixture
def customer_features() -> pd.DataFrame:
    """Two customers' features over time; customer 2's last row has a null feature."""
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": utc("2024-01-01", "2024-01-05", "2024-01-03", "2024-01-10"),
            "tenure": [1.0, 2.0, 3.0, None],
            "plan": ["basic", "pro", "basic", "pro"],
        }
    )
