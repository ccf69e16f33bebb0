"""Helpers shared by the ``bench_*.py`` modules: subprocess timing, foreign CPU load, peer venvs.

Every measured side runs in its own process (``run_proc``), in its own session so that the
``ForeignCpu`` sampler can tell the benchmark's processes from the rest of the machine. Peers
live in their own virtualenvs (``benchmarks/.venv-<peer>``), created on a full run by
``ensure_venv`` from pinned requirements.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FOREIGN_LIMIT",
    "Clock",
    "LOCKED",
    "REPO",
    "ForeignCpu",
    "Proc",
    "bench_env",
    "busy",
    "ensure_venv",
    "finish",
    "foreign_warning",
    "interleave",
    "locked_versions",
    "pct",
    "peak_rss_mb",
    "ratio",
    "rss_mb",
    "run_proc",
    "sizes_for",
    "spread",
    "step_child",
    "summarize_pit",
    "tail",
    "venv_python",
    "venv_versions",
]

REPO = Path(__file__).resolve().parent.parent
LOCKED = ("pandas", "scikit-learn", "numpy", "scipy")
FOREIGN_LIMIT = 0.1  # share of the CPUs used by other processes that taints a sample


@dataclass
class Proc:
    """A finished subprocess and when it ran (epoch seconds)."""

    rc: int
    launched: float
    wall_s: float
    stdout: str
    stderr: str
    timed_out: bool = False
    load1: float = 0.0
    foreign_share: float = 0.0


class ForeignCpu(threading.Thread):
    """Samples /proc while a benchmark subprocess runs: CPU used by processes outside it.

    Processes in the subprocess's session (it is started with ``start_new_session``, and its
    workers inherit the session), their descendants (a child that starts its own session, such
    as the serving side's capture writer process, is still the benchmark's own work) and this
    harness are ours; every other process is foreign load. Processes that live less than one
    sampling interval are missed.
    """

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.ours: set[int] = set()  # sessions
        self.seen: dict[int, int] = {}
        self.foreign_ticks = 0
        self.stopped = threading.Event()
        self.sample()

    def sample(self) -> None:
        """Add the CPU ticks foreign processes used since the previous sample."""
        procs: dict[int, tuple[int, int, int]] = {}  # pid: (parent, session, ticks)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            procs[int(entry.name)] = (
                int(fields[1]),
                int(fields[3]),
                int(fields[11]) + int(fields[12]),
            )
        own: dict[int, bool] = {os.getpid(): True}

        def ours(pid: int) -> bool:
            chain = []
            while pid not in own:
                info = procs.get(pid)
                if info is None or pid <= 1:
                    own[pid] = False
                    break
                if info[1] in self.ours:
                    own[pid] = True
                    break
                chain.append(pid)
                pid = info[0]
            for link in chain:
                own[link] = own[pid]
            return own[pid]

        for pid, (_parent, _session, ticks) in procs.items():
            if ours(pid):
                continue
            previous = self.seen.get(pid)
            self.seen[pid] = ticks
            if previous is not None and ticks > previous:
                self.foreign_ticks += ticks - previous

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stopped.wait(self.interval):
            self.sample()

    def stop(self, wall_s: float) -> float:
        """Stop sampling; the share of all CPUs that foreign processes used."""
        self.stopped.set()
        self.join()
        self.sample()
        seconds = self.foreign_ticks / os.sysconf("SC_CLK_TCK")
        return seconds / (wall_s * (os.cpu_count() or 1)) if wall_s > 0 else 0.0


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for every side: one BLAS/OpenMP thread per process unless overridden."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("VIRTUAL_ENV", None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # each side names its own store
        env.pop(name, None)
    env.update(extra)
    return env


def run_proc(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Proc:
    """Run a command in its own process group, timed by the wall clock; kill it on timeout."""
    load1 = os.getloadavg()[0]
    foreign = ForeignCpu()
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    foreign.ours.add(proc.pid)
    foreign.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - t0
    share = foreign.stop(wall)
    return Proc(proc.returncode, launched, wall, stdout, stderr, timed_out, load1, round(share, 3))


def busy(sample: dict[str, Any]) -> str:
    """A note for a progress line when other processes used the CPUs during the sample."""
    share = sample.get("foreign_cpu_share", 0.0)
    return f" (other processes used {share:.0%} of the CPUs)" if share > FOREIGN_LIMIT else ""


def foreign_warning(samples: Iterable[dict[str, Any]]) -> list[str]:
    """A summary line when foreign processes used the CPUs during any measured sample."""
    busiest = max((s.get("foreign_cpu_share", 0.0) for s in samples), default=0.0)
    if busiest <= FOREIGN_LIMIT:
        return []
    return [
        f"WARNING: other processes used up to {busiest:.0%} of the CPUs during a measured "
        "run: the machine was shared, numbers are not clean (see foreign_cpu_share)"
    ]


def tail(text: str, lines: int = 15) -> str:
    """The last lines of an output, for error reports."""
    return "\n".join(text.strip().splitlines()[-lines:])


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank, or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict[str, float | None]:
    """Median, min and max of a list of measurements."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None."""
    return round(num / den, 2) if num and den else None


