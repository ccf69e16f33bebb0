"""The catalog on object storage: a target whose lakestack.root is an s3:// URL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from lakestack.console import NoopConsole
from lakestack.lake import Catalog
from lakestack.workspace import Workspace

pytestmark = pytest.mark.integration


def test_tables_sql_and_volumes_on_s3(s3_bucket: tuple[str, dict[str, str]]) -> None:
    bucket, options = s3_bucket
    catalog = Catalog(f"s3://{bucket}/warehouse", options)
    catalog.create_schema("main.sales")
    table = catalog.create_table("main.sales.orders", pa.table({"id": [1, 2]}), primary_keys=["id"])
    table.merge(pa.table({"id": [2, 3]}))
    assert table.uri == f"s3://{bucket}/warehouse/main/sales/orders"
    assert sorted(table.read().column("id").to_pylist()) == [1, 2, 3]
    assert catalog.sql(
        "SELECT count(*) AS n FROM main.sales.orders VERSION AS OF 1"
    ).to_pylist() == [{"n": 2}]
    assert [t.name for t in Catalog(f"s3://{bucket}/warehouse", options).list_tables()] == [
        "main.sales.orders"
    ]
    catalog.create_volume("main.sales.landing")
    assert catalog.list_volumes("main.sales") == ["main.sales.landing"]


def test_a_job_writes_to_a_warehouse_on_s3(
    s3_bucket: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    bucket, options = s3_bucket
    root = tmp_path / "project"
    root.mkdir()
    (root / "write.py").write_text(
        textwrap.dedent(
            """
            import pyarrow as pa
            from lakestack.lake import default_catalog
            default_catalog().create_table("main.ml.scores", pa.table({"id": [1, 2, 3]}))
            """
        )
    )
    bundle = {
        "bundle": {"name": "s3"},
        "lakestack": {"root": f"s3://{bucket}/prod", "storage_options": options},
        "resources": {
            "schemas": {"ml": {"catalog_name": "main", "name": "ml"}},
            "jobs": {
                "write": {
                    "tasks": [{"task_key": "w", "spark_python_task": {"python_file": "write.py"}}]
                }
            },
        },
    }
    (root / "lakestack.yml").write_text(yaml.safe_dump(bundle))
    ws = Workspace.open(root, console=NoopConsole())
    try:
        run = ws.run("write")
        assert run.state == "SUCCESS", run.state_message
        assert ws.catalog.root == f"s3://{bucket}/prod/warehouse"
        assert ws.catalog.sql("SELECT sum(id) AS s FROM main.ml.scores").to_pylist() == [{"s": 6}]
        assert (root / ".lakestack" / "state.db").exists()
        assert not (root / ".lakestack" / "warehouse").exists()
        ws.destroy()
        assert ws.catalog.list_schemas("main") == []
    finally:
        ws.close()
