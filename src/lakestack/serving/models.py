"""A model version loaded to serve: its input schema and a predict function for batches of rows.

scikit-learn models whose inputs are all numbers predict on a float array: a copy of the
estimator without its ``feature_names_in_`` takes the array as it is, which skips pandas
(about 130 µs per DataFrame) and sklearn's feature-name checks (about 340 µs per call); when
every value is finite, the checks a finite array would pass are skipped too (see
:func:`_on_array`). The copy
is used only after it predicted exactly what the model predicts on a DataFrame for the first
batch; otherwise, and for every other model, rows become a DataFrame typed from the signature,
as MLflow's scoring server builds it. Other flavors are called through pyfunc, one request at a
time (they may take ``params``, and their outputs may not split by row).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakestack.registry import load_model
from lakestack.serving.protocol import ColumnSpec, InputSchema

__all__ = ["ServedModel", "load_served_model", "read_schema", "to_jsonable"]

_log = logging.getLogger(__name__)

_PANDAS_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
}


@dataclass(frozen=True)
class ServedModel:
    """One model version ready to answer.

    Attributes:
        name: The registered model (``catalog.schema.model``).
        version: The version number.
        schema: The input columns, from the signature (else the fitted feature names).
        predict: Takes the rows of a batch (a float array on the numeric path, else a list of
            row lists) and returns one prediction per row; ``params`` go to pyfunc models.
        batchable: Requests may be predicted together (scikit-learn models).
        flavor: ``sklearn`` or ``python_function``.
    """

    name: str
    version: int
    schema: InputSchema
    predict: Callable[..., Any]
    batchable: bool
    flavor: str

    @property
    def model_id(self) -> str:
        """``<name>/<version>``, as inference tables and response headers name it."""
        return f"{self.name}/{self.version}"

    @functools.cached_property
    def header(self) -> bytes:
        """:attr:`model_id` as a response header value, encoded once."""
        return self.model_id.encode("latin-1", "replace")


def read_schema(path: Path, fitted: list[str] | None) -> InputSchema:
    """The input schema in a model folder's MLmodel signature; else the fitted columns."""
    import yaml

    meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8")) or {}
    inputs = (meta.get("signature") or {}).get("inputs")
    if inputs:
        try:
            spec = json.loads(inputs)
        except ValueError:
            spec = None
        if (
            isinstance(spec, list)
            and spec
            and all(isinstance(c, dict) and "name" in c for c in spec)
        ):
            return InputSchema.of(
                [
                    ColumnSpec(str(c["name"]), str(c.get("type")), bool(c.get("required", True)))
                    for c in spec
                ]
            )
    if fitted:
        return InputSchema.of([ColumnSpec(name) for name in fitted])
    return InputSchema.of(None)


def load_served_model(name: str, version: int, model_uri: str) -> ServedModel:
    """Load a registered model version (MLflow's current tracking URI must be the registry's).

    Raises:
        RegistryError: The model cannot be downloaded or loaded.
    """
    loaded = load_model(model_uri)
    schema = read_schema(loaded.path, loaded.input_columns if loaded.flavor == "sklearn" else None)
    if loaded.flavor == "sklearn":
        native = getattr(loaded.predict, "__self__", None)
        return ServedModel(name, version, schema, _sklearn_predict(native, schema), True, "sklearn")
    return ServedModel(
        name, version, schema, _pyfunc_predict(loaded.predict, schema), False, loaded.flavor
    )


def _frame(rows: Any, schema: InputSchema, columns: list[str] | None = None) -> Any:
    """A DataFrame of the rows, typed as MLflow's scoring server types it."""
    import pandas as pd

    names = schema.names or columns
    frame = pd.DataFrame(rows if hasattr(rows, "shape") else list(rows), columns=names)
    if schema.columns is not None and not hasattr(rows, "shape"):
        for column in schema.columns:
            dtype = _PANDAS_TYPES.get(column.type or "")
            if dtype and dtype != "object" and frame[column.name].notna().all():
                frame[column.name] = frame[column.name].astype(dtype)
    elif schema.columns is not None:
        for column in schema.columns:
            dtype = _PANDAS_TYPES.get(column.type or "")
            if dtype and dtype not in ("float64", "object"):
                frame[column.name] = frame[column.name].astype(dtype)
    return frame


