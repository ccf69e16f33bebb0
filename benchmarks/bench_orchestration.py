"""Orchestration overhead: a fan-out/fan-in job of tasks that import pandas and scikit-learn.

The same DAG (``start`` -> N parallel ``work_NN`` -> ``finish``; 20 tasks, 5 with ``--smoke``)
runs under ``lakestack bundle run`` and under Dagster's ``multiprocess_executor`` (each step in
its own process, like lakestack), in the same invocation, on the same machine. Each task writes
``time.time()`` to ``<out>/<task>.start`` as its very first statement, then imports pandas and
scikit-learn, then writes ``<out>/<task>.end``. From those clocks and the orchestrators' own
records the benchmark derives:

* wall time of the whole job (subprocess launch to exit), lakestack cold (fresh folder, including
  deploy) and warm (second run in the same folder), Dagster with a warmed instance;
* per-task start latency: task first line - the task start time the orchestrator recorded;
* dispatch latency: task first line - the latest event that let it start (end of its last upstream
  task, or of the task that freed a slot), from the task clocks, so the same method for both;
* import time inside the task (about 0 when the worker preloaded the libraries);
* correctness: every task ran once, after its upstream tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    LOCKED,
    REPO,
    Proc,
    bench_env,
    busy,
    ensure_venv,
    foreign_warning,
    locked_versions,
    pct,
    ratio,
    run_proc,
    spread,
    tail,
    venv_python,
    venv_versions,
)

DAGSTER_VENV = REPO / "benchmarks" / ".venv-dagster"
DAGSTER_VERSION = "1.13.28"
JOB_KEY = "fanout"

Dag = dict[str, list[str]]

# The body of every task, on both sides; expects ``name``, ``out`` and ``t0`` to be defined.
TASK_BODY = """\
import os
with open(os.path.join(out, name + ".start"), "w") as f:
    f.write(f"{t0!r} {os.getpid()}\\n")
import pandas
import sklearn
import sklearn.linear_model
with open(os.path.join(out, name + ".end"), "w") as f:
    f.write(f"{time.time()!r}\\n")
"""

LAKESTACK_TASK = """\
import time
t0 = time.time()
import sys
name = sys.argv[sys.argv.index("--name") + 1]
out = sys.argv[sys.argv.index("--out") + 1]
{body}"""

DAGSTER_JOB = """\
import time

from dagster import In, Nothing, job, multiprocess_executor, op

OUT = {out!r}
DAG = {dag!r}


def _make(task_name, has_upstream):
    ins = {{"after": In(Nothing)}} if has_upstream else {{}}

    @op(name=task_name, ins=ins)
    def _op():
        t0 = time.time()
        name = task_name
        out = OUT
{body}
    return _op


OPS = {{name: _make(name, bool(deps)) for name, deps in DAG.items()}}


@job(executor_def=multiprocess_executor.configured({{"max_concurrent": {max_concurrent}}}))
def {job_key}():
    outs = {{}}
    for name, deps in DAG.items():
        if deps:
            outs[name] = OPS[name](after=[outs[d] for d in deps])
        else:
            outs[name] = OPS[name]()
"""

# Reads the newest run's events from $DAGSTER_HOME; run with the Dagster venv's python.
DAGSTER_EVENTS = """\
import json
from dagster import DagsterInstance

instance = DagsterInstance.get()
record = instance.get_run_records(limit=1)[0]
run = record.dagster_run
steps, run_events = {}, {}
for entry in instance.all_logs(run.run_id):
    if not entry.is_dagster_event:
        continue
    kind = entry.dagster_event.event_type_value
    target = steps.setdefault(entry.step_key, {}) if entry.step_key else run_events
    target.setdefault(kind, entry.timestamp)
print(json.dumps({"run_id": run.run_id, "status": run.status.value, "steps": steps,
                  "run": run_events}))
