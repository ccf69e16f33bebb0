"""Log models with extra files in their artifacts, tag model versions, load models to score.

scikit-learn models are saved with ``serialization_format="cloudpickle"`` unless the caller says
otherwise: MLflow 3.17's default, skops, refuses to load tree models (HistGradientBoosting,
RandomForest) without a list of trusted types, and these models were trained by the project
itself, so pickle's trust model is the right one. Decided here, once, for every caller.

Scoring loads the native flavor when MLflow has one lakestack knows (scikit-learn): calling
``model.predict`` on a DataFrame skips pyfunc's per-call schema enforcement, which costs about
0.14 ms per column per call and halves the throughput of cheap models. Other flavors go through
``mlflow.pyfunc``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakestack.errors import RegistryError
from lakestack.registry.config import mlflow_errors
from lakestack.registry.lineage import lineage_tags

__all__ = [
    "LoadedModel",
    "LoggedModel",
    "download_model",
    "load_model",
    "log_model",
    "model_version_tags",
    "set_model_version_tags",
]

FilesFor = Callable[[list[str] | None], Mapping[str, str]]


@dataclass(frozen=True)
class LoggedModel:
    """What ``log_model`` logged.

    Attributes:
        model_uri: ``models:/<model id>``, loadable with any MLflow loader.
        run_id: The run the model was logged in.
        model_id: MLflow's logged-model id.
        registered_model_name: The registered model, when one was asked for.
        registered_model_version: Its new version number, when registered.
        signature_inputs: The input column names of the model's signature, if it has one.
        info: MLflow's ``ModelInfo``.
    """

    model_uri: str
    run_id: str | None
    model_id: str | None
    registered_model_name: str | None
    registered_model_version: int | None
    signature_inputs: list[str] | None
    info: Any


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score: a predict function and the columns it takes.

    Attributes:
        predict: Takes a pandas DataFrame, returns predictions (array-like).
        input_columns: The columns the model was fitted on or declares in its signature, in
            order; None when the model does not say.
        flavor: ``sklearn`` when loaded natively, ``python_function`` otherwise.
        path: The local folder of the model's artifacts.
    """

    predict: Callable[[Any], Any]
    input_columns: list[str] | None
    flavor: str
    path: Path


