"""Train the churn classifier on the latest labelled days and register a new version.

The reference project's pipeline: a ColumnTransformer that imputes the numeric columns with
their median and one-hot encodes the categorical ones (unknown categories ignored), then a
RandomForestClassifier (100 trees, ``max_depth`` 4, ``random_state`` 42; the seed's
``max_features='auto'`` is ``'sqrt'`` for a classifier, the only spelling scikit-learn still
takes), on a stratified 75/25 split. The labels of the last ``--training-days`` days, without
the held-out customers, are joined to the feature table with ``create_training_set``;
``log_model`` records the feature spec, so scoring needs only ``customerID``. Registering the
version starts the deployment job.
"""

import argparse

import mlflow
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from telco_data import CATEGORICAL, NUMERIC, START, held_out

from lakestack import dbutils
from lakestack.features import FeatureEngineeringClient, FeatureLookup
from lakestack.lake import default_catalog

parser = argparse.ArgumentParser()
parser.add_argument("--catalog", required=True)
parser.add_argument("--schema", required=True)
parser.add_argument("--training-days", type=int, default=3)
parser.add_argument("--max-depth", type=int, default=4)
parser.add_argument("--experiment", required=True)
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"
model_name = f"{prefix}.churn_model"

labels = default_catalog().table(f"{prefix}.churn_labels").to_pandas()
day = (labels["timestamp"] - START).dt.days
labels = labels[(day > day.max() - args.training_days) & ~held_out(labels["customerID"])]
first_day, last_day = int(day[labels.index].min()), int(day.max())

fe = FeatureEngineeringClient()
training_set = fe.create_training_set(
    df=labels,
    feature_lookups=[FeatureLookup(table_name=f"{prefix}.churn_features", lookup_key="customerID")],
    label="churn",
    exclude_columns=["customerID", "timestamp"],
)
data = training_set.load_df()
X, y = data.drop(columns=["churn"]), data["churn"]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=42, stratify=y
)

preprocessor = ColumnTransformer(
    [
        ("numeric", SimpleImputer(strategy="median"), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ],
    remainder="passthrough",
    sparse_threshold=0,
)
params = {
    "n_estimators": 100,
    "max_depth": args.max_depth,
    "min_samples_leaf": 1,
    "max_features": "sqrt",
    "random_state": 42,
}
model = Pipeline([("preprocessor", preprocessor), ("classifier", RandomForestClassifier(**params))])

mlflow.set_experiment(args.experiment)
with mlflow.start_run(run_name="random_forest_baseline"):
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)[:, 1]
    predicted = model.predict(X_test)
    metrics = {
        "test_roc_auc": roc_auc_score(y_test, proba),
        "test_f1": f1_score(y_test, predicted),
        "test_accuracy": accuracy_score(y_test, predicted),
        "test_log_loss": log_loss(y_test, proba),
    }
    mlflow.log_params({**params, "first_day": first_day, "last_day": last_day, "rows": len(X)})
    mlflow.log_metrics(metrics)
    logged = fe.log_model(
        model=model,
        artifact_path="fs_model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name=model_name,
        input_example=X_train.head(5),
    )

version = int(logged.registered_model_version)
print(
    f"trained on days {first_day}..{last_day} ({len(X_train)} customers): test ROC AUC "
    f"{metrics['test_roc_auc']:.3f}, F1 {metrics['test_f1']:.3f}; "
    f"registered {model_name} version {version}"
)
dbutils.jobs.taskValues.set("model_name", model_name)
dbutils.jobs.taskValues.set("model_version", version)
dbutils.jobs.taskValues.set("test_roc_auc", metrics["test_roc_auc"])
dbutils.jobs.taskValues.set("last_day", last_day)