"""


# ---------------------------------------------------------------- DAG and files


def make_dag(n_work: int) -> Dag:
    """``start`` -> ``work_01..work_NN`` -> ``finish``, as task -> upstream tasks."""
    work = [f"work_{i:02d}" for i in range(1, n_work + 1)]
    dag: Dag = {"start": []}
    dag.update({name: ["start"] for name in work})
    dag["finish"] = work
    return dag


def write_lakestack_bundle(folder: Path, dag: Dag, out: Path) -> None:
    """A ``lakestack.yml`` bundle with one job running ``tasks/work.py`` per task."""
    import yaml

    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    (folder / "tasks" / "work.py").write_text(LAKESTACK_TASK.format(body=TASK_BODY))
    tasks = []
    for name, deps in dag.items():
        task: dict[str, Any] = {"task_key": name}
        if deps:
            task["depends_on"] = [{"task_key": d} for d in deps]
        task["spark_python_task"] = {
            "python_file": "tasks/work.py",
            "parameters": ["--name", name, "--out", str(out)],
        }
        tasks.append(task)
    bundle = {
        "bundle": {"name": "bench_orchestration"},
        "resources": {"jobs": {JOB_KEY: {"name": JOB_KEY, "tasks": tasks}}},
    }
    (folder / "lakestack.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))


def write_dagster_job(folder: Path, dag: Dag, out: Path, max_concurrent: int) -> None:
    """``dagster_fanout.py`` (the same DAG and task body) and the events reader."""
    folder.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(TASK_BODY, " " * 8)
    source = DAGSTER_JOB.format(
        out=str(out), dag=dag, body=body, max_concurrent=max_concurrent, job_key=JOB_KEY
    )
    (folder / "dagster_fanout.py").write_text(source)
    (folder / "dagster_events.py").write_text(DAGSTER_EVENTS)
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")


def reset_out(out: Path) -> None:
    """Empty the task clock folder before a run."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def read_clocks(out: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Task first-line times and end times, in epoch seconds, from the task files."""
    starts = {p.stem: float(p.read_text().split()[0]) for p in out.glob("*.start")}
    ends = {p.stem: float(p.read_text().split()[0]) for p in out.glob("*.end")}
    return starts, ends


# ---------------------------------------------------------------- metrics


def dispatch_gaps(dag: Dag, starts: dict[str, float], ends: dict[str, float]) -> dict[str, float]:
    """ms, per non-root task, from the latest event that let it start to its first line.

    The event is the end of its last upstream task or, when tasks queue for a slot, the latest
    end of any other task before it started (the slot it took). With more slots than running
    tasks this is a lower bound.
    """
    gaps = {}
    for task, deps in dag.items():
        if not deps or task not in starts or any(d not in ends for d in deps):
            continue
        begun = starts[task]
        freed = [end for key, end in ends.items() if key != task and end <= begun]
        trigger = max([max(ends[d] for d in deps), *freed])
        gaps[task] = round((begun - trigger) * 1000, 1)
    return gaps


def start_latencies(starts: dict[str, float], recorded: dict[str, float]) -> dict[str, float]:
    """ms, per task, from the start time the orchestrator recorded to the task's first line."""
    return {k: round((starts[k] - recorded[k]) * 1000, 1) for k in starts if k in recorded}


