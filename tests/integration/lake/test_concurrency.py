"""Two processes writing one table at the same time lose no rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from lakestack.lake import Catalog

pytestmark = pytest.mark.integration

WRITER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from lakestack.lake import Catalog
    table = Catalog(sys.argv[1]).table("main.sales.events")
    worker = int(sys.argv[2])
    for batch in range(int(sys.argv[3])):
        ids = [worker * 1_000_000 + batch * 10 + i for i in range(10)]
        table.append(pa.table({"id": ids, "worker": [worker] * 10}))
    """
)


def test_concurrent_appends_lose_no_rows(catalog: Catalog, tmp_path: Path) -> None:
    catalog.create_table(
        "main.sales.events",
        schema=pa.schema([("id", pa.int64()), ("worker", pa.int64())]),
        primary_keys=["id"],
    )
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    batches = 15
    writers = [
        subprocess.Popen([sys.executable, str(script), catalog.root, str(w), str(batches)])
        for w in (1, 2)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    table = catalog.table("main.sales.events")
    rows = table.read()
    assert rows.num_rows == 2 * batches * 10
    assert len(set(rows.column("id").to_pylist())) == rows.num_rows
    assert table.version == 2 * batches