def locked_versions(packages: Iterable[str] = LOCKED) -> dict[str, str]:
    """The versions pinned in requirements/dev.lock for the given packages."""
    wanted = {p.lower() for p in packages}
    pins: dict[str, str] = {}
    lock = REPO / "requirements" / "dev.lock"
    if lock.exists():
        for line in lock.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            if match and match.group(1).lower() in wanted:
                pins[match.group(1).lower()] = match.group(2)
    return pins


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtualenv."""
    return venv / "bin" / "python"


def ensure_venv(venv: Path, requirements: list[str], marker: str | None = None) -> None:
    """Create ``venv`` and ``pip install`` the requirements, unless it already has ``marker``.

    ``requirements`` are pip arguments (``pkg==1.0`` or ``-r file``); ``marker`` is a file
    relative to the venv whose presence means the install completed (default: the python).
    """
    done = venv / (marker or "bin/python")
    if venv_python(venv).exists() and done.exists():
        return
    print(f"  creating {venv} ({' '.join(requirements)}) ...", flush=True)
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    cmd = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*cmd, *requirements], check=True)
    if marker:
        done.touch()


def venv_versions(venv: Path, packages: Iterable[str]) -> dict[str, str]:
    """Package versions inside a virtualenv (missing packages are left out)."""
    code = (
        "import json, sys; from importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = version(p)\n"
        "    except PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    cmd = [str(venv_python(venv)), "-c", code, *packages]
    done = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Clock:
    """The timed section of a side: wall and CPU time (all threads), and memory around it.

    Started on creation; ``stop`` returns ``{key: wall seconds, "cpu_s", "peak_rss_mb",
    "rss_before_mb"}``. CPU time is the companion figure on a shared machine: other processes
    stretch the wall time but not (much) the CPU time the section itself used.
    """

    def __init__(self) -> None:
        self.rss_before = rss_mb()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self, key: str) -> dict[str, float]:
        """The measurements of the section, ``key`` naming its wall time."""
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        return {
            key: round(wall, 3),
            "cpu_s": round(cpu, 3),
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": self.rss_before,
        }


def summarize_pit(table: Any, views: dict[str, list[str]], sample_step: int) -> dict[str, Any]:
    """What the point-in-time sides are compared on, the same code for each of them.

    ``table`` is the training set as a pyarrow Table with a ``row_id`` column; ``views`` maps a
    feature table to its feature columns. Returns the row count, the rows that found a feature
    row per table (finite first feature; unmatched rows are null, or NaN after a pandas round
    trip), the sum of each feature over its matched rows (order-independent up to rounding) and
    every column of the rows whose ``row_id`` is a multiple of ``sample_step``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    features = [col for cols in views.values() for col in cols]
    missing = [col for col in ["row_id", *features] if col not in table.column_names]
    if missing:
        return {"rows": table.num_rows, "missing_columns": missing}
    matched, sums = {}, {}
    for view, cols in views.items():
        finite = pc.fill_null(pc.is_finite(table[cols[0]]), False)
        matched[view] = int(pc.sum(finite.cast(pa.int64())).as_py() or 0)
        for col in cols:
            values = pc.filter(table[col], pc.fill_null(pc.is_finite(table[col]), False))
            sums[col] = float(pc.sum(values.cast(pa.float64())).as_py() or 0.0)
    row_ids = table["row_id"].to_numpy()
    picked = table.take(pa.array(np.flatnonzero(row_ids % sample_step == 0)))
    picked = picked.sort_by("row_id").select(["row_id", *features])
    sample = {}
    for row in picked.to_pylist():
        values = [row[col] for col in features]
        sample[str(row["row_id"])] = [None if v is None or v != v else float(v) for v in values]
    return {"rows": table.num_rows, "matched": matched, "sums": sums, "sample": sample}