def max_concurrency(starts: dict[str, float], ends: dict[str, float]) -> int:
    """The most tasks running at once, from the task clocks."""
    events = sorted(
        [(t, 1) for k, t in starts.items() if k in ends] + [(t, -1) for t in ends.values()]
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def order_ok(dag: Dag, starts: dict[str, float], ends: dict[str, float]) -> bool:
    """Every task ran, and after all its upstream tasks ended."""
    if set(starts) != set(dag) or set(ends) != set(dag):
        return False
    return all(starts[t] >= ends[d] for t, deps in dag.items() for d in deps)


def clock_metrics(
    dag: Dag, launched: float, starts: dict[str, float], ends: dict[str, float]
) -> dict[str, Any]:
    """The metrics that come from the task clocks alone (same method for both sides)."""
    roots = [starts[t] for t, deps in dag.items() if not deps and t in starts]
    return {
        "tasks_done": len(set(starts) & set(ends)),
        "order_ok": order_ok(dag, starts, ends),
        "max_concurrency": max_concurrency(starts, ends),
        "first_task_s": round(min(roots) - launched, 3) if roots else None,
        "dispatch_ms": dispatch_gaps(dag, starts, ends),
        "import_s": {k: round(ends[k] - starts[k], 3) for k in sorted(starts) if k in ends},
    }


# ---------------------------------------------------------------- subprocesses


# ---------------------------------------------------------------- lakestack side


def lakestack_bin() -> Path | None:
    """``<repo>/.venv/bin/lakestack``, else the one beside this interpreter or on PATH."""
    for candidate in (
        REPO / ".venv" / "bin" / "lakestack",
        Path(sys.executable).parent / "lakestack",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("lakestack")
    return Path(found) if found else None


def find_run_id(obj: Any) -> int | None:
    """The first ``run_id`` in a JSON document."""
    if isinstance(obj, dict):
        run_id = obj.get("run_id")
        if isinstance(run_id, int):
            return run_id
        values = list(obj.values())
    elif isinstance(obj, list):
        values = obj
    else:
        return None
    for value in values:
        found = find_run_id(value)
        if found is not None:
            return found
    return None


def parse_json(text: str) -> Any:
    """Parse a command's JSON output; tolerate log lines before a final JSON document."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        return json.loads(text[start:]) if start >= 0 else None


def lakestack_run_id(cli: Path, folder: Path, proc: Proc, env: dict[str, str]) -> int | None:
    """The run id from ``bundle run --output json``, its text, or ``runs list --output json``."""
    try:
        found = find_run_id(parse_json(proc.stdout))
        if found is not None:
            return found
    except json.JSONDecodeError:
        pass
    match = re.search(r"run[ _-]?id\D{0,5}(\d+)", proc.stdout + proc.stderr, re.IGNORECASE)
    if match:
        return int(match.group(1))
    listed = run_proc([str(cli), "runs", "list", "--output", "json"], folder, env, 60)
    try:
        runs = parse_json(listed.stdout)
    except json.JSONDecodeError:
        return None
    runs = runs.get("runs", []) if isinstance(runs, dict) else runs or []
    ids = [r["run_id"] for r in runs if isinstance(r, dict) and isinstance(r.get("run_id"), int)]
    return max(ids) if ids else None


def epoch_s(value: Any) -> float | None:
    """An epoch time in ms (or s) as seconds."""
    if not isinstance(value, (int, float)):
        return None
    return value / 1000 if value > 1e11 else float(value)


def lakestack_task_times(
    cli: Path, folder: Path, run_id: int, env: dict[str, str]
) -> tuple[dict[str, float], dict[str, float], str | None]:
    """Recorded task start and end times from ``runs get <id> --output json``; last attempt wins."""
    proc = run_proc([str(cli), "runs", "get", str(run_id), "--output", "json"], folder, env, 60)
    if proc.rc != 0:
        return {}, {}, f"runs get failed (rc {proc.rc}): {tail(proc.stderr or proc.stdout, 5)}"
    try:
        doc = parse_json(proc.stdout)
    except json.JSONDecodeError:
        return {}, {}, f"runs get printed no JSON: {tail(proc.stdout, 5)}"
    doc = doc.get("run", doc) if isinstance(doc, dict) else {}
    items = doc.get("tasks") or doc.get("task_runs") or []
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for item in sorted(items, key=lambda i: i.get("attempt") or i.get("attempt_number") or 0):
        key = item.get("task_key")
        start, end = epoch_s(item.get("start_time")), epoch_s(item.get("end_time"))
        if key and start is not None:
            starts[key] = start
        if key and end is not None:
            ends[key] = end
    if not starts:
        return {}, {}, "runs get JSON has no tasks[].task_key/start_time"
    return starts, ends, None


def lakestack_once(cli: Path, folder: Path, out: Path, dag: Dag, timeout: float) -> dict[str, Any]:
    """One timed ``lakestack bundle run`` and its metrics."""
    env = bench_env()
    reset_out(out)
    proc = run_proc([str(cli), "bundle", "run", JOB_KEY, "--output", "json"], folder, env, timeout)
    sample: dict[str, Any] = {
        "wall_s": round(proc.wall_s, 3),
        "rc": proc.rc,
        "load1": proc.load1,
        "foreign_cpu_share": proc.foreign_share,
    }
    if proc.rc != 0 or proc.timed_out:
        sample["error"] = f"rc {proc.rc}, timed out {proc.timed_out}: " + tail(
            proc.stderr or proc.stdout
        )
    starts, ends = read_clocks(out)
    sample.update(clock_metrics(dag, proc.launched, starts, ends))
    run_id = lakestack_run_id(cli, folder, proc, env)
    sample["run_id"] = run_id
    if run_id is None:
        sample["records_error"] = "no run_id in `bundle run --output json` nor `runs list`"
        return sample
    rec_starts, rec_ends, problem = lakestack_task_times(cli, folder, run_id, env)
    if problem:
        sample["records_error"] = problem
    sample["start_ms"] = start_latencies(starts, rec_starts)
    sample["recorded_dispatch_ms"] = dispatch_gaps(dag, starts, rec_ends)
    return sample


def lakestack_side(args: argparse.Namespace, dag: Dag, root: Path) -> dict[str, Any]:
    """Cold (fresh folder, with deploy) and warm runs of the job, per repetition."""
    cli = lakestack_bin()
    if cli is None:
        return {"error": "no lakestack executable (make install)"}
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    for rep in range(args.warmup + args.repeat):
        folder = root / f"lakestack-{rep}"
        out = folder / "out"
        write_lakestack_bundle(folder, dag, out)
        first = lakestack_once(cli, folder, out, dag, args.timeout)
        label = "warm-up" if rep < args.warmup else f"run {rep - args.warmup + 1}"
        print(f"  lakestack {label}: cold {first['wall_s']} s{busy(first)}", end="", flush=True)
        if first.get("error"):
            print(f"\n  lakestack failed: {tail(first['error'], 3)}", flush=True)
            return {"error": first["error"], "failed": [first]}
        second = lakestack_once(cli, folder, out, dag, args.timeout)
        print(f", warm {second['wall_s']} s{busy(second)}", flush=True)
        if rep >= args.warmup:
            cold.append(first)
            warm.append(second)
    return {
        "cli": str(cli),
        "parallelism": "default (max_parallel_tasks unset)",
        "cold": cold,
        "warm": warm,
    }


# ---------------------------------------------------------------- Dagster side


def dagster_python() -> Path:
    """The interpreter of the Dagster virtualenv."""
    return venv_python(DAGSTER_VENV)


def ensure_dagster_venv() -> None:
    """Create ``benchmarks/.venv-dagster`` with Dagster and the locked pandas/scikit-learn."""
    pins = [f"{name}=={v}" for name, v in locked_versions(LOCKED).items()]
    missing = [
        name
        for name in ("pandas", "scikit-learn")
        if not any(p.startswith(name + "==") for p in pins)
    ]
    ensure_venv(DAGSTER_VENV, [f"dagster=={DAGSTER_VERSION}", *pins, *missing], "bin/dagster")


def dagster_versions() -> dict[str, str]:
    """Package versions inside the Dagster virtualenv."""
    return venv_versions(DAGSTER_VENV, ("dagster", "pandas", "scikit-learn", "numpy"))


def dagster_records(folder: Path, env: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """The newest run's step events, read with the Dagster venv."""
    proc = run_proc([str(dagster_python()), "dagster_events.py"], folder, env, 120)
    if proc.rc != 0:
        return None, "dagster events: " + tail(proc.stderr, 5)
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def dagster_once(folder: Path, out: Path, dag: Dag, timeout: float) -> dict[str, Any]:
    """One timed ``dagster job execute`` and its metrics."""
    env = bench_env(DAGSTER_HOME=str(folder / "dagster_home"))
    reset_out(out)
    cli = str(DAGSTER_VENV / "bin" / "dagster")
    cmd = [cli, "job", "execute", "-f", "dagster_fanout.py", "-j", JOB_KEY]
    proc = run_proc(cmd, folder, env, timeout)
    sample: dict[str, Any] = {
        "wall_s": round(proc.wall_s, 3),
        "rc": proc.rc,
        "load1": proc.load1,
        "foreign_cpu_share": proc.foreign_share,
    }
    if proc.rc != 0 or proc.timed_out:
        sample["error"] = f"rc {proc.rc}, timed out {proc.timed_out}: " + tail(proc.stderr)
    starts, ends = read_clocks(out)
    sample.update(clock_metrics(dag, proc.launched, starts, ends))
    records, problem = dagster_records(folder, env)
    if problem or records is None:
        sample["records_error"] = problem
        return sample
    sample["run_status"] = records["status"]
    steps = records["steps"]
    launched = {k: s.get("STEP_WORKER_STARTING", s.get("STEP_START")) for k, s in steps.items()}
    step_start = {k: s["STEP_START"] for k, s in steps.items() if "STEP_START" in s}
    step_end = {k: s["STEP_SUCCESS"] for k, s in steps.items() if "STEP_SUCCESS" in s}
    sample["start_ms"] = start_latencies(starts, launched)
    sample["start_ms_vs_step_start"] = start_latencies(starts, step_start)
    sample["recorded_dispatch_ms"] = dispatch_gaps(dag, starts, step_end)
    return sample


def dagster_side(args: argparse.Namespace, dag: Dag, root: Path) -> dict[str, Any]:
    """Dagster multiprocess runs: warm-up(s) on a fresh instance, then measured runs."""
    if not dagster_python().exists():
        if args.smoke:
            return {"skipped": f"{DAGSTER_VENV} missing (smoke run)"}
        ensure_dagster_venv()
    max_concurrent = os.cpu_count() or 1
    folder = root / "dagster"
    out = folder / "out"
    write_dagster_job(folder, dag, out, max_concurrent)
    warmups: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for rep in range(args.warmup + args.repeat):
        sample = dagster_once(folder, out, dag, args.timeout)
        label = "warm-up" if rep < args.warmup else f"run {rep - args.warmup + 1}"
        print(f"  dagster {label}: {sample['wall_s']} s{busy(sample)}", flush=True)
        if sample.get("error"):
            print(f"  dagster failed: {tail(sample['error'], 3)}", flush=True)
            return {"error": sample["error"], "failed": [sample]}
        (warmups if rep < args.warmup else runs).append(sample)
    return {
        "max_concurrent": max_concurrent,
        "start_method": "spawn (default)",
        "warmups": warmups,
        "runs": runs,
        "versions": dagster_versions(),
    }


# ---------------------------------------------------------------- report


def pooled(samples: list[dict[str, Any]], key: str) -> list[float]:
    """One per-task metric ({task: value}) pooled over the measured runs."""
    return [x for s in samples for x in s.get(key, {}).values()]


def slowest(samples: list[dict[str, Any]], key: str) -> tuple[str, float] | None:
    """The task with the largest value of a per-task metric over the measured runs."""
    pairs = [(task, x) for s in samples for task, x in s.get(key, {}).items()]
    return max(pairs, key=lambda pair: pair[1]) if pairs else None


def side_row(label: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row for a list of measured runs."""
    walls = spread([s["wall_s"] for s in samples])
    start, disp, imp = (pooled(samples, k) for k in ("start_ms", "dispatch_ms", "import_s"))
    return {
        "side": label,
        "runs": len(samples),
        "wall_s": walls["median"],
        "wall_min": walls["min"],
        "wall_max": walls["max"],
        "start_p50_ms": pct(start, 0.5),
        "start_max_ms": max(start) if start else None,
        "dispatch_p50_ms": pct(disp, 0.5),
        "dispatch_max_ms": max(disp) if disp else None,
        "import_p50_s": pct(imp, 0.5),
        "concurrency": max((s.get("max_concurrency", 0) for s in samples), default=None),
        "ok": all(s.get("order_ok") for s in samples) if samples else None,
    }


def report(
    n_tasks: int, lake: dict[str, Any], dag_side: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Table rows, summary lines and ratios."""
    rows = []
    if lake.get("cold"):
        rows.append(side_row("lakestack cold", lake["cold"]))
    if lake.get("warm"):
        rows.append(side_row("lakestack warm", lake["warm"]))
    if dag_side.get("runs"):
        rows.append(side_row("dagster multiprocess", dag_side["runs"]))
    walls = {row["side"]: row["wall_s"] for row in rows}
    dagster = walls.get("dagster multiprocess")
    ratios = {
        "dagster_over_lakestack_warm": ratio(dagster, walls.get("lakestack warm")),
        "dagster_over_lakestack_cold": ratio(dagster, walls.get("lakestack cold")),
    }
    lines = [
        f"DAG: {n_tasks} tasks (start -> {n_tasks - 2} parallel -> finish); "
        f"parallelism: lakestack {lake.get('parallelism', '-')}, dagster max_concurrent "
        f"{dag_side.get('max_concurrent', '-')} ({dag_side.get('start_method', '-')})"
    ]
    lines.append(
        f"ratio dagster/lakestack wall: warm {ratios['dagster_over_lakestack_warm']}x, "
        f"cold {ratios['dagster_over_lakestack_cold']}x (goal >= 10x; start <= 100 ms)"
    )
    measured = lake.get("cold", []) + lake.get("warm", []) + dag_side.get("runs", [])
    lines.extend(foreign_warning(measured))
    step_start = pooled(dag_side.get("runs", []), "start_ms_vs_step_start")
    if step_start:
        lines.append(
            f"dagster start_ms is from STEP_WORKER_STARTING; from STEP_START: "
            f"p50 {pct(step_start, 0.5)} ms, max {max(step_start)} ms"
        )
    for label, samples in (
        ("lakestack warm", lake.get("warm", [])),
        ("lakestack cold", lake.get("cold", [])),
        ("dagster", dag_side.get("runs", [])),
    ):
        worst = slowest(samples, "start_ms")
        first = spread([s["first_task_s"] for s in samples if s.get("first_task_s") is not None])
        if worst:
            lines.append(
                f"{label}: slowest start {worst[1]} ms ({worst[0]}); launch to first task "
                f"median {first['median']} s"
            )
    for label, side in (("lakestack", lake), ("dagster", dag_side)):
        for key in ("error", "skipped"):
            if side.get(key):
                lines.append(f"{label} {key}: {tail(str(side[key]), 3)}")
        samples = side.get("warm", []) + side.get("cold", []) + side.get("runs", [])
        problems = {s["records_error"] for s in samples if s.get("records_error")}
        lines.extend(f"{label} records: {p}" for p in sorted(problems))
    return rows, lines, ratios


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both sides on the same DAG and return the table, summary and raw samples."""
    dag = make_dag(3 if args.smoke else 18)
    root = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    try:
        print(f"  work folder {root}", flush=True)
        sides = set(getattr(args, "params", {}).get("sides", "lakestack,dagster").split(","))
        lake = lakestack_side(args, dag, root) if "lakestack" in sides else {"skipped": "-p sides"}
        dag_side = dagster_side(args, dag, root) if "dagster" in sides else {"skipped": "-p sides"}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rows, lines, ratios = report(len(dag), lake, dag_side)
    env = {"dagster_venv": dag_side.get("versions", {}), "locked": locked_versions()}
    return {
        "table": rows,
        "summary": lines,
        "ratios": ratios,
        "env": env,
        "params": {"tasks": len(dag), "dag": dag},
        "raw": {"lakestack": lake, "dagster": dag_side},
    }
