"""The *evaluate* task of a deployment job: score a new model version against the champion.

The candidate (``models:/<name>/<version>``) and the current champion (the ``champion`` alias)
are scored on the same validation rows, from a table, a SQL query or a DataFrame. Metrics come
by model type (``lakestack.lifecycle.metrics``), plus the project's own; thresholds follow
MLflow's ``MetricThreshold`` rules. What MLOps Stacks' validation notebook does, without its
gaps: the baseline comparison works for feature-store models too (both models are scored
through ``score_batch``, so their features are looked up), and ROC AUC comes from probabilities.

``run_mode`` is MLOps Stacks' switch: ``disabled`` skips the evaluation and passes, ``dry_run``
evaluates and logs but never fails nor sets an alias, ``enabled`` fails the task when a
threshold fails and sets the ``challenger`` alias when all pass. One MLflow run records each
evaluation, and the verdict is published as task values (``passed``, ``metrics``,
``challenger_set``, ``evaluation_run_id``) for the tasks after it.

Run it as a job task::

    - task_key: evaluate
      python_wheel_task:
        package_name: lakestack
        entry_point: evaluate
        named_parameters: {model_name: "{{job.parameters.model_name}}", ...}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.errors import EvaluationError, LakestackError, TaskError
from lakestack.lifecycle.metrics import (
    CLASSIFIER,
    MODEL_TYPES,
    CustomMetric,
    MetricValues,
    Threshold,
    Verdict,
    builtin_metrics,
    compute_metrics,
    judge,
    parse_thresholds,
    resolve_thresholds,
)
from lakestack.lifecycle.validation import ValidationData, score_model

if TYPE_CHECKING:
    from lakestack.lake import Catalog
    from lakestack.registry.client import ModelRegistry, ModelVersionInfo

__all__ = [
    "EVALUATION_PASSED_TAG",
    "EVALUATION_RUN_TAG",
    "RUN_MODES",
    "EvaluationResult",
    "Threshold",
    "Verdict",
    "evaluate_version",
    "load_custom_metrics",
    "load_thresholds",
    "main",
]

DISABLED, DRY_RUN, ENABLED = "disabled", "dry_run", "enabled"
RUN_MODES = (DISABLED, DRY_RUN, ENABLED)
EVALUATION_RUN_TAG = "lakestack.evaluation.run_id"
EVALUATION_PASSED_TAG = "lakestack.evaluation.passed"


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation found and did.

    Attributes:
        model_name: The registered model.
        model_version: The candidate version.
        run_mode: ``disabled``, ``dry_run`` or ``enabled``.
        passed: Every threshold held (True when skipped). In ``dry_run`` this is the real
            verdict, though the task does not fail on it.
        skipped: ``run_mode`` was ``disabled``: nothing was scored or logged.
        metrics: The candidate's metrics.
        baseline_metrics: The champion's metrics (empty without a champion).
        baseline_version: The champion's version, None without one.
        verdicts: One per threshold.
        notes: What was skipped or left out, and why.
        evaluation_run_id: The MLflow run that records the evaluation.
        challenger_set: Whether the ``challenger`` alias now points at the candidate.
        rows: The number of labelled rows scored.
    """

    model_name: str
    model_version: int
    run_mode: str
    passed: bool
    skipped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    baseline_version: int | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evaluation_run_id: str | None = None
    challenger_set: bool = False
    rows: int = 0

    @property
    def failed(self) -> list[Verdict]:
        """The thresholds that did not hold."""
        return [v for v in self.verdicts if not v.passed]

    def summary(self) -> str:
        """One line: the verdict and the failed thresholds."""
        what = f"{self.model_name} version {self.model_version}"
        if self.skipped:
            return f"evaluation of {what} skipped (run_mode disabled)"
        against = (
            f"against champion version {self.baseline_version}"
            if self.baseline_version is not None
            else "with no champion to compare with"
        )
        if self.passed:
            held = f"all {len(self.verdicts)} thresholds held" if self.verdicts else "no thresholds"
            return f"{what} passed evaluation {against}: {held}"
        failed = "; ".join(f"{v.metric}: {v.reason}" for v in self.failed)
        return f"{what} failed evaluation {against}: {failed}"

    def raise_if_failed(self) -> None:
        """Fail the task as ``run_mode: enabled`` asks: a TaskError naming the failed thresholds.

        Does nothing when the evaluation passed, or in ``dry_run`` and ``disabled``.
        """
        if self.run_mode == ENABLED and not self.passed:
            raise TaskError(self.summary())

    def task_values(self) -> dict[str, Any]:
        """The task values the task publishes."""
        return {
            "passed": self.passed,
            "metrics": dict(self.metrics),
            "baseline_metrics": dict(self.baseline_metrics),
            "challenger_set": self.challenger_set,
            "evaluation_run_id": self.evaluation_run_id or "",
        }

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "run_mode": self.run_mode,
            "passed": self.passed,
            "skipped": self.skipped,
            "metrics": self.metrics,
            "baseline_metrics": self.baseline_metrics,
            "baseline_version": self.baseline_version,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "notes": self.notes,
            "evaluation_run_id": self.evaluation_run_id,
            "challenger_set": self.challenger_set,
            "rows": self.rows,
        }


