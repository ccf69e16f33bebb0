"""Generate a synthetic flower data set (no download), land it in a volume as CSV and in the
catalog as a Delta table (overwritten on each run, with a primary key)."""

import argparse
import json

import numpy as np
import pandas as pd

from lakestack import dbutils
from lakestack.lake import default_catalog
from lakestack.runtime import local_path

SPECIES = {
    "setosa": ([5.0, 3.4, 1.5, 0.2], [0.35, 0.38, 0.17, 0.1]),
    "versicolor": ([5.9, 2.8, 4.3, 1.3], [0.5, 0.31, 0.47, 0.2]),
    "virginica": ([6.6, 3.0, 5.6, 2.0], [0.64, 0.32, 0.55, 0.27]),
}
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--table", required=True)
args = parser.parse_args()

rng = np.random.default_rng(7)
frames = []
for name, (mean, std) in SPECIES.items():
    values = rng.normal(mean, std, size=(args.rows // len(SPECIES), len(COLUMNS)))
    frame = pd.DataFrame(values.round(2), columns=COLUMNS)
    frame["species"] = name
    frames.append(frame)
data = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=7)

target = local_path(args.out)
target.parent.mkdir(parents=True, exist_ok=True)
data.to_csv(target, index=False)
print(f"wrote {len(data)} rows to {args.out}")

table = data.assign(flower_id=range(1, len(data) + 1))
catalog = default_catalog()
if catalog.table_exists(args.table):
    version = catalog.table(args.table).overwrite(table)
else:
    version = catalog.create_table(args.table, table, primary_keys=["flower_id"]).version
print(f"wrote {len(data)} rows to {args.table} (version {version})")

dbutils.jobs.taskValues.set("path", args.out)
dbutils.jobs.taskValues.set("local_path", str(target))
dbutils.jobs.taskValues.set("rows", len(data))
dbutils.jobs.taskValues.set("table", args.table)
dbutils.jobs.taskValues.set("species", json.dumps(sorted(SPECIES)))
