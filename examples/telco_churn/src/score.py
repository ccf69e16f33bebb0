"""Score customers with the champion into an inference table, stamped with a simulated day.

The built-in ``batch_inference`` task (``batch_inference_job``) stamps the rows with the time it
runs. The scenario compresses days into seconds, so this task calls the same function,
``lakestack.inference.score_table``, with the simulated day's time (23:00 UTC) instead: the
monitor's daily windows then hold one simulated day each. The rows have the inference-table
shape a monitor reads: ``customerID``, the looked-up features, ``prediction``, ``probability``
(class to probability, for ROC AUC and log loss), ``model_id`` and ``timestamp``.
"""

import argparse

import pandas as pd
from telco_data import day_start

from lakestack import dbutils
from lakestack.inference import score_table

parser = argparse.ArgumentParser()
parser.add_argument("--model-name", required=True)
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--day", type=int, required=True)
parser.add_argument("--mode", default="append", choices=["append", "overwrite"])
args = parser.parse_args()

result = score_table(
    f"models:/{args.model_name}@champion",
    args.input,
    args.output,
    mode=args.mode,
    result_type="long",
    timestamp=(day_start(args.day) + pd.Timedelta(hours=23)).to_pydatetime(),
    probabilities=True,
)
print(f"day {args.day}: scored {result.rows} customers of {args.input} with {result.model_id}")
dbutils.jobs.taskValues.set("rows", result.rows)
dbutils.jobs.taskValues.set("model_id", result.model_id)
