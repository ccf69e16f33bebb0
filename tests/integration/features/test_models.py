"""log_model packages the lookups; score_batch looks features up and predicts (real MLflow)."""

from __future__ import annotations

import json

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression

from lakestack.errors import FeatureError, RegistryError
from lakestack.features import (
    FEATURE_SPEC_FILE,
    FeatureEngineeringClient,
    FeatureLookup,
    FeatureSpec,
)
from lakestack.registry import download_model, model_version_tags

from .conftest import utc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture
def trained(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame, request: pytest.FixtureRequest
) -> dict:
    fe.create_table(
        "main.fs.customers",
        primary_keys=["customer_id", "ts"],
        timestamp_keys="ts",
        df=customer_features,
    )
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "event_ts": utc("2024-01-02", "2024-01-06", "2024-01-04", "2024-01-08"),
            "spend": [10.0, 21.0, 29.0, 31.0],
        }
    )
    lookup = FeatureLookup(
        "main.fs.customers",
        "customer_id",
        timestamp_lookup_key="event_ts",
        feature_names=["tenure"],
        rename_outputs={"tenure": "months"},
        default_values={"tenure": 0.0},
    )
    training = fe.create_training_set(labels, [lookup], label="spend", exclude_columns="event_ts")
    df = training.load_df()
    features, y = df[["customer_id", "months"]], df["spend"]
    model = LinearRegression().fit(features, y)
    name = f"main.ml.spend_{request.node.name[-12:]}"
    logged = fe.log_model(
        model,
        artifact_path="model",
        flavor=mlflow.sklearn,
        training_set=training,
        registered_model_name=name,
        pip_requirements=["scikit-learn"],  # skips MLflow's seconds-long requirement inference
    )
    return {"model": model, "name": name, "logged": logged}


def test_log_model_packages_the_spec_and_tags_lineage(
    fe: FeatureEngineeringClient, trained: dict
) -> None:
    logged, name = trained["logged"], trained["name"]
    assert logged.registered_model_version == 1
    path = download_model(f"models:/{name}/1")
    spec = FeatureSpec.from_yaml((path / FEATURE_SPEC_FILE).read_text())
    assert spec.model_input_columns == ["customer_id", "months"]
    assert spec.label == ["spend"] and spec.exclude_columns == ["event_ts"]
    assert spec.lookups[0].rename_outputs == {"tenure": "months"}
    assert spec.lookups[0].default_values == {"months": 0.0}
    lineage = [{"table": "main.fs.customers", "version": 1}]
    assert json.loads(model_version_tags(name, 1)["lakestack.feature_tables"]) == lineage
    run = mlflow.get_run(logged.run_id)
    assert json.loads(run.data.tags["lakestack.feature_tables"]) == lineage


def test_score_batch_looks_features_up_point_in_time_and_predicts(
    fe: FeatureEngineeringClient, trained: dict
) -> None:
    name, model = trained["name"], trained["model"]
    rows = pd.DataFrame(
        {
            "customer_id": [2, 1, 9],
            "event_ts": utc("2024-01-11", "2024-01-05", "2024-01-05"),
            "note": ["a", "b", "c"],
        }
    )
    scored = fe.score_batch(f"models:/{name}/1", rows)
    assert list(scored.columns) == ["customer_id", "event_ts", "note", "months", "prediction"]
    assert scored["months"].tolist() == [0.0, 2.0, 0.0]
    expected = model.predict(scored[["customer_id", "months"]])
    np.testing.assert_allclose(scored["prediction"].to_numpy(), expected)
    assert scored["prediction"].dtype == np.float64

    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    by_alias = fe.score_batch(f"models:/{name}@champion", pa.Table.from_pandas(rows))
    assert isinstance(by_alias, pa.Table)
    np.testing.assert_allclose(by_alias.column("prediction").to_numpy(), expected)
    by_run = fe.score_batch(f"runs:/{trained['logged'].run_id}/model", rows, result_type="float")
    assert by_run["prediction"].dtype == np.float32


def test_score_batch_uses_features_the_input_already_has(
    fe: FeatureEngineeringClient, trained: dict
) -> None:
    rows = pd.DataFrame({"customer_id": [1], "event_ts": utc("2024-01-05"), "months": [100.0]})
    scored = fe.score_batch(f"models:/{trained['name']}/1", rows)
    assert scored["months"].tolist() == [100.0]
    assert scored["prediction"].tolist() == pytest.approx(
        trained["model"].predict(rows[["customer_id", "months"]]).tolist()
    )


def test_score_batch_streams_a_reader_and_reads_a_table_name(
    fe: FeatureEngineeringClient, trained: dict
) -> None:
    n = 2_500
    rows = pa.table(
        {
            "customer_id": pa.array(np.arange(n) % 3, pa.int64()),
            "event_ts": pa.array(pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")),
        }
    )
    whole = fe.score_batch(f"models:/{trained['name']}/1", rows)
    reader = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=300))
    streamed = fe.score_batch(f"models:/{trained['name']}/1", reader, chunk_rows=700)
    assert isinstance(streamed, pa.RecordBatchReader)
    assert streamed.read_all().equals(whole)
    fe.catalog.create_table("main.fs.to_score", data=rows)
    from_table = fe.score_batch(f"models:/{trained['name']}/1", "main.fs.to_score")
    np.testing.assert_allclose(
        from_table["prediction"].to_numpy(), whole.column("prediction").to_numpy()
    )


def test_score_batch_bad_input(fe: FeatureEngineeringClient, trained: dict) -> None:
    uri = f"models:/{trained['name']}/1"
    with pytest.raises(
        FeatureError,
        match=r"no column 'event_ts', the timestamp_lookup_key of the lookup of feature table main.fs.customers",
    ):
        fe.score_batch(uri, pd.DataFrame({"customer_id": [1]}))
    with pytest.raises(
        FeatureError,
        match=r"no column 'customer_id', the lookup_key of the lookup of feature table main.fs.customers",
    ):
        fe.score_batch(uri, pd.DataFrame({"event_ts": utc("2024-01-01")}))
    with pytest.raises(FeatureError, match=r"has a column 'prediction'"):
        fe.score_batch(
            uri,
            pd.DataFrame({"customer_id": [1], "event_ts": utc("2024-01-01"), "prediction": [1]}),
        )
    with pytest.raises(FeatureError, match=r"result_type 'decimal' is not supported"):
        fe.score_batch(
            uri,
            pd.DataFrame({"customer_id": [1], "event_ts": utc("2024-01-01")}),
            result_type="decimal",
        )
    with pytest.raises(RegistryError, match=r"main.ml.nope"):
        fe.score_batch("models:/main.ml.nope/1", pd.DataFrame({"customer_id": [1]}))


def test_a_model_logged_without_the_feature_client_cannot_be_scored(
    fe: FeatureEngineeringClient, trained: dict
) -> None:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            trained["model"], name="plain", serialization_format="cloudpickle", pip_requirements=[]
        )
    with pytest.raises(FeatureError, match=r"has no feature_spec.yaml"):
        fe.score_batch(info.model_uri, pd.DataFrame({"customer_id": [1]}))
