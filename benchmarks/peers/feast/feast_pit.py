"""The Feast side of ``bench_features``, run with ``benchmarks/.venv-feast/bin/python``.

``apply``: register the entity and the feature views of ``feature_repo/definitions.py`` in the
repo folder (a copy of ``feature_repo`` in the benchmark's work folder). Not timed as the join.

``join``: read the label rows into pandas and open the store (not timed), then time
``get_historical_features(entity_df=labels, features=[...]).to_arrow()`` with the DuckDB
offline store, and write the timing, the peak RSS of this process and the same summary the
other sides produce (``_common.summarize_pit``) to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCHMARKS))  # _common is stdlib + pyarrow + numpy: all in this venv

from _common import Clock, peak_rss_mb, summarize_pit  # noqa: E402


def load_definitions(repo: Path):
    """Import ``definitions.py`` of the repo folder (it reads ``BENCH_FEAST_DATA``)."""
    path = repo / "definitions.py"
    spec = importlib.util.spec_from_file_location("bench_feast_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply(args: argparse.Namespace) -> dict:
    """Register the Feast objects in the repo's registry."""
    from feast import FeatureStore

    t0 = time.perf_counter()
    objects = load_definitions(args.repo).OBJECTS
    FeatureStore(repo_path=str(args.repo)).apply(objects)
    return {"apply_s": round(time.perf_counter() - t0, 3), "peak_rss_mb": peak_rss_mb()}


def join(args: argparse.Namespace) -> dict:
    """One timed point-in-time join of the label rows against every feature view."""
    import ibis
    import pyarrow.parquet as pq
    from feast import FeatureStore

    # Feast reads the Parquet files through ibis' default DuckDB connection: give it the same
    # thread count as the bare DuckDB side.
    ibis.get_backend().raw_sql(f"SET threads = {args.threads}")
    labels = pq.read_table(args.labels).to_pandas()
    store = FeatureStore(repo_path=str(args.repo))
    views = {fv.name: [f.name for f in fv.features] for fv in store.list_feature_views()}
    refs = [f"{view}:{col}" for view, cols in sorted(views.items()) for col in cols]
    clock = Clock()
    job = store.get_historical_features(entity_df=labels, features=refs)
    table = job.to_arrow()
    result = clock.stop("join_s")
    result.update(summarize_pit(table, dict(sorted(views.items())), args.sample_step))
    return result


def main() -> int:
    """Parse the command line, run the mode, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["apply", "join"])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sample-step", type=int, default=1000)
    args = parser.parse_args()
    os.environ["BENCH_FEAST_DATA"] = str(args.data)
    result = apply(args) if args.mode == "apply" else join(args)
    from importlib.metadata import version

    result["versions"] = {p: version(p) for p in ("feast", "duckdb", "ibis-framework", "pandas")}
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
