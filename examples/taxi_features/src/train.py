"""Train the fare model on features looked up point-in-time, log it with its feature spec.

As in the Stacks' TrainWithFeatureStore notebook: each trip's timestamps are rounded up to the
next feature window (15 min for pickup, 30 min for dropoff) and the features are looked up as of
then; the rounded timestamps are excluded from the model's inputs.
"""

import argparse

import mlflow
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, root_mean_squared_error
from sklearn.model_selection import train_test_split

from lakestack import dbutils
from lakestack.features import FeatureEngineeringClient, FeatureLookup
from lakestack.lake import default_catalog

parser = argparse.ArgumentParser()
parser.add_argument("--trips", required=True)
parser.add_argument("--pickup", required=True)
parser.add_argument("--dropoff", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

trips = default_catalog().table(args.trips).to_pandas(
    columns=["trip_id", "tpep_pickup_datetime", "tpep_dropoff_datetime", "trip_distance",
             "fare_amount", "pickup_zip", "dropoff_zip"]
)
trips["rounded_pickup_datetime"] = trips["tpep_pickup_datetime"].dt.ceil("15min")
trips["rounded_dropoff_datetime"] = trips["tpep_dropoff_datetime"].dt.ceil("30min")
trips = trips.drop(columns=["tpep_pickup_datetime", "tpep_dropoff_datetime"])

fe = FeatureEngineeringClient()
lookups = [
    FeatureLookup(
        table_name=args.pickup,
        feature_names=["mean_fare_window_1h_pickup_zip", "count_trips_window_1h_pickup_zip"],
        lookup_key=["pickup_zip"],
        timestamp_lookup_key=["rounded_pickup_datetime"],
    ),
    FeatureLookup(
        table_name=args.dropoff,
        feature_names=["count_trips_window_30m_dropoff_zip", "dropoff_is_weekend"],
        lookup_key=["dropoff_zip"],
        timestamp_lookup_key=["rounded_dropoff_datetime"],
    ),
]
training_set = fe.create_training_set(
    df=trips,
    feature_lookups=lookups,
    label="fare_amount",
    exclude_columns=["trip_id", "rounded_pickup_datetime", "rounded_dropoff_datetime"],
)
data = training_set.load_df()
X, y = data.drop(columns=["fare_amount"]), data["fare_amount"]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=123)

mlflow.set_experiment("/taxi_features/train")
with mlflow.start_run(run_name="fare_hgb"):
    model = HistGradientBoostingRegressor(max_iter=200, random_state=42).fit(X_train, y_train)
    predicted = model.predict(X_test)
    rmse = float(root_mean_squared_error(y_test, predicted))
    mlflow.log_metrics({"test_rmse": rmse, "test_mae": float(mean_absolute_error(y_test, predicted))})
    info = fe.log_model(
        model=model,
        artifact_path="model_packaged",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name=args.model,
        input_example=X_train.head(5),
    )

version = info.registered_model_version
print(f"trained on {len(X_train)} trips: test RMSE {rmse:.2f}; registered {args.model} version {version}")
dbutils.jobs.taskValues.set("model_uri", f"models:/{args.model}/{version}")
dbutils.jobs.taskValues.set("model_version", int(version))
dbutils.jobs.taskValues.set("test_rmse", rmse)
