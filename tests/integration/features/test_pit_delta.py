"""Lookups over real Delta tables: many files, partitions, chunks that cut across files.

The join reads a table twice and identifies rows by their position in the scan; these tests
check that the positions agree over Delta's datasets (several files, partition columns
materialized from the paths), against pandas ``merge_asof`` as the reference.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lakestack.features import FeatureLookup
from lakestack.features.pit import join_features
from lakestack.features.table import TIMESTAMP_KEYS, feature_table_of
from lakestack.lake import Catalog

pytestmark = pytest.mark.integration

START = pd.Timestamp("2024-01-01", tz="UTC")


def feature_rows(rng: np.random.Generator, keys: int, per_key: int) -> pd.DataFrame:
    """Unique (customer_id, ts) rows; region is a function of the key (a partition column)."""
    customer = np.repeat(np.arange(keys), per_key)
    seconds = rng.choice(10_000, size=(keys, per_key), replace=False).ravel()
    return pd.DataFrame(
        {
            "customer_id": customer.astype(np.int64),
            "ts": START + pd.to_timedelta(seconds, unit="s"),
            "region": np.where(customer % 2 == 0, "eu", "us"),
            "spend": rng.standard_normal(customer.size),
            "visits": rng.integers(0, 100, customer.size).astype(np.int32),
        }
    )


def expected(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    merged = pd.merge_asof(
        labels.reset_index().sort_values("when"),
        features.sort_values("ts"),
        left_on="when",
        right_on="ts",
        by="customer_id",
        direction="backward",
    )
    return merged.sort_values("index").reset_index(drop=True)


@pytest.mark.parametrize("partition_by", [[], ["region"]])
def test_lookups_over_many_files_match_merge_asof_however_chunked(
    catalog: Catalog, partition_by: list[str]
) -> None:
    rng = np.random.default_rng(3)
    rows = feature_rows(rng, keys=12, per_key=20).sample(frac=1.0, random_state=1)
    table = catalog.create_table(
        "main.fs.spend",
        data=rows.iloc[:60],
        primary_keys=["customer_id", "ts"],
        partition_by=partition_by,
        properties={TIMESTAMP_KEYS: json.dumps(["ts"])},
    )
    for start in range(60, len(rows), 45):  # one commit, one or more files each
        table.append(rows.iloc[start : start + 45])
    assert len(table.delta().file_uris()) > 4
    labels = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 14, 300),  # keys 12 and 13 have no features
            "when": START + pd.to_timedelta(rng.integers(-100, 10_100, 300), unit="s"),
        }
    )
    lookup = FeatureLookup(
        "main.fs.spend", "customer_id", ["spend", "visits", "region"], timestamp_lookup_key="when"
    ).bind(feature_table_of(table), table.version)
    want = expected(labels, rows)
    matched = want["ts"].notna()

    for chunk_rows in (1, 17, 1_000):
        joined = join_features(
            pa.Table.from_pandas(labels, preserve_index=False),
            [lookup],
            lambda lk: catalog.table(lk.table_name).dataset(version=lk.version),
            chunk_rows=chunk_rows,
        )
        for column in ("spend", "visits", "region"):
            values = want[column].astype(object).where(matched, None)
            assert joined.column(column).to_pylist() == values.tolist(), (column, chunk_rows)
