"""``score_table``: score a table with a registered model into an inference table, streaming.

The output has the shape of DESIGN §7, the one serving writes too, so a monitor attaches to
either: the input columns, ``prediction``, ``model_id`` (``<name>/<version>``; an alias is
resolved to its version first, so each row says which version answered) and ``timestamp`` (one
per run, UTC); optionally ``probability`` (``{class: probability}``) for classifiers. A model
logged with ``FeatureEngineeringClient.log_model`` is scored through ``score_batch``, which looks
its features up (they are kept in the output, as on Databricks).

The input is read in Arrow batches, predicted chunk by chunk and written to Delta as a stream,
so memory stays flat whatever the table's size; the write is one Delta commit at the end, so a
run that fails commits nothing (an output table it created is dropped again), and an overwrite
that fails leaves the old rows in place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakestack.errors import FeatureError, InferenceError, SchemaMismatchError
from lakestack.features import FEATURE_SPEC_FILE, FeatureEngineeringClient, FeatureSpec
from lakestack.features.pit import CHUNK_ROWS
from lakestack.features.scoring import RESULT_TYPES
from lakestack.inference.predict import (
    BATCH_ROWS,
    PREDICTION,
    PROBABILITY,
    Predictor,
    chunks,
    ordered_map,
    predict_threads,
)
from lakestack.inference.trees import CHECK_ROWS, verified
from lakestack.lake import Catalog, Table, default_catalog
from lakestack.lake.arrow import as_arrow, normalize_schema
from lakestack.lake.names import parse_table_name
from lakestack.registry import (
    ModelRegistry,
    Tracking,
    download_model,
    load_model,
    tracking_uri_for,
)
from lakestack.registry.evaluation import load_evaluation_model

__all__ = [
    "MODEL_ID",
    "MODES",
    "TIMESTAMP",
    "BatchResult",
    "ModelRef",
    "resolve_model",
    "score_table",
]

MODEL_ID = "model_id"
TIMESTAMP = "timestamp"
MODES = ("append", "overwrite")
_MODELS = "models:/"


@dataclass(frozen=True)
class ModelRef:
    """A model URI resolved to the registered version it names.

    Attributes:
        uri: What to load: ``models:/<name>/<version>`` for a registered model (an alias
            resolved), the URI as given otherwise (``runs:/...``, a path).
        name: The registered model, if the URI names one.
        version: Its version number.
        model_id: What the inference table's ``model_id`` says: ``<name>/<version>``, or the
            URI for a model outside the registry.
    """

    uri: str
    name: str | None
    version: int | None
    model_id: str


@dataclass(frozen=True)
class BatchResult:
    """What a batch inference wrote.

    Attributes:
        rows: Rows scored and written.
        output_table: The inference table.
        output_version: Its Delta version holding the rows.
        model_uri: The model scored with, resolved (``models:/<name>/<version>``).
        model_name: The registered model, if any.
        model_version: The version that answered, if registered.
        model_id: The value of the ``model_id`` column.
        timestamp: The value of the ``timestamp`` column (UTC).
        seconds: How long the whole call took.
    """

    rows: int
    output_table: str
    output_version: int
    model_uri: str
    model_name: str | None
    model_version: int | None
    model_id: str
    timestamp: datetime
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (task values, ``--output json``)."""
        return {
            "rows": self.rows,
            "output_table": self.output_table,
            "output_version": self.output_version,
            "model_uri": self.model_uri,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_id": self.model_id,
            "timestamp": self.timestamp.isoformat(),
            "seconds": round(self.seconds, 3),
        }


def resolve_model(model_uri: str, registry: ModelRegistry) -> ModelRef:
    """Resolve ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` to a checked version.

    Raises:
        ModelNotFoundError: No such model, version or alias (the message lists those there
            are).
    """
    if not model_uri.startswith(_MODELS):
        return ModelRef(model_uri, None, None, model_uri)
    rest = model_uri[len(_MODELS) :]
    if "@" in rest:
        name, ref = rest.rsplit("@", 1)
    elif "/" in rest:
        name, ref = rest.rsplit("/", 1)
    else:  # models:/<logged model id>, not a registered model
        return ModelRef(model_uri, None, None, model_uri)
    info = registry.get_version(name, ref)
    return ModelRef(info.model_uri, info.name, info.version, f"{info.name}/{info.version}")


