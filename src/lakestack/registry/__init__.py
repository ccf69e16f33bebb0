"""The MLflow boundary: tracking and registry configuration, model logging and loading.

The only importer of ``mlflow``; MLflow errors become lakestack errors here.
"""
