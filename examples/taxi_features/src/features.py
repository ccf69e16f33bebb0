"""Pickup and dropoff features over time windows, written to feature tables.

The MLOps Stacks functions, in pandas instead of Spark:
- pickup: per pickup zip, a 1 hour window sliding every 15 minutes: mean fare and trip count;
- dropoff: per dropoff zip, a tumbling 30 minute window: trip count, and whether the window ends
  on a weekend in New York.
Each feature row is keyed by (zip, window end): the window end is the feature timestamp, so a
point-in-time lookup at time t sees only windows that had ended by t.
"""

import argparse

import pandas as pd

from lakestack.features import FeatureEngineeringClient
from lakestack.lake import default_catalog

parser = argparse.ArgumentParser()
parser.add_argument("--kind", choices=["pickup", "dropoff"], required=True)
parser.add_argument("--trips", required=True)
parser.add_argument("--table", required=True)
args = parser.parse_args()

trips = default_catalog().table(args.trips).to_pandas()

if args.kind == "pickup":
    bucket = trips["tpep_pickup_datetime"].dt.floor("15min")
    # a trip counts in the four 1 h windows (sliding by 15 min) that contain it
    windows = pd.concat(
        [
            pd.DataFrame(
                {
                    "zip": trips["pickup_zip"],
                    "ts": bucket + pd.Timedelta(minutes=15 * k),
                    "fare": trips["fare_amount"],
                }
            )
            for k in range(1, 5)
        ]
    )
    features = (
        windows.groupby(["zip", "ts"])
        .agg(
            mean_fare_window_1h_pickup_zip=("fare", "mean"),
            count_trips_window_1h_pickup_zip=("fare", "size"),
        )
        .reset_index()
    )
    features["mean_fare_window_1h_pickup_zip"] = features["mean_fare_window_1h_pickup_zip"].astype("float32")
    features["count_trips_window_1h_pickup_zip"] = features["count_trips_window_1h_pickup_zip"].astype("int32")
    description = "Pickup zip features: 1 h window sliding every 15 min."
else:
    end = trips["tpep_dropoff_datetime"].dt.floor("30min") + pd.Timedelta(minutes=30)
    features = (
        pd.DataFrame({"zip": trips["dropoff_zip"], "ts": end})
        .groupby(["zip", "ts"])
        .size()
        .rename("count_trips_window_30m_dropoff_zip")
        .reset_index()
    )
    # trip times are instants (UTC), as Databricks timestamps are
    local = features["ts"].dt.tz_convert("America/New_York")
    features["count_trips_window_30m_dropoff_zip"] = features["count_trips_window_30m_dropoff_zip"].astype("int32")
    features["dropoff_is_weekend"] = (local.dt.weekday >= 5).astype("int32")
    description = "Dropoff zip features: tumbling 30 min window."

features["yyyy_mm"] = features["ts"].dt.strftime("%Y-%m")
fe = FeatureEngineeringClient()
# create_table writes df when it creates the table, and is a no-op when the table exists with the
# same keys (the Stacks notebooks rely on this); the merge then upserts the windows of this run
fe.create_table(
    name=args.table,
    primary_keys=["zip", "ts"],
    timestamp_keys=["ts"],
    df=features,
    description=description,
)
fe.write_table(name=args.table, df=features, mode="merge")
print(f"wrote {len(features)} {args.kind} feature rows to {args.table}")
