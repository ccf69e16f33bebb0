"""Parallel SQL scripts share the workspace's DuckDB scratch file: they take turns."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakestack.lake.sql import run_sql_script

pytestmark = pytest.mark.integration

HOLD = """
import sys, time, duckdb
from pathlib import Path
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE numbers AS SELECT * FROM range(100) t(i)")
Path(sys.argv[2]).touch()
time.sleep(1.5)
con.close()
"""


def test_a_script_waits_for_the_scratch_file_another_process_holds(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "sql.duckdb"), str(ready)]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.02)
        started = time.monotonic()
        rows = run_sql_script(
            "SELECT sum(i) FROM numbers", parameters={}, workspace_root=tmp_path, out=io.StringIO()
        )
        assert rows == [(4950,)]
        assert holder.poll() == 0  # it ran only after the holder let go
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(30)