def _sklearn_predict(native: Any, schema: InputSchema) -> Callable[..., Any]:
    """Predict on the float array when a name-free copy agrees with the model, else on frames."""
    if native is None:
        raise ValueError("a scikit-learn model without an estimator")
    twin = _name_free(native) if schema.numeric else None
    fast = _on_array(twin) if twin is not None else None
    state: dict[str, Any] = {"fast": fast, "checked": fast is None}

    def on_frame(rows: Any, params: Any = None, columns: list[str] | None = None) -> Any:
        return native.predict(_frame(rows, schema, columns))

    def predict(rows: Any, params: Any = None, columns: list[str] | None = None) -> Any:
        on_array = state["fast"]
        if on_array is None or not hasattr(rows, "shape"):
            return on_frame(rows, params, columns)
        if not state["checked"]:
            import numpy as np

            state["checked"] = True
            try:
                mine, theirs = on_array(rows), on_frame(rows)
            except Exception:
                _log.debug("array predictions failed", exc_info=True)
                state["fast"] = None
                return on_frame(rows)
            if not np.array_equal(mine, theirs):
                _log.warning("array predictions differ from the model's; predicting on frames")
                state["fast"] = None
            return theirs
        return on_array(rows)

    return predict


def _on_array(estimator: Any) -> Callable[[Any], Any]:
    """``estimator.predict`` on a float array, without the checks a finite array would pass.

    When every value is finite, sklearn's finiteness check is skipped (``assume_finite``), and a
    plain linear classifier (``LinearClassifierMixin.predict``: LogisticRegression, RidgeClassifier,
    SGDClassifier...) is computed as sklearn computes it, ``classes_[argmax(X @ coef_.T +
    intercept_)]``, without its per-call validation (25 of its 29 µs for one row). Other input
    goes through ``predict`` unchanged, so NaN is still refused or handled as the model does.
    """
    import numpy as np
    import sklearn

    linear = _linear_parts(estimator)

    def predict(rows: Any) -> Any:
        if not np.isfinite(rows).all():
            return estimator.predict(rows)
        if linear is not None and rows.ndim == 2 and rows.shape[1] == linear[0].shape[0]:
            coef_t, intercept, classes = linear
            scores = rows @ coef_t + intercept
            if scores.shape[1] == 1:
                indices = (scores[:, 0] > 0).astype(np.int64)
            else:
                indices = scores.argmax(axis=1)
            return np.take(classes, indices, axis=0)
        with sklearn.config_context(assume_finite=True):
            return estimator.predict(rows)

    return predict


def _linear_parts(estimator: Any) -> tuple[Any, Any, Any] | None:
    """``(coef_.T, intercept_, classes_)`` of a dense linear classifier using sklearn's predict."""
    import numpy as np

    kind = type(estimator)
    for method in ("predict", "decision_function"):
        qualname = getattr(getattr(kind, method, None), "__qualname__", "")
        if qualname != f"LinearClassifierMixin.{method}":
            return None
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    classes = getattr(estimator, "classes_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.dtype != np.float64:
        return None  # sparsified or unusual coefficients: let sklearn handle them
    if not isinstance(intercept, (np.ndarray, float, int)) or not isinstance(classes, np.ndarray):
        return None
    return coef.T, intercept, classes


def _name_free(model: Any) -> Any | None:
    """A copy of a plain estimator (or a Pipeline of them) that takes unnamed arrays."""
    steps = getattr(model, "steps", None)
    parts = [step for _, step in steps] if steps is not None else [model]
    for part in parts:
        if part in (None, "passthrough"):
            continue
        if hasattr(part, "transformers_"):
            return None  # a column transformer selects columns by name: it needs a DataFrame
    twin = copy.deepcopy(model)
    for part in [twin, *([s for _, s in twin.steps] if steps is not None else [])]:
        if hasattr(part, "feature_names_in_"):
            try:
                del part.feature_names_in_
            except AttributeError:
                return None
    return twin


def _pyfunc_predict(predict: Callable[..., Any], schema: InputSchema) -> Callable[..., Any]:
    def call(rows: Any, params: Any = None, columns: list[str] | None = None) -> Any:
        frame = _frame(rows, schema, columns)
        return predict(frame, params=params) if params else predict(frame)

    return call


def to_jsonable(predictions: Any) -> Any:
    """What MLflow's scoring server answers for a prediction result: lists and records."""
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        return predictions.to_dict(orient="records")
    if hasattr(predictions, "tolist"):
        return predictions.tolist()
    return predictions
