"""Batch inference: score a table with a registered model into an inference table.

``score_table`` streams the input through the model into a Delta table of the inference shape
(DESIGN §7: the input columns, ``prediction``, ``model_id``, ``timestamp``); the
``batch_inference`` entry point runs it as a job task.
"""

from __future__ import annotations

from lakestack.inference.batch import (
    MODEL_ID,
    MODES,
    TIMESTAMP,
    BatchResult,
    ModelRef,
    resolve_model,
    score_table,
)

__all__ = [
    "MODEL_ID",
    "MODES",
    "TIMESTAMP",
    "BatchResult",
    "ModelRef",
    "resolve_model",
    "score_table",
]
