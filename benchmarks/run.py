"""Entry point of ``make bench``: discover ``benchmarks/bench_*.py``, run them, report.

Each benchmark module exposes ``run(args) -> dict``. The returned dict may hold:

* ``table``: a list of row dicts, printed as a table (columns are the union of the keys);
* ``summary``: a list of lines printed under the table;
* ``env``: extra environment facts (e.g. a peer's version), merged into the recorded environment;
* anything else (raw samples, parameters), written as is to the JSON result.

Usage::

    .venv/bin/python benchmarks/run.py [--only NAME[,NAME]] [--smoke] [--repeat N] [--warmup N]
        [-p KEY=VALUE ...]

Results go to ``benchmarks/results/<name>-<timestamp>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PACKAGES = ("lakestack", "pandas", "scikit-learn", "numpy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line shared by every benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="benchmark name(s) to run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--repeat", type=int, default=None, help="measured runs per side")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up runs per side")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON results")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="benchmark-specific setting (see benchmarks/README.md)",
    )
    args = parser.parse_args(argv)
    args.params = dict(item.split("=", 1) for item in args.param if "=" in item)
    args.only = [name for item in args.only for name in item.split(",") if name]
    if args.repeat is None:
        args.repeat = 1 if args.smoke else 3
    if args.warmup is None:
        args.warmup = 0 if args.smoke else 1
    return args


def discover(only: list[str]) -> dict[str, ModuleType]:
    """Import the ``bench_*.py`` modules beside this file, filtered by ``only``."""
    modules: dict[str, ModuleType] = {}
    if str(BENCH_DIR) not in sys.path:  # the modules import their shared helpers from _common
        sys.path.insert(0, str(BENCH_DIR))
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        spec = importlib.util.spec_from_file_location(f"benchmarks.{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
        spec.loader.exec_module(module)
        modules[name] = module
    unknown = set(only) - set(modules)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return modules


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def mem_available_mb() -> int | None:
    """MemAvailable from /proc/meminfo, in MiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def version(package: str) -> str | None:
    """The installed version of a package in this interpreter, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """The facts that make a result comparable (section 8.1 rule 6)."""
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "versions": {package: version(package) for package in PACKAGES},
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_available_mb": mem_available_mb(),
        "loadavg": os.getloadavg(),
    }


def fmt(value: Any) -> str:
    """A table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned text table."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[fmt(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def save(name: str, record: dict[str, Any]) -> Path:
    """Write one benchmark's record as JSON under results/."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def run_one(name: str, module: ModuleType, args: argparse.Namespace) -> bool:
    """Run one benchmark, print and save its result; False if it raised."""
    print(f"\n== {name} ==", flush=True)
    started = time.time()
    record: dict[str, Any] = {"name": name, "started_at": started, "args": vars(args)}
    record["environment"] = environment()
    ok = True
    try:
        result = module.run(args)
    except Exception:
        ok = False
        result = {"error": traceback.format_exc()}
        print(result["error"], file=sys.stderr)
    record["environment"].update(result.pop("env", {}))
    record["duration_s"] = round(time.time() - started, 3)
    record.update(result)
    print_table(record.get("table", []))
    for line in record.get("summary", []):
        print(line)
    if not args.no_save:
        print(f"results: {save(name, record)}")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit 1 if one of them raised."""
    args = parse_args(argv)
    env = environment()
    print(
        f"python {env['python']}, {env['nproc']} CPUs ({env['cpu_model']}), "
        f"{env['mem_available_mb']} MiB free; versions {env['versions']}"
    )
    results = [run_one(name, module, args) for name, module in discover(args.only).items()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
