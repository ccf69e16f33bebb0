"""HistGradientBoosting predictions through leaf masks or binned features equal the model's own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from lakestack.inference.trees import binned_copy, masked_copy, verified

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::UserWarning")]


def data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    x["d"] = rng.integers(0, 5, n).astype(float)  # few distinct values: thresholds between them
    x.loc[rng.random(n) < 0.05, "b"] = np.nan
    y = x["a"] + x["c"] * x["d"] + np.nan_to_num(x["b"].to_numpy())
    return x, y.to_numpy()


def hard_rows(model: object, x: pd.DataFrame) -> pd.DataFrame:
    """Rows that sit exactly on every bin edge, just beside it, at infinities and NaN."""
    edges = model._bin_mapper.bin_thresholds_  # type: ignore[attr-defined]
    rows = []
    for column, thresholds in zip(x.columns, edges, strict=True):
        for value in [*thresholds, *np.nextafter(thresholds, np.inf), np.inf, -np.inf, np.nan]:
            row = x.iloc[0].copy()
            row[column] = value
            rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


@pytest.mark.parametrize("make", [masked_copy, binned_copy], ids=["masks", "binned"])
@pytest.mark.parametrize(
    "model",
    [
        HistGradientBoostingRegressor(max_iter=30, random_state=0),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),  # three classes
    ],
    ids=["regressor", "binary", "multiclass"],
)
def test_fast_predictions_equal_the_models(
    make: Any, model: object, request: pytest.FixtureRequest
) -> None:
    x, y = data(3_000, seed=0)
    if "binary" in request.node.name:
        y = (y > 0).astype(int)
    elif "multiclass" in request.node.name:
        y = np.digitize(y, [-1.0, 1.0])
    model.fit(x, y)  # type: ignore[attr-defined]
    fast = make(model)
    assert fast is not None
    new, _ = data(5_000, seed=1)
    for rows in (new, hard_rows(model, x)):
        np.testing.assert_array_equal(fast.predict(rows), model.predict(rows))  # type: ignore[attr-defined]
        if hasattr(model, "predict_proba"):
            np.testing.assert_array_equal(fast.predict_proba(rows), model.predict_proba(rows))
    assert verified(model, new, ("predict",)) is not model


def test_other_models_and_categorical_features_keep_their_own_predict() -> None:
    x, y = data(500, seed=0)
    linear = LogisticRegression().fit(x.fillna(0), y > 0)
    assert binned_copy(linear) is None
    assert masked_copy(linear) is None
    assert verified(linear, x.fillna(0)) is linear
    categorical = HistGradientBoostingRegressor(max_iter=5, categorical_features=[3]).fit(x, y)
    assert binned_copy(categorical) is None
    assert masked_copy(categorical) is None


def test_deep_trees_fall_back_to_binned_features() -> None:
    x, y = data(3_000, seed=0)
    model = HistGradientBoostingRegressor(max_iter=3, max_leaf_nodes=100, random_state=0)
    model.fit(x, y)
    assert masked_copy(model) is None  # over 64 leaves: no mask fits
    fast = verified(model, x)
    assert fast is not model and binned_copy(model) is not None
    np.testing.assert_array_equal(fast.predict(x), model.predict(x))


def test_a_copy_that_disagrees_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = data(500, seed=0)
    model = HistGradientBoostingRegressor(max_iter=5).fit(x, y)
    monkeypatch.setattr(
        "lakestack.inference.trees._Masks.raw_predict",
        lambda self, x: np.ones((len(x), 1)),
    )
    binned = verified(model, x)
    assert binned is not model and "_raw_predict" in binned.__dict__
    monkeypatch.setattr(
        "lakestack.inference.trees._binned_raw_predict",
        lambda self, x, n_threads=None: np.zeros((len(x), 1)),
    )
    assert verified(model, x) is model
