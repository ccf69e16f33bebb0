"""The taxi features example: files to bronze, feature tables, a point-in-time training set,
a model that looks up its own features, and batch scoring, run twice through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import lakestack

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "taxi_features"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "taxi_features"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".lakestack"))
    return target


def values(run: dict[str, object], task: str) -> dict[str, object]:
    return run["task_values"][task]  # type: ignore[index,no-any-return]


def test_feature_pipeline_twice(project: Path) -> None:
    first = lakestack("bundle", "run", "feature_pipeline", "-t", "ci", "-o", "json", cwd=project)
    assert first.code == 0, first.out + first.err
    run = first.json()
    assert values(run, "ingest") == {"files": 6, "rows": 2400}
    assert values(run, "train")["model_uri"] == "models:/main.taxi.fare_model/1"
    assert values(run, "batch_inference") == {"scored": 400}

    tables = {
        t["name"]: t
        for t in lakestack(
            "tables", "list", "main.taxi", "-t", "ci", "-o", "json", cwd=project
        ).json()
    }
    assert set(tables) == {
        "main.taxi.trips_bronze",
        "main.taxi.trip_pickup_features",
        "main.taxi.trip_dropoff_features",
        "main.taxi.fare_predictions",
    }
    assert tables["main.taxi.trip_pickup_features"]["primary_keys"] == ["zip", "ts"]
    assert tables["main.taxi.trips_bronze"]["primary_keys"] == ["trip_id"]

    # the second run lands six more days: only the new files are ingested, and the merge keeps
    # one feature row per (zip, window end)
    second = lakestack("bundle", "run", "feature_pipeline", "-t", "ci", "-o", "json", cwd=project)
    assert second.code == 0, second.out + second.err
    again = second.json()
    assert values(again, "ingest") == {"files": 6, "rows": 2400}
    assert values(again, "train")["model_uri"] == "models:/main.taxi.fare_model/2"
    counts = lakestack(
        "sql",
        "SELECT (SELECT count(*) FROM main.taxi.trips_bronze) AS trips, "
        "(SELECT count(*) - count(DISTINCT (zip, ts)) FROM main.taxi.trip_pickup_features) AS dup_windows, "
        "(SELECT count(DISTINCT model_id) FROM main.taxi.fare_predictions) AS models",
        "-t",
        "ci",
        "-o",
        "json",
        cwd=project,
    ).json()
    assert counts == [{"trips": 4800, "dup_windows": 0, "models": 2}]

    # the model version records which feature tables, at which Delta versions, trained it
    import mlflow

    store = f"sqlite:///{project / '.lakestack' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version("main.taxi.fare_model", "2")
    lineage = {
        t["table"]: t["version"] for t in json.loads(version.tags["lakestack.feature_tables"])
    }
    assert set(lineage) == {"main.taxi.trip_pickup_features", "main.taxi.trip_dropoff_features"}
    assert all(isinstance(v, int) and v >= 1 for v in lineage.values())
