"""Feature store: a point-in-time training set, and ``score_batch`` over a model with lookups.

**pit.** 1M label rows (``row_id``, ``entity_id``, ``label_ts``, ``y``) looked up in two feature
tables: ``f1`` (100k keys x 100 rows = 10M rows, 10 float32 features) and ``f2`` (100k keys x 10
rows, 5 float32 features), random timestamps over a year. Three sides, each in its own process,
repetitions interleaved: lakestack ``create_training_set(...).load_df(format="arrow")`` over Delta
tables, Feast 0.67 ``get_historical_features(...).to_arrow()`` with its DuckDB offline store over
the Parquet files (its own venv), and a bare DuckDB ``ASOF LEFT JOIN`` over the same Parquet files.
Loading the data (Delta ``create_table``, ``feast apply``) is done once and not timed.

**score.** 2M rows of keys and timestamps scored by a HistGradientBoosting model that was logged
with ``fe.log_model(training_set=...)``: lakestack ``score_batch`` (feature lookups + predict)
against raw ``model.predict`` on the same rows with their features already in memory.

Every side reports its timed section, its process's peak RSS and what the correctness checks
compare: the same matched-row counts, feature sums and a sample of rows for the PIT sides, the
same predictions for the scoring sides. Run as a script, this file is the child process of one
step (``python bench_features.py <step> --spec spec.json --out result.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
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
    ensure_venv,
    finish,
    foreign_warning,
    interleave,
    peak_rss_mb,
    ratio,
    run_proc,
    sizes_for,
    spread,
    step_child,
    summarize_pit,
    tail,
    venv_python,
    venv_versions,
)

FEAST_DIR = REPO / "benchmarks" / "peers" / "feast"
FEAST_VENV = REPO / "benchmarks" / ".venv-feast"
SCHEMA = "bench.fs"
MODEL_NAME = "bench.ml.hgb"
YEAR_US = 365 * 24 * 3600 * 10**6
START_US = 1_704_067_200 * 10**6  # 2024-01-01 UTC

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "keys": 100_000,
        "f1_rows_per_key": 100,
        "f1_features": 10,
        "f2_rows_per_key": 10,
        "f2_features": 5,
        "labels": 1_000_000,
        "score_rows": 2_000_000,
        "train_rows": 100_000,
        "hgb_iter": 100,
    },
    "smoke": {
        "keys": 300,
        "f1_rows_per_key": 20,
        "f1_features": 10,
        "f2_rows_per_key": 4,
        "f2_features": 5,
        "labels": 3_000,
        "score_rows": 5_000,
        "train_rows": 2_000,
        "hgb_iter": 10,
    },
}


# ---------------------------------------------------------------- child steps (own processes)


def feature_table(rng: Any, keys: int, per_key: int, n_features: int, prefix: str) -> Any:
    """``entity_id``, unique ``event_timestamp`` per key, float32 features; in time order."""
    import numpy as np
    import pyarrow as pa

    entity = np.repeat(np.arange(keys, dtype=np.int64), per_key)
    ts = START_US + rng.integers(0, YEAR_US, entity.size)
    order = np.lexsort((ts, entity))
    entity, ts = entity[order], ts[order]
    while True:  # primary key (entity_id, event_timestamp): bump the rare equal timestamps
        dup = np.flatnonzero((np.diff(ts) == 0) & (np.diff(entity) == 0))
        if dup.size == 0:
            break
        ts[dup + 1] += 1
    order = np.argsort(ts, kind="stable")  # appended day by day, as a feature pipeline would
    entity, ts = entity[order], ts[order]
    effect = np.random.default_rng(7).standard_normal(keys).astype(np.float32)
    columns = {
        "entity_id": pa.array(entity),
        "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
    }
    for i in range(n_features):
        noise = rng.standard_normal(entity.size, dtype=np.float32)
        columns[f"{prefix}_{i:02d}"] = pa.array(effect[entity] * (i % 3 - 1) + noise)
    return pa.table(columns)


def lookup_rows(rng: Any, n: int, keys: int, with_label: bool) -> Any:
    """Rows to look features up for: ``row_id``, ``entity_id``, ``label_ts`` (and ``y``)."""
    import numpy as np
    import pyarrow as pa

    entity = rng.integers(0, keys, n, dtype=np.int64)
    columns = {
        "row_id": pa.array(np.arange(n, dtype=np.int64)),
        "entity_id": pa.array(entity),
        "label_ts": pa.array(START_US + rng.integers(0, YEAR_US, n), pa.timestamp("us", tz="UTC")),
    }
    if with_label:
        effect = np.random.default_rng(7).standard_normal(keys)
        columns["y"] = pa.array(2 * effect[entity] + rng.standard_normal(n))
    return pa.table(columns)


def step_generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Write f1, f2, labels and score inputs as Parquet files (fixed seed)."""
    import numpy as np
    import pyarrow.parquet as pq

    sizes, data = spec["sizes"], Path(spec["data"])
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    out: dict[str, Any] = {}
    for view in ("f1", "f2"):
        table = feature_table(
            rng, sizes["keys"], sizes[f"{view}_rows_per_key"], sizes[f"{view}_features"], view
        )
        pq.write_table(table, data / f"{view}.parquet")
        out[view] = table.num_rows
        del table
    pq.write_table(lookup_rows(rng, sizes["labels"], sizes["keys"], True), data / "labels.parquet")
    pq.write_table(
        lookup_rows(rng, sizes["score_rows"], sizes["keys"], False), data / "score.parquet"
    )
    out["mb"] = {p.stem: round(p.stat().st_size / 2**20, 1) for p in sorted(data.glob("*.parquet"))}
    return out