def evaluate_version(
    model_name: str,
    version: int | str,
    *,
    data: Any,
    label: str,
    model_type: str = CLASSIFIER,
    thresholds: Sequence[Threshold | Mapping[str, Any]] | Mapping[str, Any] = (),
    custom_metrics: Sequence[CustomMetric] | Mapping[str, CustomMetric] | str = (),
    run_mode: str = ENABLED,
    baseline_alias: str = "champion",
    registry: ModelRegistry | None = None,
    catalog: Catalog | None = None,
    experiment: str | None = None,
) -> EvaluationResult:
    """Score a model version and the champion on the same rows; judge it; record the verdict.

    Every input is checked before anything is scored: an unknown metric, a bad threshold or a
    missing label column raises and changes nothing. A failed threshold does not raise here
    (see ``EvaluationResult.raise_if_failed``, which the task calls).

    Args:
        model_name: The registered model, e.g. ``main.ml.iris``.
        version: The candidate version (a number, or an alias).
        data: A table name (``catalog.schema.table``), a SQL query over the catalog, or a
            pandas, Polars or Arrow table. It holds the label column and the model's input
            columns (a feature-store model's lookup keys are enough).
        label: The label column.
        model_type: ``classifier`` or ``regressor``.
        thresholds: ``Threshold`` objects or their mappings, or MLflow's
            ``{metric: {threshold: ...}}`` shape.
        custom_metrics: Functions ``fn(y_true, y_pred, y_proba) -> float`` (named after the
            function, or by the mapping's keys), or ``"path/to/file.py:fn1,fn2"``.
        run_mode: ``disabled``, ``dry_run`` or ``enabled``.
        baseline_alias: The alias of the model to compare with.
        registry: The model registry; None means the workspace's (``MLFLOW_TRACKING_URI`` in a
            job).
        catalog: The catalog to read ``data`` and look features up in; None means the
            workspace's.
        experiment: The experiment of the evaluation run; None means the training run's.

    Raises:
        EvaluationError: Bad thresholds, metrics, model type or run mode, or data without the
            label column.
        ModelNotFoundError: No such model or version.
    """
    if run_mode not in RUN_MODES:
        raise EvaluationError(
            f"run_mode '{run_mode}' is not valid; use one of {', '.join(RUN_MODES)}"
        )
    builtin_metrics(model_type)
    custom = _as_custom_metrics(custom_metrics, model_type)
    rules = resolve_thresholds(parse_thresholds(thresholds), model_type, custom)
    if run_mode == DISABLED:
        return _skipped(model_name, version, registry)

    registry = registry or _default_registry()
    registry.tracking.activate()  # model downloads and score_batch use MLflow's current store
    candidate = registry.get_version(model_name, version)
    champion, notes = _champion(registry, model_name, candidate.version, baseline_alias)
    source = ValidationData.load(data, label, catalog)
    notes.extend(source.notes)

    def score(model_uri: str) -> MetricValues:
        predicted = score_model(
            model_uri, source.features(), model_type, source.label_type, catalog
        )
        return compute_metrics(
            model_type, source.labels(), **predicted.as_kwargs(), custom=dict(custom)
        )

    scored = score(candidate.model_uri)
    baseline = score(champion.model_uri) if champion is not None else MetricValues()
    notes.extend(f"{name} {note}" for name, note in scored.notes.items())
    notes.extend(f"champion's {name} {note}" for name, note in baseline.notes.items())
    verdicts = [
        judge(
            rule,
            scored.values.get(rule.metric),
            baseline.values.get(rule.metric),
            has_champion=champion is not None,
            missing=scored.notes.get(rule.metric, ""),
            missing_baseline=baseline.notes.get(rule.metric, ""),
        )
        for rule in rules
    ]
    passed = all(v.passed for v in verdicts)
    is_champion = registry.alias_version(model_name, baseline_alias) == candidate.version
    promote = passed and run_mode == ENABLED and not is_champion
    if run_mode == DRY_RUN:
        notes.append("dry_run: the challenger alias is never set")
    elif passed and is_champion:
        notes.append(f"challenger not set: version {candidate.version} is the champion")
    result = EvaluationResult(
        model_name=model_name,
        model_version=candidate.version,
        run_mode=run_mode,
        passed=passed,
        metrics=scored.values,
        baseline_metrics=baseline.values,
        baseline_version=champion.version if champion is not None else None,
        verdicts=verdicts,
        notes=notes,
        challenger_set=promote,
        rows=source.rows,
    )
    run_id = _log_run(result, registry, candidate, source, rules, label, model_type, experiment)
    result = dataclasses.replace(result, evaluation_run_id=run_id)
    registry.set_version_tags(
        model_name,
        candidate.version,
        {EVALUATION_RUN_TAG: run_id, EVALUATION_PASSED_TAG: str(passed).lower()},
    )
    if promote:
        from lakestack.registry.client import CHALLENGER

        registry.set_alias(model_name, CHALLENGER, candidate.version)
    _publish(result)
    return result


