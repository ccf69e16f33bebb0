"""Land days of new customers: their features into the feature table, their ids for scoring.

The reference project's feature-table-creation job reads the IBM customers, drops the label
and writes the rest to a feature table keyed by ``customerID``; here the customers come from
the generator (``telco_data.py``), one batch per day. The feature table has a primary key, so
landing a day again upserts its customers instead of adding copies. The ids of the customers
just landed replace ``churn_new_customers``: the batch the next scoring reads. Their churn is
not known yet: ``labels.py`` lands it later.
"""

from telco_data import FEATURES, days_parser, generate_days

from lakestack import dbutils
from lakestack.features import FeatureEngineeringClient
from lakestack.lake import default_catalog

parser = days_parser()
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"

customers = generate_days(
    args.first_day, args.days, args.rows_per_day, seed=args.seed, drift_from=args.drift_from
)
features = customers[["customerID", *FEATURES]]

fe = FeatureEngineeringClient()
catalog = default_catalog()
name = f"{prefix}.churn_features"
if catalog.table_exists(name):
    fe.write_table(name=name, df=features, mode="merge")
else:
    fe.create_table(
        name=name,
        primary_keys=["customerID"],
        df=features,
        description="Telco customers: the IBM Telco churn features, one row per customer.",
    )

new_customers = customers[["customerID"]]
batch = f"{prefix}.churn_new_customers"
if catalog.table_exists(batch):
    catalog.table(batch).overwrite(new_customers)
else:
    catalog.create_table(
        batch, new_customers, primary_keys=["customerID"], comment="The customers to score next."
    )

last_day = args.first_day + args.days - 1
drifted = last_day >= args.drift_from
print(
    f"landed {len(customers)} customers of days {args.first_day}..{last_day} in {name}"
    f"{' (price rise in force)' if drifted else ''}; "
    f"mean MonthlyCharges {customers['MonthlyCharges'].mean():.2f}"
)
dbutils.jobs.taskValues.set("customers", len(customers))
dbutils.jobs.taskValues.set("last_day", last_day)
