"""score_table on real Delta tables and a real MLflow registry: shape, modes, streaming, errors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakestack.errors import InferenceError, ModelNotFoundError, NotFoundError, RegistryError
from lakestack.inference import score_table
from lakestack.lake import Catalog
from lakestack.registry import ModelRegistry, Tracking

from .conftest import FEATURES, flowers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def by_id(catalog: Catalog, name: str) -> pa.Table:
    return catalog.table(name).read().sort_by("id")


def expected(model: Any, catalog: Catalog, table: str) -> np.ndarray:
    rows = catalog.table(table).read().sort_by("id").to_pandas()
    return np.asarray(model.predict(rows[FEATURES]), dtype=np.float64)


def test_a_version_scores_a_table_into_the_inference_shape(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    when = datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc)
    result = score_table(
        f"models:/{classifier['name']}/2",
        input_table,
        "main.s.inferences",
        catalog=catalog,
        tracking=tracking,
        timestamp=when,
    )

    assert (result.rows, result.output_table, result.output_version) == (
        1_000,
        "main.s.inferences",
        1,  # version 0 created the table
    )
    assert (result.model_name, result.model_version, result.model_id) == (
        "main.ml.iris",
        2,
        "main.ml.iris/2",
    )
    assert result.model_uri == "models:/main.ml.iris/2"
    out = by_id(catalog, "main.s.inferences")
    assert out.column_names == [*FEATURES, "species", "id", "prediction", "model_id", "timestamp"]
    assert out.schema.field("prediction").type == pa.float64()
    assert out.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    np.testing.assert_array_equal(
        out.column("prediction").to_numpy(), expected(classifier["v2"], catalog, input_table)
    )
    assert out.column("model_id").unique().to_pylist() == ["main.ml.iris/2"]
    assert out.column("timestamp").unique().to_pylist() == [when]
    assert out.column("id").to_pylist() == list(range(1_000))
    info = catalog.table("main.s.inferences").info
    assert info.properties.get("delta.enableChangeDataFeed") == "true"  # monitors read changes


def test_an_alias_is_resolved_to_the_version_that_answered(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    registry = ModelRegistry(tracking)
    first = score_table(
        f"models:/{classifier['name']}@Champion",  # aliases ignore case, as in Unity Catalog
        input_table,
        "main.s.inferences",
        catalog=catalog,
        tracking=tracking,
    )
    registry.set_alias(classifier["name"], "champion", 2)
    try:
        second = score_table(
            f"models:/{classifier['name']}@champion",
            input_table,
            "main.s.inferences",
            catalog=catalog,
            tracking=tracking,
        )
    finally:
        registry.set_alias(classifier["name"], "champion", 1)

    assert (first.model_version, first.model_id) == (1, "main.ml.iris/1")
    assert (second.model_version, second.model_uri) == (2, "models:/main.ml.iris/2")
    out = catalog.table("main.s.inferences").read()
    counts = pc.value_counts(out.column("model_id")).to_pylist()
    assert sorted((c["values"], c["counts"]) for c in counts) == [
        ("main.ml.iris/1", 1_000),
        ("main.ml.iris/2", 1_000),
    ]
    assert len(out.column("timestamp").unique()) == 2  # one timestamp per run


def test_append_then_overwrite(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    appended = score_table(
        uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking, mode="append"
    )
    assert appended.output_version == 2
    assert catalog.table("main.s.inferences").read().num_rows == 2_000

    fewer = flowers(10, seed=3)
    replaced = score_table(
        uri, fewer, "main.s.inferences", catalog=catalog, tracking=tracking, mode="overwrite"
    )
    assert (replaced.rows, replaced.output_version) == (10, 3)
    out = by_id(catalog, "main.s.inferences")
    assert out.num_rows == 10
    assert out.column("id").to_pylist() == list(range(10))
    # overwrite replaces the columns too when the rows have others (here: no label)
    score_table(
        uri,
        fewer.drop(columns=["species"]),
        "main.s.inferences",
        catalog=catalog,
        tracking=tracking,
        mode="overwrite",
    )
    assert "species" not in catalog.table("main.s.inferences").schema.names
    # the older rows are still there to time-travel to
    assert catalog.table("main.s.inferences").read(version=2).num_rows == 2_000


def test_appending_rows_without_a_column_the_table_has_leaves_it_null(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    unlabelled = flowers(5, seed=4).drop(columns=["species"])
    score_table(uri, unlabelled, "main.s.inferences", catalog=catalog, tracking=tracking)
    out = catalog.table("main.s.inferences").read()
    assert out.num_rows == 1_005
    assert out.column("species").null_count == 5


def test_streaming_in_small_batches_gives_the_rows_of_one_batch(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    common = {"catalog": catalog, "tracking": tracking, "timestamp": when}
    score_table(uri, input_table, "main.s.whole", batch_rows=1_000_000, **common)
    small = score_table(uri, input_table, "main.s.small", batch_rows=37, **common)

    assert small.rows == 1_000
    assert by_id(catalog, "main.s.small").equals(by_id(catalog, "main.s.whole"))


def test_dataframes_and_streams_are_scored_too(
    catalog: Catalog, tracking: Tracking, classifier: dict
) -> None:
    uri = f"models:/{classifier['name']}/1"
    rows = flowers(300, seed=5)
    want = np.asarray(classifier["v1"].predict(rows[FEATURES]), dtype=np.float64)
    arrow = pa.Table.from_pandas(rows, preserve_index=False)
    inputs = {
        "pandas": rows,
        "polars": pl.from_pandas(rows),
        "arrow": arrow,
        "reader": pa.RecordBatchReader.from_batches(
            arrow.schema, arrow.to_batches(max_chunksize=64)
        ),
    }
    for kind, data in inputs.items():
        result = score_table(
            uri, data, f"main.s.from_{kind}", catalog=catalog, tracking=tracking, batch_rows=50
        )
        assert result.rows == 300, kind
        out = by_id(catalog, f"main.s.from_{kind}")
        np.testing.assert_array_equal(out.column("prediction").to_numpy(), want, err_msg=kind)


def test_probabilities_as_a_map_of_class_to_probability(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    score_table(
        f"models:/{classifier['name']}/2",
        input_table,
        "main.s.inferences",
        catalog=catalog,
        tracking=tracking,
        probabilities=True,
        result_type="long",
        batch_rows=300,
    )
    out = by_id(catalog, "main.s.inferences")
    assert out.schema.field("probability").type == pa.map_(pa.string(), pa.float64())
    assert out.schema.field("prediction").type == pa.int64()
    rows = catalog.table(input_table).read().sort_by("id").to_pandas()
    proba = classifier["v2"].predict_proba(rows[FEATURES])
    got = out.column("probability").to_pylist()
    assert [k for k, _ in got[0]] == ["0", "1", "2"]
    np.testing.assert_allclose([[v for _, v in row] for row in got], proba)
    predicted = [max(row, key=lambda kv: kv[1])[0] for row in got]
    assert predicted == [str(p) for p in out.column("prediction").to_pylist()]


def test_probabilities_of_a_regressor_are_refused(
    catalog: Catalog, tracking: Tracking, input_table: str
) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    from lakestack.registry import log_model

    rows = flowers(50)
    tracking.activate()
    logged = log_model(
        LinearRegression().fit(rows[FEATURES], rows["species"]),
        flavor=mlflow.sklearn,
        name="model",
        registered_model_name="main.ml.regressor",
        pip_requirements=["scikit-learn"],
    )
    with pytest.raises(
        InferenceError,
        match=r"^model models:/main.ml.regressor/\d+ has no class probabilities .*"
        r"probabilities=True needs a scikit-learn classifier",
    ):
        score_table(
            f"models:/main.ml.regressor/{logged.registered_model_version}",
            input_table,
            "main.s.inferences",
            catalog=catalog,
            tracking=tracking,
            probabilities=True,
        )
    assert not catalog.table_exists("main.s.inferences")


# bad input: one line naming what is wrong, nothing written ----------------------------------


def test_a_model_column_missing_from_the_input(
    catalog: Catalog, tracking: Tracking, classifier: dict
) -> None:
    catalog.create_table("main.s.partial", flowers(20).drop(columns=["petal_length"]))
    with pytest.raises(
        InferenceError,
        match=r"^model models:/main.ml.iris/1 takes column 'petal_length', which table "
        r"main.s.partial does not have \(columns: sepal_length, sepal_width, species, id\)$",
    ):
        score_table(
            f"models:/{classifier['name']}@champion",
            "main.s.partial",
            "main.s.inferences",
            catalog=catalog,
            tracking=tracking,
        )
    assert not catalog.table_exists("main.s.inferences")


def test_an_input_column_the_inference_table_uses(
    catalog: Catalog, tracking: Tracking, classifier: dict
) -> None:
    rows = flowers(20).assign(timestamp=pd.Timestamp("2025-01-01", tz="UTC"))
    with pytest.raises(
        InferenceError,
        match=r"^the input DataFrame has a column 'timestamp', which the inference table uses "
        r"for its own values \(prediction, model_id, timestamp\); rename or drop it$",
    ):
        score_table(
            f"models:/{classifier['name']}/1",
            rows,
            "main.s.inferences",
            catalog=catalog,
            tracking=tracking,
        )
    assert not catalog.table_exists("main.s.inferences")


def test_unknown_models_versions_and_aliases(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    cases = {
        "models:/main.ml.nope/1": r"^model main.ml.nope does not exist",
        "models:/main.ml.iris/9": r"^model main.ml.iris has no version 9 \(versions: 1, 2\)",
        "models:/main.ml.iris@gold": r"^model main.ml.iris has no alias 'gold' "
        r"\(aliases: champion\)",
    }
    for uri, message in cases.items():
        with pytest.raises(ModelNotFoundError, match=message):
            score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    with pytest.raises(RegistryError, match=r"runs:/0123456789abcdef/model"):
        score_table(
            "runs:/0123456789abcdef/model",
            input_table,
            "main.s.inferences",
            catalog=catalog,
            tracking=tracking,
        )
    assert not catalog.table_exists("main.s.inferences")


def test_missing_input_table_and_bad_options(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    with pytest.raises(NotFoundError, match=r"^table main.s.flower does not exist"):
        score_table(uri, "main.s.flower", "main.s.out", catalog=catalog, tracking=tracking)
    with pytest.raises(
        InferenceError, match=r"^mode 'merge' is not supported; use one of append, overwrite$"
    ):
        score_table(
            uri, input_table, "main.s.out", catalog=catalog, tracking=tracking, mode="merge"
        )
    with pytest.raises(InferenceError, match=r"^result_type 'decimal' is not supported"):
        score_table(
            uri,
            input_table,
            "main.s.out",
            catalog=catalog,
            tracking=tracking,
            result_type="decimal",
        )
    with pytest.raises(InferenceError, match=r"^batch_rows must be at least 1, not 0$"):
        score_table(
            uri, input_table, "main.s.out", catalog=catalog, tracking=tracking, batch_rows=0
        )
    with pytest.raises(InferenceError, match=r"^cannot score a dict; pass a table name"):
        score_table(uri, {"a": 1}, "main.s.out", catalog=catalog, tracking=tracking)
    assert not catalog.table_exists("main.s.out")


def test_an_output_table_whose_columns_do_not_fit(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    other = catalog.create_table("main.s.other", pa.table({"x": ["a"]}))
    before = other.version
    with pytest.raises(
        InferenceError,
        match=r"^inference table main.s.other has no column 'sepal_length' \(columns: x\); "
        r"write to a new table, or with mode='overwrite' to replace it$",
    ):
        score_table(uri, input_table, "main.s.other", catalog=catalog, tracking=tracking)
    assert other.version == before

    score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    table = catalog.table("main.s.inferences")
    schema = pa.schema(
        [
            f if f.name != "prediction" else pa.field("prediction", pa.list_(pa.int64()))
            for f in table.schema
        ]
    )
    table.overwrite(schema.empty_table(), schema_mode="overwrite")
    before = table.version
    with pytest.raises(
        InferenceError,
        match=r"^inference table main.s.inferences: column 'prediction' is list<element: int64>, "
        r"and the scored rows' double does not fit",
    ):
        score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    assert table.version == before


def test_a_model_that_fails_midway_commits_nothing(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str
) -> None:
    uri = f"models:/{classifier['name']}/1"
    rows = flowers(500).astype({"petal_length": str})
    rows.loc[450, "petal_length"] = "not a number"  # the model fails on the fifth batch
    catalog.create_table("main.s.bad", rows)
    message = r"^model models:/main.ml.iris/1 failed to predict on columns .*could not convert"
    with pytest.raises(InferenceError, match=message):
        score_table(
            uri, "main.s.bad", "main.s.new", catalog=catalog, tracking=tracking, batch_rows=100
        )
    assert not catalog.table_exists("main.s.new")  # the table it created is gone again

    score_table(uri, input_table, "main.s.inferences", catalog=catalog, tracking=tracking)
    table = catalog.table("main.s.inferences")
    for mode in ("append", "overwrite"):
        with pytest.raises(InferenceError, match=message):
            score_table(
                uri,
                "main.s.bad",
                "main.s.inferences",
                catalog=catalog,
                tracking=tracking,
                mode=mode,
                batch_rows=100,
            )
        assert table.version == 1
        assert table.read().num_rows == 1_000


def test_a_gradient_boosting_model_predicts_on_binned_features(
    catalog: Catalog, tracking: Tracking, input_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier

    from lakestack.inference import batch
    from lakestack.registry import log_model

    train = flowers(2_000, seed=6)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model.fit(train[FEATURES], train["species"])
    tracking.activate()
    logged = log_model(
        model,
        flavor=mlflow.sklearn,
        name="model",
        registered_model_name="main.ml.trees",
        pip_requirements=["scikit-learn"],
    )
    used: list[Any] = []
    original = batch.verified

    def spy(native: Any, sample: Any, methods: tuple[str, ...]) -> Any:
        used.append(original(native, sample, methods))
        return used[-1]

    monkeypatch.setattr(batch, "verified", spy)
    score_table(
        f"models:/main.ml.trees/{logged.registered_model_version}",
        input_table,
        "main.s.inferences",
        catalog=catalog,
        tracking=tracking,
        probabilities=True,
        batch_rows=128,
    )

    assert used and type(used[0]) is HistGradientBoostingClassifier
    assert used[0].__dict__.get("_raw_predict") is not None  # the binned copy, not the model
    out = by_id(catalog, "main.s.inferences")
    rows = catalog.table(input_table).read().sort_by("id").to_pandas()[FEATURES]
    np.testing.assert_array_equal(out.column("prediction").to_numpy(), model.predict(rows))
    got = [[p for _, p in row] for row in out.column("probability").to_pylist()]
    np.testing.assert_array_equal(got, model.predict_proba(rows))
