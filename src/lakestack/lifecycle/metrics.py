"""Evaluation metrics by model type, and the threshold rules that judge a candidate by them.

Metrics come from ``sklearn.metrics``, never written by hand. A classifier's ROC AUC and log
loss are computed from class probabilities (never from hard labels, the mistake a reference
project makes); a model without ``predict_proba`` gets neither, with a note saying why.

Thresholds follow MLflow's ``MetricThreshold`` rules (``mlflow.models.evaluation.validation``):

- ``threshold``: the value must be ``>= threshold`` (or ``<=`` when lower is better);
- ``min_absolute_change``: ``>= champion + change`` (or ``<= champion - change``);
- ``min_relative_change``: ``(value - champion) / |champion| >= change`` (lower is better:
  ``(champion - value) / |champion|``); with a champion value of 0 the candidate must simply be
  better, by at least 1e-10.

Two deliberate differences. A value equal to its bound within float rounding (a relative
1e-12) meets it: 0.95 does reach 0.9 + 0.05, which MLflow's float sum rejects. Without a
champion the change rules are skipped with a note (the first version has nothing to beat),
where MLflow would fail them as a missing baseline.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from lakestack.errors import EvaluationError, did_you_mean

__all__ = [
    "CLASSIFIER",
    "CLASSIFIER_METRICS",
    "MODEL_TYPES",
    "REGRESSOR",
    "REGRESSOR_METRICS",
    "CustomMetric",
    "MetricDef",
    "MetricValues",
    "Threshold",
    "Verdict",
    "builtin_metrics",
    "compute_metrics",
    "judge",
    "parse_thresholds",
    "resolve_thresholds",
]

CLASSIFIER, REGRESSOR = "classifier", "regressor"
MODEL_TYPES = (CLASSIFIER, REGRESSOR)

CustomMetric = Callable[[Any, Any, Any], float]
"""``(y_true, y_pred, y_proba) -> float``; ``y_proba`` is None without probabilities."""

_TOLERANCE = 1e-12
_ZERO_BASELINE_STEP = 1e-10  # MLflow's "simply better" step when the champion's value is 0


@dataclass(frozen=True)
class MetricDef:
    """A built-in metric: its name, direction and definition."""

    name: str
    greater_is_better: bool
    definition: str
    needs_proba: bool = False


def _defs(*items: MetricDef) -> dict[str, MetricDef]:
    return {item.name: item for item in items}


CLASSIFIER_METRICS = _defs(
    MetricDef("accuracy_score", True, "share of rows predicted right"),
    MetricDef("precision_macro", True, "precision per class, unweighted mean"),
    MetricDef("precision_weighted", True, "precision per class, mean weighted by support"),
    MetricDef("recall_macro", True, "recall per class, unweighted mean"),
    MetricDef("recall_weighted", True, "recall per class, mean weighted by support"),
    MetricDef("f1_macro", True, "F1 per class, unweighted mean"),
    MetricDef("f1_weighted", True, "F1 per class, mean weighted by support"),
    MetricDef(
        "roc_auc",
        True,
        "area under the ROC curve from probabilities: the positive class's for two classes, "
        "one-vs-rest macro mean for more",
        needs_proba=True,
    ),
    MetricDef("log_loss", False, "cross-entropy of the predicted probabilities", True),
)

REGRESSOR_METRICS = _defs(
    MetricDef("root_mean_squared_error", False, "square root of the mean squared error"),
    MetricDef("mean_squared_error", False, "mean of the squared errors"),
    MetricDef("mean_absolute_error", False, "mean of the absolute errors"),
    MetricDef(
        "mean_absolute_percentage_error",
        False,
        "mean of |error| / |label| (a fraction, not a percent)",
    ),
    MetricDef("r2_score", True, "coefficient of determination R²"),
    MetricDef("max_error", False, "largest absolute error"),
)


def builtin_metrics(model_type: str) -> dict[str, MetricDef]:
    """The built-in metrics of a model type.

    Raises:
        EvaluationError: An unknown model type.
    """
    if model_type == CLASSIFIER:
        return CLASSIFIER_METRICS
    if model_type == REGRESSOR:
        return REGRESSOR_METRICS
    raise EvaluationError(
        f"model_type '{model_type}' is not supported; use one of {', '.join(MODEL_TYPES)}"
    )


@dataclass(frozen=True)
class MetricValues:
    """Computed metrics, and a note for each metric that could not be computed."""

    values: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def compute_metrics(
    model_type: str,
    y_true: Any,
    y_pred: Any,
    *,
    y_proba: Any = None,
    classes: Sequence[Any] | None = None,
    custom: Mapping[str, CustomMetric] | None = None,
) -> MetricValues:
    """The built-in metrics of ``model_type`` and the custom ones, for one model's predictions.

    Args:
        model_type: ``classifier`` or ``regressor``.
        y_true: The labels.
        y_pred: The model's predictions, one per label.
        y_proba: ``(n, classes)`` probabilities of a classifier, or None.
        classes: The class of each column of ``y_proba``.
        custom: ``{name: fn(y_true, y_pred, y_proba) -> float}``.

    Raises:
        EvaluationError: Predictions that cannot be compared with the labels, or a custom
            metric that fails or returns no number.
    """
    import numpy as np

    builtin_metrics(model_type)
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    result = MetricValues()
    with warnings.catch_warnings():
        from sklearn.exceptions import UndefinedMetricWarning

        warnings.simplefilter("ignore", UndefinedMetricWarning)  # NaN says it already
        try:
            if model_type == CLASSIFIER:
                _classifier_metrics(result, truth, predicted, y_proba, classes)
            else:
                _regressor_metrics(result, truth, predicted)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(
                f"the predictions ({predicted.dtype}) cannot be scored against the labels "
                f"({truth.dtype}) as a {model_type}: {_first_line(exc)}; check --label and "
                "--model_type"
            ) from exc
    proba = None if y_proba is None else np.asarray(y_proba)
    for name, fn in (custom or {}).items():
        try:
            value = fn(truth, predicted, proba)
            result.values[name] = float(value)
        except Exception as exc:
            raise EvaluationError(
                f"custom metric '{name}' failed: {type(exc).__name__}: {_first_line(exc)}; it is "
                "called as fn(y_true, y_pred, y_proba) and must return a number"
            ) from exc
    return result


def _classifier_metrics(
    result: MetricValues, truth: Any, predicted: Any, proba: Any, classes: Sequence[Any] | None
) -> None:
    from sklearn import metrics as skm

    values = result.values
    values["accuracy_score"] = float(skm.accuracy_score(truth, predicted))
    for average in ("macro", "weighted"):
        kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
        values[f"precision_{average}"] = float(skm.precision_score(truth, predicted, **kwargs))
        values[f"recall_{average}"] = float(skm.recall_score(truth, predicted, **kwargs))
        values[f"f1_{average}"] = float(skm.f1_score(truth, predicted, **kwargs))
    if proba is None or classes is None:
        for name in ("roc_auc", "log_loss"):
            result.notes[name] = "not computed: the model has no predict_proba"
        return
    _probability_metrics(result, truth, proba, list(classes))


def _probability_metrics(result: MetricValues, truth: Any, proba: Any, classes: list[Any]) -> None:
    import numpy as np
    from sklearn import metrics as skm

    scores = np.asarray(proba, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        note = f"not computed: predict_proba gave shape {scores.shape} for {len(classes)} classes"
        result.notes.update(roc_auc=note, log_loss=note)
        return
    unknown = sorted({str(v) for v in np.unique(truth)} - {str(c) for c in classes})
    if unknown:
        note = (
            f"not computed: labels {', '.join(unknown)} are not classes the model knows "
            f"({', '.join(str(c) for c in classes)})"
        )
        result.notes.update(roc_auc=note, log_loss=note)
        return
    result.values["log_loss"] = float(skm.log_loss(truth, scores, labels=classes))
    try:
        if len(classes) == 2:
            roc = skm.roc_auc_score(truth == classes[1], scores[:, 1])
        else:
            roc = skm.roc_auc_score(
                truth, scores, multi_class="ovr", average="macro", labels=classes
            )
    except ValueError as exc:  # a class without positive or negative rows
        result.notes["roc_auc"] = f"not computed: {_first_line(exc)}"
        return
    if math.isnan(roc):  # sklearn's answer (and warning) when a class has no rows
        result.notes["roc_auc"] = (
            "not computed: a class of the model has no rows in the labels, so ROC AUC is undefined"
        )
        return
    result.values["roc_auc"] = float(roc)


def _regressor_metrics(result: MetricValues, truth: Any, predicted: Any) -> None:
    from sklearn import metrics as skm

    truth, predicted = truth.astype(float), predicted.astype(float)
    values = result.values
    values["root_mean_squared_error"] = float(skm.root_mean_squared_error(truth, predicted))
    values["mean_squared_error"] = float(skm.mean_squared_error(truth, predicted))
    values["mean_absolute_error"] = float(skm.mean_absolute_error(truth, predicted))
    values["mean_absolute_percentage_error"] = float(
        skm.mean_absolute_percentage_error(truth, predicted)
    )
    values["r2_score"] = float(skm.r2_score(truth, predicted))
    values["max_error"] = float(skm.max_error(truth, predicted))


# thresholds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A rule a candidate's metric must meet (MLflow's ``MetricThreshold``, plus the metric).

    Attributes:
        metric: The metric's name: a built-in one of the model type, or a custom metric.
        threshold: The value must reach it (``>=``, or ``<=`` when lower is better).
        min_absolute_change: Positive; the value must beat the champion's by this much.
        min_relative_change: In [0, 1]; the value must beat the champion's by this share of
            the champion's magnitude.
        greater_is_better: The metric's direction; None takes a built-in metric's own, and
            means greater is better for a custom metric.
    """

    metric: str
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None

    def __post_init__(self) -> None:
        name = self.metric
        if not isinstance(name, str) or not name:
            raise EvaluationError(f"a threshold needs a metric name, got {name!r}")
        for attribute in ("threshold", "min_absolute_change", "min_relative_change"):
            value = getattr(self, attribute)
            if value is not None and (isinstance(value, bool) or not _is_number(value)):
                raise EvaluationError(
                    f"threshold on {name}: {attribute} must be a number, got {value!r}"
                )
        if self.min_absolute_change is not None and not self.min_absolute_change > 0:
            raise EvaluationError(
                f"threshold on {name}: min_absolute_change must be positive, got "
                f"{self.min_absolute_change}"
            )
        relative = self.min_relative_change
        if relative is not None and not 0 <= relative <= 1:
            raise EvaluationError(
                f"threshold on {name}: min_relative_change must be between 0 and 1 (a share, "
                f"0.05 for 5%), got {relative}"
            )
        if self.greater_is_better is not None and not isinstance(self.greater_is_better, bool):
            raise EvaluationError(
                f"threshold on {name}: greater_is_better must be true or false, got "
                f"{self.greater_is_better!r}"
            )
        if self.threshold is None and self.min_absolute_change is None and relative is None:
            raise EvaluationError(
                f"threshold on {name} sets no rule; give threshold, min_absolute_change or "
                "min_relative_change"
            )

    @property
    def compares_with_champion(self) -> bool:
        """Whether a rule needs the champion's value."""
        return self.min_absolute_change is not None or self.min_relative_change is not None

    def rule(self) -> str:
        """The rules in words, e.g. ``>= 0.9; >= champion + 0.01``."""
        better = self.greater_is_better is not False
        sign, op = ("+", ">=") if better else ("-", "<=")
        parts = []
        if self.threshold is not None:
            parts.append(f"{op} {self.threshold:g}")
        if self.min_absolute_change is not None:
            parts.append(f"{op} champion {sign} {self.min_absolute_change:g}")
        if self.min_relative_change is not None:
            parts.append(f"{op} champion {sign} {self.min_relative_change:.4g} x |champion|")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The threshold as plain data (JSON, YAML)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_THRESHOLD_KEYS = [f.name for f in fields(Threshold)]


def parse_thresholds(spec: Any) -> list[Threshold]:
    """Thresholds from Python objects or parsed JSON/YAML.

    Accepted: ``Threshold`` objects; a list of mappings with a ``metric`` key; a mapping of
    metric name to a mapping or ``Threshold`` (MLflow's ``validation_thresholds`` shape). In a
    mapping, ``higher_is_better`` (the spelling of older MLflow and MLOps Stacks) means
    ``greater_is_better``.

    Raises:
        EvaluationError: An unknown key, a bad value, or a shape that is none of these.
    """
    if spec is None:
        return []
    if isinstance(spec, Threshold):
        return [spec]
    if isinstance(spec, Mapping):
        items: Iterable[Any] = [_with_metric(name, value) for name, value in spec.items()]
    elif isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
        items = spec
    else:
        raise EvaluationError(
            f"thresholds must be a list of {{metric: ..., threshold: ...}} or a mapping of "
            f"metric name to its rules, got {type(spec).__name__}"
        )
    return [_one_threshold(item) for item in items]


def _with_metric(name: Any, value: Any) -> Any:
    if isinstance(value, Threshold):
        if value.metric != name:
            raise EvaluationError(
                f"thresholds['{name}'] is a Threshold on '{value.metric}'; use the same name"
            )
        return value
    if not isinstance(value, Mapping):
        raise EvaluationError(
            f"thresholds['{name}'] must be a mapping such as {{threshold: 0.9}}, got {value!r}"
        )
    return {"metric": name, **value}


def _one_threshold(item: Any) -> Threshold:
    if isinstance(item, Threshold):
        return item
    if not isinstance(item, Mapping):
        raise EvaluationError(
            f"a threshold must be a mapping such as {{metric: accuracy_score, threshold: 0.9}}, "
            f"got {item!r}"
        )
    data = dict(item)
    if "higher_is_better" in data:
        data.setdefault("greater_is_better", data.pop("higher_is_better"))
    for key in data:
        if key not in _THRESHOLD_KEYS:
            hint = did_you_mean(str(key), _THRESHOLD_KEYS)
            where = f"threshold on {data.get('metric', '?')}"
            suffix = f"did you mean '{hint}'?" if hint else f"use {', '.join(_THRESHOLD_KEYS)}"
            raise EvaluationError(f"{where}: unknown key '{key}'; {suffix}")
    if "metric" not in data:
        raise EvaluationError(f"a threshold needs a 'metric' key, got {dict(item)!r}")
    return Threshold(**data)


def resolve_thresholds(
    thresholds: Sequence[Threshold], model_type: str, custom: Iterable[str] = ()
) -> list[Threshold]:
    """Check each threshold's metric and give it its direction.

    Raises:
        EvaluationError: A metric that is neither built in for ``model_type`` nor custom (the
            known ones are listed), or a direction contradicting a built-in metric's.
    """
    builtin = builtin_metrics(model_type)
    custom_names = list(custom)
    known = [*builtin, *custom_names]
    resolved = []
    for item in thresholds:
        name = item.metric
        if name in builtin:
            direction = builtin[name].greater_is_better
            if item.greater_is_better not in (None, direction):
                word = "higher" if direction else "lower"
                raise EvaluationError(
                    f"threshold on {name} says greater_is_better={item.greater_is_better}, but "
                    f"a {word} {name} is better; drop greater_is_better or set it to {direction}"
                )
            resolved.append(_replace(item, greater_is_better=direction))
        elif name in custom_names:
            better = True if item.greater_is_better is None else item.greater_is_better
            resolved.append(_replace(item, greater_is_better=better))
        else:
            hint = did_you_mean(name, known)
            suffix = f"; did you mean '{hint}'?" if hint else ""
            raise EvaluationError(
                f"threshold on unknown metric '{name}' for a {model_type}{suffix} "
                f"(known metrics: {', '.join(known)})"
            )
    return resolved


