"""Model-quality metrics from counts and sums, against scikit-learn on the same rows."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from sklearn import metrics

from lakestack.monitoring.quality import (
    canonical_class,
    classification_metrics,
    probability_metrics,
    regression_metrics,
)


def confusion(truth: list[str], predicted: list[str]) -> list[tuple[str, str, int]]:
    return [(p, t, n) for (p, t), n in Counter(zip(predicted, truth, strict=True)).items()]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("classes", [["0", "1"], ["a", "b", "c", "d"]])
def test_classification_matches_sklearn(seed: int, classes: list[str]) -> None:
    rng = np.random.default_rng(seed)
    truth = list(rng.choice(classes, 60))
    predicted = list(rng.choice(classes[:-1], 60))  # one class is never predicted
    found = classification_metrics(confusion(truth, predicted))
    assert found["accuracy_score"] == pytest.approx(metrics.accuracy_score(truth, predicted))
    labels = sorted(set(truth) | set(predicted))
    for name, func in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1_score", metrics.f1_score),
    ):
        for average in ("macro", "weighted"):
            expected = func(truth, predicted, average=average, zero_division=0)
            assert found[name][average] == pytest.approx(expected), (name, average)
        per_class = func(truth, predicted, average=None, labels=labels, zero_division=0)
        assert found[name]["one_vs_all"] == pytest.approx(dict(zip(labels, per_class, strict=True)))
    matrix = metrics.confusion_matrix(truth, predicted, labels=labels)
    counts = {(c["prediction"], c["label"]): c["count"] for c in found["confusion_matrix"]}
    assert counts == {
        (p, t): int(matrix[i, j])
        for i, t in enumerate(labels)
        for j, p in enumerate(labels)
        if matrix[i, j]
    }


def test_nothing_labelled_gives_no_metrics() -> None:
    assert classification_metrics([]) == {}
    assert regression_metrics(0, None, None, None, None) == {}


@pytest.mark.parametrize("seed", [0, 3])
def test_binary_probabilities_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = list(rng.choice(["0", "1"], 80))
    scores = np.clip(rng.random(80) + (np.array(truth) == "1") * 0.3, 0, 1)
    scores[:5] = 1.0  # ties and a certain wrong answer: clipped in the log loss
    maps = [{"0": 1 - s, "1": s} for s in scores]
    expected_auc = metrics.roc_auc_score([t == "1" for t in truth], scores)
    expected_loss = metrics.log_loss(truth, [[1 - s, s] for s in scores], labels=["0", "1"])
    for given in (maps, list(scores)):
        found = probability_metrics(truth, given)
        assert found["roc_auc"] == pytest.approx(expected_auc)
        assert found["log_loss"] == pytest.approx(expected_loss)


def test_multiclass_probabilities_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    classes = ["a", "b", "c"]
    truth = list(rng.choice(classes, 90))
    raw = rng.random((90, 3))
    matrix = raw / raw.sum(axis=1, keepdims=True)
    maps = [dict(zip(classes, row, strict=True)) for row in matrix]
    found = probability_metrics(truth, maps)
    assert found["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(truth, matrix, multi_class="ovr", average="macro", labels=classes)
    )
    assert found["log_loss"] == pytest.approx(metrics.log_loss(truth, matrix, labels=classes))


def test_probabilities_of_one_class_are_undefined() -> None:
    assert probability_metrics(["1", "1"], [0.2, 0.9]) == {"roc_auc": None, "log_loss": None}
    assert probability_metrics(["0", "1"], [None, None]) == {"roc_auc": None, "log_loss": None}


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 50)
    y[0] = 0.0  # a zero label: the percentage error's floor
    p = y + rng.normal(0, 1, 50)
    found = regression_metrics(
        50,
        float(np.sum((y - p) ** 2)),
        float(np.sum(np.abs(y - p))),
        float(np.sum(np.abs(y - p) / np.maximum(np.abs(y), np.finfo(float).eps))),
        float(np.var(y)),
    )
    assert found["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y, p))
    assert found["root_mean_squared_error"] == pytest.approx(
        math.sqrt(metrics.mean_squared_error(y, p))
    )
    assert found["mean_absolute_error"] == pytest.approx(metrics.mean_absolute_error(y, p))
    assert found["mean_absolute_percentage_error"] == pytest.approx(
        metrics.mean_absolute_percentage_error(y, p)
    )
    assert found["r2_score"] == pytest.approx(metrics.r2_score(y, p))


def test_r2_of_constant_labels_follows_sklearn() -> None:
    assert regression_metrics(3, 0.0, 0.0, 0.0, 0.0)["r2_score"] == 1.0
    assert regression_metrics(3, 1.0, 1.0, 0.1, 0.0)["r2_score"] == 0.0
    assert regression_metrics(1, 1.0, 1.0, 0.1, 0.0)["r2_score"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (1.0, "1"), ("1", "1"), ("1.0", "1"), (0.5, "0.5"), ("yes", "yes"), (True, "true")],
)
def test_canonical_class(value: object, text: str) -> None:
    assert canonical_class(value) == text
