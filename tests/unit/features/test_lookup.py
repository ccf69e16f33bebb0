"""FeatureLookup checked against its table, and the feature spec's round trip."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lakestack.errors import FeatureError
from lakestack.features import FeatureLookup, FeatureSpec
from lakestack.features.spec import LookupSpec
from lakestack.features.table import FeatureTable

SERIES = FeatureTable("main.fs.series", ["id", "ts"], ["ts"], None, {}, ["id", "ts", "x", "y"])
STATIC = FeatureTable("main.fs.static", ["a", "b"], [], None, {}, ["a", "b", "v"])


def test_binding_resolves_features_renames_and_defaults() -> None:
    bound = FeatureLookup(
        "main.fs.series",
        "cid",
        timestamp_lookup_key="when",
        rename_outputs={"x": "x_out"},
        default_values={"x": 1.0, "y": 2},
        lookback_window=timedelta(hours=1),
    ).bind(SERIES, 4)
    assert bound.table_keys == ["id"] and bound.table_timestamp_key == "ts"
    assert bound.feature_names == ["x", "y"]
    assert bound.output_names == ["x_out", "y"]
    assert bound.default_values == {"x_out": 1.0, "y": 2}
    assert bound.input_columns == ["cid", "when"]
    assert bound.version == 4


def test_an_exact_lookup_on_every_key_of_a_time_series_table() -> None:
    bound = FeatureLookup("main.fs.series", ["cid", "day"]).bind(SERIES, 0)
    assert bound.table_keys == ["id", "ts"] and bound.timestamp_lookup_key is None


@pytest.mark.parametrize(
    ("lookup", "table", "message"),
    [
        (
            FeatureLookup("main.fs.static", "a"),
            STATIC,
            r"lookup_key \['a'\] does not match the table's primary key \['a', 'b'\]",
        ),
        (
            FeatureLookup("main.fs.static", ["a", "b"], timestamp_lookup_key="t"),
            STATIC,
            r"the table has no timestamp key",
        ),
        (FeatureLookup("main.fs.series", "id"), SERIES, r"needs timestamp_lookup_key"),
        (
            FeatureLookup("main.fs.static", ["a", "b"], feature_names="w"),
            STATIC,
            r"main.fs.static has no feature 'w'",
        ),
        (
            FeatureLookup("main.fs.static", ["a", "b"], rename_outputs={"w": "z"}),
            STATIC,
            r"rename_outputs names 'w'",
        ),
        (
            FeatureLookup("main.fs.static", ["a", "b"], default_values={"w": 0}),
            STATIC,
            r"default_values names 'w'",
        ),
    ],
)
def test_bad_lookups_are_refused_before_reading_data(
    lookup: FeatureLookup, table: FeatureTable, message: str
) -> None:
    with pytest.raises(FeatureError, match=message):
        lookup.bind(table, 0)


def test_lookup_arguments_are_checked_when_made() -> None:
    with pytest.raises(FeatureError, match=r"lookup_key is empty"):
        FeatureLookup("main.fs.t", [])
    with pytest.raises(FeatureError, match=r"give one timestamp_lookup_key"):
        FeatureLookup("main.fs.t", "id", timestamp_lookup_key=["a", "b"])
    with pytest.raises(FeatureError, match=r"lookback_window must be a non-negative"):
        FeatureLookup("main.fs.t", "id", lookback_window=timedelta(seconds=-1))


def test_the_spec_survives_yaml_and_rebuilds_the_lookup() -> None:
    bound = FeatureLookup(
        "main.fs.series",
        "cid",
        timestamp_lookup_key="when",
        feature_names=["x"],
        rename_outputs={"x": "x_out"},
        default_values={"x_out": 0.5},
        lookback_window=timedelta(days=2),
    ).bind(SERIES, 7)
    spec = FeatureSpec(
        [LookupSpec.of(bound)], ["cid", "when", "y"], ["y"], ["when"], ["cid", "x_out"]
    )
    back = FeatureSpec.from_yaml(spec.to_yaml())
    assert back == spec
    assert back.feature_tables == [{"table": "main.fs.series", "version": 7}]
    again = back.lookups[0].to_lookup().bind(SERIES, 9)
    assert again.output_names == ["x_out"] and again.default_values == {"x_out": 0.5}
    assert again.lookback_window == timedelta(days=2)


def test_a_spec_of_another_format_is_refused() -> None:
    with pytest.raises(FeatureError, match=r"format_version 2"):
        FeatureSpec.from_yaml("format_version: 2\n", source="models:/m/1")
    with pytest.raises(FeatureError, match=r"not a valid feature spec"):
        FeatureSpec.from_yaml("format_version: 1\nlookups: [{table_name: t}]\n")
