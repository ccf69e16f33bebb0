"""``score_batch``: look a model's features up for new rows, then predict, in bounded memory.

The model's ``feature_spec.yaml`` says which lookups to run; they run against the feature
tables' latest versions (as on Databricks), while the model loads on another thread (unpickling
it and importing its library take seconds; the join releases the GIL). Features the input
already has are not looked up: the input's values are used (Databricks' feature override). The
model is loaded once; a scikit-learn model is loaded natively and called on plain DataFrames of
exactly the columns it was fitted on, skipping pyfunc's per-call schema enforcement.

Predictions are made in slices of ``PREDICT_ROWS`` rows; for native scikit-learn models the
slices run on a small thread pool (their ``predict`` releases the GIL), one thread per usable
CPU, so that models that do not parallelize themselves use every core. An input that is an Arrow
``RecordBatchReader`` is scored as a stream: chunks of at most ``chunk_rows`` rows are looked up
and predicted one after the other, and the result is a reader too, so memory stays bounded
whatever the input's size.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from lakestack.errors import FeatureError
from lakestack.features.lookup import BoundLookup
from lakestack.features.pit import CHUNK_ROWS, DatasetFor, join_features
from lakestack.features.spec import FeatureSpec
from lakestack.features.training import check_lookups
from lakestack.registry import LoadedModel

__all__ = ["PREDICT_ROWS", "RESULT_TYPES", "Scorer", "prediction_array", "predict_threads"]

PREDICT_ROWS = 100_000
PREDICTION = "prediction"
RESULT_TYPES: dict[str, pa.DataType] = {
    "double": pa.float64(),
    "float": pa.float32(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "long": pa.int64(),
    "bigint": pa.int64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
}


def predict_threads() -> int:
    """Threads to predict on: ``LAKESTACK_SCORE_THREADS``, else the usable CPUs (at most 4)."""
    configured = os.environ.get("LAKESTACK_SCORE_THREADS")
    if configured:
        return max(1, int(configured))
    try:
        usable = len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(4, usable))


class Scorer:
    """A loaded model with its feature spec and bound lookups, ready to score inputs."""

    def __init__(
        self,
        model_uri: str,
        model: LoadedModel | Future[LoadedModel],
        spec: FeatureSpec,
        lookups: Sequence[BoundLookup],
        dataset_for: DatasetFor,
        *,
        result_type: str = "double",
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        if result_type not in RESULT_TYPES:
            raise FeatureError(
                f"result_type '{result_type}' is not supported; use one of "
                f"{', '.join(RESULT_TYPES)}"
            )
        self.model_uri = model_uri
        self._model = model
        self.spec = spec
        self.lookups = list(lookups)
        self.dataset_for = dataset_for
        self.result_type = RESULT_TYPES[result_type]
        self.chunk_rows = chunk_rows

    @property
    def model(self) -> LoadedModel:
        """The model (waiting for it if it is still loading)."""
        if isinstance(self._model, Future):
            self._model = self._model.result()
        return self._model

    @property
    def model_columns(self) -> list[str]:
        """The columns handed to the model, in order."""
        if self.spec.model_input_columns:
            return list(self.spec.model_input_columns)
        if self.model.input_columns:
            return list(self.model.input_columns)
        dropped = {*self.spec.label, *self.spec.exclude_columns}
        names = [*self.spec.input_columns, *self.spec.output_names]
        return [c for c in names if c not in dropped]

    def _lookups_for(self, columns: Sequence[str]) -> list[BoundLookup]:
        """The lookups still needed: features the input already has are taken from it."""
        present = set(columns)
        needed = []
        for lookup in self.lookups:
            keep = [i for i, o in enumerate(lookup.output_names) if o not in present]
            if not keep:
                continue
            if len(keep) < len(lookup.output_names):
                lookup = dataclasses.replace(
                    lookup,
                    feature_names=[lookup.feature_names[i] for i in keep],
                    output_names=[lookup.output_names[i] for i in keep],
                )
            needed.append(lookup)
        return needed

    def check(self, schema: pa.Schema) -> list[BoundLookup]:
        """Check an input's columns; the lookups to run for it.

        Raises:
            FeatureError: A lookup key or timestamp key missing (named with its table), a
                ``prediction`` column in the input, or a model column nobody provides.
        """
        columns = list(schema.names)
        if PREDICTION in columns:
            raise FeatureError(
                f"the input of score_batch has a column '{PREDICTION}', which is where the "
                "predictions go; rename or drop it"
            )
        lookups = self._lookups_for(columns)
        check_lookups(columns, lookups, what="the input of score_batch")
        available = {*columns, *(o for lk in lookups for o in lk.output_names)}
        for column in self.model_columns:
            if column not in available:
                raise FeatureError(
                    f"model {self.model_uri} takes column '{column}', which is neither in the "
                    f"input of score_batch nor looked up (input columns: {', '.join(columns)})"
                )
        return lookups

    def score_table(self, table: pa.Table, lookups: Sequence[BoundLookup]) -> pa.Table:
        """Input columns + looked-up features + ``prediction`` for one in-memory table."""
        joined = join_features(table, lookups, self.dataset_for)
        features = joined.select(self.model_columns)
        predictions = self._predict(features)
        return joined.append_column(PREDICTION, predictions)

    def score_stream(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """Score a stream chunk by chunk; the result is a stream with the same rows in order."""
        lookups = self.check(reader.schema)
        chunks = _rechunk(reader, self.chunk_rows)
        first = next(chunks, None)
        if first is None:
            first = reader.schema.empty_table()
        head = self.score_table(first, lookups)

        def batches() -> Iterator[pa.RecordBatch]:
            yield from head.to_batches()
            for chunk in chunks:
                yield from self.score_table(chunk, lookups).cast(head.schema).to_batches()

        return pa.RecordBatchReader.from_batches(head.schema, batches())

    def _predict(self, features: pa.Table) -> pa.ChunkedArray:
        slices = [
            features.slice(start, PREDICT_ROWS)
            for start in range(0, features.num_rows, PREDICT_ROWS)
        ]
        predict = self.model.predict
        if not slices:
            return pa.chunked_array([], type=self.result_type)
        workers = predict_threads() if self.model.flavor == "sklearn" else 1
        if workers > 1 and len(slices) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(lambda part: _predict_slice(predict, part), slices))
        else:
            parts = [_predict_slice(predict, part) for part in slices]
        return pa.chunked_array([self._as_result(p) for p in parts], type=self.result_type)

    def _as_result(self, values: Any) -> pa.Array:
        return prediction_array(
            values, self.result_type, model_uri=self.model_uri, need="score_batch", verb="returned"
        )


def prediction_array(
    values: Any,
    result_type: pa.DataType,
    *,
    model_uri: str,
    need: str,
    verb: str,
    error: type[Exception] = FeatureError,
) -> pa.Array:
    """A model's predictions as one Arrow array of ``result_type`` (a column of one is flattened).

    Raises:
        error: Not one value per row, or values that cannot be cast (``need`` and ``verb`` say
            who needs them and how they are used, in the message).
    """
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise error(
            f"model {model_uri} returned predictions of shape {array.shape}; {need} needs one "
            "value per row"
        )
    try:
        return pa.array(array).cast(result_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise error(
            f"the predictions of model {model_uri} ({array.dtype}) cannot be {verb} as "
            f"{result_type}: {str(exc).splitlines()[0]}; pass result_type='string' or the "
            "matching type"
        ) from None


def _predict_slice(predict: Callable[[Any], Any], part: pa.Table) -> Any:
    return predict(part.to_pandas())


def _rechunk(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending, schema=reader.schema)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending, schema=reader.schema)