def _skipped(
    model_name: str, version: int | str, registry: ModelRegistry | None
) -> EvaluationResult:
    """``run_mode: disabled``: pass without scoring (the registry only to resolve an alias)."""
    if str(version).strip().isdigit():
        number = int(version)
    else:
        number = (registry or _default_registry()).get_version(model_name, version).version
    result = EvaluationResult(model_name, number, DISABLED, passed=True, skipped=True)
    _publish(result)
    return result


def _champion(
    registry: ModelRegistry, model_name: str, candidate: int, alias: str
) -> tuple[ModelVersionInfo | None, list[str]]:
    """The version to compare with, and a note when there is none."""
    number = registry.alias_version(model_name, alias)
    if number is None:
        return None, [f"{model_name} has no '{alias}' yet: judged on absolute thresholds only"]
    if number == candidate:
        return None, [
            f"version {candidate} is already '{alias}': judged on absolute thresholds only"
        ]
    return registry.get_version(model_name, number), []


def _default_registry() -> ModelRegistry:
    from lakestack.registry.client import ModelRegistry

    return ModelRegistry.default()


def _publish(result: EvaluationResult) -> None:
    from lakestack.jobs.context import publish_task_values

    publish_task_values(result.task_values())


# custom metrics --------------------------------------------------------------------------


def _as_custom_metrics(
    custom: Sequence[CustomMetric] | Mapping[str, CustomMetric] | str, model_type: str
) -> dict[str, CustomMetric]:
    if isinstance(custom, str):
        named = load_custom_metrics(custom) if custom.strip() else {}
    elif isinstance(custom, Mapping):
        named = dict(custom)
    else:
        named = {}
        for fn in custom:
            name = getattr(fn, "__name__", "")
            if not name.isidentifier():
                raise EvaluationError(
                    f"custom metric {fn!r} has no usable name ({name!r}); define it with def, "
                    "or pass a mapping {name: fn}"
                )
            named[name] = fn
    builtin = builtin_metrics(model_type)
    for name, fn in named.items():
        if not callable(fn):
            raise EvaluationError(
                f"custom metric '{name}' is a {type(fn).__name__}, not a function "
                "fn(y_true, y_pred, y_proba) -> float"
            )
        if name in builtin:
            raise EvaluationError(
                f"custom metric '{name}' has the name of a built-in {model_type} metric; rename it"
            )
    return named


