"""The MLflow side of model evaluation: load a model with its probabilities, log the evaluation run.

``lakestack.lifecycle.evaluate`` decides what to score and how to judge it; everything that
touches MLflow is here, because only the registry layer imports ``mlflow``.

A classifier's ROC AUC and log loss need class probabilities, which MLflow's pyfunc interface
does not expose. A scikit-learn model is therefore loaded natively (once) and both its
``predict`` and its ``predict_proba`` are kept; other flavors load through
``lakestack.registry.models.load_model`` and have no probabilities.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakestack.errors import RegistryError
from lakestack.registry.client import ModelRegistry
from lakestack.registry.config import mlflow_errors
from lakestack.registry.models import download_model, load_model

__all__ = [
    "EVALUATION_TAG_PREFIX",
    "EvaluationModel",
    "load_evaluation_model",
    "log_evaluation_run",
]

EVALUATION_TAG_PREFIX = "lakestack.evaluation."
_MAX_PARAM = 6000  # MLflow's limit on a param value


@dataclass(frozen=True)
class EvaluationModel:
    """A model loaded to be evaluated.

    Attributes:
        model_uri: The URI it was loaded from.
        predict: Takes a pandas DataFrame, returns one prediction per row.
        predict_proba: Takes a pandas DataFrame, returns an ``(n, classes)`` array; None when
            the model has no probabilities (a regressor, a pyfunc model, ``SVC()``).
        classes: The class labels of ``predict_proba``'s columns, in order; None without it.
        input_columns: The columns the model was fitted on or declares; None when unknown.
        flavor: ``sklearn`` (loaded natively) or ``python_function``.
        path: The local folder of the model's artifacts.
    """

    model_uri: str
    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None
    classes: list[Any] | None
    input_columns: list[str] | None
    flavor: str
    path: Path


def load_evaluation_model(model_uri: str) -> EvaluationModel:
    """Download and load a model, keeping ``predict_proba`` when it has one.

    Raises:
        RegistryError: No such model, or its artifacts cannot be loaded.
    """
    import yaml

    path = download_model(model_uri)
    mlmodel = path / "MLmodel"
    if not mlmodel.exists():
        raise RegistryError(f"{model_uri} is not an MLflow model: it has no MLmodel file")
    meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    flavors = meta.get("flavors") or {}
    if "sklearn" not in flavors:
        loaded = load_model(model_uri, path=path)
        return EvaluationModel(
            model_uri, loaded.predict, None, None, loaded.input_columns, loaded.flavor, path
        )
    with mlflow_errors(f"loading model {model_uri}"):
        import mlflow.sklearn

        native = mlflow.sklearn.load_model(str(path))
    fitted = getattr(native, "feature_names_in_", None)
    columns = [str(c) for c in fitted] if fitted is not None else None
    if columns is None:
        columns = _signature_columns((meta.get("signature") or {}).get("inputs"))
    # getattr, not hasattr alone: SVC(probability=False).predict_proba raises AttributeError
    proba = getattr(native, "predict_proba", None)
    classes = getattr(native, "classes_", None)
    return EvaluationModel(
        model_uri=model_uri,
        predict=native.predict,
        predict_proba=proba if callable(proba) and classes is not None else None,
        classes=list(classes) if proba is not None and classes is not None else None,
        input_columns=columns,
        flavor="sklearn",
        path=path,
    )


def log_evaluation_run(
    registry: ModelRegistry,
    *,
    experiment: str | None,
    training_run_id: str | None,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    tables: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    documents: Mapping[str, Mapping[str, Any]] | None = None,
    texts: Mapping[str, str] | None = None,
) -> str:
    """Log one finished evaluation run; return its id.

    The run goes to ``experiment`` (a name, created if missing), else to the experiment of the
    model's training run, else to MLflow's Default experiment. Params, metrics and tags go in
    one batch (a metric costs ~3 ms on SQLite when logged one by one).

    Args:
        registry: The registry of the model (its tracking store gets the run).
        experiment: The experiment's name, or None for the training run's.
        training_run_id: The run that logged the model version, if known.
        run_name: The run's name.
        params: Logged as params (values longer than MLflow's limit are cut).
        metrics: Logged as metrics.
        tags: Set on the run.
        tables: ``{artifact file: {column: values}}``, logged with ``log_table`` so that the
            MLflow UI shows them as tables.
        documents: ``{artifact file: dict}``, logged as JSON.
        texts: ``{artifact file: text}``.

    Raises:
        RegistryError: MLflow refused the run or an artifact.
    """
    from mlflow.entities import Metric, Param, RunStatus

    client = registry.client
    with mlflow_errors(f"logging the evaluation run {run_name}"):
        experiment_id = (
            registry.create_experiment(experiment)
            if experiment
            else _training_experiment(client, training_run_id)
        )
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
        run_id = str(run.info.run_id)
        try:
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                params=[Param(k, _param_value(v)) for k, v in params.items()],
            )
            for name, columns in (tables or {}).items():
                client.log_table(run_id, {k: list(v) for k, v in columns.items()}, name)
            for name, document in (documents or {}).items():
                client.log_dict(run_id, dict(document), name)
            for name, text in (texts or {}).items():
                client.log_text(run_id, text, name)
        except BaseException:
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id


def _training_experiment(client: Any, training_run_id: str | None) -> str:
    """The experiment of the training run, else MLflow's default one."""
    if training_run_id:
        from mlflow.exceptions import MlflowException

        try:
            return str(client.get_run(training_run_id).info.experiment_id)
        except MlflowException:  # the training run was deleted
            pass
    return os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"


def _signature_columns(inputs: str | None) -> list[str] | None:
    if not inputs:
        return None
    try:
        spec = json.loads(inputs)
    except ValueError:
        return None
    names = [str(col["name"]) for col in spec if isinstance(col, dict) and "name" in col]
    return names if names and len(names) == len(spec) else None


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."