class _FlavorWithFiles:
    """A flavor module whose ``save_model`` also writes extra files into the model folder."""

    def __init__(self, flavor: Any, files_for: FilesFor) -> None:
        self._flavor = flavor
        self._files_for = files_for
        self.__name__ = getattr(flavor, "__name__", "custom")
        self.signature_inputs: list[str] | None = None

    def save_model(self, path: str, mlflow_model: Any = None, **kwargs: Any) -> None:
        self._flavor.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
        signature = getattr(mlflow_model, "signature", None)
        self.signature_inputs = _input_names(signature)
        for name, text in self._files_for(self.signature_inputs).items():
            (Path(path) / name).write_text(text, encoding="utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._flavor, name)


def _input_names(signature: Any) -> list[str] | None:
    inputs = getattr(signature, "inputs", None)
    if inputs is None or not getattr(inputs, "has_input_names", lambda: False)():
        return None
    return [str(name) for name in inputs.input_names()]


def _model_parameter(flavor: Any) -> str:
    """The name of the flavor's model argument (``sk_model``, ``lgb_model``, ``python_model``)."""
    save = getattr(flavor, "save_model", None)
    if save is None:
        raise RegistryError(
            f"{getattr(flavor, '__name__', flavor)!r} is not an MLflow flavor module: it has no "
            "save_model; pass e.g. flavor=mlflow.sklearn"
        )
    for parameter in inspect.signature(save).parameters:
        if parameter == "model" or (parameter.endswith("_model") and parameter != "mlflow_model"):
            return parameter
    raise RegistryError(
        f"cannot tell which argument of {getattr(flavor, '__name__', flavor)}.save_model takes "
        "the model; log it with the flavor's own log_model"
    )


def log_model(
    model: Any,
    *,
    flavor: Any,
    name: str,
    files_for: FilesFor | None = None,
    registered_model_name: str | None = None,
    run_tags: Mapping[str, str] | None = None,
    version_tags: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> LoggedModel:
    """Log ``model`` with ``flavor`` in the active run (a new run if none is active).

    The run and the new model version get the lineage tags (``lakestack.lineage.*``: the run,
    the git commit of the working directory, the tables this process read and their versions),
    merged with ``run_tags`` and ``version_tags`` (which win on the same key).

    Args:
        model: The model object.
        flavor: An MLflow flavor module (``mlflow.sklearn``, ``mlflow.lightgbm``...).
        name: The model's name within the run (MLflow's ``name``, formerly ``artifact_path``).
        files_for: Called with the signature's input names once the flavor has saved the model;
            returns ``{file name: text}`` to write into the model's artifact folder.
        registered_model_name: Register a new version of this model (created if missing).
        run_tags: Tags to set on the run, besides the lineage tags.
        version_tags: Tags to set on the new model version, besides the lineage tags.
        **kwargs: Passed to the flavor (``signature``, ``input_example``, ``pip_requirements``).

    Raises:
        RegistryError: MLflow failed to log or register the model.
    """
    import mlflow
    from mlflow.models import Model

    parameter = _model_parameter(flavor)
    if getattr(flavor, "__name__", "") == "mlflow.sklearn":
        kwargs.setdefault("serialization_format", "cloudpickle")
    wrapped = _FlavorWithFiles(flavor, files_for or (lambda _names: {}))
    started = mlflow.active_run() is None
    with mlflow_errors(f"logging model {name}"):
        run = mlflow.start_run() if started else mlflow.active_run()
        assert run is not None
        lineage = lineage_tags(run.info.run_id)
        try:
            mlflow.set_tags({**lineage, **(run_tags or {})})
            info = Model.log(
                artifact_path=None,
                name=name,
                flavor=wrapped,
                registered_model_name=registered_model_name,
                **{parameter: model},
                **kwargs,
            )
        finally:
            if started:
                mlflow.end_run()
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None:
        set_model_version_tags(
            registered_model_name, int(version), {**lineage, **(version_tags or {})}
        )
    return LoggedModel(
        model_uri=str(info.model_uri),
        run_id=run.info.run_id,
        model_id=getattr(info, "model_id", None),
        registered_model_name=registered_model_name,
        registered_model_version=int(version) if version is not None else None,
        signature_inputs=wrapped.signature_inputs,
        info=info,
    )


def set_model_version_tags(name: str, version: int, tags: Mapping[str, str]) -> None:
    """Set tags on a model version (values are strings)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    with mlflow_errors(f"tagging model {name} version {version}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)


def model_version_tags(name: str, version: int) -> dict[str, str]:
    """The tags of a model version."""
    from mlflow import MlflowClient

    with mlflow_errors(f"reading model {name} version {version}"):
        return dict(MlflowClient().get_model_version(name, str(version)).tags)


def download_model(model_uri: str, dst: Path | None = None) -> Path:
    """The local folder of a model's artifacts (``models:/``, ``runs:/`` or a path).

    Raises:
        RegistryError: The model does not exist (the message names the URI).
    """
    import mlflow

    local = Path(model_uri)
    if "://" not in model_uri and ":/" not in model_uri and local.is_dir():
        return local
    with mlflow_errors(f"loading model {model_uri}"):
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=str(dst) if dst else None
        )
    return Path(path)


def load_model(model_uri: str, *, path: Path | None = None) -> LoadedModel:
    """Load a model for batch scoring: natively when it is scikit-learn, else as pyfunc.

    Args:
        model_uri: The model's URI (for messages, and to download it if ``path`` is None).
        path: The model's local folder, if already downloaded.
    """
    import yaml

    local = path or download_model(model_uri)
    mlmodel = local / "MLmodel"
    if not mlmodel.exists():
        raise RegistryError(f"{model_uri} is not an MLflow model: it has no MLmodel file")
    meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    flavors = meta.get("flavors") or {}
    signature = meta.get("signature") or {}
    declared = _signature_columns(signature.get("inputs"))
    with mlflow_errors(f"loading model {model_uri}"):
        if "sklearn" in flavors:
            import mlflow.sklearn

            native = mlflow.sklearn.load_model(str(local))
            fitted = getattr(native, "feature_names_in_", None)
            columns = [str(c) for c in fitted] if fitted is not None else declared
            return LoadedModel(native.predict, columns, "sklearn", local)
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(str(local))
    return LoadedModel(pyfunc.predict, declared, "python_function", local)


def _signature_columns(inputs: str | None) -> list[str] | None:
    if not inputs:
        return None
    try:
        spec: Sequence[dict[str, Any]] = json.loads(inputs)
    except ValueError:
        return None
    names = [str(col["name"]) for col in spec if isinstance(col, dict) and "name" in col]
    return names if names and len(names) == len(spec) else None
