"""Batch inference: a Delta table scored into a Delta inference table, three ways, two models.

**Data.** ``bench.inf.input``: 2M rows (``row_id`` int64, ten float64 features ``f00..f09``),
written once per run with a fixed seed; a 10M-row table of the same shape for the memory part.
Two classifiers are fitted once on 100k other rows and registered with
``lakestack.registry.log_model`` (scikit-learn flavor, cloudpickle, with a signature):
``bench.ml.lr`` (LogisticRegression) and ``bench.ml.hgb`` (HistGradientBoostingClassifier, 100
iterations, no early stopping, so every tree is grown).

**Sides**, each run a fresh process, the sides interleaved within a repetition:

* lakestack: timed ``score_table("models:/bench.ml.<m>/1", "bench.inf.input", <new table>)``:
  resolve the version, load the model, stream the table through it, write the inference table
  (input columns, ``prediction``, ``model_id``, ``timestamp``).
* raw: timed ``model.predict(frame[features])``, the model unpickled and the rows read into a
  pandas DataFrame before the clock: the floor, with no I/O at all.
* seeds: what the reference projects' batch inference notebooks do, timed end to end:
  ``mlflow.pyfunc.load_model(uri)``, ``deltalake.DeltaTable(input).to_pandas()``, predict,
  add ``model_id`` and ``timestamp``, ``deltalake.write_deltalake(output, frame)``.

Libraries (pandas, scikit-learn, MLflow, deltalake, lakestack) are imported before every clock:
a job process imports them whatever it then does. **Memory**: the lakestack side again on the
10M-row table; its peak RSS against the 2M-row runs' shows whether memory stays flat.

Every side writes ``row_id, prediction`` (read back from its Delta output, after the clock) and
must predict what raw ``predict`` does for every row. Run as a script, this file is the child
process of one step (``python bench_inference.py <step> --spec spec.json --out result.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    Clock,
    bench_env,
    busy,
    foreign_warning,
    interleave,
    peak_rss_mb,
    ratio,
    sizes_for,
    spread,
    step_child,
    tail,
)

SCHEMA = "bench.inf"
MODEL_SCHEMA = "bench.ml"
MODELS = ("lr", "hgb")
LABELS = {"lr": "LogisticRegression", "hgb": "HistGradientBoosting"}

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "rows": 2_000_000,
        "big_rows": 10_000_000,
        "features": 10,
        "train_rows": 100_000,
        "hgb_iter": 100,
    },
    "smoke": {
        "rows": 5_000,
        "big_rows": 20_000,
        "features": 10,
        "train_rows": 2_000,
        "hgb_iter": 10,
    },
}
GENERATE_BATCH = 500_000


# ---------------------------------------------------------------- child steps (own processes)


def features_of(spec: dict[str, Any]) -> list[str]:
    """The feature columns."""
    return [f"f{i:02d}" for i in range(spec["sizes"]["features"])]


def frame_batch(rng: Any, start: int, n: int, k: int) -> Any:
    """``row_id`` from ``start`` and ``k`` standard-normal features."""
    import numpy as np
    import pyarrow as pa

    columns = {"row_id": pa.array(np.arange(start, start + n, dtype=np.int64))}
    values = rng.standard_normal((k, n))
    for i in range(k):
        columns[f"f{i:02d}"] = pa.array(values[i])
    return pa.table(columns)


def label_of(frame: Any) -> Any:
    """A binary label that needs interactions (so the trees matter), with noise."""
    import numpy as np

    noise = np.random.default_rng(3).standard_normal(len(frame))
    signal = frame["f00"] + frame["f01"] * frame["f02"] - 0.5 * frame["f03"] ** 2 + noise
    return (signal > 0).astype(np.int64)


def catalog_of(spec: dict[str, Any]) -> Any:
    """The benchmark's catalog, with its schemas."""
    from lakestack.lake import Catalog

    catalog = Catalog(spec["warehouse"])
    for schema in (SCHEMA, MODEL_SCHEMA):
        catalog.create_schema(schema)
    return catalog


