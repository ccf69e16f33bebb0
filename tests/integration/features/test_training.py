"""Training sets over Delta feature tables: point-in-time values, order, formats, bad lookups."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lakestack.errors import FeatureError, NotFoundError
from lakestack.features import FeatureEngineeringClient, FeatureLookup

from .conftest import utc

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(fe: FeatureEngineeringClient, customer_features: pd.DataFrame) -> None:
    fe.create_table(
        "main.fs.customers",
        primary_keys=["customer_id", "ts"],
        timestamp_keys="ts",
        df=customer_features,
    )
    fe.create_table(
        "main.fs.regions",
        primary_keys="customer_id",
        df=pd.DataFrame({"customer_id": [1, 2], "region": ["eu", "us"], "plan": ["x", "y"]}),
    )


@pytest.fixture
def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [2, 1, 1, 3, 1, 2],
            "event_ts": utc(
                "2024-01-11", "2024-01-04", "2024-01-04", "2024-01-06", "2023-12-31", "2024-01-09"
            ),
            "churned": [1, 0, 0, 1, 0, 1],
        }
    )


def lookups() -> list[FeatureLookup]:
    return [
        FeatureLookup(
            table_name="main.fs.customers",
            lookup_key="customer_id",
            timestamp_lookup_key="event_ts",
            feature_names=["tenure", "plan"],
            lookback_window=timedelta(days=5),
            default_values={"tenure": 0.0},
        ),
        FeatureLookup(
            table_name="main.fs.regions",
            lookup_key=["customer_id"],
            feature_names="region",
        ),
    ]


@pytest.mark.usefixtures("tables")
def test_load_df_is_point_in_time_correct_and_keeps_rows_in_order(
    fe: FeatureEngineeringClient, labels: pd.DataFrame
) -> None:
    training = fe.create_training_set(
        df=labels, feature_lookups=lookups(), label="churned", exclude_columns=["event_ts"]
    )
    df = training.load_df()
    assert list(df.columns) == ["customer_id", "churned", "tenure", "plan", "region"]
    assert df["customer_id"].tolist() == labels["customer_id"].tolist()
    assert df["churned"].tolist() == labels["churned"].tolist()
    # customer 2 on 01-11: its 01-10 row has a null tenure -> the default; on 01-09: 01-03's row
    # is 6 days old, outside the 5-day window -> default and null. Customer 1 on 01-04: the
    # 01-01 row (never the later 01-05 one); on 2023-12-31: nothing yet. Customer 3: unknown.
    assert df["tenure"].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert df["plan"].tolist() == ["pro", "basic", "basic", None, None, None]
    assert df["region"].tolist() == ["us", "eu", "eu", None, "eu", "us"]
    assert training.feature_spec.feature_tables == [
        {"table": "main.fs.customers", "version": 1},
        {"table": "main.fs.regions", "version": 1},
    ]


@pytest.mark.usefixtures("tables")
def test_load_df_formats_and_inputs(fe: FeatureEngineeringClient, labels: pd.DataFrame) -> None:
    expected = fe.create_training_set(labels, lookups(), "churned").load_df(format="arrow")
    from_polars = fe.create_training_set(pl.from_pandas(labels), lookups(), "churned")
    assert isinstance(from_polars.load_df(format="polars"), pl.DataFrame)
    from_arrow = fe.create_training_set(pa.Table.from_pandas(labels), lookups(), "churned")
    assert from_arrow.load_df(format="arrow").equals(expected)
    with pytest.raises(FeatureError, match=r"unknown format 'spark'"):
        from_arrow.load_df(format="spark")


@pytest.mark.usefixtures("tables")
def test_a_training_set_reads_the_versions_it_was_created_at(
    fe: FeatureEngineeringClient, labels: pd.DataFrame
) -> None:
    training = fe.create_training_set(labels, lookups(), "churned")
    before = training.load_df()
    fe.write_table(
        "main.fs.regions", pd.DataFrame({"customer_id": [1], "region": ["apac"], "plan": ["z"]})
    )
    pd.testing.assert_frame_equal(training.load_df(), before)
    assert (
        fe.create_training_set(labels, lookups(), "churned").load_df()["region"].iloc[1] == "apac"
    )


@pytest.mark.usefixtures("tables")
def test_bad_lookups_name_the_table_and_column(
    fe: FeatureEngineeringClient, labels: pd.DataFrame
) -> None:
    with pytest.raises(NotFoundError, match=r"table main.fs.nope does not exist"):
        fe.create_training_set(labels, [FeatureLookup("main.fs.nope", "customer_id")], "churned")
    with pytest.raises(
        FeatureError,
        match=r"no column 'cust', the lookup_key of the lookup of feature table main.fs.regions",
    ):
        fe.create_training_set(labels, [FeatureLookup("main.fs.regions", "cust")], "churned")
    with pytest.raises(
        FeatureError, match=r"no column 'when', the timestamp_lookup_key .* main.fs.customers"
    ):
        fe.create_training_set(
            labels,
            [FeatureLookup("main.fs.customers", "customer_id", timestamp_lookup_key="when")],
            "churned",
        )
    with pytest.raises(FeatureError, match=r"main.fs.customers needs timestamp_lookup_key"):
        fe.create_training_set(
            labels, [FeatureLookup("main.fs.customers", "customer_id")], "churned"
        )
    with pytest.raises(
        FeatureError,
        match=r"lookup_key \['customer_id', 'churned'\] does not match .* \['customer_id'\]",
    ):
        fe.create_training_set(
            labels, [FeatureLookup("main.fs.regions", ["customer_id", "churned"])], "churned"
        )
    with pytest.raises(FeatureError, match=r"main.fs.regions has no feature 'age'"):
        fe.create_training_set(
            labels,
            [FeatureLookup("main.fs.regions", "customer_id", feature_names="age")],
            "churned",
        )
    with pytest.raises(FeatureError, match=r"label column 'target' is not in the DataFrame"):
        fe.create_training_set(labels, lookups(), "target")


@pytest.mark.usefixtures("tables")
def test_colliding_output_names_are_errors_until_renamed(
    fe: FeatureEngineeringClient, labels: pd.DataFrame
) -> None:
    both_plans = [
        FeatureLookup("main.fs.customers", "customer_id", timestamp_lookup_key="event_ts"),
        FeatureLookup("main.fs.regions", "customer_id"),
    ]
    with pytest.raises(
        FeatureError,
        match=r"feature 'plan' of main.fs.regions and a feature of main.fs.customers are both output as 'plan'",
    ):
        fe.create_training_set(labels, both_plans, "churned")
    both_plans[1] = FeatureLookup(
        "main.fs.regions", "customer_id", rename_outputs={"plan": "region_plan"}
    )
    df = fe.create_training_set(labels, both_plans, "churned").load_df()
    assert {"plan", "region_plan"} <= set(df.columns)
    clash = labels.assign(region="?")
    with pytest.raises(FeatureError, match=r"output as 'region', which the DataFrame already has"):
        fe.create_training_set(clash, [FeatureLookup("main.fs.regions", "customer_id")], "churned")
