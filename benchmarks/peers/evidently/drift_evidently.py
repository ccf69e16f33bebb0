"""The Evidently side of ``bench_monitoring``: one window pair through ``DataDriftPreset``.

Run by the benchmark in ``benchmarks/.venv-evidently``:
``python drift_evidently.py drift --spec spec.json --out result.json``. Reads the pair's two
Parquet files into pandas (not timed, as the lakestack side's read is not), times
``Report([DataDriftPreset()]).run(current, reference)``, and writes the time, CPU, peak RSS and
each column's drift score and verdict (Evidently's default for numeric columns above 1,000 rows
is the Wasserstein distance normed by the reference's standard deviation, threshold 0.1).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def drift(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(spec["reference"])
    current = pd.read_parquet(spec["current"])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, wall0 = time.process_time(), time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    result = snapshot.dict()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    scores: dict[str, dict[str, Any]] = {}
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            value = float(metric["value"])
            scores[config["column"]] = {
                "method": config.get("method"),
                "score": value,
                "drifted": value >= float(config.get("threshold", 0.1)),
            }
    return {
        "drift_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mb": round(rss_before, 1),
        "columns": scores,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["drift"])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args(argv)
    spec = json.loads(ns.spec.read_text())
    ns.out.write_text(json.dumps(drift(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