def step_generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the input tables, streamed in batches (the 10M-row one does not fit comfortably)."""
    import numpy as np
    import pyarrow as pa

    catalog = catalog_of(spec)
    k = spec["sizes"]["features"]
    out: dict[str, Any] = {}
    for key, table_name in spec["tables"].items():
        rows = spec["sizes"][key]
        rng = np.random.default_rng(42)
        schema = frame_batch(rng, 0, 1, k).schema
        table = catalog.create_table(table_name, schema=schema)
        batches = (
            batch
            for start in range(0, rows, GENERATE_BATCH)
            for batch in frame_batch(rng, start, min(GENERATE_BATCH, rows - start), k).to_batches()
        )
        t0 = time.perf_counter()
        table.append(pa.RecordBatchReader.from_batches(schema, batches))
        out[f"write_{key}_s"] = round(time.perf_counter() - t0, 3)
        size = sum(p.stat().st_size for p in Path(table.uri).glob("*.parquet"))
        out[f"{key}_mb"] = round(size / 2**20, 1)
    return out


def step_train(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit both models, pickle them for the raw side, register them for the others."""
    import pickle

    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from lakestack.registry import Tracking, log_model

    catalog_of(spec)
    Tracking(spec["tracking_uri"]).activate()
    sizes, features = spec["sizes"], features_of(spec)
    frame = frame_batch(np.random.default_rng(7), 0, sizes["train_rows"], sizes["features"])
    frame = frame.to_pandas()
    x, y = frame[features], label_of(frame)
    models = {
        "lr": LogisticRegression(max_iter=1000),
        "hgb": HistGradientBoostingClassifier(
            max_iter=sizes["hgb_iter"], early_stopping=False, random_state=0
        ),
    }
    out: dict[str, Any] = {"uris": {}}
    for key, model in models.items():
        t0 = time.perf_counter()
        model.fit(x, y)
        out[f"fit_{key}_s"] = round(time.perf_counter() - t0, 3)
        (Path(spec["root"]) / f"{key}.pkl").write_bytes(pickle.dumps(model))
        name = f"{MODEL_SCHEMA}.{key}"
        logged = log_model(
            model,
            flavor=mlflow.sklearn,
            name="model",
            registered_model_name=name,
            signature=infer_signature(x.head(100), model.predict(x.head(100))),
            pip_requirements=["scikit-learn"],
        )
        out["uris"][key] = f"models:/{name}/{logged.registered_model_version}"
    return out


