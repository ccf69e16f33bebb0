"""Predict a stream of rows chunk by chunk, on a few threads, in order, in bounded memory.

A chunk is converted to pandas (only the model's columns), predicted, and the predictions are
appended to the chunk as Arrow columns. For a native scikit-learn model several chunks are
predicted at once on a small thread pool (``predict`` releases the GIL), one thread per usable
CPU; each of those threads is limited to one OpenMP thread, because models that parallelize
themselves (HistGradientBoosting) oversubscribe the CPUs otherwise and run several times slower,
and BLAS runs on one thread meanwhile.
At most one chunk per thread, plus one, is in flight, so memory does not grow with the input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa

from lakestack.errors import InferenceError
from lakestack.features.scoring import predict_threads, prediction_array

__all__ = [
    "BATCH_ROWS",
    "PROBABILITY_TYPE",
    "Predictor",
    "chunks",
    "ordered_map",
    "predict_threads",
]

BATCH_ROWS = 100_000
PREDICTION = "prediction"
PROBABILITY = "probability"
PROBABILITY_TYPE = pa.map_(pa.string(), pa.float64())

T = TypeVar("T")
R = TypeVar("R")


class Predictor:
    """A loaded model and how its predictions become Arrow columns.

    Args:
        model_uri: The model's URI, for messages.
        predict: Takes a pandas DataFrame, returns one prediction per row.
        columns: The columns handed to the model, in order.
        result_type: The Arrow type of ``prediction``.
        predict_proba: Takes a pandas DataFrame, returns an ``(n, classes)`` array; given only
            when probabilities are asked for.
        classes: The class labels of ``predict_proba``'s columns.
        threads: How many chunks to predict at once.
    """

    def __init__(
        self,
        model_uri: str,
        predict: Callable[[Any], Any] | None,
        columns: Sequence[str],
        result_type: pa.DataType,
        *,
        predict_proba: Callable[[Any], Any] | None = None,
        classes: Sequence[Any] | None = None,
        threads: int = 1,
    ) -> None:
        self.model_uri = model_uri
        self._predict = predict
        self.columns = list(columns)
        self.result_type = result_type
        self._predict_proba = predict_proba
        self._classes = pa.array([str(c) for c in classes or ()], pa.string())
        self.threads = threads

    def fields(self) -> list[pa.Field]:
        """The columns ``score`` appends."""
        out = [pa.field(PREDICTION, self.result_type)] if self._predict is not None else []
        if self._predict_proba is not None:
            out.append(pa.field(PROBABILITY, PROBABILITY_TYPE))
        return out

    def score(self, chunk: pa.Table) -> pa.Table:
        """``chunk`` with ``prediction`` (and ``probability``) appended."""
        frame = chunk.select(self.columns).to_pandas()
        out = chunk
        if self._predict is not None:
            out = out.append_column(PREDICTION, self._as_result(self._call(self._predict, frame)))
        if self._predict_proba is not None:
            out = out.append_column(
                PROBABILITY, self._as_map(self._call(self._predict_proba, frame))
            )
        return out

    def _call(self, method: Callable[[Any], Any], frame: Any) -> Any:
        try:
            return method(frame)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InferenceError(
                f"model {self.model_uri} failed to predict on columns "
                f"{', '.join(self.columns)}: {type(exc).__name__}: {first}"
            ) from exc

    def _as_result(self, values: Any) -> pa.Array:
        return prediction_array(
            values,
            self.result_type,
            model_uri=self.model_uri,
            need="batch inference",
            verb="stored",
            error=InferenceError,
        )

    def _as_map(self, values: Any) -> pa.Array:
        """An ``(n, classes)`` array as one ``{class: probability}`` map per row."""
        import numpy as np

        array = np.asarray(values, dtype=np.float64)
        classes = len(self._classes)
        if array.ndim != 2 or array.shape[1] != classes:
            raise InferenceError(
                f"model {self.model_uri} returned probabilities of shape {array.shape} for "
                f"{classes} classes"
            )
        rows = array.shape[0]
        offsets = pa.array(np.arange(0, rows * classes + 1, classes, dtype=np.int32))
        keys = self._classes.take(pa.array(np.tile(np.arange(classes), rows)))
        return pa.MapArray.from_arrays(offsets, keys, pa.array(array.ravel()))


def chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """The stream in tables of ``rows`` rows (the last one shorter), without copying data."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def ordered_map(
    fn: Callable[[T], R], items: Iterator[T], threads: int, *, single_threaded: bool = True
) -> Iterator[R]:
    """``fn`` over ``items`` on ``threads`` threads; results in the items' order.

    At most ``threads + 1`` items are in flight: the input is read only as fast as results are
    taken. With ``single_threaded`` every pool thread limits OpenMP to one thread (for itself
    only: OpenMP's thread count is a per-thread setting), and BLAS runs on one thread until the
    map ends (a process-wide setting): OpenBLAS threads called from several Python threads spin
    waiting for work, which took 5 times the CPU of the predictions themselves.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    controller = _threadpools() if single_threaded else None
    initializer = partial(_one_openmp_thread, controller) if controller is not None else None
    pending: deque[Future[R]] = deque()
    with (
        _single_threaded_blas(controller),
        ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="lakestack-predict", initializer=initializer
        ) as pool,
    ):
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _threadpools() -> Any:
    """The native thread pools loaded (BLAS, OpenMP), found once per map (about 13 ms)."""
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return None
    return ThreadpoolController()


@contextmanager
def _single_threaded_blas(controller: Any) -> Iterator[None]:
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def _one_openmp_thread(controller: Any) -> None:
    controller.limit(limits=1, user_api="openmp")
