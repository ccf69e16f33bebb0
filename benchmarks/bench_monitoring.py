"""Monitoring: a monitor refresh over a big inference table, and one window pair's drift.

**Data.** ``bench.ml.inferences``: 10M rows in 30 daily windows (``timestamp``), twenty float64
features ``f00..f19``, ``prediction`` and ``label`` (0/1), ``model_id`` (version 1 for the first
half of the days, 2 after); from day 20 on, five features shift (mean +0.3 sd) and one spreads
(sd x1.5). Written once per run with a fixed seed, with the next day's rows aside for the
incremental part. The window pair: 1M rows a side x the twenty features, the current side with
the same shifts, as Parquet files.

**refresh** (lakestack only: no open-source peer computes Lakehouse Monitoring's tables).
A bundle with one ``quality_monitors`` entry (``inference_log``, classification, granularity
``1 day``, model id column, label): timed ``full`` refresh (every window, both metric tables) and
``incremental`` refresh after one new day is appended (the append is not timed), each a fresh
process; wall time and peak RSS. The incremental run must recompute only the new window.

**drift.** The pair through lakestack's ``table_drift`` (KS, PSI, Wasserstein, the effect
sizes) against Evidently 0.7.23's ``DataDriftPreset`` (its own venv,
``benchmarks/.venv-evidently``), reading excluded on both sides. Evidently scores each column
by the Wasserstein distance normed by the reference's standard deviation; lakestack computes the
same quantity (``wasserstein_normed``) among its metrics, so the two must agree per column.

Run as a script, this file is the child process of one step
(``python bench_monitoring.py <step> --spec spec.json --out result.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    Clock,
    bench_env,
    ensure_venv,
    foreign_warning,
    interleave,
    ratio,
    sizes_for,
    spread,
    step_child,
    venv_python,
    venv_versions,
)

EVIDENTLY_DIR = REPO / "benchmarks" / "peers" / "evidently"
EVIDENTLY_VENV = REPO / "benchmarks" / ".venv-evidently"
TABLE = "bench.ml.inferences"
MONITOR = "inferences"
DAY_US = 86_400 * 10**6
START_US = 1_735_689_600 * 10**6  # 2025-01-01 UTC
SHIFTED, SPREAD = 5, 1  # features that drift from the drift day on: mean shift, then spread

SIZES: dict[str, dict[str, int]] = {
    "full": {"rows": 10_000_000, "days": 30, "features": 20, "pair_rows": 1_000_000},
    "smoke": {"rows": 60_000, "days": 6, "features": 6, "pair_rows": 20_000},
}

BUNDLE = """
bundle: {{name: bench_monitoring}}
targets:
  dev: {{default: true}}
resources:
  quality_monitors:
    {monitor}:
      table_name: {table}
      output_schema_name: bench.ml
      inference_log:
        problem_type: PROBLEM_TYPE_CLASSIFICATION
        prediction_col: prediction
        label_col: label
        timestamp_col: timestamp
        model_id_col: model_id
        granularities: ["1 day"]
