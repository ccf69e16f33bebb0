"""Metrics by model type, checked against scikit-learn called directly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from lakestack.errors import EvaluationError
from lakestack.lifecycle.metrics import (
    CLASSIFIER,
    CLASSIFIER_METRICS,
    REGRESSOR,
    REGRESSOR_METRICS,
    builtin_metrics,
    compute_metrics,
)


@pytest.fixture(scope="module")
def iris_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1, 2], 40)
    x = y[:, None] + rng.normal(0, 0.9, (120, 2))
    return x, y


def test_multiclass_metrics_match_sklearn(iris_like: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris_like
    model = LogisticRegression().fit(x, y)
    pred, proba = model.predict(x), model.predict_proba(x)
    got = compute_metrics(CLASSIFIER, y, pred, y_proba=proba, classes=model.classes_)
    assert got.notes == {}
    assert set(got.values) == set(CLASSIFIER_METRICS)
    assert got.values["accuracy_score"] == pytest.approx(skm.accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        assert got.values[f"precision_{avg}"] == pytest.approx(
            skm.precision_score(y, pred, average=avg)
        )
        assert got.values[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert got.values[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert got.values["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert got.values["log_loss"] == pytest.approx(skm.log_loss(y, proba))


def test_binary_roc_auc_uses_the_positive_class_probability() -> None:
    rng = np.random.default_rng(1)
    y = np.array(["no", "yes"] * 50)
    x = (y == "yes")[:, None] + rng.normal(0, 1.0, (100, 1))
    model = LogisticRegression().fit(x, y)
    proba = model.predict_proba(x)
    got = compute_metrics(CLASSIFIER, y, model.predict(x), y_proba=proba, classes=model.classes_)
    assert got.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", proba[:, 1]))
    # not the hard labels' AUC, the mistake a reference project makes
    hard = skm.roc_auc_score(y == "yes", model.predict(x) == "yes")
    assert got.values["roc_auc"] != pytest.approx(hard)


def test_without_probabilities_roc_auc_and_log_loss_are_left_out_with_a_note() -> None:
    got = compute_metrics(CLASSIFIER, [0, 1, 1, 0], [0, 1, 0, 0])
    assert "roc_auc" not in got.values and "log_loss" not in got.values
    assert got.notes == {
        "roc_auc": "not computed: the model has no predict_proba",
        "log_loss": "not computed: the model has no predict_proba",
    }
    assert got.values["accuracy_score"] == 0.75


def test_roc_auc_with_a_single_class_in_the_labels_is_left_out() -> None:
    proba = np.array([[0.2, 0.8], [0.4, 0.6]])
    got = compute_metrics(CLASSIFIER, [1, 1], [1, 1], y_proba=proba, classes=[0, 1])
    assert "roc_auc" not in got.values
    assert (
        got.notes["roc_auc"]
        == "not computed: a class of the model has no rows in the labels, so ROC AUC is undefined"
    )
    assert got.values["log_loss"] == pytest.approx(skm.log_loss([1, 1], proba, labels=[0, 1]))


def test_labels_the_model_never_saw_leave_probability_metrics_out() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    got = compute_metrics(CLASSIFIER, [1, 2], [1, 0], y_proba=proba, classes=[0, 1])
    assert got.notes["log_loss"] == "not computed: labels 2 are not classes the model knows (0, 1)"


def test_regressor_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, 200)
    pred = y + rng.normal(0, 1, 200)
    got = compute_metrics(REGRESSOR, y, pred)
    assert set(got.values) == set(REGRESSOR_METRICS)
    expected = {
        "root_mean_squared_error": skm.root_mean_squared_error(y, pred),
        "mean_squared_error": skm.mean_squared_error(y, pred),
        "mean_absolute_error": skm.mean_absolute_error(y, pred),
        "mean_absolute_percentage_error": skm.mean_absolute_percentage_error(y, pred),
        "r2_score": skm.r2_score(y, pred),
        "max_error": skm.max_error(y, pred),
    }
    assert got.values == pytest.approx(expected)


def test_custom_metrics_get_labels_predictions_and_probabilities() -> None:
    seen = {}

    def spread(y_true, y_pred, y_proba):  # type: ignore[no-untyped-def]
        seen["proba"] = y_proba
        return float(np.sum(np.abs(y_pred - y_true + 1) ** 2))

    got = compute_metrics(REGRESSOR, [1.0, 2.0], [1.5, 2.5], custom={"spread": spread})
    assert got.values["spread"] == pytest.approx(1.5**2 * 2)
    assert seen["proba"] is None


def test_a_failing_custom_metric_is_named() -> None:
    def broken(y_true, y_pred, y_proba):  # type: ignore[no-untyped-def]
        return {}["x"]

    with pytest.raises(EvaluationError) as err:
        compute_metrics(REGRESSOR, [1.0], [1.0], custom={"broken": broken})
    assert str(err.value) == (
        "custom metric 'broken' failed: KeyError: 'x'; it is called as fn(y_true, y_pred, "
        "y_proba) and must return a number"
    )


def test_predictions_of_another_kind_than_the_labels_are_refused() -> None:
    with pytest.raises(
        EvaluationError,
        match=r"cannot be scored against the labels .* as a classifier: .*check --label and --model_type",
    ):
        compute_metrics(CLASSIFIER, np.array([0.1, 0.7, 0.3]), np.array([0.2, 0.5, 0.4]))


def test_an_unknown_model_type() -> None:
    with pytest.raises(EvaluationError) as err:
        builtin_metrics("ranker")
    assert (
        str(err.value) == "model_type 'ranker' is not supported; use one of classifier, regressor"
    )
