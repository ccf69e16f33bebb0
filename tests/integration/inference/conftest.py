"""A fresh warehouse per test; one MLflow store and one registered classifier per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lakestack.lake import Catalog
from lakestack.registry import ModelRegistry, Tracking, log_model, tracking_uri_for

FEATURES = ["sepal_length", "sepal_width", "petal_length"]


def flowers(n: int, seed: int = 0) -> pd.DataFrame:
    """``id``, three float features and a 0/1/2 ``species`` that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    species = (frame["sepal_length"] > 0).astype(int) + (frame["petal_length"] > 0.5).astype(int)
    return frame.assign(species=species.to_numpy(), id=np.arange(n, dtype=np.int64))


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Tracking:
    store = Tracking(tracking_uri_for(tmp_path_factory.mktemp("mlflow")))
    store.activate()
    return store


@pytest.fixture(scope="session")
def classifier(tracking: Tracking) -> dict[str, Any]:
    """``main.ml.iris``: version 1 and a better version 2, ``champion`` on version 1."""
    tracking.activate()
    train = flowers(600, seed=1)
    name = "main.ml.iris"
    models = []
    for c in (0.01, 1.0):
        model = LogisticRegression(C=c, max_iter=500).fit(train[FEATURES], train["species"])
        log_model(
            model,
            flavor=mlflow.sklearn,
            name="model",
            registered_model_name=name,
            pip_requirements=["scikit-learn"],  # skips MLflow's requirement inference
        )
        models.append(model)
    ModelRegistry(tracking).set_alias(name, "champion", 1)
    return {"name": name, "v1": models[0], "v2": models[1]}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    warehouse = Catalog(tmp_path / "warehouse")
    warehouse.create_schema("main.s")
    return warehouse


@pytest.fixture
def input_table(catalog: Catalog) -> str:
    """``main.s.flowers``: 1,000 rows to score."""
    catalog.create_table("main.s.flowers", flowers(1_000, seed=2))
    return "main.s.flowers"
