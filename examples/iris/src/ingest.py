"""Land the iris flowers: the feature table, a validation table and a batch of new flowers.

As in the reference project, the flowers come from scikit-learn's bundled copy of the data set
(no download). The feature table has a primary key, so running this again upserts the same rows
instead of adding copies. Every tenth flower from the 7th on is held out: those rows, with their
label, make the validation table the deployment job evaluates on, and noisy copies of them
without the label are the "new flowers" the batch inference job scores.
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from lakestack import dbutils
from lakestack.features import FeatureEngineeringClient
from lakestack.lake import default_catalog

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]

parser = argparse.ArgumentParser()
parser.add_argument("--catalog", required=True)
parser.add_argument("--schema", required=True)
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"

iris = load_iris()
flowers = pd.DataFrame(iris.data, columns=FEATURES)
flowers.insert(0, "flower_id", np.arange(1, len(flowers) + 1, dtype="int64"))
flowers["species"] = iris.target.astype("int64")
held_out = flowers["flower_id"] % 10 >= 7

fe = FeatureEngineeringClient()
name = f"{prefix}.iris_features"
if default_catalog().table_exists(name):
    fe.write_table(name=name, df=flowers, mode="merge")
else:
    fe.create_table(
        name=name,
        primary_keys=["flower_id"],
        df=flowers,
        description="Iris flowers: the four measurements in cm and the species (0, 1, 2).",
    )

catalog = default_catalog()
validation = flowers[held_out].reset_index(drop=True)
new_flowers = validation.drop(columns=["species"]).copy()
rng = np.random.default_rng(7)
new_flowers[FEATURES] = (new_flowers[FEATURES] + rng.normal(0, 0.1, (len(new_flowers), 4))).round(2)
new_flowers["flower_id"] += 1000
for table, frame, comment in (
    ("iris_validation", validation, "Held-out flowers with their species, for evaluation."),
    ("iris_new_flowers", new_flowers, "New flowers to classify (no species)."),
):
    full = f"{prefix}.{table}"
    if catalog.table_exists(full):
        catalog.table(full).overwrite(frame)
    else:
        catalog.create_table(full, frame, primary_keys=["flower_id"], comment=comment)

print(f"{len(flowers)} flowers in {name}; {len(validation)} held out; {len(new_flowers)} new")
dbutils.jobs.taskValues.set("rows", len(flowers))
