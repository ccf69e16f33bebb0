"""Lineage on real Delta tables and a real MLflow store: the tables read and their versions, the
git commit of the working directory, and copies into another registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from lakestack.lake import Catalog
from lakestack.lake.reads import clear_reads, tables_read
from lakestack.registry import ModelRegistry, Tracking, load_model, log_model, tracking_uri_for

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_schema("main.s")
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0]})
    catalog.create_table("main.s.train", frame, primary_keys=["id"])
    catalog.table("main.s.train").append(pd.DataFrame({"id": [4], "x": [4.0]}))
    catalog.create_table("main.s.other", frame)
    clear_reads()
    return catalog


def test_every_read_records_the_table_and_the_version_read(catalog: Catalog) -> None:
    assert tables_read() == {}
    latest = catalog.table("main.s.train").version
    catalog.table("main.s.train").read(version=latest - 1)
    assert tables_read() == {"main.s.train": latest - 1}
    list(catalog.table("main.s.train").batches())
    assert tables_read() == {"main.s.train": latest}
    catalog.sql("SELECT count(*) FROM main.s.other")
    assert tables_read() == {
        "main.s.other": catalog.table("main.s.other").version,
        "main.s.train": latest,
    }
    clear_reads()
    assert tables_read() == {}


def test_writing_a_table_is_not_reading_it(catalog: Catalog) -> None:
    catalog.table("main.s.train").append(pd.DataFrame({"id": [5], "x": [5.0]}))
    catalog.table("main.s.other").overwrite(pd.DataFrame({"id": [9], "x": [9.0]}))
    assert tables_read() == {}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('train')\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "train.py")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    monkeypatch.chdir(root)
    return root


def test_a_logged_model_records_its_run_code_and_input_tables(
    catalog: Catalog, repo: Path, tmp_path: Path
) -> None:
    tracking = Tracking(tracking_uri_for(tmp_path / "mlflow"))
    tracking.activate()
    registry = ModelRegistry(tracking)
    data = catalog.table("main.s.train").to_pandas()
    model = LinearRegression().fit(data[["x"]], data["id"])
    logged = log_model(
        model,
        flavor=mlflow.sklearn,
        name="model",
        registered_model_name="main.s.clf",
        version_tags={
            "lakestack.feature_tables": json.dumps([{"table": "main.f.t", "version": 2}])
        },
    )
    version = registry.get_version("main.s.clf", 1)
    assert version.lineage == {
        "run_id": logged.run_id,
        "code_version": git(repo, "rev-parse", "HEAD"),
        "code_dirty": False,
        "input_tables": {"main.s.train": catalog.table("main.s.train").version},
        "feature_tables": {"main.f.t": 2},
    }
    run = registry.client.get_run(str(logged.run_id))
    assert json.loads(run.data.tags["lakestack.lineage.input_tables"]) == tables_read()
    assert "lakestack.feature_tables" not in run.data.tags

    (repo / "train.py").write_text("print('changed')\n")
    log_model(model, flavor=mlflow.sklearn, name="model", registered_model_name="main.s.clf")
    assert registry.get_version("main.s.clf", 2).lineage["code_dirty"] is True


def test_a_copy_into_another_registry_owns_its_artifacts(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not a git repository: no code version
    source = Tracking(tracking_uri_for(tmp_path / "staging"))
    source.activate()
    x = catalog.table("main.s.train").to_pandas()[["x"]]
    model = LinearRegression().fit(x, 2 * x["x"])
    log_model(model, flavor=mlflow.sklearn, name="model", registered_model_name="staging.s.m")
    staging = ModelRegistry(source)
    staging.set_version_tags("staging.s.m", 1, {"approval": "Approved"})
    prod = ModelRegistry(Tracking(tracking_uri_for(tmp_path / "prod")))

    copy = staging.copy_version("staging.s.m", 1, "prod.s.m", to=prod)

    assert (copy.name, copy.version, copy.approval) == ("prod.s.m", 1, None)
    assert copy.lineage["promoted_from"] == "staging.s.m/1"
    assert copy.lineage["input_tables"] == {"main.s.train": catalog.table("main.s.train").version}
    assert "code_version" not in copy.lineage
    assert str(copy.source).startswith((tmp_path / "prod" / "mlartifacts").as_uri())
    shutil.rmtree(tmp_path / "staging")  # the copy does not need the source store
    Tracking(prod.tracking.tracking_uri).activate()
    loaded = load_model("models:/prod.s.m/1")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
