"""A model logged with a feature spec is scored through score_batch: its features are looked up."""

from __future__ import annotations

from datetime import datetime, timezone

import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from lakestack.errors import InferenceError
from lakestack.features import FeatureEngineeringClient, FeatureLookup
from lakestack.inference import score_table
from lakestack.lake import Catalog
from lakestack.registry import ModelRegistry, Tracking

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

MODEL = "main.ml.churn"


def utc(*stamps: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), utc=True))


@pytest.fixture
def churn(catalog: Catalog, tracking: Tracking, request: pytest.FixtureRequest) -> dict:
    """``main.s.customers`` features over time, a classifier that looks ``tenure`` up."""
    catalog.create_schema("main.ml")
    fe = FeatureEngineeringClient(catalog, tracking_uri=tracking.tracking_uri)
    fe.create_table(
        "main.s.customers",
        primary_keys=["customer_id", "ts"],
        timestamp_keys="ts",
        df=pd.DataFrame(
            {
                "customer_id": [1, 1, 2, 2, 3],
                "ts": utc("2024-01-01", "2024-02-01", "2024-01-01", "2024-02-01", "2024-01-01"),
                "tenure": [1.0, 2.0, 10.0, 11.0, 5.0],
            }
        ),
    )
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 3],
            "event_ts": utc(
                "2024-01-02", "2024-02-02", "2024-01-02", "2024-02-02", "2024-01-02", "2024-02-02"
            ),
            "churned": [1, 1, 0, 0, 1, 0],
        }
    )
    lookup = FeatureLookup("main.s.customers", "customer_id", timestamp_lookup_key="event_ts")
    training = fe.create_training_set(labels, [lookup], label="churned", exclude_columns="event_ts")
    df = training.load_df()
    model = LogisticRegression().fit(df[["customer_id", "tenure"]], df["churned"])
    name = f"{MODEL}_{request.node.name[-10:]}"
    logged = fe.log_model(
        model,
        artifact_path="model",
        flavor=mlflow.sklearn,
        training_set=training,
        registered_model_name=name,
        pip_requirements=["scikit-learn"],
    )
    ModelRegistry(tracking).set_alias(name, "champion", logged.registered_model_version)
    return {"fe": fe, "model": model, "name": name}


def test_a_feature_store_model_looks_its_features_up(
    catalog: Catalog, tracking: Tracking, churn: dict
) -> None:
    rows = pd.DataFrame(
        {
            "customer_id": [2, 1, 3, 1],
            "event_ts": utc("2024-01-15", "2024-02-15", "2024-03-01", "2024-01-15"),
            "row": [0, 1, 2, 3],
        }
    )
    catalog.create_table("main.s.to_score", rows)
    when = datetime(2024, 4, 1, tzinfo=timezone.utc)
    result = score_table(
        f"models:/{churn['name']}@champion",
        "main.s.to_score",
        "main.s.churn_inferences",
        catalog=catalog,
        tracking=tracking,
        timestamp=when,
    )

    assert (result.rows, result.model_version, result.model_id) == (4, 1, f"{churn['name']}/1")
    out = catalog.table("main.s.churn_inferences").read().sort_by("row")
    assert out.column_names == [
        "customer_id",
        "event_ts",
        "row",
        "tenure",  # looked up, kept as on Databricks
        "prediction",
        "model_id",
        "timestamp",
    ]
    assert out.column("tenure").to_pylist() == [10.0, 2.0, 5.0, 1.0]  # as of each event_ts
    features = out.select(["customer_id", "tenure"]).to_pandas()
    np.testing.assert_array_equal(
        out.column("prediction").to_numpy(), churn["model"].predict(features).astype(float)
    )
    direct = churn["fe"].score_batch(f"models:/{churn['name']}/1", rows)
    np.testing.assert_array_equal(
        out.column("prediction").to_numpy(), direct.sort_values("row")["prediction"].to_numpy()
    )
    assert out.column("timestamp").unique().to_pylist() == [when]


def test_a_feature_store_model_streams_and_gives_probabilities(
    catalog: Catalog, tracking: Tracking, churn: dict
) -> None:
    n = 1_000
    rows = pa.table(
        {
            "customer_id": pa.array(np.arange(n) % 3 + 1, pa.int64()),
            "event_ts": pa.array(pd.date_range("2024-01-02", periods=n, freq="1h", tz="UTC")),
            "row": pa.array(np.arange(n)),
        }
    )
    catalog.create_table("main.s.to_score", rows)
    uri = f"models:/{churn['name']}/1"
    common = {"catalog": catalog, "tracking": tracking}
    score_table(uri, "main.s.to_score", "main.s.whole", probabilities=True, **common)
    score_table(uri, "main.s.to_score", "main.s.small", probabilities=True, batch_rows=64, **common)

    whole = catalog.table("main.s.whole").read().sort_by("row")
    small = catalog.table("main.s.small").read().sort_by("row")
    assert small.drop_columns(["timestamp"]).equals(whole.drop_columns(["timestamp"]))
    features = whole.select(["customer_id", "tenure"]).to_pandas()
    got = [[p for _, p in row] for row in whole.column("probability").to_pylist()]
    np.testing.assert_allclose(got, churn["model"].predict_proba(features))


def test_a_lookup_key_missing_from_the_input(
    catalog: Catalog, tracking: Tracking, churn: dict
) -> None:
    catalog.create_table("main.s.no_ts", pd.DataFrame({"customer_id": [1, 2]}))
    with pytest.raises(
        InferenceError,
        match=rf"^cannot score table main.s.no_ts with models:/{churn['name']}/1: .*no column "
        r"'event_ts', the timestamp_lookup_key of the lookup of feature table main.s.customers",
    ):
        score_table(
            f"models:/{churn['name']}@champion",
            "main.s.no_ts",
            "main.s.churn_inferences",
            catalog=catalog,
            tracking=tracking,
        )
    assert not catalog.table_exists("main.s.churn_inferences")