def load_custom_metrics(reference: str, *, root: Path | None = None) -> dict[str, CustomMetric]:
    """Functions from a Python file: ``path/to/file.py:fn1,fn2``.

    Args:
        reference: The file (relative to ``root``) and the function names.
        root: The folder a relative path starts from; None means the bundle root (the job's,
            else the bundle found from the working directory, else the working directory).

    Raises:
        EvaluationError: A malformed reference, a missing file, a file that fails to import,
            or a name it does not define.
    """
    import importlib.util

    path_text, sep, names_text = reference.rpartition(":")
    names = [n.strip() for n in names_text.split(",") if n.strip()]
    if not sep or not path_text or not names:
        raise EvaluationError(
            f"custom metrics '{reference}' must look like path/to/file.py:fn1,fn2"
        )
    path = Path(path_text)
    if not path.is_absolute():
        path = (root or _bundle_root()) / path
    if not path.is_file():
        raise EvaluationError(
            f"custom metrics file {path} does not exist; give a path relative to the bundle root"
        )
    module_name = f"lakestack_custom_metrics_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EvaluationError(f"custom metrics file {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise EvaluationError(
            f"custom metrics file {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    found: dict[str, CustomMetric] = {}
    for name in names:
        fn = getattr(module, name, None)
        if fn is None:
            defined = sorted(
                n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            )
            raise EvaluationError(
                f"custom metrics file {path} defines no '{name}' (functions: "
                f"{', '.join(defined) or 'none'})"
            )
        found[name] = fn
    return found


def _bundle_root() -> Path:
    from lakestack.jobs.context import current_context

    ctx = current_context()
    if ctx is not None:
        return Path(ctx.bundle_root)
    from lakestack.bundle.discover import find_bundle_file

    try:
        return find_bundle_file().parent
    except LakestackError:
        return Path.cwd()


# the MLflow run --------------------------------------------------------------------------


def _log_run(
    result: EvaluationResult,
    registry: ModelRegistry,
    candidate: ModelVersionInfo,
    source: ValidationData,
    rules: Sequence[Threshold],
    label: str,
    model_type: str,
    experiment: str | None,
) -> str:
    from lakestack.registry.evaluation import EVALUATION_TAG_PREFIX, log_evaluation_run

    metrics = dict(result.metrics)
    metrics.update({f"baseline_{k}": v for k, v in result.baseline_metrics.items()})
    names = [*result.metrics, *(k for k in result.baseline_metrics if k not in result.metrics)]
    params = {
        "model_name": result.model_name,
        "model_version": result.model_version,
        "baseline_version": result.baseline_version if result.baseline_version is not None else "",
        "model_type": model_type,
        "label": label,
        "run_mode": result.run_mode,
        "rows": result.rows,
        **source.params,
    }
    tags = {
        f"{EVALUATION_TAG_PREFIX}model_name": result.model_name,
        f"{EVALUATION_TAG_PREFIX}model_version": str(result.model_version),
        f"{EVALUATION_TAG_PREFIX}baseline_version": str(result.baseline_version or ""),
        f"{EVALUATION_TAG_PREFIX}passed": str(result.passed).lower(),
        f"{EVALUATION_TAG_PREFIX}run_mode": result.run_mode,
        "mlflow.note.content": result.summary(),
    }
    if candidate.run_id:
        tags[f"{EVALUATION_TAG_PREFIX}training_run_id"] = candidate.run_id
    texts = {"evaluation/validation_query.sql": source.query} if source.query else {}
    verdicts = [v.to_dict() for v in result.verdicts]
    return log_evaluation_run(
        registry,
        experiment=experiment,
        training_run_id=candidate.run_id,
        run_name=f"evaluate-{result.model_name}-v{result.model_version}",
        params=params,
        metrics=metrics,
        tags=tags,
        tables={
            "evaluation/thresholds.json": {
                key: [v[key] for v in verdicts]
                for key in ("metric", "value", "baseline", "rule", "passed", "reason")
            },
            "evaluation/metrics.json": {
                "metric": names,
                "candidate": [result.metrics.get(n) for n in names],
                "baseline": [result.baseline_metrics.get(n) for n in names],
            },
        },
        documents={
            "evaluation/result.json": result.to_dict(),
            "evaluation/thresholds_config.json": {"thresholds": [r.to_dict() for r in rules]},
        },
        texts=texts,
    )


# the task --------------------------------------------------------------------------------


def load_thresholds(value: str, *, root: Path | None = None) -> list[Threshold]:
    """Thresholds from a task parameter: JSON text, or a JSON or YAML file's path.

    Raises:
        EvaluationError: Malformed JSON or YAML, a missing file, or bad thresholds.
    """
    import yaml

    text = value.strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            return parse_thresholds(json.loads(text))
        except ValueError as exc:
            raise EvaluationError(f"--thresholds is not valid JSON: {exc}") from None
    path = Path(text)
    if not path.is_absolute():
        path = (root or _bundle_root()) / path
    if not path.is_file():
        raise EvaluationError(
            f"--thresholds {text}: no such file ({path}); pass a JSON list or the path of a "
            "JSON or YAML file relative to the bundle root"
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise EvaluationError(f"thresholds file {path} is not valid YAML or JSON: {exc}") from None
    if isinstance(loaded, Mapping) and set(loaded) == {"thresholds"}:
        loaded = loaded["thresholds"]
    return parse_thresholds(loaded)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate",
        description=(
            "Evaluate a model version against the champion; set the challenger alias when it "
            "passes (the evaluate task of a deployment job)."
        ),
    )

    def option(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", dest=name, **kwargs)

    option("model_name", required=True, help="the registered model, catalog.schema.model")
    option("model_version", required=True, help="the candidate version")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--validation_table", help="catalog.schema.table with the label")
    data.add_argument("--validation_query", help="SQL over the catalog, with the label")
    option("label", required=True, help="the label column")
    option("model_type", default=CLASSIFIER, choices=MODEL_TYPES)
    option("thresholds", default="", help="a JSON list, or a JSON/YAML file path")
    option("custom_metrics", default="", help="path/to/file.py:fn1,fn2")
    option("run_mode", default=ENABLED, choices=RUN_MODES)
    option("baseline_alias", default="champion")
    option("experiment", default=None, help="the evaluation run's experiment name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``evaluate`` entry point: evaluate, report, fail the task when enabled and failed.

    Raises:
        TaskError: ``run_mode`` enabled and a threshold failed (one line naming them).
        LakestackError: Bad parameters or data (one line saying what to fix).
    """
    args = _parser().parse_args(argv)
    result = evaluate_version(
        args.model_name,
        args.model_version,
        data=args.validation_table or args.validation_query,
        label=args.label,
        model_type=args.model_type,
        thresholds=load_thresholds(args.thresholds),
        custom_metrics=args.custom_metrics,
        run_mode=args.run_mode,
        baseline_alias=args.baseline_alias,
        experiment=args.experiment or None,
    )
    _report(result)
    result.raise_if_failed()
    return 0


def _report(result: EvaluationResult) -> None:
    """The evaluation in the task's log."""
    out = sys.stdout
    out.write(result.summary() + "\n")
    for verdict in result.verdicts:
        state = "PASS" if verdict.passed else "FAIL"
        out.write(f"  {state} {verdict.metric} {verdict.rule}: {verdict.reason}\n")
    for note in result.notes:
        out.write(f"  note: {note}\n")
    if result.evaluation_run_id:
        out.write(f"  MLflow run: {result.evaluation_run_id}\n")
    out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LakestackError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)
