"""The evaluate task checks its inputs before it scores anything (no MLflow needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakestack.errors import EvaluationError
from lakestack.jobs.context import CONTEXT_ENV, VALUES_FILE, TaskContext
from lakestack.lifecycle.evaluate import (
    EvaluationResult,
    Threshold,
    evaluate_version,
    load_custom_metrics,
    load_thresholds,
    main,
)
from lakestack.lifecycle.metrics import Verdict


class UntouchableRegistry:
    """A registry that fails the test when used: inputs are checked first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the registry was used ({name}) before the inputs were checked")


@pytest.fixture(autouse=True)
def outside_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def evaluate(**kwargs: Any) -> EvaluationResult:
    args: dict[str, Any] = {
        "data": "main.iris.validation",
        "label": "species",
        "registry": UntouchableRegistry(),
    }
    args.update(kwargs)
    return evaluate_version("main.ml.iris", 2, **args)


def test_an_unknown_metric_fails_before_any_scoring() -> None:
    with pytest.raises(EvaluationError) as err:
        evaluate(thresholds=[{"metric": "accuracy", "threshold": 0.9}])
    assert str(err.value).startswith(
        "threshold on unknown metric 'accuracy' for a classifier; did you mean 'accuracy_score'? "
        "(known metrics: accuracy_score, "
    )


def test_custom_metric_names_count_as_known() -> None:
    def lift(y_true: Any, y_pred: Any, y_proba: Any) -> float:
        return 1.0

    result = evaluate(
        thresholds=[Threshold("lift", threshold=1.0, greater_is_better=True)],
        custom_metrics=[lift],
        run_mode="disabled",
    )
    assert result.skipped and result.passed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_mode": "on"}, "run_mode 'on' is not valid; use one of disabled, dry_run, enabled"),
        (
            {"model_type": "ranker"},
            "model_type 'ranker' is not supported; use one of classifier, regressor",
        ),
        (
            {"custom_metrics": {"accuracy_score": lambda t, p, q: 1.0}},
            "custom metric 'accuracy_score' has the name of a built-in classifier metric; rename it",
        ),
        (
            {"custom_metrics": [lambda t, p, q: 1.0]},
            "has no usable name ('<lambda>'); define it with def, or pass a mapping {name: fn}",
        ),
        (
            {"custom_metrics": {"x": 3}},
            "custom metric 'x' is a int, not a function fn(y_true, y_pred, y_proba) -> float",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError) as err:
        evaluate(**kwargs)
    assert message in str(err.value)


def test_disabled_skips_passes_and_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "attempt" / "out"
    context = TaskContext(
        run_id=1,
        job_id="deploy",
        job_name="deploy",
        task_key="evaluate",
        attempt=1,
        target="dev",
        bundle_root=str(tmp_path),
        workspace_root=str(tmp_path / ".lakestack"),
        output_dir=str(out),
    )
    context.write(tmp_path / "attempt" / "context.json")
    monkeypatch.setenv(CONTEXT_ENV, str(tmp_path / "attempt" / "context.json"))
    result = evaluate(run_mode="disabled", thresholds=[{"metric": "f1_macro", "threshold": 0.99}])
    assert result.skipped and result.passed and not result.challenger_set
    assert result.evaluation_run_id is None and result.verdicts == []
    assert result.summary() == "evaluation of main.ml.iris version 2 skipped (run_mode disabled)"
    result.raise_if_failed()
    values = json.loads((out / VALUES_FILE).read_text())
    assert values == {
        "passed": True,
        "metrics": {},
        "baseline_metrics": {},
        "challenger_set": False,
        "evaluation_run_id": "",
    }