"""


# ---------------------------------------------------------------- child side


def features_of(spec: dict[str, Any]) -> list[str]:
    """The feature columns."""
    return [f"f{i:02d}" for i in range(spec["sizes"]["features"])]


def day_batch(spec: dict[str, Any], day: int) -> Any:
    """One day's rows: features (drifting from the drift day on), prediction, label, model."""
    import numpy as np
    import pyarrow as pa

    sizes = spec["sizes"]
    n = sizes["rows"] // sizes["days"]
    rng = np.random.default_rng(1000 + day)
    values = rng.standard_normal((n, sizes["features"]))
    if day >= spec["drift_day"]:
        values[:, :SHIFTED] += 0.3
        values[:, SHIFTED : SHIFTED + SPREAD] *= 1.5
    score = values[:, 0] + 0.5 * values[:, 1] + rng.standard_normal(n)
    label = (score > 0).astype(np.int64)
    prediction = np.where(rng.random(n) < 0.85, label, 1 - label)
    stamps = START_US + day * DAY_US + np.sort(rng.integers(0, DAY_US, n))
    columns = {name: values[:, i] for i, name in enumerate(features_of(spec))}
    columns |= {
        "prediction": prediction,
        "label": label,
        "model_id": np.full(n, "1" if day < sizes["days"] // 2 else "2"),
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
    }
    return pa.table(columns)


def pair_side(spec: dict[str, Any], seed: int, drifted: bool) -> Any:
    """One side of the window pair."""
    import numpy as np
    import pyarrow as pa

    sizes = spec["sizes"]
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((sizes["pair_rows"], sizes["features"]))
    if drifted:
        values[:, :SHIFTED] += 0.3
        values[:, SHIFTED : SHIFTED + SPREAD] *= 1.5
    return pa.table({name: values[:, i] for i, name in enumerate(features_of(spec))})


def workspace(spec: dict[str, Any]) -> Any:
    """The benchmark bundle's workspace (opened in the child)."""
    from lakestack.workspace import Workspace

    return Workspace.open(spec["project"])


def step_generate(spec: dict[str, Any]) -> dict[str, Any]:
    """The monitored table (one commit per day), the next day aside, the window pair."""
    import pyarrow.parquet as pq

    from lakestack.lake import Catalog

    project = Path(spec["project"])
    (project / "lakestack.yml").write_text(
        textwrap.dedent(BUNDLE.format(monitor=MONITOR, table=TABLE)), encoding="utf-8"
    )
    catalog = Catalog(project / ".lakestack" / "warehouse")
    catalog.create_schema("bench.ml", exist_ok=True)
    days = spec["sizes"]["days"]
    first = day_batch(spec, 0)
    table = catalog.create_table(TABLE, first)
    for day in range(1, days):
        table.append(day_batch(spec, day))
    pq.write_table(day_batch(spec, days), spec["next_day"])
    pq.write_table(pair_side(spec, 1, drifted=False), spec["reference"])
    pq.write_table(pair_side(spec, 2, drifted=True), spec["current"])
    return {"rows": table.dataset().count_rows(), "commits": days}


def refresh_stats(result: Any) -> dict[str, Any]:
    """What a refresh reports about itself, as plain JSON."""
    stats = result.to_dict() if hasattr(result, "to_dict") else dict(vars(result))
    return json.loads(json.dumps(stats, default=str))


def step_refresh_full(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed full refresh: every window of both metric tables."""
    with workspace(spec) as ws:
        clock = Clock()
        result = ws.refresh_monitor(MONITOR, full=True)
        return clock.stop("refresh_s") | {"stats": refresh_stats(result)}


def step_refresh_incremental(spec: dict[str, Any]) -> dict[str, Any]:
    """Append the next day (not timed), time an incremental refresh, delete the day again."""
    import pyarrow.parquet as pq

    with workspace(spec) as ws:
        table = ws.catalog.table(TABLE)
        table.append(pq.read_table(spec["next_day"]))
        clock = Clock()
        result = ws.refresh_monitor(MONITOR)
        measured = clock.stop("refresh_s")
        day = START_US + spec["sizes"]["days"] * DAY_US
        table.delete(f"timestamp >= '{_iso(day)}'")
        return measured | {"stats": refresh_stats(result)}


def _iso(micros: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(micros / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_drift_lakestack(spec: dict[str, Any]) -> dict[str, Any]:
    """The window pair through ``table_drift``; each column's normed Wasserstein and verdict."""
    import pyarrow.parquet as pq

    from lakestack.monitoring import table_drift

    reference, current = pq.read_table(spec["reference"]), pq.read_table(spec["current"])
    clock = Clock()
    drifts = table_drift(reference, current)
    measured = clock.stop("drift_s")
    columns = {
        d.column_name: {"score": d.wasserstein_normed, "drifted": d.drift_detected} for d in drifts
    }
    return measured | {"columns": columns}


STEPS = {
    "generate": step_generate,
    "refresh-full": step_refresh_full,
    "refresh-incremental": step_refresh_incremental,
    "drift-lakestack": step_drift_lakestack,
}


def child_main(argv: list[str]) -> int:
    """Run one step; write its result as JSON to ``--out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args(argv)
    result = STEPS[ns.step](json.loads(ns.spec.read_text()))
    ns.out.write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- harness side


def child(step: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One step of this file in its own process, on the project's interpreter."""
    script = Path(__file__).resolve()
    return step_child(sys.executable, script, step, root, bench_env(), args.timeout)


def evidently_side(args: argparse.Namespace, root: Path) -> Any:
    """A callable per repetition of the Evidently side, or why there is none."""
    requirements = EVIDENTLY_DIR / "requirements.txt"
    if not venv_python(EVIDENTLY_VENV).exists() and args.smoke:
        return f"{EVIDENTLY_VENV} missing (smoke run)"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    ensure_venv(EVIDENTLY_VENV, ["-r", str(requirements)], f".installed-{digest}")
    script = EVIDENTLY_DIR / "drift_evidently.py"
    python = venv_python(EVIDENTLY_VENV)
    return lambda: step_child(python, script, "drift", root, bench_env(), args.timeout)


def check_refresh(samples: list[dict[str, Any]], windows: int) -> None:
    """Every sample refreshed what it should have: all windows, or the one new window."""
    for sample in samples:
        stats = sample.get("stats", {})
        done = stats.get("windows_refreshed")
        want = windows if sample["step"] == "refresh-full" else 1
        sample["problems"] = [] if done == want else [f"{done} windows refreshed, not {want}"]


def check_drift(sides: dict[str, dict[str, Any]]) -> None:
    """lakestack's normed Wasserstein equals Evidently's score for every column."""
    peer = next((s["columns"] for s in sides.get("evidently", {}).get("runs", [])), None)
    for side in sides.values():
        for sample in side["warmups"] + side["runs"]:
            if peer is None or sample["step"] == "drift":
                sample["problems"] = []
                continue
            ours = sample["columns"]
            wrong = [
                name
                for name, theirs in peer.items()
                if name not in ours
                or ours[name]["score"] is None
                or abs(ours[name]["score"] - theirs["score"]) > 1e-6 * max(1.0, theirs["score"])
            ]
            sample["problems"] = [f"normed Wasserstein differs from Evidently's: {wrong}"] * bool(
                wrong
            )


def side_row(part: str, side: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    """One table row: median timed section, min-max, CPU time, memory, correctness."""
    samples = data.get("runs", [])
    times = spread([s[key] for s in samples])
    return {
        "part": part,
        "side": side,
        "runs": len(samples),
        "time_s": times["median"],
        "time_min": times["min"],
        "time_max": times["max"],
        "cpu_s": spread([s["cpu_s"] for s in samples])["median"],
        "process_s": spread([s["wall_s"] for s in samples])["median"],
        "peak_rss_mb": max((s["peak_rss_mb"] for s in samples), default=None),
        "ok": bool(samples) and not any(s.get("problems") for s in samples),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, then the refresh and drift parts; the table and the goal ratios."""
    sizes = sizes_for(args, SIZES)
    keep = getattr(args, "keep", False)
    root = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    try:
        spec = {
            "sizes": sizes,
            "drift_day": sizes["days"] * 2 // 3,
            "project": str(root / "project"),
            "next_day": str(root / "next_day.parquet"),
            "reference": str(root / "reference.parquet"),
            "current": str(root / "current.parquet"),
        }
        (root / "project").mkdir()
        (root / "spec.json").write_text(json.dumps(spec))
        print(f"  generating {sizes['rows']:,} rows in {sizes['days']} days ...", flush=True)
        generated = child("generate", root, args)
        if generated.get("error"):
            return {"table": [], "summary": [f"generate error: {generated['error']}"]}

        refresh = interleave(
            {
                "refresh-full": lambda: child("refresh-full", root, args),
                "refresh-incremental": lambda: child("refresh-incremental", root, args),
            },
            args.warmup,
            args.repeat,
            "refresh_s",
        )
        for side in refresh.values():
            check_refresh(side["warmups"] + side["runs"], sizes["days"])

        runners: dict[str, Any] = {"lakestack": lambda: child("drift-lakestack", root, args)}
        peer = evidently_side(args, root)
        skipped = peer if isinstance(peer, str) else None
        if skipped is None:
            runners["evidently"] = peer
        drift = interleave(runners, args.warmup, args.repeat, "drift_s")
        check_drift(drift)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return report(sizes, refresh, drift, skipped)


def report(
    sizes: dict[str, int],
    refresh: dict[str, dict[str, Any]],
    drift: dict[str, dict[str, Any]],
    skipped: str | None,
) -> dict[str, Any]:
    """The result: table rows, summary lines, the goal ratios and the raw samples."""
    rows = [side_row("refresh", name, data, "refresh_s") for name, data in refresh.items()]
    rows += [side_row("drift pair", name, data, "drift_s") for name, data in drift.items()]
    by = {(r["part"], r["side"]): r for r in rows}
    full = by.get(("refresh", "refresh-full"), {})
    incremental = by.get(("refresh", "refresh-incremental"), {})
    ours, theirs = by.get(("drift pair", "lakestack"), {}), by.get(("drift pair", "evidently"), {})
    ratios = {
        "evidently_over_lakestack_drift_time": ratio(theirs.get("time_s"), ours.get("time_s")),
        "evidently_over_lakestack_drift_peak_rss": ratio(
            theirs.get("peak_rss_mb"), ours.get("peak_rss_mb")
        ),
        "incremental_over_full_refresh_time": ratio(incremental.get("time_s"), full.get("time_s")),
    }
    samples = [s for part in (refresh, drift) for d in part.values() for s in d["runs"]]

    def secs(row: dict[str, Any]) -> str:
        return "-" if row.get("time_s") is None else f"{row['time_s']:.2f}"

    summary = [
        f"data: {sizes['rows']:,} rows x {sizes['features']} features in {sizes['days']} daily "
        f"windows; window pair {sizes['pair_rows']:,} rows a side",
        f"refresh: full {secs(full)} s (peak RSS {full.get('peak_rss_mb')} MiB), "
        f"incremental after one new day {secs(incremental)} s: "
        f"{ratios['incremental_over_full_refresh_time']} of full (goal <= 0.1)",
        f"drift pair: lakestack {secs(ours)} s, Evidently {secs(theirs)} s: "
        f"{ratios['evidently_over_lakestack_drift_time']}x (goal >= 20); peak RSS "
        f"{ours.get('peak_rss_mb')} vs {theirs.get('peak_rss_mb')} MiB",
    ]
    if skipped:
        summary.append(f"evidently skipped: {skipped}")
    summary += [f"FAILED {r['part']} {r['side']}" for r in rows if not r["ok"]]
    summary += foreign_warning(samples)
    env = (
        {"evidently": venv_versions(EVIDENTLY_VENV, ["evidently", "pandas"])} if not skipped else {}
    )
    return {
        "table": rows,
        "summary": summary,
        "ratios": ratios,
        "env": env,
        "refresh": refresh,
        "drift": drift,
    }


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
