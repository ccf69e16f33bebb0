"""Land the churn of days of customers, once it is known: the labels table, the inference
table, the reference table.

The reference project keeps labels apart from features: ``churn_labels`` (``customerID``,
``churn`` as 1/0, ``timestamp``: when the customer arrived). When the customers have been
scored, their churn is merged into the inference table by ``customerID``, so the monitor can
compare predictions with outcomes. One customer in five (by a hash of the id) is never trained
on: those of the last ``--reference-days`` days make ``churn_reference``, the table the
deployment job evaluates challenger and champion on.

The generator made each customer's churn with its features; here it is revealed (the same
seed gives the same customers).
"""

import pandas as pd
from telco_data import days_parser, generate_days, held_out

from lakestack import dbutils
from lakestack.lake import default_catalog
from lakestack.serving.capture import merge_labels

parser = days_parser()
parser.add_argument("--reference-days", type=int, default=3)
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"
catalog = default_catalog()

customers = generate_days(
    args.first_day, args.days, args.rows_per_day, seed=args.seed, drift_from=args.drift_from
)
labels = pd.DataFrame(
    {
        "customerID": customers["customerID"],
        "churn": (customers["Churn"] == "Yes").astype("int64"),
        "timestamp": customers["timestamp"],
    }
)
name = f"{prefix}.churn_labels"
if catalog.table_exists(name):
    catalog.table(name).merge(labels)
else:
    catalog.create_table(
        name,
        labels,
        primary_keys=["customerID"],
        comment="Churn of each customer (1 churned, 0 stayed) and when the customer arrived.",
    )

inferences = f"{prefix}.churn_inferences"
if catalog.table_exists(inferences):
    merge_labels(
        catalog, inferences, labels[["customerID", "churn"]], key="customerID", label_column="churn"
    )

known = catalog.table(name).to_pandas()
day = known["timestamp"].dt.floor("D")
recent = known[day >= day.max() - pd.Timedelta(days=args.reference_days - 1)]
reference = recent[held_out(recent["customerID"])][["customerID", "churn"]]
reference_name = f"{prefix}.churn_reference"
if catalog.table_exists(reference_name):
    catalog.table(reference_name).overwrite(reference)
else:
    catalog.create_table(
        reference_name,
        reference,
        primary_keys=["customerID"],
        comment="Held-out customers of the latest days with their churn: the evaluation data.",
    )

print(
    f"churn of {len(labels)} customers landed: rate {labels['churn'].mean():.3f}; "
    f"{len(reference)} held-out customers in {reference_name}"
)
dbutils.jobs.taskValues.set("churn_rate", float(labels["churn"].mean()))
dbutils.jobs.taskValues.set("reference_rows", len(reference))
