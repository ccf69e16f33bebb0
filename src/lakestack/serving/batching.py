"""Micro-batching: concurrent requests to one served entity share one ``predict`` call.

Everything runs on the event loop, so nothing needs a lock. A request that finds the entity
idle (nothing queued, nothing arriving, no other request predicted in this loop turn, the last
batch alone) is predicted at once, inline (:meth:`Batcher.now`): no future and no extra loop
turn, which were most of what a lone request cost beyond the model. Otherwise its rows join the
entity's queue and a flush is scheduled with ``call_soon``: it runs after every request the loop
has already started in this turn has parsed its body and joined, so a burst becomes one batch.
When requests for the entity have started but not yet joined (a body still arriving), the flush
waits for them at most ``wait_seconds``; ``max_rows`` flushes at once. The batch is predicted
inline (a scikit-learn call on a few rows takes about 50 µs: cheaper than a thread hop) by the
model current at flush time, and each request gets its own slice of the predictions and the
model that made them.

The batcher knows nothing of what happens to an answer. The application may give it an
``on_batch`` hook, called with every predicted batch *before* any of its requests can be
answered (a lone request predicted inline is a batch of one): the inference table spools a
whole batch in one line there, so a request is spooled before it is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakestack.serving.models import ServedModel
    from lakestack.serving.protocol import Scoring

__all__ = ["BatchHook", "Batcher", "Queued"]

Answer = tuple[Any, "ServedModel"]


class Queued:
    """A request of a predicted batch, as the ``on_batch`` hook sees it.

    Attributes:
        scoring: Its rows.
        request_id: The server's id of the request.
        started: When the server began on it (``time.perf_counter``).
    """

    __slots__ = ("request_id", "scoring", "started")

    def __init__(self, scoring: Scoring, request_id: str, started: float) -> None:
        self.scoring = scoring
        self.request_id = request_id
        self.started = started


class _Waiting(Queued):
    """A request waiting in a batch; ``future`` gets its slice of the predictions and the model."""

    __slots__ = ("future",)

    def __init__(
        self, scoring: Scoring, request_id: str, started: float, future: asyncio.Future[Answer]
    ) -> None:
        super().__init__(scoring, request_id, started)
        self.future = future


BatchHook = Callable[[Sequence[Queued], Any, Any, "ServedModel"], None]
"""``on_batch(requests, rows, predictions, model)``: the requests of a predicted batch, their rows
concatenated in that order, the predictions of those rows, the model that made them."""


class Batcher:
    """The queue of one served entity.

    Args:
        current: Returns the entity's model now (it changes when an alias moves).
        max_rows: Flush once this many rows are queued.
        wait_seconds: The longest a batch waits for requests that have started but not joined.
        on_batch: Called with every predicted batch before any of its requests can be answered:
            before the futures of :meth:`submit`'s requests are resolved, and before
            :meth:`now` returns a lone request's predictions. When it raises, each of the
            batch's requests fails with its error. Settable later as the ``on_batch`` attribute.
    """

    def __init__(
        self,
        current: Callable[[], ServedModel],
        *,
        max_rows: int,
        wait_seconds: float,
        on_batch: BatchHook | None = None,
    ) -> None:
        self._current = current
        self._max_rows = max_rows
        self._wait = wait_seconds
        self.on_batch = on_batch
        self._queue: list[_Waiting] = []
        self._rows = 0
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._crowded = False
        self.arriving = 0
        self.batches = 0

    def now(self, scoring: Scoring, request_id: str = "", started: float = 0.0) -> Answer | None:
        """Predict a lone request at once; None when it must queue (call :meth:`submit`).

        A request is predicted inline when it finds nothing queued, nothing arriving, no other
        request predicted inline in this loop turn, and the last batch was a lone request. The
        requests the loop runs after it in the same turn queue and share one batch, and while
        batches keep having company every request queues: under load a model that costs per
        call (a forest: 3 ms for one row, 5 ms for forty) is called once per turn, not twice.

        ``request_id`` and ``started`` are passed on to ``on_batch``, which spools the request
        (a batch of one) before this returns.

        Raises:
            Exception: Whatever the model raises for these rows, or ``on_batch`` for them.
        """
        if self._queue or self._busy or self._crowded or self.arriving > 0:
            return None
        self._busy = True
        asyncio.get_running_loop().call_soon(self._idle)
        model = self._current()
        self.batches += 1
        predictions = model.predict(scoring.rows, scoring.params, scoring.columns)
        if self.on_batch is not None:
            self.on_batch([Queued(scoring, request_id, started)], scoring.rows, predictions, model)
        return predictions, model

    def _idle(self) -> None:
        self._busy = False

    def submit(
        self, scoring: Scoring, request_id: str = "", started: float = 0.0
    ) -> asyncio.Future[Answer]:
        """Queue a request's rows; the future gives its predictions and the model.

        ``request_id`` and ``started`` (``time.perf_counter``) are passed on to ``on_batch``.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._queue.append(_Waiting(scoring, request_id, started, future))
        self._rows += len(scoring)
        if self._rows >= self._max_rows:
            self._flush()
        elif self._timer is not None and self.arriving <= 0:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._turn)
        return future

    def _turn(self) -> None:
        self._scheduled = False
        if not self._queue or self._timer is not None:
            return
        if self.arriving > 0 and self._wait > 0:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue, self._queue, self._rows = self._queue, [], 0
        live = [q for q in queue if not q.future.done()]  # timed-out requests are gone
        if not live:
            return
        model = self._current()
        self.batches += 1
        self._crowded = len(live) > 1
        if len(live) == 1:
            self._answer_one(model, live[0])
            return
        rows = _concatenated([q.scoring for q in live])
        try:
            predictions = model.predict(rows, None, live[0].scoring.columns)
        except Exception:  # one request's rows may be what fails: answer each on its own
            for queued in live:
                self._answer_one(model, queued)
            return
        if not self._reported(live, rows, predictions, model):
            return
        start = 0
        for queued in live:
            end = start + len(queued.scoring)
            queued.future.set_result((predictions[start:end], model))
            start = end

    def _answer_one(self, model: ServedModel, queued: _Waiting) -> None:
        scoring = queued.scoring
        try:
            predictions = model.predict(scoring.rows, scoring.params, scoring.columns)
        except Exception as exc:
            queued.future.set_exception(exc)
            return
        if self._reported([queued], scoring.rows, predictions, model):
            queued.future.set_result((predictions, model))

    def _reported(
        self, batch: list[_Waiting], rows: Any, predictions: Any, model: ServedModel
    ) -> bool:
        """Give a predicted batch to ``on_batch``; False (each request failed) when it raised."""
        if self.on_batch is None:
            return True
        try:
            self.on_batch(batch, rows, predictions, model)
        except Exception as exc:
            for queued in batch:
                queued.future.set_exception(exc)
            return False
        return True


def _concatenated(items: list[Scoring]) -> Any:
    first = items[0].rows
    if hasattr(first, "shape"):
        import numpy as np

        return np.concatenate([s.rows for s in items])
    rows: list[Any] = []
    for scoring in items:
        rows.extend(scoring.rows)
    return rows