def score_table(
    model_uri: str,
    input: Any,
    output: str,
    *,
    mode: str = "append",
    catalog: Catalog | None = None,
    tracking: Tracking | str | None = None,
    result_type: str = "double",
    batch_rows: int | None = None,
    timestamp: datetime | None = None,
    probabilities: bool = False,
) -> BatchResult:
    """Score ``input`` with a model and write the rows to the inference table ``output``.

    Args:
        model_uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/...``.
        input: A table name (``catalog.schema.table``), or rows: Arrow (a table or a
            ``RecordBatchReader``, which is streamed), pandas or Polars.
        output: The inference table (``catalog.schema.table``); created on the first write.
        mode: ``append`` the rows, or ``overwrite`` the table (its schema too, when the rows'
            columns differ).
        catalog: The catalog of both tables; None means the workspace's.
        tracking: The MLflow store (a ``Tracking`` or a URI); None means MLflow's current one
            (``MLFLOW_TRACKING_URI``), else the one beside an explicit local ``catalog``'s
            warehouse, else the workspace's.
        result_type: The type of ``prediction``: double, float, integer, long, string,
            boolean.
        batch_rows: Rows predicted at once; None means 100,000 (a feature-store model: the
            lookups' chunk, 2,000,000).
        timestamp: The ``timestamp`` of every row; None means now (UTC).
        probabilities: Add ``probability``, a map of class to probability (classifiers with
            ``predict_proba``): what monitors need for ROC AUC and log loss.

    Raises:
        InferenceError: A model column missing from the input, a reserved column in it, an
            output table whose columns do not fit, a model without probabilities when asked
            for them, or a model that failed to predict. Nothing is written.
        ModelNotFoundError: No such registered model, version or alias.
        RegistryError: The model cannot be downloaded or loaded.
        NotFoundError: No such input table, or no schema for the output table.
    """
    started = time.perf_counter()
    _check_options(mode, result_type, batch_rows)
    when = _utc(timestamp)
    lake = catalog if catalog is not None else default_catalog()
    output_name = str(parse_table_name(output))
    track = _tracking(tracking, catalog)
    track.activate()
    model = resolve_model(model_uri, ModelRegistry(track))
    path = download_model(model.uri)
    reader, source = _open_input(input, lake, batch_rows or BATCH_ROWS)
    reserved = [PREDICTION, MODEL_ID, TIMESTAMP, *([PROBABILITY] if probabilities else [])]
    for column in reserved:
        if column in reader.schema.names:
            raise InferenceError(
                f"{source} has a column '{column}', which the inference table uses for its "
                f"own values ({', '.join(reserved)}); rename or drop it"
            )
    if (path / FEATURE_SPEC_FILE).exists():
        schema, tables = _feature_scored(
            model, path, reader, source, lake, result_type, batch_rows, probabilities
        )
    else:
        schema, tables = _scored(
            model, path, reader, source, result_type, batch_rows or BATCH_ROWS, probabilities
        )
    stamp = _Stamp(model.model_id, when)
    schema = stamp.schema(schema)
    written = _Written(stamp, tables)
    version = _write(lake, output_name, schema, written.reader(schema), mode)
    return BatchResult(
        rows=written.rows,
        output_table=output_name,
        output_version=version,
        model_uri=model.uri,
        model_name=model.name,
        model_version=model.version,
        model_id=model.model_id,
        timestamp=when,
        seconds=time.perf_counter() - started,
    )


def _check_options(mode: str, result_type: str, batch_rows: int | None) -> None:
    if mode not in MODES:
        raise InferenceError(f"mode '{mode}' is not supported; use one of {', '.join(MODES)}")
    if result_type not in RESULT_TYPES:
        raise InferenceError(
            f"result_type '{result_type}' is not supported; use one of {', '.join(RESULT_TYPES)}"
        )
    if batch_rows is not None and batch_rows < 1:
        raise InferenceError(f"batch_rows must be at least 1, not {batch_rows}")


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _tracking(tracking: Tracking | str | None, catalog: Catalog | None) -> Tracking:
    if isinstance(tracking, str):
        return Tracking(tracking)
    if tracking is not None:
        return tracking
    current = Tracking.current()  # MLFLOW_TRACKING_URI, or mlflow.set_tracking_uri(...)
    if current is not None:
        return current
    if catalog is not None and catalog.is_local:  # <root>/warehouse -> <root>/mlflow.db
        return Tracking(tracking_uri_for(Path(catalog.root).parent))
    return ModelRegistry.default().tracking