def finish(proc: Proc, out: Path) -> dict[str, Any]:
    """A child's result file merged with its wall time, foreign load and errors."""
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result |= {
        "wall_s": round(proc.wall_s, 3),
        "load1": proc.load1,
        "foreign_cpu_share": proc.foreign_share,
    }
    if proc.rc != 0 or proc.timed_out or not out.exists():
        result["error"] = f"rc {proc.rc}, timed out {proc.timed_out}: {tail(proc.stderr)}"
    return result


def step_child(
    python: Path | str,
    script: Path,
    step: str,
    root: Path,
    env: dict[str, str],
    timeout: float,
    *extra: str,
) -> dict[str, Any]:
    """Run ``python script step --spec root/spec.json --out <file> *extra`` in its own process
    (the step-runner shape of the ``bench_*.py`` files and their peer scripts); its JSON
    result plus process facts and ``step``."""
    out = root / f"{step}-{time.monotonic_ns()}.json"
    cmd = [str(python), str(script), step, "--spec", str(root / "spec.json"), "--out", str(out)]
    return finish(run_proc([*cmd, *extra], root, env, timeout), out) | {"step": step}


def interleave(
    runners: dict[str, Any], warmup: int, repeat: int, key: str
) -> dict[str, dict[str, Any]]:
    """Warm-ups, then measured runs, one side after the other within each repetition.

    ``runners`` maps a side to a callable returning one sample (a dict with ``key``, the timed
    seconds, and ``peak_rss_mb``; ``error`` or ``unavailable`` end that side). Interleaving
    spreads the machine's drifts (page cache, other developers' load) over all sides instead of
    charging them to whichever side ran last.
    """
    sides: dict[str, dict[str, Any]] = {name: {"warmups": [], "runs": []} for name in runners}
    for rep in range(warmup + repeat):
        label = "warm-up" if rep < warmup else f"run {rep - warmup + 1}"
        for name, once in runners.items():
            if sides[name].get("error") or sides[name].get("unavailable"):
                continue
            sample = once()
            problem = next((p for p in ("error", "unavailable") if sample.get(p)), None)
            if problem:
                print(f"  {name} {label}: {problem}: {tail(sample[problem], 3)}", flush=True)
                sides[name][problem] = sample[problem]
                continue
            print(
                f"  {name} {label}: {sample[key]} s, peak RSS {sample['peak_rss_mb']:.0f} MiB"
                f"{busy(sample)}",
                flush=True,
            )
            sides[name]["warmups" if rep < warmup else "runs"].append(sample)
    return sides


def sizes_for(args: Any, sizes: dict[str, dict[str, int]]) -> dict[str, int]:
    """A benchmark's sizes for this run: ``sizes["full"]`` or ``sizes["smoke"]``, with its
    ``-p name=value`` overrides."""
    chosen = dict(sizes["smoke" if args.smoke else "full"])
    for key, value in getattr(args, "params", {}).items():
        if key in chosen:
            chosen[key] = int(value)
    return chosen
