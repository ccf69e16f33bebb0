"""DataFrames in and out: pandas, Polars or Arrow in; pandas (or what was asked for) out.

Databricks' client returns Spark DataFrames; here results are pandas by default, with Arrow and
Polars on request, so notebooks written for ``toPandas()``-style code work and fast paths stay
in Arrow.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from lakestack.errors import FeatureError
from lakestack.errors import SchemaMismatchError as _SchemaMismatchError
from lakestack.lake.arrow import as_arrow

__all__ = ["Format", "clustered", "format_of", "from_arrow", "to_arrow"]

Format = Literal["pandas", "arrow", "polars"]
FORMATS = ("pandas", "arrow", "polars")


def to_arrow(data: Any, *, what: str) -> pa.Table:
    """An Arrow table from a pandas or Polars DataFrame or Arrow data.

    Raises:
        FeatureError: ``data`` is none of these (``what`` names the argument).
    """
    try:
        return as_arrow(data)
    except _SchemaMismatchError:
        raise FeatureError(
            f"{what} is a {type(data).__name__}; pass a pandas or Polars DataFrame or an "
            "Arrow table"
        ) from None


def format_of(data: Any) -> Format:
    """The format results for ``data`` come back in: the input's own, pandas otherwise."""
    module = type(data).__module__
    if module.startswith("polars"):
        return "polars"
    if isinstance(data, pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return "arrow"
    return "pandas"


def from_arrow(table: pa.Table, format: str) -> Any:
    """``table`` as a pandas DataFrame, a Polars DataFrame or itself.

    Raises:
        FeatureError: An unknown format.
    """
    if format == "arrow":
        return table
    if format == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if format == "pandas":
        return table.to_pandas()
    raise FeatureError(f"unknown format '{format}'; use one of {', '.join(FORMATS)}")


def clustered(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table``'s rows ordered by ``keys`` (a feature table's primary key, timestamp last).

    Feature tables are written in key order, the clustering Databricks recommends for them:
    lookups sort each chunk of (key, timestamp) they read, and a chunk already in order sorts in
    a single pass (0.03 s instead of 0.6 s for 10M rows). Rows without every key are left to
    the constraint check, which names them.
    """
    import polars as pl

    if table.num_rows < 2 or any(k not in table.column_names for k in keys):
        return table
    frame = pl.from_arrow(table.select(keys))
    assert isinstance(frame, pl.DataFrame)
    order = frame.select(pl.arg_sort_by(keys)).to_series()
    if order.is_sorted():  # already in key order: nothing to move
        return table
    return table.take(order.to_arrow())
