"""Feast objects of the point-in-time benchmark: one entity, one feature view per Parquet file.

``BENCH_FEAST_DATA`` names the folder of the generated files; every ``<view>.parquet`` there
except the label and scoring inputs becomes a feature view named after the file, whose features
are its columns other than ``entity_id`` and ``event_timestamp``. ``ttl=0`` means no time limit,
the semantics of a Databricks point-in-time lookup without ``lookback_window``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Float64

DATA = Path(os.environ["BENCH_FEAST_DATA"])
VIEWS = [v for v in os.environ.get("BENCH_FEAST_VIEWS", "f1,f2").split(",") if v]
KEYS = ("entity_id", "event_timestamp")

entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)


def feature_view(name: str) -> FeatureView:
    """A feature view over ``<DATA>/<name>.parquet``, without a TTL."""
    path = DATA / f"{name}.parquet"
    schema = pq.read_schema(path)
    fields = [
        Field(name=col.name, dtype=Float32 if str(col.type) == "float" else Float64)
        for col in schema
        if col.name not in KEYS
    ]
    source = FileSource(name=f"{name}_source", path=str(path), timestamp_field="event_timestamp")
    return FeatureView(
        name=name, entities=[entity], ttl=timedelta(0), schema=fields, source=source, online=False
    )


OBJECTS = [entity, *(feature_view(name) for name in VIEWS)]
