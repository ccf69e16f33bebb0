# Databricks notebook source
# MAGIC %md
# MAGIC # Daily summary
# MAGIC Lists the predictions written by the scoring iterations.

# COMMAND ----------

dbutils.widgets.text("predictions", "/Volumes/main/quickstart/predictions")
predictions = dbutils.widgets.get("predictions")

# COMMAND ----------

files = dbutils.fs.ls(predictions)
for info in files:
    print(f"{info.name:<20} {info.size:>8} bytes")
dbutils.notebook.exit(f"{len(files)} prediction files")