def duckdb_asof(spec: dict[str, Any], rows_file: str, extra: str = "") -> Any:
    """The bare DuckDB point-in-time join of a Parquet file of rows against the feature files."""
    import duckdb

    data = Path(spec["data"])
    con = duckdb.connect()
    con.execute(f"SET threads = {spec['threads']}")
    select = ["l.*"]
    joins = []
    for view, cols in spec["views"].items():
        select += [f"{view}.{col}" for col in cols]
        joins.append(
            f"ASOF LEFT JOIN read_parquet('{data / (view + '.parquet')}') AS {view} "
            f"ON l.entity_id = {view}.entity_id AND l.label_ts >= {view}.event_timestamp"
        )
    sql = (
        f"SELECT {', '.join(select)} FROM read_parquet('{data / rows_file}') AS l "
        f"{' '.join(joins)} {extra}"
    )
    return con.execute(sql).to_arrow_table()


def step_pit_duckdb(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed DuckDB ASOF join of the labels (reading the Parquet files is part of it)."""
    import duckdb  # noqa: F401  (imported before the clock starts, as the other sides do)

    clock = Clock()
    table = duckdb_asof(spec, "labels.parquet")
    return clock.stop("join_s") | summarize_pit(table, spec["views"], spec["sample_step"])


def feature_client(spec: dict[str, Any]) -> tuple[Any, Any]:
    """lakestack's FeatureEngineeringClient on the benchmark's warehouse, and FeatureLookup."""
    from lakestack.features import FeatureEngineeringClient, FeatureLookup
    from lakestack.lake import Catalog

    catalog = Catalog(spec["warehouse"])
    for schema in (SCHEMA, MODEL_NAME.rsplit(".", 1)[0]):
        catalog.create_schema(schema)  # exist_ok: cheap after the first step
    client = FeatureEngineeringClient(catalog=catalog, tracking_uri=spec["tracking_uri"])
    return client, FeatureLookup


def lookups(spec: dict[str, Any], feature_lookup: Any) -> list[Any]:
    """One point-in-time lookup per feature table, on ``entity_id`` as of ``label_ts``."""
    return [
        feature_lookup(
            table_name=f"{SCHEMA}.{view}", lookup_key="entity_id", timestamp_lookup_key="label_ts"
        )
        for view in spec["views"]
    ]


def step_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Create the Delta feature tables from the Parquet files (not part of the timed join)."""
    import pyarrow.parquet as pq

    fe, _ = feature_client(spec)
    out: dict[str, Any] = {}
    for view in spec["views"]:
        df = pq.read_table(Path(spec["data"]) / f"{view}.parquet")
        t0 = time.perf_counter()
        fe.create_table(
            name=f"{SCHEMA}.{view}",
            primary_keys=["entity_id", "event_timestamp"],
            timestamp_keys=["event_timestamp"],
            df=df,
        )
        out[f"create_table_{view}_s"] = round(time.perf_counter() - t0, 3)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def step_pit_lakestack(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed ``create_training_set(...).load_df(format="arrow")`` of the labels."""
    import pyarrow.parquet as pq

    fe, feature_lookup = feature_client(spec)
    labels = pq.read_table(Path(spec["data"]) / "labels.parquet")
    clock = Clock()
    training_set = fe.create_training_set(
        df=labels, feature_lookups=lookups(spec, feature_lookup), label="y"
    )
    table = training_set.load_df(format="arrow")
    return clock.stop("join_s") | summarize_pit(table, spec["views"], spec["sample_step"])


def step_train(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit the HGB model, keep it for the raw side, log it with its lookups for score_batch.

    The training rows and the raw side's feature matrix come from the DuckDB join (checked
    equal to lakestack's by the pit part), so the raw side works without lakestack.
    """
    import pickle

    import pyarrow.parquet as pq
    from sklearn.ensemble import HistGradientBoostingRegressor

    root, sizes = Path(spec["root"]), spec["sizes"]
    features = [col for cols in spec["views"].values() for col in cols]
    train = duckdb_asof(spec, "labels.parquet", f"WHERE l.row_id < {sizes['train_rows']}")
    frame = train.to_pandas()
    model = HistGradientBoostingRegressor(
        max_iter=sizes["hgb_iter"], early_stopping=False, random_state=0
    )
    t0 = time.perf_counter()
    model.fit(frame[features], frame["y"])
    out: dict[str, Any] = {"fit_s": round(time.perf_counter() - t0, 3)}
    (root / "model.pkl").write_bytes(pickle.dumps(model))
    score = duckdb_asof(spec, "score.parquet", "ORDER BY l.row_id")
    pq.write_table(score.select(["row_id", *features]), root / "score_features.parquet")
    try:
        fe, feature_lookup = feature_client(spec)
    except ImportError as exc:
        return out | {"unavailable": f"lakestack.features: {exc}"}
    import mlflow.sklearn

    labels = pq.read_table(Path(spec["data"]) / "labels.parquet").slice(0, sizes["train_rows"])
    training_set = fe.create_training_set(
        df=labels, feature_lookups=lookups(spec, feature_lookup), label="y"
    )
    t0 = time.perf_counter()
    logged = fe.log_model(
        model,
        artifact_path="model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name=MODEL_NAME,
    )
    out["log_model_s"] = round(time.perf_counter() - t0, 3)
    out["model_uri"] = f"models:/{MODEL_NAME}/{logged.registered_model_version}"
    return out


def step_score_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed ``model.predict`` on the scoring rows' features, already in a DataFrame."""
    import pickle

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(spec["root"])
    model = pickle.loads((root / "model.pkl").read_bytes())
    frame = pq.read_table(root / "score_features.parquet").to_pandas()
    features = [col for cols in spec["views"].values() for col in cols]
    inputs = frame[features]
    clock = Clock()
    predictions = model.predict(inputs)
    result = clock.stop("score_s")
    out = pa.table({"row_id": frame["row_id"].to_numpy(), "prediction": predictions})
    pq.write_table(out, spec["predictions"])
    return result


def step_score_lakestack(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed ``fe.score_batch`` (lookups + model load + predict) of the key rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sklearn.ensemble  # noqa: F401  (the raw side has it imported, by unpickling, too)

    fe, _ = feature_client(spec)
    inputs = pq.read_table(Path(spec["data"]) / "score.parquet")
    clock = Clock()
    scored = fe.score_batch(model_uri=spec["model_uri"], df=inputs)
    result = clock.stop("score_s")
    if not isinstance(scored, pa.Table):
        scored = pa.Table.from_pandas(scored, preserve_index=False)
    pq.write_table(scored.select(["row_id", "prediction"]), spec["predictions"])
    return result


def step_score_lookups(spec: dict[str, Any]) -> dict[str, Any]:
    """The lookups ``score_batch`` does, alone: a training set of the scoring keys, no model.

    Public API only, so that the share of ``score_batch`` spent on lookups is measured without
    reaching into lakestack's internals.
    """
    import pyarrow.parquet as pq

    fe, feature_lookup = feature_client(spec)
    inputs = pq.read_table(Path(spec["data"]) / "score.parquet")
    clock = Clock()
    training_set = fe.create_training_set(
        df=inputs, feature_lookups=lookups(spec, feature_lookup), label=None
    )
    table = training_set.load_df(format="arrow")
    return clock.stop("score_s") | {"rows": table.num_rows}


STEPS = {
    "generate": step_generate,
    "load": step_load,
    "pit-duckdb": step_pit_duckdb,
    "pit-lakestack": step_pit_lakestack,
    "train": step_train,
    "score-raw": step_score_raw,
    "score-lakestack": step_score_lakestack,
    "score-lookups": step_score_lookups,
}


def child_main(argv: list[str]) -> int:
    """Run one step; write its result (or the error) as JSON to ``--out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--predictions", default=None)
    parser.add_argument("--cpus", type=int, default=None, help="pin to the first N CPUs")
    ns = parser.parse_args(argv)
    if ns.cpus:  # before any library starts a thread: they all inherit the affinity
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: ns.cpus]))
    spec = json.loads(ns.spec.read_text()) | {"predictions": ns.predictions}
    try:
        result = STEPS[ns.step](spec)
    except ImportError as exc:
        if "lakestack" not in str(exc):
            raise
        result = {"unavailable": f"{type(exc).__name__}: {exc}"}
    ns.out.write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- harness side


def child(
    step: str,
    root: Path,
    args: argparse.Namespace,
    threads: int,
    predictions: Path | None = None,
    cpus: int | None = None,
) -> dict[str, Any]:
    """Run one step of this file in its own process; its JSON result plus process facts."""
    extra = [] if predictions is None else ["--predictions", str(predictions)]
    if cpus is not None:
        extra += ["--cpus", str(cpus)]
    env = bench_env(OMP_NUM_THREADS=str(threads))
    script = Path(__file__).resolve()
    return step_child(sys.executable, script, step, root, env, args.timeout, *extra)


def feast_side(args: argparse.Namespace, root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Set up the Feast venv and repo; a callable per repetition, or why there is none."""
    requirements = FEAST_DIR / "requirements.txt"
    if not venv_python(FEAST_VENV).exists() and args.smoke:
        return {"skipped": f"{FEAST_VENV} missing (smoke run)"}
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    ensure_venv(FEAST_VENV, ["-r", str(requirements)], f".installed-{digest}")
    repo = root / "feast_repo"
    shutil.copytree(FEAST_DIR / "feature_repo", repo, dirs_exist_ok=True)
    script = str(FEAST_DIR / "feast_pit.py")
    common = ["--repo", str(repo), "--data", spec["data"]]
    env = bench_env(OMP_NUM_THREADS=str(spec["threads"]), FEAST_USAGE="False")
    out = root / "feast-apply.json"
    cmd = [str(venv_python(FEAST_VENV)), script, "apply", *common, "--out", str(out)]
    applied = finish(run_proc(cmd, root, env, args.timeout), out)
    if applied.get("error"):
        return {"error": "feast apply: " + applied["error"]}

    def once() -> dict[str, Any]:
        out = root / f"feast-join-{time.monotonic_ns()}.json"
        cmd = [str(venv_python(FEAST_VENV)), script, "join", *common, "--out", str(out)]
        cmd += ["--labels", str(Path(spec["data"]) / "labels.parquet")]
        cmd += ["--threads", str(spec["threads"]), "--sample-step", str(spec["sample_step"])]
        return finish(run_proc(cmd, root, env, args.timeout), out)

    return {"apply": applied, "once": once}


def compare_pit(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """What differs between a side's summary and the reference's (DuckDB's)."""
    if got.get("missing_columns"):
        return [f"missing columns {got['missing_columns']}"]
    problems = []
    if got["matched"] != ref["matched"]:
        problems.append(f"matched rows {got['matched']}, expected {ref['matched']}")
    for col, expected in ref["sums"].items():
        if not math.isclose(got["sums"].get(col, math.nan), expected, rel_tol=1e-6, abs_tol=1e-6):
            problems.append(f"sum of {col} {got['sums'].get(col)}, expected {expected}")
    differ = [
        rid
        for rid, values in ref["sample"].items()
        # a side that drops unmatched rows (Feast's file store does) is compared by matched rows
        if got["sample"].get(rid) != values and not (rid not in got["sample"] and None in values)
    ]
    if differ:
        rid = differ[0]
        problems.append(
            f"{len(differ)} of {len(ref['sample'])} sampled rows differ; row_id {rid}: "
            f"{got['sample'].get(rid)} expected {ref['sample'][rid]}"
        )
    return problems


def check_pit(sides: dict[str, Any]) -> dict[str, Any] | None:
    """Check every measured PIT run against DuckDB's first one; keep only the verdicts."""
    reference = next((s for side in sides.values() for s in side.get("runs", [])), None)
    if reference is None:
        return None
    reference = dict(sides.get("duckdb asof", {}).get("runs", [reference])[0])
    for side in sides.values():
        for sample in side.get("warmups", []) + side.get("runs", []):
            sample["problems"] = compare_pit(reference, sample)
            if sample["rows"] != reference["rows"]:
                sample["note"] = f"{sample['rows']} rows returned of {reference['rows']}"
            sample.pop("sample", None)
            sample.pop("sums", None)
    reference.pop("sample", None)
    return reference


def check_predictions(reference: Path, got: Path) -> list[str]:
    """Whether a scoring side predicted what raw ``model.predict`` did, row by row."""
    import numpy as np
    import pyarrow.parquet as pq

    want = pq.read_table(reference).sort_by("row_id")
    have = pq.read_table(got).sort_by("row_id")
    if have.num_rows != want.num_rows:
        return [f"{have.num_rows} predictions, expected {want.num_rows}"]
    if not np.array_equal(have["row_id"].to_numpy(), want["row_id"].to_numpy()):
        return ["the scored row_ids differ from the input's"]
    diff = np.abs(have["prediction"].to_numpy() - want["prediction"].to_numpy())
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    return [] if worst <= 1e-9 else [f"predictions differ from raw predict by up to {worst:.3g}"]


def pit_part(
    args: argparse.Namespace, root: Path, spec: dict[str, Any], sides: set[str]
) -> dict[str, Any]:
    """Load once, then interleave the timed joins of the selected sides."""
    threads, setup = spec["threads"], {}
    runners: dict[str, Any] = {}
    if "duckdb" in sides:
        runners["duckdb asof"] = lambda: child("pit-duckdb", root, args, threads)
    skipped: dict[str, str] = {}
    if "lakestack" in sides:
        setup["lakestack_load"] = load = child("load", root, args, threads)
        problem = load.get("unavailable") or load.get("error")
        if problem:
            skipped["lakestack"] = f"load: {problem}"
        else:
            runners["lakestack"] = lambda: child("pit-lakestack", root, args, threads)
    if "feast" in sides:
        feast = feast_side(args, root, spec)
        if "once" in feast:
            setup["feast_apply"] = feast["apply"]
            runners["feast"] = feast["once"]
        else:
            skipped["feast"] = feast.get("skipped") or feast.get("error", "?")
    results = interleave(runners, args.warmup, args.repeat, "join_s")
    reference = check_pit(results)
    return {"sides": results, "skipped": skipped, "setup": setup, "reference": reference}


def score_part(
    args: argparse.Namespace, root: Path, spec: dict[str, Any], sides: set[str], loaded: bool
) -> dict[str, Any]:
    """Train and log the model once; then, per CPU budget, interleave raw predict and score_batch.

    A budget of N CPUs pins both sides' processes to the first N CPUs and sets
    ``OMP_NUM_THREADS=N``: raw ``predict`` uses them through OpenMP, ``score_batch`` however it
    chooses (lakestack predicts slices on a thread pool), so both get the same machine.
    """
    params = getattr(args, "params", {})
    default = "1" if args.smoke else "1,2"
    budgets = [int(n) for n in str(params.get("score_cpus", default)).split(",") if n]
    skipped: dict[str, str] = {}
    setup: dict[str, Any] = {}
    if "lakestack" in sides and not loaded:
        setup["lakestack_load"] = child("load", root, args, spec["threads"])
    setup["train"] = train = child("train", root, args, spec["threads"])
    if train.get("error"):
        return {"error": "train: " + train["error"], "setup": setup}
    spec["model_uri"] = train.get("model_uri")
    (root / "spec.json").write_text(json.dumps(spec))

    def runner(step: str, cpus: int) -> Any:
        def once() -> dict[str, Any]:
            path = root / f"predictions-{time.monotonic_ns()}.parquet"
            sample = child(step, root, args, cpus, path, cpus=cpus)
            return sample | {"predictions_file": str(path)}

        return once

    problem = train.get("unavailable") or setup.get("lakestack_load", {}).get("error")
    if "lakestack" not in sides:
        skipped["lakestack score_batch"] = "-p sides"
    elif problem:
        skipped["lakestack score_batch"] = problem
    results: dict[str, Any] = {}
    for cpus in budgets:
        runners = {f"raw predict, {cpus} cpu": runner("score-raw", cpus)}
        if "lakestack score_batch" not in skipped:
            runners[f"lakestack score_batch, {cpus} cpu"] = runner("score-lakestack", cpus)
            runners[f"lakestack lookups only, {cpus} cpu"] = runner("score-lookups", cpus)
        results |= interleave(runners, args.warmup, args.repeat, "score_s")
    samples = [s for side in results.values() for s in side["warmups"] + side["runs"]]
    reference = next((Path(s["predictions_file"]) for s in samples if "raw" in s["step"]), None)
    rows = spec["sizes"]["score_rows"]
    for sample in samples:
        path = Path(sample.pop("predictions_file"))
        if sample["step"] == "score-lookups":
            got = sample.get("rows")
            sample["problems"] = [] if got == rows else [f"{got} rows looked up, not {rows}"]
        elif reference is not None and reference.exists() and path.exists():
            sample["problems"] = check_predictions(reference, path)
        else:
            sample["problems"] = ["no predictions to compare"]
    return {"sides": results, "skipped": skipped, "setup": setup, "cpus": budgets}


def side_row(part: str, side: str, data: dict[str, Any], key: str, rows: int) -> dict[str, Any]:
    """One table row: median timed section, min-max, peak memory, correctness."""
    samples = data.get("runs", [])
    times = spread([s[key] for s in samples])
    walls = spread([s["wall_s"] for s in samples])
    extra = spread([s["peak_rss_mb"] - s["rss_before_mb"] for s in samples])
    median = times["median"]
    row = {
        "part": part,
        "side": side,
        "runs": len(samples),
        "time_s": median,
        "time_min": times["min"],
        "time_max": times["max"],
        "cpu_s": spread([s["cpu_s"] for s in samples])["median"],
        "process_s": walls["median"],
        "rows_per_s": round(rows / median) if median else None,
        "peak_rss_mb": max((s["peak_rss_mb"] for s in samples), default=None),
        "rss_added_mb": extra["median"],
    }
    if part == "pit":
        matched = {tuple(s.get("matched", {}).values()) for s in samples}
        row["matched"] = "/".join(map(str, matched.pop())) if len(matched) == 1 else "varies"
    row["ok"] = bool(samples) and not any(s.get("problems") for s in samples)
    return row


def report(
    sizes: dict[str, int], pit: dict[str, Any], score: dict[str, Any], gen: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Table rows, summary lines and the ratios the issue sets goals for."""
    rows = [
        side_row("pit", side, data, "join_s", sizes["labels"])
        for side, data in pit.get("sides", {}).items()
        if data.get("runs")
    ]
    rows += [
        side_row("score", side, data, "score_s", sizes["score_rows"])
        for side, data in score.get("sides", {}).items()
        if data.get("runs")
    ]
    by = {(r["part"], r["side"]): r for r in rows}

    def get(part: str, side: str, col: str) -> Any:
        return by.get((part, side), {}).get(col)

    lake_t, feast_t = get("pit", "lakestack", "time_s"), get("pit", "feast", "time_s")
    ratios = {
        "feast_over_lakestack_time": ratio(feast_t, lake_t),
        "lakestack_over_feast_peak_rss": ratio(
            get("pit", "lakestack", "peak_rss_mb"), get("pit", "feast", "peak_rss_mb")
        ),
        "lakestack_over_duckdb_time": ratio(lake_t, get("pit", "duckdb asof", "time_s")),
        "feast_over_duckdb_time": ratio(feast_t, get("pit", "duckdb asof", "time_s")),
        "feast_over_lakestack_cpu": ratio(
            get("pit", "feast", "cpu_s"), get("pit", "lakestack", "cpu_s")
        ),
        "lakestack_over_duckdb_cpu": ratio(
            get("pit", "lakestack", "cpu_s"), get("pit", "duckdb asof", "cpu_s")
        ),
    }
    for cpus in score.get("cpus", []):
        batch, raw = f"lakestack score_batch, {cpus} cpu", f"raw predict, {cpus} cpu"
        ratios[f"score_batch_over_raw_throughput_{cpus}cpu"] = ratio(
            get("score", batch, "rows_per_s"), get("score", raw, "rows_per_s")
        )
        ratios[f"score_batch_over_raw_per_cpu_s_{cpus}cpu"] = ratio(
            get("score", raw, "cpu_s"), get("score", batch, "cpu_s")
        )
    lines = [
        f"data: labels {sizes['labels']:,} rows; f1 {gen.get('f1', 0):,} rows "
        f"({sizes['keys']:,} keys, {sizes['f1_features']} float32 features); f2 "
        f"{gen.get('f2', 0):,} rows ({sizes['f2_features']} features); score inputs "
        f"{sizes['score_rows']:,} rows; Parquet MiB {gen.get('mb')}",
        f"pit: feast/lakestack time {ratios['feast_over_lakestack_time']}x (goal >= 10), "
        f"lakestack/feast peak RSS {ratios['lakestack_over_feast_peak_rss']} (goal <= 0.2), "
        f"lakestack/duckdb time {ratios['lakestack_over_duckdb_time']}x (goal <= 2); "
        f"feast/duckdb {ratios['feast_over_duckdb_time']}x",
        f"pit, by CPU time of the join (less sensitive to other processes): feast/lakestack "
        f"{ratios['feast_over_lakestack_cpu']}x, lakestack/duckdb "
        f"{ratios['lakestack_over_duckdb_cpu']}x",
    ]
    for cpus in score.get("cpus", []):
        batch = get("score", f"lakestack score_batch, {cpus} cpu", "time_s")
        raw = get("score", f"raw predict, {cpus} cpu", "time_s")
        lookup = get("score", f"lakestack lookups only, {cpus} cpu", "time_s")
        split = ""
        if batch and raw and lookup:
            split = (
                f"; score_batch - raw predict = {batch - raw:.2f} s, lookups alone {lookup} s, "
                f"rest (imports, model load, conversions) {batch - raw - lookup:.2f} s"
            )
        lines.append(
            f"score, {cpus} cpu: score_batch/raw throughput "
            f"{ratios[f'score_batch_over_raw_throughput_{cpus}cpu']} (goal >= 0.8; both sides "
            f"pinned to {cpus} CPU(s), OMP_NUM_THREADS={cpus}); by CPU time "
            f"{ratios[f'score_batch_over_raw_per_cpu_s_{cpus}cpu']}{split}"
        )
    setup = {**pit.get("setup", {}), **score.get("setup", {})}
    timings = {
        k: v
        for step in setup.values()
        for k, v in step.items()
        if k.endswith("_s") and k != "wall_s"
    }
    if timings:
        lines.append(f"setup, not timed as a side: {timings}")
    for part, label in ((pit, "pit"), (score, "score")):
        for side, data in part.get("sides", {}).items():
            for sample in data.get("runs", []):
                for problem in sample.get("problems", []):
                    lines.append(f"{label} {side} CHECK FAILED: {problem}")
            notes = {s["note"] for s in data.get("runs", []) if s.get("note")}
            lines.extend(f"{label} {side}: {note}" for note in sorted(notes))
            for key in ("error", "unavailable"):
                if data.get(key):
                    lines.append(f"{label} {side} {key}: {tail(str(data[key]), 3)}")
        for side, why in part.get("skipped", {}).items():
            lines.append(f"{label} {side} not run: {tail(str(why), 3)}")
        if part.get("error"):
            lines.append(f"{label} error: {tail(part['error'], 3)}")
    measured = [
        s
        for part in (pit, score)
        for data in part.get("sides", {}).values()
        for s in data.get("runs", [])
    ]
    lines.extend(foreign_warning(measured))
    return rows, lines, ratios


def source_state() -> dict[str, Any]:
    """The lakestack commit measured, and whether ``src/`` had uncommitted changes.

    Recorded at the start and at the end of a run: the package is imported afresh by every
    side's process, so a change to ``src/`` during a run would mix two versions.
    """
    import subprocess

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    dirty = git("status", "--porcelain", "--", "src/lakestack")
    return {"lakestack_commit": git("rev-parse", "--short", "HEAD"), "src_dirty": bool(dirty)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, run the selected parts and sides, and report."""
    params = getattr(args, "params", {})
    sizes = sizes_for(args, SIZES)
    parts = set(params.get("parts", "pit,score").split(","))
    sides = set(params.get("sides", "duckdb,lakestack,feast").split(",")) | {"duckdb"}
    root = Path(tempfile.mkdtemp(prefix="bench-features-"))
    views = {v: [f"{v}_{i:02d}" for i in range(sizes[f"{v}_features"])] for v in ("f1", "f2")}
    spec = {
        "root": str(root),
        "data": str(root / "data"),
        "warehouse": str(root / "warehouse"),
        "tracking_uri": f"sqlite:///{root}/mlflow.db",
        "views": views,
        "sizes": sizes,
        "threads": int(params.get("threads", 2)),
        "sample_step": max(1, sizes["labels"] // 1000),
    }
    (root / "spec.json").write_text(json.dumps(spec))
    source_at_start = {f"{k}_at_start": v for k, v in source_state().items()}
    pit: dict[str, Any] = {}
    score: dict[str, Any] = {}
    gen: dict[str, Any] = {}
    try:
        print(f"  work folder {root}", flush=True)
        gen = child("generate", root, args, spec["threads"])
        if gen.get("error"):
            raise RuntimeError("generating the data failed: " + gen["error"])
        print(f"  generated in {gen['wall_s']} s: {gen['mb']} MiB of Parquet", flush=True)
        if "pit" in parts:
            pit = pit_part(args, root, spec, sides)
        if "score" in parts:
            loaded = "lakestack_load" in pit.get("setup", {})
            score = score_part(args, root, spec, sides, loaded)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rows, lines, ratios = report(sizes, pit, score, gen)
    source_at_end = source_state()
    if source_at_end["src_dirty"] or any(
        source_at_start[f"{k}_at_start"] != v for k, v in source_at_end.items()
    ):
        lines.append(
            f"WARNING: src/lakestack changed during the run or has uncommitted changes "
            f"(start {source_at_start}, end {source_at_end}): sides may have measured "
            "different code"
        )
    feast_versions = {}
    if venv_python(FEAST_VENV).exists():
        feast_versions = venv_versions(FEAST_VENV, ("feast", "duckdb", "ibis-framework", "pandas"))
    return {
        "table": rows,
        "summary": lines,
        "ratios": ratios,
        "env": {"feast_venv": feast_versions, **source_at_end, **source_at_start},
        "params": {"sizes": sizes, "parts": sorted(parts), "sides": sorted(sides), **spec},
        "raw": {"generate": gen, "pit": pit, "score": score},
    }


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