def _open_input(data: Any, lake: Catalog, rows: int) -> tuple[pa.RecordBatchReader, str]:
    """The input as a stream, and how messages name it."""
    if isinstance(data, str):
        table = lake.table(data)
        batches = _table_batches(table, rows)
        first = next(batches, None)
        if first is None:
            return table.schema.empty_table().to_reader(), f"table {table.name}"
        schema = first.schema
        return pa.RecordBatchReader.from_batches(schema, chain([first], batches)), (
            f"table {table.name}"
        )
    if isinstance(data, pa.RecordBatchReader):
        return data, "the input stream"
    try:
        rows_in = as_arrow(data)
    except SchemaMismatchError:
        raise InferenceError(
            f"cannot score a {type(data).__name__}; pass a table name, a pandas or Polars "
            "DataFrame, or Arrow data"
        ) from None
    return rows_in.to_reader(max_chunksize=rows), "the input DataFrame"


def _table_batches(table: Table, rows: int) -> Iterator[pa.RecordBatch]:
    """The table's rows, one file after the other.

    A scan of the whole dataset reads ahead of a slow consumer without bound (a model that
    predicts 5 batches a second had 760 MiB of a 10M-row table read ahead of it); a scan of one
    file at a time holds at most that file's batches in flight.
    """
    dataset = table.dataset()
    for fragment in dataset.get_fragments():
        yield from fragment.to_batches(
            schema=dataset.schema, batch_size=rows, batch_readahead=1, fragment_readahead=1
        )


def _check_columns(columns: list[str], schema: pa.Schema, source: str, model_uri: str) -> None:
    for column in columns:
        if column not in schema.names:
            raise InferenceError(
                f"model {model_uri} takes column '{column}', which {source} does not have "
                f"(columns: {', '.join(schema.names)})"
            )


def _scored(
    model: ModelRef,
    path: Path,
    reader: pa.RecordBatchReader,
    source: str,
    result_type: str,
    rows: int,
    probabilities: bool,
) -> tuple[pa.Schema, Iterator[pa.Table]]:
    """A plain model: load it once, predict chunk by chunk."""
    if probabilities:
        evaluation = load_evaluation_model(model.uri)
        predict, input_columns, flavor = (
            evaluation.predict,
            evaluation.input_columns,
            evaluation.flavor,
        )
        proba, classes = _probabilities_of(evaluation, model.uri)
    else:
        loaded = load_model(model.uri, path=path)
        predict, input_columns, flavor = loaded.predict, loaded.input_columns, loaded.flavor
        proba, classes = None, None
    columns = input_columns or list(reader.schema.names)
    _check_columns(columns, reader.schema, source, model.uri)
    stream = chunks(reader, rows)
    first = next(stream, None)
    if first is not None:
        stream = chain([first], stream)
        native = getattr(predict, "__self__", None) if flavor == "sklearn" else None
        if native is not None:  # a HistGradientBoosting model predicts faster on binned features
            faster = verified(
                native,
                first.slice(0, CHECK_ROWS).select(columns).to_pandas(),
                ("predict", "predict_proba") if proba is not None else ("predict",),
            )
            predict = faster.predict
            proba = faster.predict_proba if proba is not None else None
    threads = predict_threads() if flavor == "sklearn" else 1  # pyfunc may not be thread-safe
    predictor = Predictor(
        model.uri,
        predict,
        columns,
        RESULT_TYPES[result_type],
        predict_proba=proba,
        classes=classes,
        threads=threads,
    )
    schema = pa.schema([*reader.schema, *predictor.fields()])
    return schema, ordered_map(predictor.score, stream, threads)


