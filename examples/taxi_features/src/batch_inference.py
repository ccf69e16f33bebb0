"""Score the latest day of trips with score_batch: the features are looked up by the model."""

import argparse

import pandas as pd

from lakestack import dbutils
from lakestack.features import FeatureEngineeringClient
from lakestack.lake import default_catalog

parser = argparse.ArgumentParser()
parser.add_argument("--trips", required=True)
parser.add_argument("--model-uri", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

catalog = default_catalog()
trips = catalog.table(args.trips).to_pandas(
    columns=["trip_id", "tpep_pickup_datetime", "tpep_dropoff_datetime", "trip_distance",
             "pickup_zip", "dropoff_zip"]
)
latest = trips["tpep_pickup_datetime"].dt.date.max()
batch = trips[trips["tpep_pickup_datetime"].dt.date == latest].copy()
batch["rounded_pickup_datetime"] = batch["tpep_pickup_datetime"].dt.ceil("15min")
batch["rounded_dropoff_datetime"] = batch["tpep_dropoff_datetime"].dt.ceil("30min")
batch = batch.drop(columns=["tpep_pickup_datetime", "tpep_dropoff_datetime"])

scored = FeatureEngineeringClient().score_batch(model_uri=args.model_uri, df=batch)
scored["model_id"] = args.model_uri
scored["timestamp"] = pd.Timestamp.now(tz="UTC")
if catalog.table_exists(args.out):
    catalog.table(args.out).append(scored)
else:
    catalog.create_table(args.out, scored, comment="Batch fare predictions, one row per trip.")
print(f"scored {len(scored)} trips of {latest}; mean predicted fare {scored['prediction'].mean():.2f}")
dbutils.jobs.taskValues.set("scored", len(scored))
