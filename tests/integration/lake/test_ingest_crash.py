"""Exactly once across runs killed with SIGKILL: at named points, and at random moments.

An ingesting process is killed (no cleanup, no finally blocks) by the test hook
``LAKESTACK_INGEST_CRASH_AT`` or by the test itself; the next run must leave every source row in
the table exactly once, rescued values included.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from lakestack.lake import Catalog
from lakestack.lake.ingest import CRASH_ENV, ingest_files

pytestmark = pytest.mark.integration

TABLE = "main.default.events"
ROWS_PER_FILE = 40
HINTS = "amount double"  # so that "n/a" is rescued even when it is in the first batch


def write_files(folder: Path, start: int, count: int) -> list[int]:
    """CSV files of ROWS_PER_FILE rows with unique ids; every 7th amount does not parse."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for number in range(start, start + count):
        lines = ["id,amount,file"]
        for row in range(ROWS_PER_FILE):
            ident = number * 1000 + row
            amount = "n/a" if ident % 7 == 0 else f"{row}.5"
            lines.append(f"{ident},{amount},f{number}")
            ids.append(ident)
        path = folder / f"part-{number:03d}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        stamp = 1_700_000_000 + number
        os.utime(path, (stamp, stamp))
    return ids


def command(warehouse: Path, source: Path, batch: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lakestack.lake.ingest",
        "--warehouse",
        str(warehouse),
        "--source",
        str(source),
        "--table",
        TABLE,
        "--max-files-per-batch",
        str(batch),
        "--schema-hints",
        HINTS,
    ]


def assert_exactly_once(warehouse: Path, expected: list[int]) -> None:
    table = Catalog(warehouse).table(TABLE).read(columns=["id", "amount", "_rescued_data"])
    counts = Counter(table.column("id").to_pylist())
    assert sorted(counts) == sorted(expected), "a row is missing"
    assert [i for i, n in counts.items() if n > 1] == [], "a row was ingested twice"
    rescued = [json.loads(v)["amount"] for v in table.column("_rescued_data").to_pylist() if v]
    assert rescued == ["n/a"] * sum(1 for i in expected if i % 7 == 0)


@pytest.mark.parametrize(
    ("point", "recovered"),
    [
        ("after_create", []),  # table created from the first files, no checkpoint yet
        ("after_plan:1", [1]),  # batch 1 planned, not committed: redone with the same files
        ("after_commit:1", [1]),  # batch 1 committed, not recorded: found in the table
        ("after_plan:3", [3]),  # two batches in, the third planned
        ("after_commit:2", [2]),
        ("after_record:2", []),  # between batches: nothing to repair
    ],
)
def test_a_run_killed_at_each_point_loses_and_duplicates_nothing(
    tmp_path: Path, point: str, recovered: list[int]
) -> None:
    source, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    expected = write_files(source, 0, 8)
    killed = subprocess.run(
        command(warehouse, source, 2),
        env={**os.environ, CRASH_ENV: point},
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert killed.stdout == b""  # it died before reporting anything

    expected += write_files(source, 8, 1)  # a file arriving between the runs
    result = ingest_files(
        Catalog(warehouse), str(source), TABLE, max_files_per_batch=2, schema_hints=HINTS
    )
    assert result.recovered_batches == recovered
    assert_exactly_once(warehouse, expected)
    again = ingest_files(
        Catalog(warehouse), str(source), TABLE, max_files_per_batch=2, schema_hints=HINTS
    )
    assert (again.files, again.skipped_files) == (0, 9)


def test_runs_killed_at_random_moments_converge_to_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20241130)
    source, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    log = warehouse / "main" / "default" / "events" / "_delta_log"
    expected = write_files(source, 0, 6)
    kills = 0
    for attempt in range(5):
        commits = len(list(log.glob("*.json"))) if log.exists() else 0
        process = subprocess.Popen(
            command(warehouse, source, 1), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # kill a few commits in, at a random moment of the batch cycle (reading, writing the
        # Delta files, committing, recording), whatever the speed of the machine: the cycle is
        # timed between the commits seen, so that the kill lands within the next batch, while
        # there are files left (a batch takes about 10 ms on a fast machine)
        wanted = commits + rng.randint(1, 3)
        seen, seen_at, cycle = commits, time.monotonic(), 0.01
        while process.poll() is None and seen < wanted:
            time.sleep(0.001)
            now = len(list(log.glob("*.json"))) if log.exists() else 0
            if now > seen:
                if seen > commits:
                    cycle = (time.monotonic() - seen_at) / (now - seen)
                seen, seen_at = now, time.monotonic()
        time.sleep(rng.uniform(0, cycle))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=60)
        expected += write_files(source, 6 + 4 * attempt, 4)
    final = ingest_files(
        Catalog(warehouse), str(source), TABLE, max_files_per_batch=1, schema_hints=HINTS
    )
    assert final.files >= 4  # at least the files added after the last attempt
    assert_exactly_once(warehouse, expected)
    assert kills >= 3, kills


def test_two_runs_at_once_share_the_work_without_duplicates(tmp_path: Path) -> None:
    source, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    expected = write_files(source, 0, 10)
    Catalog(warehouse).create_table(TABLE, schema=pa.schema([("id", pa.int64())]))
    runs = [
        subprocess.Popen(command(warehouse, source, 1), stdout=subprocess.PIPE) for _ in range(2)
    ]
    reports = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum(r["files"] for r in reports) == 10
    assert_exactly_once(warehouse, expected)