def test_only_enabled_fails_on_a_failed_threshold() -> None:
    verdict = Verdict(
        "f1_macro", 0.5, 0.7, ">= champion + 0.01", False, "0.5 < champion 0.7 + 0.01"
    )
    failed = EvaluationResult(
        "m", 3, "enabled", passed=False, verdicts=[verdict], baseline_version=2
    )
    with pytest.raises(Exception) as err:
        failed.raise_if_failed()
    assert str(err.value) == (
        "m version 3 failed evaluation against champion version 2: "
        "f1_macro: 0.5 < champion 0.7 + 0.01"
    )
    EvaluationResult("m", 3, "dry_run", passed=False, verdicts=[verdict]).raise_if_failed()


def test_custom_metrics_load_from_a_file_relative_to_the_root(tmp_path: Path) -> None:
    folder = tmp_path / "validation"
    folder.mkdir()
    (folder / "helpers.py").write_text("OFFSET = 1\n")
    (folder / "validation.py").write_text(
        "from helpers import OFFSET\n\n"
        "def plus_one(y_true, y_pred, y_proba):\n    return float(len(y_true) + OFFSET)\n\n"
        "def zero(y_true, y_pred, y_proba):\n    return 0.0\n"
    )
    found = load_custom_metrics("validation/validation.py:plus_one, zero", root=tmp_path)
    assert list(found) == ["plus_one", "zero"]
    assert found["plus_one"]([1, 2], [1, 2], None) == 3.0


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("validation.py", "custom metrics 'validation.py' must look like path/to/file.py:fn1,fn2"),
        (
            "nowhere.py:f",
            "custom metrics file {root}/nowhere.py does not exist; give a path relative to the bundle root",
        ),
        (
            "metrics.py:missing",
            "custom metrics file {root}/metrics.py defines no 'missing' (functions: lift)",
        ),
        (
            "broken.py:f",
            "custom metrics file {root}/broken.py failed to import: ZeroDivisionError: division by zero",
        ),
    ],
)
def test_bad_custom_metric_references(tmp_path: Path, reference: str, message: str) -> None:
    (tmp_path / "metrics.py").write_text("def lift(y_true, y_pred, y_proba):\n    return 1.0\n")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    with pytest.raises(EvaluationError) as err:
        load_custom_metrics(reference, root=tmp_path)
    assert str(err.value) == message.format(root=tmp_path)


def test_thresholds_from_json_text_or_a_yaml_file(tmp_path: Path) -> None:
    assert load_thresholds('[{"metric": "f1_macro", "threshold": 0.8}]') == [
        Threshold("f1_macro", threshold=0.8)
    ]
    assert load_thresholds('{"max_error": {"threshold": 5, "greater_is_better": false}}') == [
        Threshold("max_error", threshold=5, greater_is_better=False)
    ]
    (tmp_path / "thresholds.yml").write_text(
        "thresholds:\n  - metric: roc_auc\n    min_absolute_change: 0.01\n"
    )
    assert load_thresholds("thresholds.yml", root=tmp_path) == [
        Threshold("roc_auc", min_absolute_change=0.01)
    ]
    assert load_thresholds("") == []


def test_bad_threshold_parameters(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=r"^--thresholds is not valid JSON: Expecting value"):
        load_thresholds("[f1]")
    with pytest.raises(EvaluationError) as err:
        load_thresholds("missing.yml", root=tmp_path)
    assert str(err.value) == (
        f"--thresholds missing.yml: no such file ({tmp_path}/missing.yml); pass a JSON list or "
        "the path of a JSON or YAML file relative to the bundle root"
    )


def test_the_task_refuses_an_unknown_metric_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="threshold on unknown metric 'rmse' for a regressor"):
        main(
            [
                "--model_name=main.ml.taxi",
                "--model_version=3",
                "--validation_table=main.taxi.validation",
                "--label=fare",
                "--model_type=regressor",
                '--thresholds=[{"metric": "rmse", "threshold": 5}]',
            ]
        )


def test_the_task_needs_one_data_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--model_name=m", "--model_version=1", "--label=y"])
    assert exit_.value.code == 2
    assert (
        "one of the arguments --validation_table --validation_query is required"
        in capsys.readouterr().err
    )