def _feature_scored(
    model: ModelRef,
    path: Path,
    reader: pa.RecordBatchReader,
    source: str,
    lake: Catalog,
    result_type: str,
    batch_rows: int | None,
    probabilities: bool,
) -> tuple[pa.Schema, Iterator[pa.Table]]:
    """A model with a feature spec: ``score_batch`` looks its features up and predicts."""
    client = FeatureEngineeringClient(lake)  # the tracking is active: it uses that store
    try:
        scored = client.score_batch(
            model.uri, reader, result_type, chunk_rows=batch_rows or CHUNK_ROWS
        )
    except FeatureError as exc:
        raise InferenceError(f"cannot score {source} with {model.uri}: {exc}") from exc
    rows = batch_rows or BATCH_ROWS
    if not probabilities:
        return scored.schema, (pa.Table.from_batches([b]) for b in scored)
    evaluation = load_evaluation_model(model.uri)
    proba, classes = _probabilities_of(evaluation, model.uri)
    spec = FeatureSpec.from_yaml(
        (path / FEATURE_SPEC_FILE).read_text(encoding="utf-8"), source=model.uri
    )
    columns = list(spec.model_input_columns or evaluation.input_columns or [])
    threads = predict_threads()
    predictor = Predictor(
        model.uri,
        None,
        columns,
        RESULT_TYPES[result_type],
        predict_proba=proba,
        classes=classes,
        threads=threads,
    )
    schema = pa.schema([*scored.schema, *predictor.fields()])
    return schema, ordered_map(predictor.score, chunks(scored, rows), threads)


def _probabilities_of(evaluation: Any, model_uri: str) -> tuple[Any, list[Any]]:
    if evaluation.predict_proba is None or evaluation.classes is None:
        raise InferenceError(
            f"model {model_uri} has no class probabilities (flavor {evaluation.flavor}, no "
            "predict_proba); probabilities=True needs a scikit-learn classifier, or leave it off"
        )
    return evaluation.predict_proba, list(evaluation.classes)


class _Stamp:
    """The columns every row of one run gets: ``model_id`` and ``timestamp``."""

    def __init__(self, model_id: str, when: datetime) -> None:
        self.model_id = pa.scalar(model_id, pa.string())
        self.when = pa.scalar(when, pa.timestamp("us", tz="UTC"))

    def schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema(
            [*schema, pa.field(MODEL_ID, pa.string()), pa.field(TIMESTAMP, self.when.type)]
        )

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.num_rows
        return table.append_column(MODEL_ID, pa.repeat(self.model_id, rows)).append_column(
            TIMESTAMP, pa.repeat(self.when, rows)
        )


class _Written:
    """The stamped batches to write, counted as the writer takes them."""

    def __init__(self, stamp: _Stamp, tables: Iterator[pa.Table]) -> None:
        self._stamp = stamp
        self._tables = tables
        self.rows = 0

    def reader(self, schema: pa.Schema) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(schema, self._batches(schema))

    def _batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        for table in self._tables:
            stamped = self._stamp(table)
            self.rows += stamped.num_rows
            if stamped.schema != schema:
                stamped = stamped.cast(schema)
            yield from stamped.to_batches()


def _write(
    lake: Catalog, name: str, schema: pa.Schema, reader: pa.RecordBatchReader, mode: str
) -> int:
    """Write the stream to the inference table (created if missing); its new version."""
    if not lake.table_exists(name):
        fields = [f.with_nullable(True) for f in normalize_schema(schema)]
        table = lake.create_table(
            name,
            schema=pa.schema(fields),
            comment="Inference table: one row per scored record (lakestack batch inference)",
        )
        try:
            return table.append(reader)
        except BaseException:
            lake.drop_table(name, missing_ok=True)  # a failed run leaves no table behind
            raise
    table = lake.table(name)
    if mode == "overwrite":
        same = _same_columns(normalize_schema(schema), table.schema)
        return table.overwrite(reader, schema_mode=None if same else "overwrite")
    _check_fits(table, normalize_schema(schema))
    return table.append(reader)


def _same_columns(schema: pa.Schema, existing: pa.Schema) -> bool:
    return [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in existing]


def _check_fits(table: Table, schema: pa.Schema) -> None:
    """Raise InferenceError, naming the column, when the scored rows cannot be appended."""
    existing = table.schema
    fix = "write to a new table, or with mode='overwrite' to replace it"
    for field in schema:
        if field.name not in existing.names:
            raise InferenceError(
                f"inference table {table.name} has no column '{field.name}' (columns: "
                f"{', '.join(existing.names)}); {fix}"
            )
        want = existing.field(field.name).type
        if field.type != want and not _castable(field.type, want):
            raise InferenceError(
                f"inference table {table.name}: column '{field.name}' is {want}, and the "
                f"scored rows' {field.type} does not fit; {fix}"
            )
    for field in existing:
        if not field.nullable and field.name not in schema.names:
            raise InferenceError(
                f"inference table {table.name}: column '{field.name}' is NOT NULL and the "
                f"scored rows have no such column; {fix}"
            )


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    try:
        pa.array([], type=source).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True
