"""Model serving endpoints (``lakestack serve``): MLflow's and Databricks' scoring protocol,
alias-bound entities swapped without downtime, weighted routes, micro-batching, metrics.

The only importer of fastapi, starlette and uvicorn. Import the app and server from their
modules (``lakestack.serving.server``); this package module stays light for the layers above.
"""

from __future__ import annotations

__all__: list[str] = []
