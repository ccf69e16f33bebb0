"""``FeatureEngineeringClient``: Databricks Feature Engineering's API over the lakestack catalog.

Method names, arguments and semantics follow ``databricks.feature_engineering``; results are
pandas DataFrames where Databricks returns Spark ones (Arrow or Polars on request). Feature
tables are lake tables; models are MLflow models with a ``feature_spec.yaml`` in their artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pds

from lakestack.errors import FeatureError, RegistryError
from lakestack.features.frames import clustered, format_of, from_arrow, to_arrow
from lakestack.features.lookup import BoundLookup, FeatureLookup, as_list
from lakestack.features.pit import CHUNK_ROWS
from lakestack.features.scoring import Scorer
from lakestack.features.spec import FEATURE_SPEC_FILE, FeatureSpec
from lakestack.features.table import TIMESTAMP_KEYS, FeatureTable, feature_table_of
from lakestack.features.training import TrainingSet
from lakestack.lake import Catalog, Table, default_catalog
from lakestack.registry import (
    LoggedModel,
    Tracking,
    download_model,
    load_model,
    log_model,
    tracking_uri_for,
)

__all__ = ["LINEAGE_TAG", "FeatureEngineeringClient"]

LINEAGE_TAG = "lakestack.feature_tables"


class FeatureEngineeringClient:
    """Create, write and read feature tables; build training sets; log and score models.

    Args:
        catalog: The catalog of the feature tables; None means the current workspace's
            (``lakestack.lake.default_catalog()``).
        tracking_uri: The MLflow tracking (and registry) URI; None means ``MLFLOW_TRACKING_URI``
            if set, else the workspace's (``lakestack.tracking_uri`` of the bundle target, or
            SQLite in the workspace root).
    """

    def __init__(self, catalog: Catalog | None = None, *, tracking_uri: str | None = None) -> None:
        self._catalog = catalog
        self._explicit_catalog = catalog is not None
        self._tracking_uri = tracking_uri

    @property
    def catalog(self) -> Catalog:
        """The catalog the feature tables live in."""
        if self._catalog is None:
            self._catalog = default_catalog()
        return self._catalog

    # feature tables ------------------------------------------------------------------------

    def create_table(
        self,
        name: str,
        primary_keys: str | Sequence[str],
        df: Any = None,
        *,
        timestamp_keys: str | Sequence[str] | None = None,
        partition_columns: str | Sequence[str] | None = None,
        schema: pa.Schema | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        **_: Any,
    ) -> FeatureTable:
        """Create a feature table from ``df`` or ``schema``; an existing one is returned as is.

        The timestamp keys are part of the primary key (list them in both, as on Databricks).
        If the table exists with the same primary and timestamp keys it is returned unchanged,
        ``df`` is not written (write it with ``write_table``).

        Raises:
            FeatureError: Timestamp keys outside the primary key or not of a time type, or an
                existing table with other keys.
            NotFoundError: The schema does not exist.
            SchemaMismatchError, ConstraintError: ``df`` does not fit ``schema`` or breaks the
                primary key; nothing is created.
        """
        keys = as_list(primary_keys)
        ts_keys = as_list(timestamp_keys)
        if not keys:
            raise FeatureError(f"feature table {name} needs primary_keys")
        for key in ts_keys:
            if key not in keys:
                raise FeatureError(
                    f"timestamp key '{key}' of feature table {name} is not in its primary keys "
                    f"{keys}; add it to primary_keys"
                )
        if self.catalog.table_exists(name):
            existing = feature_table_of(self.catalog.table(name))
            if existing.primary_keys != keys or existing.timestamp_keys != ts_keys:
                raise FeatureError(
                    f"feature table {name} exists with primary keys {existing.primary_keys} and "
                    f"timestamp keys {existing.timestamp_keys}, not {keys} and {ts_keys}; drop "
                    "it first or use the existing keys"
                )
            return existing
        data = None if df is None else clustered(to_arrow(df, what="df"), _key_order(keys, ts_keys))
        columns = schema if schema is not None else (data.schema if data is not None else None)
        if columns is None:
            raise FeatureError(f"feature table {name}: give df or schema to create it")
        for key in ts_keys:
            if key in columns.names and not _is_time(columns.field(key).type):
                raise FeatureError(
                    f"timestamp key '{key}' of feature table {name} is "
                    f"{columns.field(key).type}; it must be a timestamp or a date"
                )
        table = self.catalog.create_table(
            name,
            data=data,
            schema=schema,
            primary_keys=keys,
            partition_by=as_list(partition_columns),
            comment=description,
            tags=tags,
            properties={TIMESTAMP_KEYS: json.dumps(ts_keys)},
        )
        return feature_table_of(table)

    def write_table(self, name: str, df: Any, mode: str = "merge") -> int:
        """Upsert (``merge``, on the primary key) or replace (``overwrite``) a table's rows.

        Returns:
            The table's new Delta version.

        Raises:
            NotFoundError: No such table.
            SchemaMismatchError: ``df`` has a column the table lacks or a wrong type (named).
            ConstraintError: A primary key repeated in ``df`` or null; nothing is committed.
        """
        if mode not in ("merge", "overwrite"):
            raise FeatureError(
                f"write_table mode '{mode}' is not supported; use merge or overwrite"
            )
        table = self.catalog.table(name)
        feature_table = feature_table_of(table)  # a table without a primary key is refused
        keys = _key_order(feature_table.primary_keys, feature_table.timestamp_keys)
        data = clustered(to_arrow(df, what="df"), keys)
        return table.merge(data) if mode == "merge" else table.overwrite(data)

    def read_table(
        self, name: str, as_of_delta_timestamp: Any = None, *, format: str = "pandas"
    ) -> Any:
        """A feature table's rows (at a past time with ``as_of_delta_timestamp``)."""
        table = self.catalog.table(name)
        return from_arrow(table.read(timestamp=as_of_delta_timestamp), format)

    def get_table(self, name: str) -> FeatureTable:
        """A feature table's keys, features, description, tags and path."""
        return feature_table_of(self.catalog.table(name))

    def drop_table(self, name: str) -> None:
        """Delete a feature table and its data."""
        self._feature_lake_table(name)
        self.catalog.drop_table(name)

    def _feature_lake_table(self, name: str) -> Table:
        table = self.catalog.table(name)
        feature_table_of(table)  # a table without a primary key is not a feature table
        return table

    # training ------------------------------------------------------------------------------

    def create_training_set(
        self,
        df: Any,
        feature_lookups: Sequence[FeatureLookup],
        label: str | Sequence[str] | None,
        exclude_columns: str | Sequence[str] | None = None,
        **_: Any,
    ) -> TrainingSet:
        """Pair ``df`` with feature lookups; ``load_df()`` joins them point-in-time.

        Each feature table's Delta version is pinned now, so the training set (and the model
        logged with it) records exactly which data it was built from.

        Raises:
            NotFoundError: A lookup names a table that does not exist.
            FeatureError: A lookup column missing from ``df`` (named with its table), keys that
                do not match the table's primary key, unknown features, colliding outputs.
        """
        data = to_arrow(df, what="df")
        bound = [self._bind(lookup) for lookup in feature_lookups]
        return TrainingSet(data, bound, as_list(label), as_list(exclude_columns), self._dataset_for)

    def _bind(self, lookup: FeatureLookup, version: int | None = None) -> BoundLookup:
        if not isinstance(lookup, FeatureLookup):
            raise FeatureError(
                f"feature_lookups must hold FeatureLookup objects, not {type(lookup).__name__}"
            )
        feature_table = feature_table_of(self.catalog.table(lookup.table_name))
        return lookup.bind(feature_table, feature_table.version if version is None else version)

    def _dataset_for(self, lookup: BoundLookup) -> pds.Dataset:
        return self.catalog.table(lookup.table_name).dataset(version=lookup.version)

    # models --------------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        artifact_path: str | None = None,
        *,
        flavor: Any,
        training_set: TrainingSet,
        registered_model_name: str | None = None,
        name: str | None = None,
        input_example: Any = None,
        signature: Any = None,
        **kwargs: Any,
    ) -> LoggedModel:
        """Log ``model`` with its feature spec in the active MLflow run (one is started if none).

        The spec (``feature_spec.yaml`` in the model's artifacts) lets ``score_batch`` look
        the features up by key. With ``registered_model_name`` a new model version is
        registered and tagged ``lakestack.feature_tables`` with the tables and Delta versions
        it was trained on; the run carries the same tag.

        Args:
            model: The trained model.
            artifact_path: The model's name in the run (Databricks' spelling; same as ``name``).
            flavor: The MLflow flavor module, e.g. ``mlflow.sklearn``.
            training_set: The ``TrainingSet`` the model was trained on.
            registered_model_name: Register a version of this model (``catalog.schema.model``).
            name: The model's name in the run (MLflow 3's spelling).
            input_example: Passed to MLflow (it infers the signature from it).
            signature: Passed to MLflow.
            **kwargs: Passed to the flavor's ``log_model``.
        """
        if not isinstance(training_set, TrainingSet):
            raise FeatureError("log_model needs the training_set the model was trained on")
        spec = training_set.feature_spec
        fitted = getattr(model, "feature_names_in_", None)

        def files_for(signature_inputs: list[str] | None) -> dict[str, str]:
            columns = [str(c) for c in fitted] if fitted is not None else signature_inputs
            if not columns:
                dropped = {*spec.label, *spec.exclude_columns}
                columns = [c for c in training_set.columns if c not in dropped]
            packaged = FeatureSpec(
                lookups=spec.lookups,
                input_columns=spec.input_columns,
                label=spec.label,
                exclude_columns=spec.exclude_columns,
                model_input_columns=list(columns),
            )
            return {FEATURE_SPEC_FILE: packaged.to_yaml()}

        lineage = {LINEAGE_TAG: json.dumps(spec.feature_tables)}
        if input_example is not None:
            kwargs["input_example"] = input_example
        if signature is not None:
            kwargs["signature"] = signature
        self._tracking().activate()
        return log_model(
            model,
            flavor=flavor,
            name=name or artifact_path or "model",
            files_for=files_for,
            registered_model_name=registered_model_name,
            run_tags=lineage,
            version_tags=lineage,
            **kwargs,
        )

    def score_batch(
        self,
        model_uri: str,
        df: Any,
        result_type: str = "double",
        *,
        chunk_rows: int = CHUNK_ROWS,
    ) -> Any:
        """Look up the model's features for ``df``'s rows and predict.

        Args:
            model_uri: ``models:/name/3``, ``models:/name@champion``, ``runs:/<id>/model``...
            df: pandas, Polars or Arrow rows with the lookup keys (and timestamp keys); an
                Arrow ``RecordBatchReader`` is scored as a stream; a string is a table name.
            result_type: The type of ``prediction``: double, float, integer, long, string,
                boolean.
            chunk_rows: Rows looked up at once when ``df`` is a stream.

        Returns:
            ``df``'s columns, the looked-up features and ``prediction``, in ``df``'s row order:
            a DataFrame of ``df``'s kind (pandas for a table name), or a ``RecordBatchReader``
            for a stream.

        Raises:
            FeatureError: A lookup key missing from ``df`` (named with its table), or a model
                that was not logged with ``log_model`` of this client.
            RegistryError: No such model.
        """
        scorer = self._scorer(model_uri, result_type, chunk_rows)
        if isinstance(df, str):
            table = self.catalog.table(df)
            reader = pa.RecordBatchReader.from_batches(table.schema, table.batches())
            return from_arrow(scorer.score_stream(reader).read_all(), "pandas")
        if isinstance(df, pa.RecordBatchReader):
            return scorer.score_stream(df)
        data = to_arrow(df, what="df")
        lookups = scorer.check(data.schema)
        return from_arrow(scorer.score_table(data, lookups), format_of(df))

    def _scorer(self, model_uri: str, result_type: str, chunk_rows: int) -> Scorer:
        self._tracking().activate()
        path = download_model(model_uri)
        spec_file = path / FEATURE_SPEC_FILE
        if not spec_file.exists():
            raise FeatureError(
                f"model {model_uri} has no {FEATURE_SPEC_FILE}: it was not logged with "
                "FeatureEngineeringClient.log_model, so score_batch cannot look its features "
                "up; log it with fe.log_model(..., training_set=...)"
            )
        spec = FeatureSpec.from_yaml(spec_file.read_text(encoding="utf-8"), source=model_uri)
        lookups = [self._bind(lookup.to_lookup()) for lookup in spec.lookups]
        # load the model while the features are looked up
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakestack-model")
        model = loader.submit(load_model, model_uri, path=path)
        loader.shutdown(wait=False)
        return Scorer(
            model_uri,
            model,
            spec,
            lookups,
            self._dataset_for,
            result_type=result_type,
            chunk_rows=chunk_rows,
        )

    def _tracking(self) -> Tracking:
        if self._tracking_uri:
            return Tracking(self._tracking_uri)
        current = Tracking.current()  # MLFLOW_TRACKING_URI, or mlflow.set_tracking_uri(...)
        if current is not None:
            return current
        if self._explicit_catalog:
            return _beside(self.catalog)
        return _workspace_tracking()


def _beside(catalog: Catalog) -> Tracking:
    """SQLite in the folder that holds a local warehouse (``<root>/warehouse`` -> ``<root>``)."""
    if not catalog.is_local:
        raise RegistryError(
            f"no MLflow tracking URI for the catalog at {catalog.root}: pass "
            "FeatureEngineeringClient(tracking_uri=...) or set MLFLOW_TRACKING_URI"
        )
    return Tracking(tracking_uri_for(Path(catalog.root).parent))


def _workspace_tracking() -> Tracking:
    """The tracking store of the bundle target found from the working directory."""
    from lakestack.bundle import load_bundle

    bundle = load_bundle()
    settings = bundle.settings
    if settings.tracking_uri:
        return Tracking(settings.tracking_uri, settings.registry_uri)
    return Tracking(tracking_uri_for(bundle.workspace_root))


def _key_order(keys: list[str], ts_keys: list[str]) -> list[str]:
    """The primary key's columns with the timestamp keys last: the order feature rows sort in."""
    return [*(k for k in keys if k not in ts_keys), *ts_keys]


def _is_time(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(dtype) or pa.types.is_date(dtype))
