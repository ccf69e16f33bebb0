"""Validation rows and scores for the *evaluate* task: the data (a table, a SQL query or a
DataFrame) and what a model predicts on it, with probabilities when it has them; feature-store
models are scored through ``score_batch`` so that their features are looked up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.errors import EvaluationError, LakestackError
from lakestack.lifecycle.metrics import (
    CLASSIFIER,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from lakestack.lake import Catalog
    from lakestack.registry.evaluation import EvaluationModel

__all__ = ["PREDICTION", "Scores", "ValidationData", "score_model"]

PREDICTION = "prediction"

# validation data -------------------------------------------------------------------------


@dataclass
class ValidationData:
    """The validation rows, with the label checked and unlabelled rows dropped."""

    table: pa.Table
    label: str
    describe: str
    params: dict[str, Any]
    notes: list[str]
    query: str | None = None

    @classmethod
    def load(cls, data: Any, label: str, catalog: Catalog | None) -> ValidationData:
        import pyarrow.compute as pc

        from lakestack.lake.arrow import as_arrow

        query: str | None = None
        params: dict[str, Any] = {}
        if isinstance(data, str):
            text = data.strip()
            lake = catalog or _default_catalog()
            if _is_table_name(text):
                table_obj = lake.table(text)
                table = table_obj.read()
                describe = f"validation table {table_obj.name}"
                params = {
                    "validation_table": table_obj.name,
                    "validation_version": table_obj.version,
                }
            else:
                table = lake.sql(text)
                describe, query = "the validation query's result", text
                params = {"validation_query": " ".join(text.split())}
        else:
            try:
                table = as_arrow(data)
            except LakestackError:
                raise EvaluationError(
                    f"validation data is a {type(data).__name__}; pass a table name, a SQL "
                    "query, or a pandas, Polars or Arrow table"
                ) from None
            describe = "the validation DataFrame"
            params = {"validation_data": "DataFrame"}
        if label not in table.column_names:
            raise EvaluationError(
                f"{describe} has no label column '{label}' (columns: "
                f"{', '.join(table.column_names)}); pass the label column's name as label"
            )
        notes = []
        unlabelled = table.column(label).null_count
        if unlabelled:
            table = table.filter(pc.is_valid(table.column(label)))
            notes.append(f"{unlabelled} rows of {describe} have no label and were left out")
        if table.num_rows == 0:
            raise EvaluationError(
                f"{describe} has no rows with a label in '{label}'; nothing to evaluate on"
            )
        return cls(table, label, describe, params, notes, query)

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def label_type(self) -> pa.DataType:
        return self.table.schema.field(self.label).type

    def labels(self) -> Any:
        return self.table.column(self.label).to_numpy()

    def features(self) -> pa.Table:
        return self.table.drop_columns([self.label])


def _is_table_name(text: str) -> bool:
    from lakestack.lake.names import InvalidNameError, parse_table_name

    try:
        parse_table_name(text)
    except InvalidNameError:
        return False
    return True


def _default_catalog() -> Catalog:
    from lakestack.lake import default_catalog

    return default_catalog()


# scoring ---------------------------------------------------------------------------------


@dataclass
class Scores:
    predictions: Any
    probabilities: Any = None
    classes: list[Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {"y_pred": self.predictions, "y_proba": self.probabilities, "classes": self.classes}


def score_model(
    model_uri: str,
    rows: pa.Table,
    model_type: str,
    label_type: pa.DataType,
    catalog: Catalog | None,
) -> Scores:
    """Predictions (and a classifier's probabilities) of one model on the validation rows.

    A feature-store model is scored through ``score_batch``, which looks its features up; its
    probabilities come from the same looked-up features.
    """
    from lakestack.features.spec import FEATURE_SPEC_FILE
    from lakestack.registry.evaluation import load_evaluation_model

    model = load_evaluation_model(model_uri)
    wants_proba = model_type == CLASSIFIER and model.predict_proba is not None
    spec_file = model.path / FEATURE_SPEC_FILE
    if spec_file.exists():
        return _score_with_features(model, spec_file, rows, model_type, label_type, catalog)
    frame = rows.to_pandas()
    columns = model.input_columns
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise EvaluationError(
                f"the validation data lacks columns {', '.join(missing)} that model "
                f"{model_uri} takes (it has: {', '.join(frame.columns)})"
            )
        frame = frame[columns]
    predictions = _call(model, model.predict, frame)
    if predictions.ndim == 2 and predictions.shape[1] == 1:  # a pyfunc's one-column frame
        predictions = predictions[:, 0]
    if not wants_proba:
        return Scores(predictions)
    assert model.predict_proba is not None
    return Scores(predictions, _call(model, model.predict_proba, frame), model.classes)


def _score_with_features(
    model: EvaluationModel,
    spec_file: Path,
    rows: pa.Table,
    model_type: str,
    label_type: pa.DataType,
    catalog: Catalog | None,
) -> Scores:
    from lakestack.features import FeatureEngineeringClient, FeatureSpec

    fe = FeatureEngineeringClient(catalog)
    scored = fe.score_batch(model.model_uri, rows, result_type=_result_type(model_type, label_type))
    predictions = scored.column(PREDICTION).to_numpy()
    if model_type != CLASSIFIER or model.predict_proba is None:
        return Scores(predictions)
    spec = FeatureSpec.from_yaml(spec_file.read_text(encoding="utf-8"), source=model.model_uri)
    columns = spec.model_input_columns or model.input_columns
    features = scored.select(columns) if columns else scored.drop_columns([PREDICTION])
    return Scores(
        predictions, _call(model, model.predict_proba, features.to_pandas()), model.classes
    )


def _result_type(model_type: str, label_type: pa.DataType) -> str:
    """``score_batch``'s result type: the label's kind, so predictions compare with labels."""
    import pyarrow as pa

    if model_type != CLASSIFIER:
        return "double"
    if pa.types.is_string(label_type) or pa.types.is_large_string(label_type):
        return "string"
    if pa.types.is_boolean(label_type):
        return "boolean"
    if pa.types.is_integer(label_type):
        return "long"
    return "double"


def _call(model: EvaluationModel, fn: Callable[[Any], Any], frame: Any) -> Any:
    import numpy as np

    try:
        return np.asarray(fn(frame))
    except LakestackError:
        raise
    except Exception as exc:
        raise EvaluationError(
            f"model {model.model_uri} failed to score the validation data: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc
