"""Model quality of one window: the classification and regression columns of ``:table`` rows.

The refresh counts, per window, model and slice, how often each (prediction, label) pair occurs
and a few sums of errors, in its one DuckDB pass; this module turns those into the Databricks
metric columns with scikit-learn's definitions. Only rows with a label (and a prediction) count:
labels arrive later than predictions, so a window's quality is measured on what is labelled.
ROC AUC and log loss need each row's class probabilities and are computed from them directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "canonical_class",
    "classification_metrics",
    "probability_metrics",
    "probability_scores",
    "regression_metrics",
]

CLASSIFICATION_METRICS = (
    "accuracy_score",
    "precision",
    "recall",
    "f1_score",
    "confusion_matrix",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS = (
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "r2_score",
)
MAPE_EPSILON = 2.220446049250313e-16
"""scikit-learn's floor for ``|label|`` in the percentage error (``np.finfo(float).eps``)."""


def canonical_class(value: Any) -> str:
    """A class label as text, so that ``1``, ``1.0`` and ``"1"`` name the same class."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


def classification_metrics(confusion: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and the confusion matrix from (prediction, label, count).

    Precision, recall and F1 are ``{one_vs_all: {class: value}, macro, weighted}`` over the
    classes seen as a label or a prediction, as ``sklearn.metrics.precision_recall_fscore_support``
    with ``zero_division=0``: macro is the plain mean over classes, weighted weighs each class by
    its number of labels. Empty when nothing is labelled.
    """
    total = sum(count for _, _, count in confusion)
    if total == 0:
        return {}
    classes = sorted({c for p, label, _ in confusion for c in (p, label)})
    correct = dict.fromkeys(classes, 0)
    predicted = dict.fromkeys(classes, 0)
    actual = dict.fromkeys(classes, 0)
    for prediction, label, count in confusion:
        predicted[prediction] += count
        actual[label] += count
        if prediction == label:
            correct[label] += count
    precision = {c: _ratio(correct[c], predicted[c]) for c in classes}
    recall = {c: _ratio(correct[c], actual[c]) for c in classes}
    f1 = {c: _ratio(2 * correct[c], predicted[c] + actual[c]) for c in classes}
    return {
        "accuracy_score": sum(correct.values()) / total,
        "precision": _averaged(precision, actual, total),
        "recall": _averaged(recall, actual, total),
        "f1_score": _averaged(f1, actual, total),
        "confusion_matrix": [
            {"prediction": p, "label": label, "count": int(n)}
            for p, label, n in sorted(confusion)
            if n
        ],
    }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _averaged(
    values: Mapping[str, float], support: Mapping[str, int], total: int
) -> dict[str, Any]:
    return {
        "one_vs_all": dict(values),
        "macro": sum(values.values()) / len(values),
        "weighted": sum(values[c] * support[c] for c in values) / total,
    }


def probability_metrics(labels: Sequence[str], probabilities: Sequence[Any]) -> dict[str, Any]:
    """ROC AUC and log loss from each labelled row's class probabilities.

    Args:
        labels: The rows' labels, as ``canonical_class`` text.
        probabilities: Per row, a mapping of class to probability (the inference table's
            ``probability`` map), or one number: the probability of the positive class of a
            binary problem, the greater of the two classes in sort order.

    Returns:
        ``roc_auc`` (binary: of the positive class; more classes: one-vs-rest, macro average,
        undefined when a class has no label) and ``log_loss`` (probabilities normalised per row
        and clipped to [ε, 1 - ε]), as ``sklearn.metrics.roc_auc_score`` and ``log_loss``
        compute them; ``None`` when undefined (one class only, no probabilities).
    """
    import numpy as np

    rows = [(y, p) for y, p in zip(labels, probabilities, strict=True) if p is not None]
    truth = [y for y, _ in rows]
    if len(set(truth)) < 2:
        return {"roc_auc": None, "log_loss": None}
    if all(isinstance(p, (int, float)) for _, p in rows):
        classes = sorted(set(truth))
        if len(classes) != 2:
            return {"roc_auc": None, "log_loss": None}
        positive = np.array([float(p) for _, p in rows])
        matrix = np.column_stack([1.0 - positive, positive])
    else:
        maps = [_as_mapping(p) for _, p in rows]
        classes = sorted({c for m in maps for c in m} | set(truth))
        matrix = np.array([[m.get(c, 0.0) for c in classes] for m in maps], dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    return probability_scores(np.array([index[label] for label in truth]), matrix)


def probability_scores(y: Any, matrix: Any) -> dict[str, Any]:
    """ROC AUC and log loss of labels ``y`` (column indexes of ``matrix``) and the rows' class
    probabilities ``matrix`` (one column per class, classes in sort order).

    The vectorised core of ``probability_metrics``, for a window's labelled rows at once.
    """
    import numpy as np

    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "log_loss": None}
    if matrix.shape[1] == 2:
        auc = _roc_auc(y == 1, matrix[:, 1])
    else:
        per_class = [_roc_auc(y == i, matrix[:, i]) for i in range(matrix.shape[1])]
        known = [a for a in per_class if a is not None]
        auc = float(np.mean(known)) if len(known) == len(per_class) else None
    return {"roc_auc": auc, "log_loss": _log_loss(y, matrix)}


def _roc_auc(positive: Any, score: Any) -> float | None:
    """The area under the ROC curve: the Mann-Whitney U statistic over n₊ · n₋, ties halved."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y: Any, matrix: Any) -> float:
    import numpy as np

    sums = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)
    eps = np.finfo(np.float64).eps
    picked = np.clip(shares[np.arange(len(y)), y], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def _as_mapping(value: Any) -> dict[str, float]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return {canonical_class(k): float(v) for k, v in pairs}


def regression_metrics(
    count: int,
    sum_squared_error: float | None,
    sum_absolute_error: float | None,
    sum_absolute_percentage_error: float | None,
    label_variance: float | None,
) -> dict[str, Any]:
    """MSE, RMSE, MAE, MAPE and R² from sums over the labelled rows (scikit-learn's definitions).

    Args:
        count: Labelled rows with a prediction.
        sum_squared_error: Σ (label - prediction)².
        sum_absolute_error: Σ |label - prediction|.
        sum_absolute_percentage_error: Σ |label - prediction| / max(|label|, ε).
        label_variance: The population variance of the labels (for R²).

    R² is 1 - SS_res / SS_tot; with constant labels it is 1 for a perfect fit and 0 otherwise,
    as scikit-learn's ``force_finite``; undefined (``None``) with fewer than two rows.
    """
    if count == 0 or sum_squared_error is None:
        return {}
    mse = sum_squared_error / count
    total = (label_variance or 0.0) * count
    if count < 2:
        r2 = None
    elif total == 0:
        r2 = 1.0 if sum_squared_error == 0 else 0.0
    else:
        r2 = 1.0 - sum_squared_error / total
    return {
        "mean_squared_error": mse,
        "root_mean_squared_error": math.sqrt(mse),
        "mean_absolute_error": (sum_absolute_error or 0.0) / count,
        "mean_absolute_percentage_error": (sum_absolute_percentage_error or 0.0) / count,
        "r2_score": r2,
    }
