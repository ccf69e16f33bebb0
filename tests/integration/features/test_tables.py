"""Feature tables: create, get, write (merge and overwrite), read, drop, and bad input."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lakestack.errors import ConstraintError, FeatureError, NotFoundError, SchemaMismatchError
from lakestack.features import FeatureEngineeringClient
from lakestack.lake import Catalog

from .conftest import utc

pytestmark = pytest.mark.integration

NAME = "main.fs.customers"


def create(fe: FeatureEngineeringClient, df: pd.DataFrame) -> None:
    fe.create_table(
        name=NAME,
        primary_keys=["customer_id", "ts"],
        timestamp_keys=["ts"],
        df=df,
        description="customer features",
        tags={"team": "churn"},
    )


def test_create_and_get_a_time_series_feature_table(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    table = fe.get_table(NAME)
    assert table.name == NAME
    assert table.primary_keys == ["customer_id", "ts"]
    assert table.timestamp_keys == ["ts"]
    assert table.description == "customer features"
    assert table.tags == {"team": "churn"}
    assert table.features == ["customer_id", "ts", "tenure", "plan"]
    assert table.path.endswith("main/fs/customers")
    back = fe.read_table(NAME).sort_values(["customer_id", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, customer_features, check_dtype=False)


def test_create_table_again_with_the_same_keys_changes_nothing(
    fe: FeatureEngineeringClient, catalog: Catalog, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    version = catalog.table(NAME).version
    again = fe.create_table(
        NAME, primary_keys=["customer_id", "ts"], timestamp_keys="ts", df=customer_features.head(1)
    )
    assert again.version == version
    assert catalog.table(NAME).version == version
    assert len(fe.read_table(NAME)) == len(customer_features)


def test_create_table_again_with_other_keys_is_an_error(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    with pytest.raises(FeatureError, match=r"main.fs.customers exists with primary keys"):
        fe.create_table(NAME, primary_keys=["customer_id", "ts"], df=customer_features)


def test_timestamp_keys_must_be_primary_keys_of_a_time_type(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    with pytest.raises(
        FeatureError,
        match=r"timestamp key 'ts' of feature table main.fs.customers is not in its primary keys",
    ):
        fe.create_table(NAME, primary_keys="customer_id", timestamp_keys="ts", df=customer_features)
    with pytest.raises(
        FeatureError, match=r"timestamp key 'plan' .* must be a timestamp or a date"
    ):
        fe.create_table(
            NAME, primary_keys=["customer_id", "plan"], timestamp_keys="plan", df=customer_features
        )
    assert not fe.catalog.table_exists(NAME)


def test_create_from_a_schema_and_in_a_missing_schema(fe: FeatureEngineeringClient) -> None:
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64())])
    table = fe.create_table("main.fs.empty", primary_keys="id", schema=schema)
    assert table.timestamp_keys == []
    assert fe.read_table("main.fs.empty").empty
    with pytest.raises(NotFoundError, match=r"schema main.nowhere does not exist"):
        fe.create_table("main.nowhere.t", primary_keys="id", schema=schema)


def test_merge_upserts_on_the_primary_key_and_overwrite_replaces(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    update = pd.DataFrame(
        {
            "customer_id": [1, 3],
            "ts": utc("2024-01-05", "2024-01-07"),
            "tenure": [20.0, 7.0],
            "plan": ["pro", "basic"],
        }
    )
    fe.write_table(NAME, pl.from_pandas(update), mode="merge")
    rows = fe.read_table(NAME, format="polars").sort(["customer_id", "ts"])
    assert rows.height == 5
    assert rows.filter(pl.col("customer_id") == 1)["tenure"].to_list() == [1.0, 20.0]
    fe.write_table(NAME, update, mode="overwrite")
    assert sorted(fe.read_table(NAME)["customer_id"]) == [1, 3]


def test_feature_tables_are_written_in_primary_key_order(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    shuffled = customer_features.iloc[[3, 0, 2, 1]]
    create(fe, shuffled)
    first = fe.read_table(NAME)
    assert list(zip(first["customer_id"], first["ts"], strict=True)) == list(
        zip(customer_features["customer_id"], customer_features["ts"], strict=True)
    )
    rows = pd.DataFrame(
        {"customer_id": [9, 5, 9], "ts": utc("2024-02-02", "2024-02-01", "2024-02-01")}
    )
    fe.write_table(NAME, rows.assign(tenure=1.0, plan="pro"), mode="overwrite")
    assert fe.read_table(NAME)[["customer_id", "ts"]].values.tolist() == [
        [5, pd.Timestamp("2024-02-01", tz="UTC")],
        [9, pd.Timestamp("2024-02-01", tz="UTC")],
        [9, pd.Timestamp("2024-02-02", tz="UTC")],
    ]


def test_read_table_as_of_a_past_timestamp(
    fe: FeatureEngineeringClient, catalog: Catalog, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    created_at = catalog.table(NAME).history()[0]["timestamp"]
    fe.write_table(NAME, customer_features.head(1), mode="overwrite")
    assert len(fe.read_table(NAME)) == 1
    assert len(fe.read_table(NAME, as_of_delta_timestamp=created_at)) == len(customer_features)


def test_a_write_that_does_not_fit_names_the_table_and_column_and_commits_nothing(
    fe: FeatureEngineeringClient, catalog: Catalog, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    version = catalog.table(NAME).version
    extra = customer_features.assign(score=1.0)
    with pytest.raises(SchemaMismatchError, match=r"main.fs.customers.*score"):
        fe.write_table(NAME, extra)
    wrong_type = customer_features.assign(tenure=["a", "b", "c", "d"])
    with pytest.raises(SchemaMismatchError, match=r"main.fs.customers.*tenure"):
        fe.write_table(NAME, wrong_type)
    assert catalog.table(NAME).version == version


def test_a_duplicate_primary_key_in_a_merge_source_commits_nothing(
    fe: FeatureEngineeringClient, catalog: Catalog, customer_features: pd.DataFrame
) -> None:
    create(fe, customer_features)
    version = catalog.table(NAME).version
    twice = pd.concat([customer_features.head(1), customer_features.head(1)])
    with pytest.raises(ConstraintError, match=r"main.fs.customers"):
        fe.write_table(NAME, twice, mode="merge")
    assert catalog.table(NAME).version == version


def test_missing_tables_and_bad_modes(
    fe: FeatureEngineeringClient, customer_features: pd.DataFrame
) -> None:
    with pytest.raises(NotFoundError, match=r"table main.fs.nope does not exist"):
        fe.write_table("main.fs.nope", customer_features)
    with pytest.raises(NotFoundError, match=r"table main.fs.nope does not exist"):
        fe.get_table("main.fs.nope")
    create(fe, customer_features)
    with pytest.raises(FeatureError, match=r"mode 'append' is not supported"):
        fe.write_table(NAME, customer_features, mode="append")


def test_drop_table(fe: FeatureEngineeringClient, customer_features: pd.DataFrame) -> None:
    create(fe, customer_features)
    fe.drop_table(NAME)
    assert not fe.catalog.table_exists(NAME)
    with pytest.raises(NotFoundError):
        fe.drop_table(NAME)


def test_a_table_without_primary_key_is_not_a_feature_table(
    fe: FeatureEngineeringClient, catalog: Catalog
) -> None:
    catalog.create_table("main.fs.plain", data=pa.table({"a": [1]}))
    with pytest.raises(FeatureError, match=r"main.fs.plain has no primary key"):
        fe.get_table("main.fs.plain")
