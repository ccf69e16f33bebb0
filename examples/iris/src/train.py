"""Train the iris classifier and register a new version of it.

The reference project trains a DecisionTreeClassifier on a random split without a seed; here
the split and the model are deterministic, so retraining on unchanged data gives the same
model, and the deployment job's evaluation (which wants the challenger to beat the champion)
keeps the champion. Registering through lakestack records the version's lineage (this run, the
git commit, the feature table and its Delta version) and starts the deployment job at once.
"""

import argparse

import mlflow
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lakestack import dbutils
from lakestack.lake import default_catalog
from lakestack.registry import log_model

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]

parser = argparse.ArgumentParser()
parser.add_argument("--catalog", required=True)
parser.add_argument("--schema", required=True)
parser.add_argument("--regularization", type=float, default=1.0)
parser.add_argument("--experiment", required=True)
args = parser.parse_args()
model_name = f"{args.catalog}.{args.schema}.iris_classifier"

flowers = default_catalog().table(f"{args.catalog}.{args.schema}.iris_features").to_pandas()
train = flowers[flowers["flower_id"] % 10 < 7]
test = flowers[flowers["flower_id"] % 10 >= 7]

mlflow.set_experiment(args.experiment)
with mlflow.start_run(run_name="logistic_regression"):
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=args.regularization, max_iter=1000)
    ).fit(train[FEATURES], train["species"])
    predicted = model.predict(test[FEATURES])
    metrics = {
        "test_accuracy": accuracy_score(test["species"], predicted),
        "test_f1_macro": f1_score(test["species"], predicted, average="macro"),
    }
    mlflow.log_params({"C": args.regularization, "train_rows": len(train)})
    mlflow.log_metrics(metrics)
    logged = log_model(
        model,
        flavor=mlflow.sklearn,
        name="model",
        registered_model_name=model_name,
        input_example=train[FEATURES].head(3),
    )

version = logged.registered_model_version
print(f"test accuracy {metrics['test_accuracy']:.3f}; registered {model_name} version {version}")
dbutils.jobs.taskValues.set("model_name", model_name)
dbutils.jobs.taskValues.set("model_version", version)
dbutils.jobs.taskValues.set("test_accuracy", metrics["test_accuracy"])
