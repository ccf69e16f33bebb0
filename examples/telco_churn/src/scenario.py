"""The two ends of the churn scenario: ``plan`` before the days run, ``report`` after.

``plan`` checks that the target starts empty (the scenario's days would otherwise land on top
of an earlier run's) and publishes the days to simulate. ``report`` prints what the monitor
measured each day and the model versions the loop made, and writes the monitor's HTML report
(what ``lakestack monitors report churn_monitor`` writes) beside the bundle file.
"""

import argparse
import json
from datetime import date
from pathlib import Path

from telco_data import START

from lakestack import dbutils, load_bundle
from lakestack.errors import UsageError
from lakestack.lake import default_catalog
from lakestack.monitoring.report import write_report
from lakestack.registry import ModelRegistry
from lakestack.runtime import context

parser = argparse.ArgumentParser()
parser.add_argument("step", choices=["plan", "report"])
parser.add_argument("--catalog", required=True)
parser.add_argument("--schema", required=True)
parser.add_argument("--history-days", type=int, default=4)
parser.add_argument("--days", type=int, default=6)
args = parser.parse_args()
prefix = f"{args.catalog}.{args.schema}"
catalog = default_catalog()


def plan() -> None:
    if catalog.table_exists(f"{prefix}.churn_labels"):
        raise UsageError(
            f"{prefix} holds an earlier run's customers; the scenario starts from an empty "
            "target: run `lakestack bundle destroy --auto-approve` first"
        )
    days = list(range(args.history_days, args.history_days + args.days))
    print(f"history: days 0..{args.history_days - 1}; simulated: days {days[0]}..{days[-1]}")
    dbutils.jobs.taskValues.set("last_history_day", args.history_days - 1)
    dbutils.jobs.taskValues.set("days", json.dumps(days))


DAYS = """
SELECT strftime(p."window".start, '%Y-%m-%d') AS day, p.count AS customers,
       c.avg AS churn, p.accuracy_score AS accuracy, p.f1_score.macro AS f1,
       p.roc_auc, p.log_loss, m.avg AS charges, d.ks_test.statistic AS charges_ks,
       (SELECT string_agg(split_part(q.model_id, '/', 2), ',' ORDER BY q.model_id)
          FROM {prefix}.churn_inferences_profile_metrics q
         WHERE q."window".start = p."window".start AND q.model_id != '*'
           AND q.column_name = ':table' AND q.slice_key IS NULL AND q.log_type = 'INPUT') AS model
FROM {prefix}.churn_inferences_profile_metrics p
JOIN {prefix}.churn_inferences_profile_metrics c USING ("window", model_id, log_type)
JOIN {prefix}.churn_inferences_profile_metrics m USING ("window", model_id, log_type)
LEFT JOIN {prefix}.churn_inferences_drift_metrics d
  ON d."window".start = p."window".start AND d.model_id = '*' AND d.slice_key IS NULL
 AND d.drift_type = 'BASELINE' AND d.column_name = 'MonthlyCharges'
WHERE p.model_id = '*' AND p.log_type = 'INPUT' AND p.column_name = ':table'
  AND p.slice_key IS NULL AND c.slice_key IS NULL AND m.slice_key IS NULL
  AND c.column_name = 'churn' AND m.column_name = 'MonthlyCharges'
ORDER BY day
"""


def report() -> None:
    rows = catalog.sql(DAYS.format(prefix=prefix)).to_pylist()
    print(
        "day  date        model  customers  churn  accuracy  F1     ROC AUC  log loss  charges  KS"
    )
    for r in rows:
        number = (date.fromisoformat(r["day"]) - START.date()).days
        print(
            f"{number:>3}  {r['day']}  v{r['model']:<5} {r['customers']:>9}  {r['churn']:.3f}  "
            f"{r['accuracy']:.3f}     {r['f1']:.3f}  {r['roc_auc']:.3f}    {r['log_loss']:.3f}"
            f"     {r['charges']:6.2f}   {r['charges_ks']:.3f}"
        )
    print("(KS: MonthlyCharges against the baseline; F1 macro; log loss past 0.55 retrains)")

    registry = ModelRegistry.default()
    versions = registry.versions(f"{prefix}.churn_model")
    for v in sorted(versions, key=lambda v: v.version):
        params = registry.client.get_run(v.run_id).data.params if v.run_id else {}
        print(
            f"version {v.version}: trained on days {params.get('first_day')}.."
            f"{params.get('last_day')}, deployment {v.deployment_state}"
            + (f", {', '.join(v.aliases)}" if v.aliases else "")
        )
    ctx = context()
    bundle = load_bundle(target=ctx.target if ctx else None)
    page = write_report(
        bundle, catalog, "churn_monitor", Path("churn_monitor_report.html"), registry=registry
    )
    print(f"monitor report: {page.resolve()}")
    champion = [v.version for v in versions if "champion" in v.aliases]
    dbutils.jobs.taskValues.set("champion_version", champion[0] if champion else None)
    dbutils.jobs.taskValues.set("versions", len(versions))
    dbutils.jobs.taskValues.set("report", str(page.resolve()))


plan() if args.step == "plan" else report()