def _imports() -> None:
    """What every side imports before its clock (a job process pays for these either way)."""
    import deltalake  # noqa: F401
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (1 s: the SQLite store's ORM)
    import pandas  # noqa: F401
    import sklearn.ensemble
    import sklearn.linear_model  # noqa: F401

    import lakestack.inference  # noqa: F401


def save_predictions(table: Any, path: str) -> None:
    """``row_id, prediction`` to Parquet, for the check."""
    import pyarrow.parquet as pq

    pq.write_table(table.select(["row_id", "prediction"]), path)


def step_lakestack(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed ``score_table`` of a model over an input table into a new inference table."""
    _imports()
    from lakestack.inference import score_table
    from lakestack.registry import Tracking

    catalog = catalog_of(spec)
    model, size = spec["model"], spec["size"]
    output = f"{SCHEMA}.out_{model}_{size}_{time.monotonic_ns()}"
    clock = Clock()
    result = score_table(
        spec["uris"][model],
        spec["tables"][size],
        output,
        catalog=catalog,
        tracking=Tracking(spec["tracking_uri"]),
    )
    out = clock.stop("score_s")
    table = catalog.table(output)
    written = table.read(columns=["row_id", "prediction", "model_id"])
    if spec.get("predictions"):
        save_predictions(written, spec["predictions"])
    out["rows"] = result.rows
    out["shape_ok"] = table.schema.names[-3:] == ["prediction", "model_id", "timestamp"] and (
        written.column("model_id").unique().to_pylist() == [result.model_id]
    )
    catalog.drop_table(output)
    return out


def step_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed ``model.predict`` on the rows, already in a pandas DataFrame."""
    import pickle

    import pyarrow as pa

    _imports()
    catalog = catalog_of(spec)
    model = pickle.loads((Path(spec["root"]) / f"{spec['model']}.pkl").read_bytes())
    frame = catalog.table(spec["tables"][spec["size"]]).read().to_pandas()
    inputs = frame[features_of(spec)]
    clock = Clock()
    predictions = model.predict(inputs)
    out = clock.stop("score_s")
    table = pa.table({"row_id": frame["row_id"].to_numpy(), "prediction": predictions})
    if spec.get("predictions"):
        save_predictions(table, spec["predictions"])
    return out | {"rows": len(frame)}


def step_seeds(spec: dict[str, Any]) -> dict[str, Any]:
    """The reference projects' way: pyfunc, the whole table in pandas, predict, write_deltalake."""
    _imports()
    from datetime import datetime, timezone

    import mlflow
    import mlflow.pyfunc
    from deltalake import DeltaTable, write_deltalake

    catalog = catalog_of(spec)
    mlflow.set_tracking_uri(spec["tracking_uri"])
    mlflow.set_registry_uri(spec["tracking_uri"])  # not one inherited from the environment
    uri = spec["uris"][spec["model"]]
    source = catalog.table_uri(spec["tables"][spec["size"]])
    output = Path(spec["root"]) / f"seeds_out_{time.monotonic_ns()}"
    clock = Clock()
    model = mlflow.pyfunc.load_model(uri)
    frame = DeltaTable(source).to_pandas()
    frame["prediction"] = model.predict(frame[features_of(spec)])
    frame["model_id"] = uri.removeprefix("models:/")
    frame["timestamp"] = datetime.now(timezone.utc)
    write_deltalake(str(output), frame, mode="overwrite")
    out = clock.stop("score_s")
    written = DeltaTable(str(output)).to_pyarrow_table(columns=["row_id", "prediction"])
    if spec.get("predictions"):
        save_predictions(written, spec["predictions"])
    shutil.rmtree(output, ignore_errors=True)
    return out | {"rows": written.num_rows}


STEPS = {
    "generate": step_generate,
    "train": step_train,
    "lakestack": step_lakestack,
    "raw": step_raw,
    "seeds": step_seeds,
}


def child_main(argv: list[str]) -> int:
    """Run one step; write its result (or the error) as JSON to ``--out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", default="rows")
    parser.add_argument("--predictions", default=None)
    parser.add_argument("--cpus", type=int, default=None, help="pin to the first N CPUs")
    ns = parser.parse_args(argv)
    if ns.cpus:  # before any library starts a thread: they all inherit the affinity
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: ns.cpus]))
    spec = json.loads(ns.spec.read_text())
    spec |= {"model": ns.model, "size": ns.size, "predictions": ns.predictions}
    result = STEPS[ns.step](spec)
    result.setdefault("peak_rss_mb", peak_rss_mb())  # the timed sides report it at their clock
    ns.out.write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # delta-rs can abort a process at exit after a scan (delta-io/delta-rs#2184)


# ---------------------------------------------------------------- harness side


def child(
    step: str,
    root: Path,
    args: argparse.Namespace,
    cpus: int,
    *,
    model: str | None = None,
    size: str = "rows",
    predictions: Path | None = None,
) -> dict[str, Any]:
    """Run one step of this file in its own process; its JSON result plus process facts."""
    extra = ["--size", size, "--cpus", str(cpus)]
    if model is not None:
        extra += ["--model", model]
    if predictions is not None:
        extra += ["--predictions", str(predictions)]
    env = bench_env(OMP_NUM_THREADS=str(cpus))
    script = Path(__file__).resolve()
    return step_child(sys.executable, script, step, root, env, args.timeout, *extra)


def check_predictions(reference: Path, got: Path) -> list[str]:
    """Whether a side predicted what raw ``model.predict`` did, row by row."""
    import numpy as np
    import pyarrow.parquet as pq

    want = pq.read_table(reference).sort_by("row_id")
    have = pq.read_table(got).sort_by("row_id")
    if have.num_rows != want.num_rows:
        return [f"{have.num_rows} predictions, expected {want.num_rows}"]
    if not np.array_equal(have["row_id"].to_numpy(), want["row_id"].to_numpy()):
        return ["the scored row_ids differ from the input's"]
    same = have["prediction"].to_numpy().astype(np.float64) == want["prediction"].to_numpy()
    wrong = int((~same).sum())
    return [] if wrong == 0 else [f"{wrong} predictions differ from raw predict's"]


def speed_part(args: argparse.Namespace, root: Path, cpus: int) -> dict[str, Any]:
    """Per model: raw, lakestack and seeds, interleaved; every side checked against raw."""
    results: dict[str, Any] = {}
    for model in MODELS:

        def runner(step: str, model: str = model) -> Any:
            def once() -> dict[str, Any]:
                path = root / f"predictions-{time.monotonic_ns()}.parquet"
                return child(step, root, args, cpus, model=model, predictions=path) | {
                    "predictions_file": str(path)
                }

            return once

        sides = {
            f"{model} raw predict": runner("raw"),
            f"{model} lakestack score_table": runner("lakestack"),
            f"{model} seeds' way": runner("seeds"),
        }
        results |= interleave(sides, args.warmup, args.repeat, "score_s")
        samples = [s for name in sides for s in results[name]["warmups"] + results[name]["runs"]]
        reference = next((Path(s["predictions_file"]) for s in samples if s["step"] == "raw"), None)
        for sample in samples:
            path = Path(sample.pop("predictions_file"))
            if reference is None or not reference.exists() or not path.exists():
                sample["problems"] = ["no predictions to compare"]
                continue
            sample["problems"] = check_predictions(reference, path)
            if sample["step"] == "lakestack" and not sample.get("shape_ok"):
                sample["problems"].append("the inference table lacks prediction/model_id/timestamp")
        for path in root.glob("predictions-*.parquet"):
            path.unlink()
    return results


def memory_part(args: argparse.Namespace, root: Path, cpus: int) -> dict[str, Any]:
    """The lakestack side on the big table (no prediction check: the speed part did it)."""
    runs = int(getattr(args, "params", {}).get("memory_repeat", 1))
    results: dict[str, Any] = {}
    for model in MODELS:
        name = f"{model} lakestack score_table, big"
        samples = []
        for _ in range(runs):
            sample = child("lakestack", root, args, cpus, model=model, size="big_rows")
            if sample.get("error"):
                print(f"  {name}: error: {tail(sample['error'], 3)}", flush=True)
                results[name] = {"warmups": [], "runs": samples, "error": sample["error"]}
                break
            sample["problems"] = [] if sample.get("shape_ok") else ["bad inference table"]
            print(
                f"  {name}: {sample['score_s']} s, peak RSS {sample['peak_rss_mb']:.0f} MiB"
                f"{busy(sample)}",
                flush=True,
            )
            samples.append(sample)
        results.setdefault(name, {"warmups": [], "runs": samples})
    return results


def side_row(side: str, data: dict[str, Any], rows: int) -> dict[str, Any]:
    """One table row: median timed section, min-max, CPU time, memory, correctness."""
    samples = data.get("runs", [])
    times = spread([s["score_s"] for s in samples])
    median = times["median"]
    return {
        "side": side,
        "rows": rows,
        "runs": len(samples),
        "time_s": median,
        "time_min": times["min"],
        "time_max": times["max"],
        "cpu_s": spread([s["cpu_s"] for s in samples])["median"],
        "process_s": spread([s["wall_s"] for s in samples])["median"],
        "rows_per_s": round(rows / median) if median else None,
        "peak_rss_mb": max((s["peak_rss_mb"] for s in samples), default=None),
        "rss_added_mb": spread([s["peak_rss_mb"] - s["rss_before_mb"] for s in samples])["median"],
        "ok": bool(samples) and not any(s.get("problems") for s in samples),
    }


def report(
    sizes: dict[str, int], speed: dict[str, Any], memory: dict[str, Any], cpus: int
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Table rows, summary lines and the ratios the issue sets goals for."""
    rows = [side_row(side, data, sizes["rows"]) for side, data in speed.items()]
    rows += [side_row(side, data, sizes["big_rows"]) for side, data in memory.items()]
    by = {r["side"]: r for r in rows}

    def get(side: str, col: str) -> Any:
        return by.get(side, {}).get(col)

    ratios: dict[str, Any] = {}
    lines = [
        f"data: {sizes['rows']:,} rows ({sizes['big_rows']:,} for memory) x {sizes['features']} "
        f"float64 features; every side pinned to {cpus} CPU(s), OMP_NUM_THREADS={cpus}"
    ]
    for model in MODELS:
        lake, raw, seeds = (
            f"{model} lakestack score_table",
            f"{model} raw predict",
            f"{model} seeds' way",
        )
        big = f"{model} lakestack score_table, big"
        ratios[f"{model}_lakestack_over_raw_throughput"] = ratio(
            get(raw, "time_s"), get(lake, "time_s")
        )
        ratios[f"{model}_seeds_over_lakestack_time"] = ratio(
            get(seeds, "time_s"), get(lake, "time_s")
        )
        ratios[f"{model}_lakestack_over_raw_per_cpu_s"] = ratio(
            get(raw, "cpu_s"), get(lake, "cpu_s")
        )
        ratios[f"{model}_seeds_over_lakestack_cpu"] = ratio(get(seeds, "cpu_s"), get(lake, "cpu_s"))
        ratios[f"{model}_peak_rss_big_over_small"] = ratio(
            get(big, "peak_rss_mb"), get(lake, "peak_rss_mb")
        )
        goal_raw = " (goal >= 0.8)" if model == "hgb" else ""
        lines.append(
            f"{LABELS[model]}: lakestack/raw throughput "
            f"{ratios[f'{model}_lakestack_over_raw_throughput']}{goal_raw}, seeds/lakestack time "
            f"{ratios[f'{model}_seeds_over_lakestack_time']}x (goal >= 3); by CPU time "
            f"{ratios[f'{model}_lakestack_over_raw_per_cpu_s']} and "
            f"{ratios[f'{model}_seeds_over_lakestack_cpu']}x; lakestack peak RSS "
            f"{get(lake, 'peak_rss_mb')} MiB at {sizes['rows']:,} rows, "
            f"{get(big, 'peak_rss_mb')} MiB at {sizes['big_rows']:,} "
            f"({ratios[f'{model}_peak_rss_big_over_small']}x; goal: flat)"
        )
    for part in (speed, memory):
        for side, data in part.items():
            for sample in data.get("runs", []):
                for problem in sample.get("problems", []):
                    lines.append(f"{side} CHECK FAILED: {problem}")
            if data.get("error"):
                lines.append(f"{side} error: {tail(str(data['error']), 3)}")
    measured = [s for part in (speed, memory) for d in part.values() for s in d.get("runs", [])]
    lines.extend(foreign_warning(measured))
    return rows, lines, ratios


def source_state() -> dict[str, Any]:
    """The lakestack commit measured, and whether ``src/`` had uncommitted changes."""
    import subprocess

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    dirty = git("status", "--porcelain", "--", "src/lakestack")
    return {"lakestack_commit": git("rev-parse", "--short", "HEAD"), "src_dirty": bool(dirty)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the tables, train the models, run the sides, and report."""
    params = getattr(args, "params", {})
    sizes = sizes_for(args, SIZES)
    cpus = int(params.get("cpus", 2))
    root = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    spec: dict[str, Any] = {
        "root": str(root),
        "warehouse": str(root / "warehouse"),
        "tracking_uri": f"sqlite:///{root}/mlflow.db",
        "sizes": sizes,
        "tables": {"rows": f"{SCHEMA}.input", "big_rows": f"{SCHEMA}.input_big"},
    }
    (root / "spec.json").write_text(json.dumps(spec))
    at_start = source_state()
    setup: dict[str, Any] = {}
    speed: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    try:
        print(f"  work folder {root}", flush=True)
        setup["generate"] = gen = child("generate", root, args, cpus)
        if gen.get("error"):
            raise RuntimeError("generating the tables failed: " + gen["error"])
        print(f"  generated in {gen['wall_s']} s", flush=True)
        setup["train"] = train = child("train", root, args, cpus)
        if train.get("error"):
            raise RuntimeError("training failed: " + train["error"])
        spec["uris"] = train["uris"]
        (root / "spec.json").write_text(json.dumps(spec))
        speed = speed_part(args, root, cpus)
        if params.get("memory", "1") != "0":
            memory = memory_part(args, root, cpus)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rows, lines, ratios = report(sizes, speed, memory, cpus)
    timings = {
        k: v
        for step in setup.values()
        for k, v in step.items()
        if k.endswith(("_s", "_mb")) and k != "peak_rss_mb"
    }
    timings.pop("wall_s", None)
    lines.append(f"setup, not timed as a side: {timings}")
    at_end = source_state()
    if at_end["src_dirty"] or at_end != at_start:
        lines.append(
            f"WARNING: src/lakestack changed during the run or has uncommitted changes "
            f"(start {at_start}, end {at_end}): sides may have measured different code"
        )
    return {
        "table": rows,
        "summary": lines,
        "ratios": ratios,
        "env": {f"{k}_at_start": v for k, v in at_start.items()} | at_end,
        "params": {"sizes": sizes, "cpus": cpus},
        "raw": {"setup": setup, "speed": speed, "memory": memory},
    }


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
