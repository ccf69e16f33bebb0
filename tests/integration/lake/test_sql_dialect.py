"""Databricks SQL as MLOps Stacks writes it against a monitor's profile table: a ``window``
column (reserved in DuckDB) and double-quoted strings (identifiers in DuckDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakestack.lake import Catalog

pytestmark = pytest.mark.integration

# MLOps Stacks' metric_violation_check_query, formatted as its notebook does
STACKS_QUERY = """
WITH recent_metrics AS (
  SELECT {metric_to_monitor}, window
  FROM {table_name_under_monitor}_profile_metrics
  WHERE column_name = ":table" AND slice_key IS NULL AND model_id != "*" AND log_type = "INPUT"
  ORDER BY window DESC
  LIMIT {num_evaluation_windows}
)
SELECT CASE WHEN
    (SELECT COUNT(*) FROM recent_metrics WHERE {metric_to_monitor} > {metric_violation_threshold}) >= {num_violation_windows}
  AND
    (SELECT {metric_to_monitor} FROM recent_metrics ORDER BY window DESC LIMIT 1) > {metric_violation_threshold}
THEN 1 ELSE 0 END AS query_result
"""


def profile(catalog: Catalog, errors: list[float]) -> None:
    """A ``_profile_metrics`` table with one ``:table`` row per day for model 1 and ``*``."""
    day = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i, rmse in enumerate(errors):
        window = {"start": day + timedelta(days=i), "end": day + timedelta(days=i + 1)}
        for model in ("1", "*"):
            rows.append(
                {
                    "window": window,
                    "model_id": model,
                    "log_type": "INPUT",
                    "slice_key": None,
                    "column_name": ":table",
                    "root_mean_squared_error": rmse,
                }
            )
    catalog.create_schema("main.ml")
    schema = pa.schema(
        [
            (
                "window",
                pa.struct(
                    [("start", pa.timestamp("us", "UTC")), ("end", pa.timestamp("us", "UTC"))]
                ),
            ),
            ("model_id", pa.string()),
            ("log_type", pa.string()),
            ("slice_key", pa.string()),
            ("column_name", pa.string()),
            ("root_mean_squared_error", pa.float64()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    catalog.create_table("main.ml.predictions_profile_metrics", table)


@pytest.mark.parametrize(
    ("errors", "violated"),
    [
        ([10, 10, 150, 150, 150], 1),  # 3 of the last 5 over, the latest too
        ([150, 150, 150, 150, 10], 0),  # the latest is fine: a stale violation
        ([10, 10, 10, 150, 150], 1),  # exactly 2 of 5, the latest over
        ([10, 10, 10, 10, 150], 0),  # only the latest
    ],
)
def test_the_stacks_violation_query_runs_unchanged(
    catalog: Catalog, errors: list[float], violated: int
) -> None:
    profile(catalog, errors)
    query = STACKS_QUERY.format(
        metric_to_monitor="root_mean_squared_error",
        table_name_under_monitor="main.ml.predictions",
        metric_violation_threshold=100,
        num_evaluation_windows=5,
        num_violation_windows=2,
    )

    assert catalog.sql(query).to_pylist() == [{"query_result": violated}]


def test_window_struct_fields_and_a_window_clause(catalog: Catalog) -> None:
    profile(catalog, [1.0, 2.0, 3.0])

    latest = catalog.sql(
        "SELECT window.start AS start FROM main.ml.predictions_profile_metrics "
        "WHERE model_id = '*' ORDER BY window.start DESC LIMIT 1"
    ).to_pylist()
    running = catalog.sql(
        "SELECT sum(root_mean_squared_error) OVER w AS total "
        "FROM main.ml.predictions_profile_metrics WHERE model_id = '*' "
        "WINDOW w AS (ORDER BY window.start) ORDER BY total"
    ).column("total")

    assert latest[0]["start"] == datetime(2026, 1, 3, tzinfo=UTC)
    assert running.to_pylist() == [1.0, 3.0, 6.0]


def test_double_quotes_outside_a_comparison_stay_identifiers(catalog: Catalog) -> None:
    profile(catalog, [5.0])

    rows = catalog.sql(
        'SELECT "model_id", "column_name" = \':table\' AS whole '
        'FROM main.ml.predictions_profile_metrics WHERE "log_type" = "INPUT" ORDER BY 1'
    ).to_pylist()

    assert rows == [{"model_id": "*", "whole": True}, {"model_id": "1", "whole": True}]
