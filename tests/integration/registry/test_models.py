"""The registry layer on a real SQLite MLflow store: store creation, logging, loading."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from lakestack.errors import RegistryError
from lakestack.registry import (
    Tracking,
    download_model,
    load_model,
    log_model,
    model_version_tags,
    tracking_uri_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    Tracking(tracking_uri_for(root)).activate()
    return root


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    return x, 3 * x["a"] - x["b"]


def test_the_store_keeps_artifacts_in_the_workspace(root: Path) -> None:
    assert (root / "mlflow.db").exists()
    default = mlflow.get_experiment("0")
    assert default.artifact_location == (root / "mlartifacts" / "0").as_uri()


def test_a_tree_model_is_logged_with_extra_files_and_loaded_natively(
    root: Path, frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = frame
    model = HistGradientBoostingRegressor(max_iter=5).fit(x, y)
    seen: list[Any] = []

    def files_for(names: list[str] | None) -> dict[str, str]:
        seen.append(names)
        return {"extra.txt": "hello"}

    logged = log_model(
        model,
        flavor=mlflow.sklearn,
        name="model",
        files_for=files_for,
        registered_model_name="main.ml.trees",
        version_tags={"k": "v"},
        input_example=x.head(3),
        pip_requirements=["scikit-learn"],
    )
    assert seen == [["a", "b"]]
    assert logged.registered_model_version == 1
    tags = model_version_tags("main.ml.trees", 1)
    assert tags["k"] == "v"
    assert tags["lakestack.lineage.run_id"] == logged.run_id
    assert mlflow.active_run() is None  # the run it started is ended
    path = download_model("models:/main.ml.trees/1")
    assert (path / "extra.txt").read_text() == "hello"
    assert str(path).startswith(str(root / "mlartifacts")) or path.exists()
    loaded = load_model("models:/main.ml.trees/1")
    assert loaded.flavor == "sklearn"
    assert loaded.input_columns == ["a", "b"]
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))


def test_a_model_is_logged_in_the_active_run(
    frame: tuple[pd.DataFrame, pd.Series], root: Path
) -> None:
    x, y = frame
    model = HistGradientBoostingRegressor(max_iter=3).fit(x, y)
    with mlflow.start_run() as run:
        logged = log_model(model, flavor=mlflow.sklearn, name="m", pip_requirements=[])
        assert mlflow.active_run() is not None
    assert logged.run_id == run.info.run_id
    assert load_model(f"runs:/{run.info.run_id}/m").flavor == "sklearn"


def doubler() -> Any:
    """A pyfunc model (importing mlflow.pyfunc warns about its own type hints)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["a"] * 2

    return Doubler()


def test_other_flavors_load_as_pyfunc(root: Path, frame: tuple[pd.DataFrame, pd.Series]) -> None:
    x, _ = frame
    import mlflow.pyfunc

    logged = log_model(
        doubler(),
        flavor=mlflow.pyfunc,
        name="doubler",
        input_example=x.head(2),
        pip_requirements=[],
    )
    loaded = load_model(logged.model_uri)
    assert loaded.flavor == "python_function"
    assert loaded.input_columns == ["a", "b"]
    np.testing.assert_allclose(np.asarray(loaded.predict(x)), x["a"] * 2)


def test_errors_name_what_is_wrong(root: Path) -> None:
    with pytest.raises(RegistryError, match=r"loading model models:/main.ml.missing/1 failed"):
        download_model("models:/main.ml.missing/1")
    with pytest.raises(RegistryError, match=r"not an MLflow flavor module"):
        log_model(object(), flavor=np, name="x")
    with pytest.raises(RegistryError, match=r"has no MLmodel file"):
        load_model(str(root), path=root)
