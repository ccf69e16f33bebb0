"""The benchmarks still run at their smoke sizes, and their correctness checks hold.

Speed is never asserted here (benchmarks/README.md): only that every side ran, produced the
same answers as its reference, and that the report has the ratios the issue sets goals for.
Peers in their own venvs (Feast, Dagster) are left out: CI does not build those venvs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    """``benchmarks/run.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_smoke(harness: ModuleType, name: str, *params: str) -> dict[str, Any]:
    """One benchmark's ``run(args)`` at smoke sizes, as ``run.py --smoke --only name`` does."""
    argv = ["--smoke", "--only", name, "--no-save"]
    for param in params:
        argv += ["-p", param]
    args = harness.parse_args(argv)
    module = harness.discover(args.only)[name]
    result: dict[str, Any] = module.run(args)
    return result


def test_features_sides_run_and_agree(harness: ModuleType) -> None:
    result = run_smoke(harness, "features", "sides=duckdb,lakestack")

    rows = {(row["part"], row["side"]): row for row in result["table"]}
    assert set(rows) == {
        ("pit", "duckdb asof"),
        ("pit", "lakestack"),
        ("score", "raw predict, 1 cpu"),
        ("score", "lakestack score_batch, 1 cpu"),
        ("score", "lakestack lookups only, 1 cpu"),
    }, result["summary"]
    failed = [line for line in result["summary"] if "FAILED" in line or " error: " in line]
    assert failed == []
    assert all(row["ok"] for row in rows.values()), result["summary"]
    assert rows[("pit", "lakestack")]["matched"] == rows[("pit", "duckdb asof")]["matched"]
    assert result["ratios"]["lakestack_over_duckdb_time"] is not None
    assert result["ratios"]["score_batch_over_raw_throughput_1cpu"] is not None


def _bench_module(name: str) -> ModuleType:
    """A ``benchmarks/bench_*.py`` file imported as a module (its ``_common`` beside it)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH_DIR))


def test_features_checks_catch_a_wrong_value() -> None:
    bench_features = _bench_module("bench_features")
    reference = {
        "rows": 3,
        "matched": {"f1": 2},
        "sums": {"f1_00": 3.0},
        "sample": {"0": [1.0], "1": [2.0], "2": [None]},
    }
    dropped_unmatched = {**reference, "rows": 2, "sample": {"0": [1.0], "1": [2.0]}}
    wrong = {**reference, "sample": {"0": [1.0], "1": [2.5], "2": [None]}}

    assert bench_features.compare_pit(reference, reference) == []
    assert bench_features.compare_pit(reference, dropped_unmatched) == []
    problems = bench_features.compare_pit(reference, wrong)
    assert len(problems) == 1
    assert "row_id 1" in problems[0]


def test_orchestration_lakestack_side_runs(harness: ModuleType) -> None:
    result = run_smoke(harness, "orchestration", "sides=lakestack")

    sides = {row["side"]: row for row in result["table"]}
    assert set(sides) == {"lakestack cold", "lakestack warm"}, result["summary"]
    assert all(row["ok"] for row in sides.values()), result["summary"]


def test_inference_sides_run_and_agree(harness: ModuleType) -> None:
    result = run_smoke(harness, "inference")
    sides = {row["side"]: row for row in result["table"]}
    expected = {
        f"{model} {side}"
        for model in ("lr", "hgb")
        for side in (
            "raw predict",
            "lakestack score_table",
            "seeds' way",
            "lakestack score_table, big",
        )
    }
    assert set(sides) == expected, result["summary"]
    assert all(row["ok"] for row in sides.values()), result["summary"]
    for model in ("LogisticRegression", "HistGradientBoosting"):
        assert any(line.startswith(f"{model}: lakestack/raw") for line in result["summary"])


def test_serving_sides_run_and_capture_everything(harness: ModuleType) -> None:
    result = run_smoke(harness, "serving")
    rows = {(row["side"], row["c"]) for row in result["table"]}
    assert rows == {
        ("lakestack", 1),
        ("lakestack", 8),
        ("lakestack + inference table", 1),
        ("lakestack + inference table", 8),
        ("floor", 1),
        ("floor", 8),
    }, result["summary"]
    assert all(row["ok"] for row in result["table"]), result["summary"]
    assert any(line.startswith("inference table on/off") for line in result["summary"])


def test_the_serving_goals_read_the_p99_against_the_hosts_floor() -> None:
    goals = _bench_module("bench_serving")._goals

    def row(model: str, side: str, req_s: float, p99_ms: float) -> dict[str, object]:
        return {"model": model, "side": side, "c": 1, "req_s": req_s, "p99_ms": p99_ms, "ok": True}

    table = [row("lr", "lakestack", 5000, 0.5), row("lr", "mlflow", 400, 3.0)]
    sides = ["lakestack", "mlflow", "floor"]
    assert goals(table, ["lr"], sides, [1]) == [
        "LogisticRegression c=1: lakestack/mlflow req/s 12.5x, p99 0.17x"
        " (goal >= 10x req/s and p99 <= 0.1x) NOT MET"
    ]
    floor = row("-", "floor", 11000, 0.4)
    assert goals([*table, floor], ["lr"], sides, [1]) == [
        "LogisticRegression c=1: lakestack/mlflow req/s 12.5x, p99 0.17x"
        " (goal >= 10x req/s and p99 <= 0.1x) NOT MET; the floor's p99 0.40 ms is 0.13x"
        " MLflow's (the p99 goal is below this host's floor)"
    ]
    floor["p99_ms"] = 0.25
    assert goals([*table, floor], ["lr"], sides, [1])[0].endswith(
        "NOT MET; the floor's p99 0.25 ms is 0.08x MLflow's"
    )
    floor["p99_ms"] = 0.02
    assert goals([*table, floor], ["lr"], sides, [1])[0].endswith("is < 0.01x MLflow's")


def test_monitoring_refreshes_and_drift_run(harness: ModuleType) -> None:
    result = run_smoke(harness, "monitoring")

    rows = {(row["part"], row["side"]): row for row in result["table"]}
    assert {("refresh", "refresh-full"), ("refresh", "refresh-incremental")} <= set(rows)
    assert ("drift pair", "lakestack") in rows
    assert all(row["ok"] for row in rows.values()), result["summary"]
    assert result["ratios"]["incremental_over_full_refresh_time"] is not None


def test_monitoring_checks_catch_a_wrong_refresh_or_score() -> None:
    module = _bench_module("bench_monitoring")
    full = {"step": "refresh-full", "stats": {"windows_refreshed": 29}}
    incremental = {"step": "refresh-incremental", "stats": {"windows_refreshed": 1}}
    module.check_refresh([full, incremental], 30)
    assert full["problems"] == ["29 windows refreshed, not 30"] and incremental["problems"] == []

    peer = {"step": "drift", "columns": {"f00": {"score": 0.30}, "f01": {"score": 0.01}}}
    ours = {"step": "drift-lakestack", "columns": {"f00": {"score": 0.30}, "f01": {"score": 0.02}}}
    sides = {
        "evidently": {"warmups": [], "runs": [peer]},
        "lakestack": {"warmups": [], "runs": [ours]},
    }
    module.check_drift(sides)
    assert ours["problems"] == ["normed Wasserstein differs from Evidently's: ['f01']"]