def _replace(item: Threshold, **changes: Any) -> Threshold:
    return Threshold(**{**item.to_dict(), **changes})


@dataclass(frozen=True)
class Verdict:
    """How a candidate did against one threshold.

    Attributes:
        metric: The metric judged.
        value: The candidate's value (None when it could not be computed).
        baseline: The champion's value (None without a champion or without the metric).
        rule: The threshold's rules in words.
        passed: Whether every rule holds.
        reason: Why it passed or failed, or which rules were skipped.
    """

    metric: str
    value: float | None
    baseline: float | None
    rule: str
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain data."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def judge(
    threshold: Threshold,
    value: float | None,
    baseline: float | None,
    *,
    has_champion: bool,
    missing: str = "",
    missing_baseline: str = "",
) -> Verdict:
    """Judge a candidate's metric value against a threshold (MLflow's rules, see the module).

    Args:
        threshold: A resolved threshold (its direction known).
        value: The candidate's value, None when it was not computed.
        baseline: The champion's value, None when there is no champion or it lacks the metric.
        has_champion: Whether a champion was scored; without one the change rules are skipped.
        missing: Why the candidate's value is missing (for the reason).
        missing_baseline: Why the champion's value is missing.
    """
    better = threshold.greater_is_better is not False
    name, rule = threshold.metric, threshold.rule()

    def verdict(passed: bool, reason: str) -> Verdict:
        return Verdict(name, value, baseline, rule, passed, reason)

    if value is None:
        return verdict(False, f"{name} was not computed for the candidate" + _why(missing))
    failures: list[str] = []
    notes: list[str] = []
    op, bad = (">=", "<") if better else ("<=", ">")
    if threshold.threshold is not None and not _meets(value, threshold.threshold, better):
        failures.append(f"{value:.6g} {bad} {threshold.threshold:g}")
    if threshold.compares_with_champion:
        if not has_champion:
            notes.append("no champion to compare with: change rules skipped")
        elif baseline is None:
            failures.append(f"the champion has no {name}" + _why(missing_baseline))
        else:
            failures.extend(_change_failures(threshold, value, baseline, better, bad))
    if failures:
        return verdict(False, "; ".join(failures + notes))
    return verdict(True, "; ".join([f"{value:.6g} {op} every bound", *notes]))


