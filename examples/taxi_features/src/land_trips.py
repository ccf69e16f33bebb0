"""Land synthetic NYC taxi trips (no download) in a volume: one CSV file per day.

Fares follow distance, the hour (rush hours cost more) and the pickup zone, so the time-window
features carry real signal. Each run lands the next days after the ones already landed, the way
new files arrive for Auto Loader.
"""

import argparse
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from lakestack import dbutils
from lakestack.runtime import local_path

ZIPS = [10001, 10002, 10003, 10011, 10013, 10016, 10019, 10022, 10036, 11201]
START = datetime(2026, 1, 1)

parser = argparse.ArgumentParser()
parser.add_argument("--days", type=int, required=True)
parser.add_argument("--trips-per-day", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

folder = local_path(args.out)
folder.mkdir(parents=True, exist_ok=True)
landed = sorted(folder.glob("trips_*.csv"))
first_day = len(landed)
zone_price = {z: 1.0 + 0.08 * i for i, z in enumerate(ZIPS)}

for day in range(first_day, first_day + args.days):
    rng = np.random.default_rng(day)
    n = args.trips_per_day
    start = START + timedelta(days=day)
    # whole seconds, as in the TLC trip records
    pickup = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s")
    distance = np.round(rng.gamma(2.0, 1.4, n), 2)
    minutes = distance * rng.uniform(2.5, 4.5, n) + rng.uniform(2, 8, n)
    dropoff = pickup + pd.to_timedelta(np.round(minutes * 60), unit="s")
    pickup_zip = rng.choice(ZIPS, n)
    hour = pickup.hour.to_numpy()
    rush = np.where(((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19)), 1.3, 1.0)
    zone = np.array([zone_price[z] for z in pickup_zip])
    fare = np.round((3.0 + 2.5 * distance) * rush * zone + rng.normal(0, 1.0, n), 2)
    trips = pd.DataFrame(
        {
            "trip_id": [f"{day:04d}-{i:05d}" for i in range(n)],
            "tpep_pickup_datetime": pickup,
            "tpep_dropoff_datetime": dropoff,
            "trip_distance": distance,
            "fare_amount": np.maximum(fare, 2.5),
            "pickup_zip": pickup_zip,
            "dropoff_zip": rng.choice(ZIPS, n),
        }
    )
    trips.to_csv(folder / f"trips_{start:%Y%m%d}.csv", index=False)

print(f"landed days {first_day}..{first_day + args.days - 1} in {args.out}")
dbutils.jobs.taskValues.set("days_landed", first_day + args.days)
