"""The two ends of the churn scenario: ``plan`` before the days run, ``report`` after.

``plan`` checks that the target starts empty (the scenario's days would otherwise land on top
of an earlier run's) and publishes the days to simulate. ``report`` prints, per simulated day,
what the monitor measured and which model was champion, and the model versions the loop made.
"""

import argparse
import json

from lakestack import dbutils
from lakestack.errors import UsageError
from lakestack.lake import default_catalog

parser = argparse.ArgumentParser()
parser.add_argument("step", choices=["plan", "report"])
parser.add_argument("--catalog", required=True)
parser.add_argument("--schema", required=True)
parser.add_argument("--history-days", type=int, default=4)
parser.add_argument("--days", type=int, default=6)
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"
catalog = default_catalog()

if args.step == "plan":
    if catalog.table_exists(f"{prefix}.churn_labels"):
        raise UsageError(
            f"{prefix} holds an earlier run's customers; the scenario starts from an empty "
            "target: run `lakestack bundle destroy --auto-approve` first"
        )
    days = list(range(args.history_days, args.history_days + args.days))
    print(f"history: days 0..{args.history_days - 1}; simulated: days {days[0]}..{days[-1]}")
    dbutils.jobs.taskValues.set("last_history_day", args.history_days - 1)
    dbutils.jobs.taskValues.set("days", json.dumps(days))