def _change_failures(
    threshold: Threshold, value: float, baseline: float, better: bool, bad: str
) -> list[str]:
    failures = []
    step = 1.0 if better else -1.0
    if threshold.min_absolute_change is not None:
        bound = baseline + step * threshold.min_absolute_change
        if not _meets(value, bound, better):
            failures.append(
                f"{value:.6g} {bad} champion {baseline:.6g} {'+' if better else '-'} "
                f"{threshold.min_absolute_change:g}"
            )
    relative = threshold.min_relative_change
    if relative is not None:
        if baseline == 0:
            if not _meets(value, step * _ZERO_BASELINE_STEP, better):
                failures.append(
                    f"{value:.6g} is not better than the champion's 0 (a relative change "
                    "from 0 cannot be measured, so the candidate must simply be better)"
                )
        else:
            change = step * (value - baseline) / abs(baseline)
            if not _meets(change, relative, True):
                failures.append(
                    f"relative change {change:.4g} < {relative:.4g} (champion {baseline:.6g})"
                )
    return failures


def _meets(value: float, bound: float, better: bool) -> bool:
    """``value >= bound`` (``<=`` when lower is better), within float rounding; NaN never."""
    if math.isnan(value) or math.isnan(bound):
        return False
    slack = _TOLERANCE * max(1.0, abs(bound))
    return value >= bound - slack if better else value <= bound + slack


def _why(reason: str) -> str:
    return f" ({reason})" if reason else ""


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
