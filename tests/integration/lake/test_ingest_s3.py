"""Ingestion with the warehouse, the volume and the checkpoint on object storage (moto's S3)."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
import pytest

from lakestack.lake import Catalog
from lakestack.lake.ingest import ingest_files

pytestmark = pytest.mark.integration


def test_a_volume_on_s3_is_ingested_once(s3_bucket: tuple[str, dict[str, str]]) -> None:
    bucket, options = s3_bucket
    catalog = Catalog(f"s3://{bucket}/warehouse", options)
    catalog.create_schema("main.bronze")
    landing = catalog.create_volume("main.bronze.landing")
    fs = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=options["AWS_ENDPOINT_URL"],
        scheme="http",
    )
    folder = landing.split("://", 1)[1]

    def put(name: str, text: str) -> None:
        with fs.open_output_stream(f"{folder}/{name}") as out:
            out.write(text.encode())

    put("a.csv", "id,amount\n1,1.5\n2,2.5\n")
    first = ingest_files(catalog, "/Volumes/main/bronze/landing", "main.bronze.events")
    assert (first.files, first.rows, first.table_created) == (1, 2, True)
    assert first.checkpoint.startswith(
        f"s3://{bucket}/warehouse/main/bronze/events/_lakestack_ingest/"
    )

    put("b.csv", "id,amount\n3,oops\n")
    second = ingest_files(catalog, "/Volumes/main/bronze/landing", "main.bronze.events")
    assert (second.files, second.skipped_files) == (1, 1)
    table = catalog.table("main.bronze.events").read()
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3]
    rescued = [json.loads(v) for v in table.column("_rescued_data").to_pylist() if v]
    assert rescued == [{"amount": "oops", "_file_path": "/Volumes/main/bronze/landing/b.csv"}]
