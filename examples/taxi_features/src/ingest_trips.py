"""Ingest the landed trip files into the bronze table, each file once (Auto Loader style)."""

import argparse
import json

from lakestack import dbutils
from lakestack.lake import default_catalog
from lakestack.lake.ingest import ingest_files

parser = argparse.ArgumentParser()
parser.add_argument("--source", required=True)
parser.add_argument("--table", required=True)
args = parser.parse_args()

result = ingest_files(
    default_catalog(),
    args.source,
    args.table,
    format="csv",
    schema_hints="tpep_pickup_datetime timestamp, tpep_dropoff_datetime timestamp, pickup_zip int, dropoff_zip int",
    primary_keys=["trip_id"],
)
print(f"ingested {result.files} files, {result.rows} rows into {args.table} (version {result.table_version})")
dbutils.jobs.taskValues.set("files", result.files)
dbutils.jobs.taskValues.set("rows", result.rows)
print(json.dumps({"rescued_rows": result.rescued_rows}))
